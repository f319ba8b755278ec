"""Every file writer refuses what its own reader would refuse, before a byte is written.

A writer that saved a numpy number, a path object, NaN latents or a clashing field made a
file that ``read_latents``/``load_encoder``/``Direction.load`` then refused ("'ganenc invert'
writes latent files", which it had), and a bad file broke the whole folder it sat in.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

import ganenc
from ganenc.editing import Direction
from ganenc.encoder_runs import recorded_generator
from ganenc.errors import CheckpointError, ConfigError
from ganenc.files import plain_data, torch_save
from ganenc.latents import read_latents, save_latent_file
from ganenc.training.settings import GeneratorSpec, TrainSettings

LATENTS = {"w_plus": torch.randn(1, 4, 8)}


def test_plain_data_converts_numpy_and_paths_and_refuses_objects():
    data = {"psnr": np.float32(20.5), "image": pathlib.Path("a.png"), "rows": (np.int64(3), [1])}
    assert plain_data(data, "x") == {"psnr": 20.5, "image": "a.png", "rows": (3, [1])}
    assert type(plain_data(np.float32(1.5), "x")) is float
    with pytest.raises(ConfigError, match="x: object .* cannot be saved"):
        plain_data({"a": [object()]}, "x")
    with pytest.raises(ConfigError, match="cannot be saved"):
        plain_data(torch.zeros(1), "x")  # tensors only where the file takes them
    assert plain_data({"t": torch.ones(1)}, "x", tensors=True)["t"].item() == 1


def test_latent_metadata_in_numpy_and_paths_reads_back(tmp_path):
    save_latent_file(tmp_path / "a.pt", LATENTS, psnr=np.float32(20.0), image=pathlib.Path("a"))
    record = read_latents(tmp_path / "a.pt").records[0]
    assert record["psnr"] == 20.0 and record["image"] == "a"


@pytest.mark.parametrize(
    ("latents", "metadata", "message"),
    [
        ({"w_plus": torch.full((1, 4, 8), float("nan"))}, {}, "NaN"),
        ({"w_plus": torch.zeros(0, 4, 8)}, {}, "batches"),
        ({}, {}, "no latents"),
        (torch.zeros(1, 8), {}, "dict of tensors"),
        (LATENTS, {"format": "other"}, "own fields"),
        (LATENTS, {"synthesis_options": {"truncation": "abc"}}, "truncation"),
        (LATENTS, {"who": object()}, "cannot be saved"),
    ],
)
def test_latents_the_reader_refuses_are_not_written(tmp_path, latents, metadata, message):
    with pytest.raises(ConfigError, match=message):
        save_latent_file(tmp_path / "bad.pt", latents, **metadata)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def encoder():
    generator = ganenc.load_generator(
        "stylegan2", resolution=32, channel_base=64, channel_max=8, z_dim=8, w_dim=8
    )
    return ganenc.build_encoder(generator, start_channels=4, max_channels=8)


def test_encoder_extras_in_numpy_and_paths_load_back(encoder, tmp_path):
    path = ganenc.save_encoder(
        encoder, tmp_path / "e.pt", best_psnr=np.float32(21.5), source=pathlib.Path("R1")
    )
    assert ganenc.load_encoder(path) is not None
    payload = torch.load(path, weights_only=True)
    assert payload["best_psnr"] == 21.5 and payload["source"] == "R1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"state_dict": {}}, "own fields"),
        ({"format": "x"}, "own fields"),
        ({"geometry": {}}, "own fields"),
        ({"step": -1}, "'step' is -1"),
        ({"note": object()}, "cannot be saved"),
    ],
)
def test_encoder_files_the_loader_refuses_are_not_written(encoder, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        ganenc.save_encoder(encoder, tmp_path / "e.pt", **extra)
    assert list(tmp_path.iterdir()) == []


def test_saving_onto_a_folder_is_one_clear_error(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ganenc.GanencError, match="is a folder; give a file name"):
        torch_save({"a": 1}, tmp_path / "out")


def test_direction_save_refuses_what_load_refuses(tmp_path):
    with pytest.raises(ConfigError, match="length is 4"):
        Direction("smile", "w", torch.ones(16)).save(tmp_path / "d.pt")
    with pytest.raises(ConfigError, match="float tensor, not list"):
        Direction("smile", "w", [1.0, 0.0]).save(tmp_path / "d.pt")
    assert list(tmp_path.iterdir()) == []
    unit = torch.zeros(16)
    unit[0] = 1
    Direction("smile", "w", unit, {"labels": pathlib.Path("l.csv"), "acc": np.float64(0.9)}).save(
        tmp_path / "d.pt"
    )
    loaded = Direction.load(tmp_path / "d.pt")
    assert loaded.metadata == {"labels": "l.csv", "acc": 0.9}


def test_settings_built_in_python_fail_with_one_config_error():
    with pytest.raises(ConfigError, match="unknown setting 'iteratons'"):
        TrainSettings(gan="stylegan2", iteratons=3)
    with pytest.raises(ConfigError, match="iterations = 0"):
        TrainSettings(gan="stylegan2", iterations=0)
    # nested settings keep pydantic's field-by-field path (not a wrapped "Value error")
    with pytest.raises(ConfigError, match=r"optimizer\.lr = -1\.0: Input should be greater"):
        TrainSettings(gan="stylegan2", optimizer={"lr": -1.0})
    assert GeneratorSpec(gan="stylegan2").checkpoint == "random"


def test_a_record_with_checkpoint_none_is_a_file_error():
    with pytest.raises(CheckpointError, match="x.pt records a generator ganenc cannot use"):
        recorded_generator({"gan": "stylegan2", "checkpoint": None}, "x.pt")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ganenc.load_encoder(None), "an encoder is a file, .* not None"),
        (lambda: ganenc.load_encoder(3), "not 3"),
        (lambda: read_latents(None), "from a file or a folder, not None"),
        (lambda: ganenc.weights.fetch(3), "a weights tag .* not 3"),
    ],
)
def test_arguments_of_the_wrong_type_are_one_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_a_misspelt_family_gets_did_you_mean():
    from ganenc.encoder_runs import EncoderRun

    with pytest.raises(ganenc.GanencError, match="no generator named 'stylgan2'; did you mean"):
        EncoderRun.open("encoder:stylegan2-emoji-64", gan="stylgan2")
    with pytest.raises(ganenc.GanencError, match="did you mean 'stylegan2'"):
        ganenc.load_generator("stylegan22")
