"""Hostile and broken inputs: one clear error, nothing written, nothing overwritten (issue 18)."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from training_helpers import tiny_train_settings

import ganenc
from ganenc.checkpoints import build_checked
from ganenc.cli.main import cli
from ganenc.config import read_config_file
from ganenc.data import load_image, load_image_folder
from ganenc.editing import Direction
from ganenc.errors import CheckpointError, ConfigError, GanencError, ImageReadError
from ganenc.files import check_output, torch_save, write_json
from ganenc.images import MAX_IMAGE_SIDE, open_image
from ganenc.training.runs import RunDirectory
from ganenc.training.settings import TrainSettings


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` pixels (its data is one short row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 9))
        + chunk(b"IEND", b"")
    )


# -- images ---------------------------------------------------------------------------------


def test_images_open_only_with_the_allowed_decoders(tmp_path):
    postscript = tmp_path / "photo.png"
    postscript.write_text("%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageReadError, match="not an image in an allowed format"):
        open_image(postscript)
    Image.new("RGB", (8, 8)).save(tmp_path / "fine.pcx")  # a format Pillow reads, not allowed
    with pytest.raises(ImageReadError, match="allowed format"):
        open_image(tmp_path / "fine.pcx")


def test_sizes_are_checked_from_the_header_before_decoding(tmp_path):
    (tmp_path / "thin.png").write_bytes(png_header_only(1, MAX_IMAGE_SIDE + 1))
    with pytest.raises(ImageReadError, match=r"declares 1 x \d+ pixels"):
        open_image(tmp_path / "thin.png")
    (tmp_path / "bomb.png").write_bytes(png_header_only(15_000, 15_000))
    with pytest.raises(ImageReadError, match="pixels"):
        open_image(tmp_path / "bomb.png")


def test_a_long_thin_image_is_cropped_before_it_is_resized(tmp_path):
    Image.new("RGB", (2, 4000), (255, 0, 0)).save(tmp_path / "thin.png")
    image = load_image(tmp_path / "thin.png", 16)
    assert image.shape == (3, 16, 16)
    assert torch.allclose(image[0], torch.ones(16, 16))


def test_16_bit_and_float_images_keep_their_grey_levels(tmp_path):
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(ramp.astype(np.float32), mode="F").save(tmp_path / "float.tif")
    for name in ("deep.png", "float.tif"):
        pixels = np.asarray(open_image(tmp_path / name)).astype(float)
        assert abs(pixels.mean() - 127.5) < 1.5, name  # clipped to 255 this would be ~255
        assert pixels.min() == 0 and pixels.max() == 255


def test_a_folder_with_hostile_files_skips_them_with_reasons(tmp_path):
    Image.new("RGB", (20, 20), (0, 128, 255)).save(tmp_path / "good.png")
    (tmp_path / "bomb.png").write_bytes(png_header_only(15_000, 15_000))
    (tmp_path / "script.jpg").write_text("%!PS\nshowpage\n")
    folder = load_image_folder(tmp_path, 16)
    assert folder.names == ["good.png"]
    assert set(folder.skipped) == {"bomb.png", "script.jpg"}


# -- settings and config files ----------------------------------------------------------------


def test_yaml_aliases_binary_and_nan_config_files_are_one_line_errors(tmp_path):
    laughs = tmp_path / "laughs.yaml"
    rows = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    rows += [
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    laughs.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match="aliases"):
        read_config_file(laughs)
    binary = tmp_path / "settings.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_config_file(binary)
    nan = tmp_path / "settings.json"
    nan.write_text('{"optimizer": {"lr": NaN}}')
    with pytest.raises(ConfigError, match="NaN"):
        read_config_file(nan)


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": {"lr": float("inf")}},
        {"optimizer": {"lr": 1e300}},
        {"optimizer": {"eps": float("nan")}},
        {"optimizer": {"betas": [5, -3]}},
        {"truncation": float("inf")},
        {"seed": 10**23},
        {"seed": -1},
        {"train_seeds": 10**14, "val_seed_start": 10**14},
        {"val_seed_start": 2**32 - 2},
    ],
)
def test_absurd_numbers_are_refused_before_anything_runs(tmp_path, overrides):
    values = {"gan": "stylegan2", "out": tmp_path / "run", **overrides}
    with pytest.raises(ValueError):
        TrainSettings(**values)


def test_absurd_generator_options_and_files_are_measured_before_building(tmp_path):
    with pytest.raises(CheckpointError, match="GiB"):
        ganenc.load_generator("stylegan2", resolution=64, channel_max=10**7, channel_base=10**9)
    with pytest.raises(CheckpointError, match="would take"):
        build_checked(lambda: torch.nn.Linear(100_000, 100_000), "crafted.pt", limit=1 << 30)
    assert build_checked(lambda: torch.nn.Linear(2, 2), "fine.pt").weight.shape == (2, 2)


def test_a_rosinality_file_with_a_missing_entry_says_so(tmp_path):
    state = ganenc.load_generator("stylegan2", resolution=32, channel_max=16).model
    from ganenc_stylegan.formats import rosinality_state_dict

    entries = rosinality_state_dict(state)
    del entries["input.input"]
    torch.save({"g_ema": entries}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError) as caught:
        ganenc.load_generator("stylegan2", tmp_path / "broken.pt")
    message = str(caught.value)
    assert "incomplete" in message and "not a StyleGAN2 checkpoint" not in message


# -- crafted files ganenc writes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_encoder_file(tmp_path_factory):
    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=16)
    encoder = ganenc.build_encoder(generator, max_channels=16)
    return ganenc.save_encoder(encoder, tmp_path_factory.mktemp("enc") / "encoder.pt")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.update(geometry={"family": "stylegan2"}),
        lambda p: p.update(geometry={**p["geometry"], "resolution": 2**40}),
        lambda p: p.update(geometry={**p["geometry"], "encoder_latents": {"w": "x"}}),
        lambda p: p.update(state_dict=[1, 2, 3]),
        lambda p: p.update(state_dict={"nope": torch.zeros(1)}),
        lambda p: p.update(options="max_channels"),
        lambda p: p.update(builder=3),
        lambda p: p.update(step=-4),
    ],
)
def test_crafted_encoder_files_are_checkpoint_errors(tmp_path, tiny_encoder_file, damage):
    payload = torch.load(tiny_encoder_file, weights_only=True)
    damage(payload)
    torch.save(payload, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError):
        ganenc.load_encoder(tmp_path / "crafted.pt")


def _diverged(payload):
    for tensor in payload["state_dict"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_diverged, "its weights hold NaN or inf"),  # invert wrote NaN latents and exit 0
        # options of a 5 GB encoder in a small file: built before its weights were compared
        (lambda p: p["options"].update(max_channels=4096, start_channels=4096), "do not fit"),
        (lambda p: p["options"].update(max_channels=10**6, start_channels=10**6), "would take"),
    ],
)
def test_encoder_files_are_checked_before_an_encoder_is_built(
    tmp_path, tiny_encoder_file, damage, message, monkeypatch
):
    from ganenc import encoders

    built = []
    original = encoders.build_encoder

    def counting(*args, **kwargs):
        import torch as torch_

        built.append(torch_.empty(0).device.type)  # the default device: meta for the twin
        return original(*args, **kwargs)

    monkeypatch.setattr(encoders, "build_encoder", counting)
    payload = torch.load(tiny_encoder_file, weights_only=True)
    damage(payload)
    torch.save(payload, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError, match=message):
        ganenc.load_encoder(tmp_path / "crafted.pt")
    assert "cpu" not in built  # refused before anything was allocated


class Stranger:
    """A class no safe loader allows."""


def test_messages_never_advise_loosening_the_safe_loader(tmp_path):
    torch.save({"x": Stranger()}, tmp_path / "stranger.pt")
    for load in (ganenc.load_encoder, Direction.load):
        with pytest.raises(CheckpointError) as caught:
            load(tmp_path / "stranger.pt")
        message = str(caught.value)
        assert "Stranger" in message and "writes" in message  # what it is, which command
        for advice in ("weights_only", "safe_globals", "trust"):
            assert advice not in message


@pytest.mark.parametrize(
    "vector, reason",
    [
        (torch.zeros(8), "zero"),
        (torch.full((8,), float("nan")), "NaN"),
        (torch.tensor([1.0, float("inf")]), "infinite"),
        (torch.arange(3), "float tensor"),
        ("north", "float tensor"),
    ],
)
def test_crafted_direction_files_are_checkpoint_errors(tmp_path, vector, reason):
    payload = {"format": "ganenc-direction/1", "attribute": "a", "space": "w", "direction": vector}
    torch.save(payload, tmp_path / "d.pt")
    with pytest.raises(CheckpointError, match=reason):
        Direction.load(tmp_path / "d.pt")
    torch.save({"format": "ganenc-direction/1", "attribute": "a"}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="damaged direction file"):
        Direction.load(tmp_path / "partial.pt")


def test_latents_of_another_generator_are_refused_before_editing(tmp_path):
    from ganenc.editing import edit_latents
    from ganenc.latents import save_latent_file

    save_latent_file(tmp_path / "z.pt", {"z": torch.randn(1, 120)}, image="z.png")  # BigGAN's
    direction = Direction("smile", "z", torch.ones(120))
    spec = {"gan": "stylegan2", "checkpoint": "random", "generator_options": {"resolution": 32}}
    with pytest.raises(GanencError, match="made for another generator"):
        edit_latents(tmp_path / "z.pt", direction, "1", tmp_path / "out", generator=spec)
    assert not (tmp_path / "out").exists()
    torch.save({"latents": {"w": torch.tensor([[float("nan")]])}}, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        edit_latents(tmp_path / "nan.pt", direction, "1", tmp_path / "out2", generator=spec)


@pytest.mark.parametrize(
    ("latents", "metadata", "message"),
    [
        ({"z": torch.randn(1, 64)}, {"synthesis_options": {"truncation": "abc"}}, "truncation"),
        ({"z": torch.randn(1, 64)}, {"synthesis_options": {"bogus": 1}}, "unknown setting"),
        ({"z": torch.randn(1, 64)}, {"synthesis_options": {"truncation": 1e308}}, "less than"),
        ({"z": torch.randn(1, 64)}, {"synthesis_options": [1]}, "not a mapping"),
        ({"z": torch.randn(0, 64)}, {}, "batches of"),
        ({"z": torch.randn(1, 64), "extra": torch.randn(1, 3)}, {}, "another generator"),
    ],
)
def test_tampered_latent_files_are_refused_before_edit_writes(tmp_path, latents, metadata, message):
    """Edit passed a latent file's synthesis options to the generator unchecked (an 'unexpected
    error', or NaN pictures for psi 1e308) after it had written the edited latents."""
    from ganenc.editing import edit_latents
    from ganenc.latents import LATENTS_FORMAT

    # written by hand: save_latent_file refuses what the reader refuses
    tampered = {"format": LATENTS_FORMAT, "latents": latents, "image": "a.png", **metadata}
    torch.save(tampered, tmp_path / "a.pt")
    direction = Direction("smile", "z", torch.nn.functional.normalize(torch.ones(64), dim=0))
    spec = {"gan": "stylegan2", "checkpoint": "random", "generator_options": {"resolution": 32}}
    spec["generator_options"]["channel_max"] = 16
    with pytest.raises(GanencError, match=message):
        edit_latents(tmp_path / "a.pt", direction, "1", tmp_path / "out", generator=spec)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"loss": "hello"}, "the recorded 'loss' is 'hello', not a mapping"),
        ({"cropper_options": [1, 2]}, "the recorded 'cropper_options' is"),
        ({"truncation": True}, "not a number"),
    ],
)
def test_recorded_settings_of_the_wrong_type_are_a_damaged_run(
    tmp_path, tiny_encoder_file, settings, message
):
    payload = torch.load(tiny_encoder_file, weights_only=True)
    from ganenc.encoder_runs import EncoderRun

    payload["settings"] = settings
    torch.save(payload, tmp_path / "encoder.pt")
    with pytest.raises(CheckpointError, match=message):
        EncoderRun.open(tmp_path / "encoder.pt", gan="stylegan2", checkpoint="random")


def test_a_config_json_that_is_no_run_settings_is_ignored_with_a_warning(
    tmp_path, tiny_encoder_file, caplog
):
    from ganenc.encoder_runs import training_settings

    payload = torch.load(tiny_encoder_file, weights_only=True)
    payload.pop("settings", None)
    (tmp_path / "config.json").write_text("[1, 2]")
    with caplog.at_level("WARNING"):
        assert training_settings(tmp_path / "encoder.pt", payload) == {}
    assert "not a run's settings (list)" in caplog.text
    (tmp_path / "config.json").write_text('{"loss": 5}')
    with pytest.raises(CheckpointError, match="'loss' is 5, not a mapping"):
        training_settings(tmp_path / "encoder.pt", payload)


# -- writing -----------------------------------------------------------------------------------


def test_a_full_disk_leaves_the_old_file_and_no_tmp(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    torch_save({"step": 1}, target)

    def full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError):
        torch_save({"step": 2}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(target, weights_only=True) == {"step": 1}


def test_json_never_holds_nan_or_infinity(tmp_path):
    write_json(tmp_path / "v.json", {"psnr": float("nan"), "best": float("inf"), "n": [1.5]})
    text = (tmp_path / "v.json").read_text()
    assert json.loads(text) == {"psnr": None, "best": "inf", "n": [1.5]}
    assert "NaN" not in text and "Infinity" not in text


def test_outputs_are_checked_before_any_work(tmp_path):
    (tmp_path / "taken.png").write_bytes(b"mine")
    with pytest.raises(GanencError, match="pass --force"):
        check_output(tmp_path / "taken.png", force=False)
    check_output(tmp_path / "taken.png", force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(GanencError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "out.png")
    with pytest.raises(GanencError, match="is a file"):
        check_output(tmp_path / "file", folder=True)


def test_sample_eval_and_crop_preview_refuse_to_overwrite(tmp_path):
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"my picture")
    sample = ["sample", "--gan", "stylegan2", "-O", "resolution=32", "-O", "channel_max=16"]
    refused = run_cli(*sample, "-n", 1, "--out", grid)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert grid.read_bytes() == b"my picture"
    assert run_cli(*sample, "-n", 1, "--out", grid, "--force").exit_code == 0
    assert grid.read_bytes() != b"my picture"

    report = tmp_path / "report.json"
    report.write_text("{}")
    real = tmp_path / "real"
    real.mkdir()
    Image.new("RGB", (16, 16)).save(real / "a.png")
    refused = run_cli("eval", "--real", real, "--recon", real, "--json", report)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert report.read_text() == "{}"

    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "notes.txt").write_text("keep")
    refused = run_cli("crop-preview", "--attention", "center", real / "a.png", "--out", previews)
    assert refused.exit_code == 1 and "already holds files" in refused.output
    assert sorted(p.name for p in previews.iterdir()) == ["notes.txt"]


# -- runs --------------------------------------------------------------------------------------


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "run"
    failed = run_cli(
        "train", "--gan", "stylegan2", "--checkpoint", tmp_path / "no.pt", "--out", out
    )
    assert failed.exit_code == 1 and not out.exists()
    failed = run_cli("train", "--gan", "stylegan2", "--attention", "nosuch", "--out", out)
    assert failed.exit_code == 1 and not out.exists()


def test_a_folder_without_a_checkpoint_is_not_a_run(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "images").mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    (out / "checkpoints" / "step-00000003.pt.4242.tmp").write_bytes(b"killed while saving")
    resumed = run_cli("train", "--resume", "--out", out)
    assert resumed.exit_code == 1 and "holds no checkpoint" in resumed.output
    RunDirectory(out, resume=False)  # a new run reuses it
    assert not (out / "metrics.jsonl").exists()
    assert list((out / "checkpoints").iterdir()) == []
    (out / "mine.txt").write_text("not a run file")
    with pytest.raises(GanencError, match="already holds files"):
        RunDirectory(out, resume=False)


def test_a_non_finite_loss_stops_and_keeps_the_last_good_state(tmp_path, monkeypatch):
    from ganenc.losses.composite import CompositeLoss
    from ganenc.training.pretrain import pretrain

    calls = {"n": 0}
    original = CompositeLoss.forward

    def blowing_up(self, *args, **kwargs):
        total, parts = original(self, *args, **kwargs)
        calls["n"] += 1
        return (total * float("nan") if calls["n"] == 3 else total), parts

    monkeypatch.setattr(CompositeLoss, "forward", blowing_up)
    with pytest.raises(GanencError, match="stopped at step 3: the loss became nan") as caught:
        pretrain(tiny_train_settings(tmp_path / "run", checkpoint_every=100))
    assert "step 2" in str(caught.value)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


# -- the command line --------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_a_traceback_file(tmp_path, monkeypatch):
    import ganenc.cli.sample as sample_module

    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(sample_module, "settings_from_cli", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_cli("sample", "--gan", "stylegan2")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "unexpected error (TypeError: a bug)" in result.output
    written = next(tmp_path.glob("ganenc-error-*.txt"))
    assert str(written) in result.output and "Traceback" in written.read_text()


def test_an_operating_system_error_is_one_line_with_a_hint(tmp_path, monkeypatch):
    import ganenc.cli.sample as sample_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "grid.png"))

    monkeypatch.setattr(sample_module, "settings_from_cli", full)
    result = run_cli("sample", "--gan", "stylegan2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "No space left on device" in result.output and "the disk is full" in result.output


# -- every command, bad input: never a traceback ---------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of broken and hostile inputs, shared by the walk over every command."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    (root / "junk.pt").write_bytes(rng.bytes(3000))
    (root / "empty.pt").write_bytes(b"")
    torch.save({"x": Stranger()}, root / "stranger.pt")
    torch.save({"format": "ganenc-encoder/1", "geometry": [1]}, root / "crafted_encoder.pt")
    torch.save({"format": "ganenc-direction/1", "direction": torch.zeros(3)}, root / "zero.pt")
    (root / "nan.json").write_text('{"seed": NaN}')
    (root / "laughs.yaml").write_text("a: &a [x, x]\nb: [*a, *a]\n")
    (root / "binary.yaml").write_bytes(bytes(range(256)))
    (root / "labels.csv").write_bytes(rng.bytes(500))
    (root / "a_file").write_text("in the way")
    images = root / "images"
    images.mkdir()
    (images / "photo.png").write_text("%!PS\nshowpage\n")
    (images / "bomb.png").write_bytes(png_header_only(15_000, 15_000))
    latents = root / "latents"
    latents.mkdir()
    (latents / "junk.pt").write_bytes(rng.bytes(100))
    return root


TINY = ["--gan", "stylegan2", "-O", "resolution=32", "-O", "channel_max=16"]

#: Bad input for each command; ``{h}`` is the hostile folder.
BAD_INPUTS = {
    "list": [["--kind", "nosuch"]],
    "plugins": [["--nosuch"]],
    "sample": [
        [*TINY, "--truncation", "inf"],
        [*TINY, "--seed", "100000000000000000000000"],
        [*TINY, "--config", "{h}/laughs.yaml"],
        [*TINY, "--config", "{h}/binary.yaml"],
        [*TINY, "--config", "{h}/nan.json"],
        [*TINY, "--out", "{h}/a_file/grid.png"],
        [*TINY, "-O", "channel_base=1000000000", "-O", "channel_max=100000000"],
        ["--gan", "pggan", "-O", "resolution=1048576", "-O", "fmaps_max=1"],
        ["--gan", "stylegan2", "--checkpoint", "{h}/junk.pt"],
        ["--gan", "stylegan2", "--checkpoint", "{h}/stranger.pt"],
        ["--gan", "pggan", "--checkpoint", "{h}/empty.pt"],
        ["--gan", "biggan", "--checkpoint", "{h}/images"],
    ],
    "train": [
        [*TINY, "--lr", "inf", "--out", "{h}/t"],
        [*TINY, "--lr", "1e300", "--out", "{h}/t"],
        [*TINY, "--config", "{h}/nan.json", "--out", "{h}/t"],
        [*TINY, "--out", "{h}/a_file"],
        [*TINY, "--attention", "nosuch", "--out", "{h}/t"],
        ["--gan", "stylegan2", "--checkpoint", "{h}/junk.pt", "--out", "{h}/t"],
        ["--resume", "--out", "{h}/images"],
    ],
    "finetune": [
        ["--encoder", "{h}/junk.pt", "--images", "{h}/images", "--out", "{h}/f"],
        ["--encoder", "{h}/crafted_encoder.pt", "--images", "{h}/images", "--out", "{h}/f"],
        ["--encoder", "{h}/stranger.pt", "--images", "{h}/images", "--lr", "nan"],
    ],
    "crop-preview": [
        ["--attention", "center", "{h}/images/photo.png", "--out", "{h}/c"],
        ["--attention", "center", "{h}/images/bomb.png", "--out", "{h}/c"],
        ["--attention", "center", "{h}/images/bomb.png", "--out", "{h}/a_file"],
    ],
    "invert": [
        ["--encoder", "{h}/crafted_encoder.pt", "--images", "{h}/images", "--out", "{h}/i"],
        ["--encoder", "{h}/empty.pt", "--images", "{h}/images", "--out", "{h}/i"],
    ],
    "directions": [
        ["--latents", "{h}/latents", "--labels", "{h}/labels.csv", "--out", "{h}/d"],
        ["--latents", "{h}/images", "--labels", "{h}/labels.csv", "--out", "{h}/d"],
    ],
    "edit": [
        ["--latents", "{h}/latents", "--direction", "{h}/zero.pt", "--out", "{h}/e"],
        ["--latents", "{h}/junk.pt", "--direction", "{h}/stranger.pt", "--out", "{h}/e"],
        [
            "--latents",
            "{h}/latents",
            "--direction",
            "{h}/zero.pt",
            "--strengths",
            "inf,1",
            "--out",
            "{h}/e",
        ],
    ],
    "eval": [
        ["--real", "{h}/images", "--recon", "{h}/images"],
        ["--encoder", "{h}/junk.pt", "--images", "{h}/images"],
        ["--real", "{h}/images", "--recon", "{h}/images", "--json", "{h}/a_file/r.json"],
    ],
    "weights": [
        ["download", "nosuch:tag"],
        ["path", "{h}/junk.pt"],
        ["verify", "stylegan2:nosuch"],
    ],
    "convert": [
        ["{h}/junk.pt", "{h}/out.pt", "--to", "rosinality"],
        ["{h}/stranger.pt", "{h}/out.pt", "--to", "genforce"],
    ],
    "studio": [
        ["--encoder", "{h}/junk.pt", "--port", "7999"],
        ["--encoder", "{h}/nothing-here", "--port", "7999"],
        ["--encoder", "{h}/junk.pt", "--port", "-3"],
    ],
}


def test_the_walk_covers_every_command():
    from click import Context

    assert set(BAD_INPUTS) >= set(cli.list_commands(Context(cli)))


@pytest.mark.parametrize(
    "command, args",
    [(command, args) for command, cases in BAD_INPUTS.items() for args in cases],
    ids=lambda value: value if isinstance(value, str) else " ".join(value)[-60:],
)
def test_bad_input_to_any_command_is_a_clear_message(hostile, command, args, monkeypatch):
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    before = sorted(p.relative_to(hostile) for p in hostile.rglob("*"))
    result = run_cli(command, *[a.replace("{h}", str(hostile)) for a in args])
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert "unexpected error" not in result.output, result.output  # a bug, not a message
    assert "Error:" in result.output
    assert sorted(p.relative_to(hostile) for p in hostile.rglob("*")) == before


def test_an_unusable_ganenc_home_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "home").write_text("a file where the cache should be")
    monkeypatch.setenv("GANENC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GANENC_OFFLINE", "1")
    for args in (["weights", "list"], ["weights", "download", "stylegan2:ffhq-1024"]):
        result = run_cli(*args)
        assert result.exit_code == 1 and "is a file; set GANENC_HOME to a folder" in result.output


def test_running_out_of_memory_is_one_line(monkeypatch):
    import ganenc.cli.sample as sample_module

    def huge(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 68719476736")

    monkeypatch.setattr(sample_module, "settings_from_cli", huge)
    result = run_cli("sample", "--gan", "stylegan2")
    assert result.exit_code == 1 and "out of memory; use a smaller --batch-size" in result.output


def test_an_unknown_device_is_one_line_not_a_crash(tmp_path):
    out = tmp_path / "samples.png"
    result = CliRunner().invoke(
        cli, ["sample", "--gan", "stylegan2", "-O", "resolution=32", "--device", "tpu",
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_saving_the_same_payload_twice_writes_the_same_bytes(tmp_path):
    payload = {"weights": torch.arange(6.0), "step": 3}
    torch_save(payload, tmp_path / "a" / "encoder.pt")
    torch_save(payload, tmp_path / "b" / "encoder.pt")
    torch.save(payload, tmp_path / "encoder.pt")  # what a direct save writes
    first = (tmp_path / "a" / "encoder.pt").read_bytes()
    assert first == (tmp_path / "b" / "encoder.pt").read_bytes()
    assert first == (tmp_path / "encoder.pt").read_bytes()  # a shipped file's sha256 is stable
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["encoder.pt"]


def test_a_report_never_overwrites_what_it_reports_on(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    Image.new("RGB", (16, 16)).save(real / "a.png")
    for target in (real / "a.png", real / "report.json"):
        result = run_cli("eval", "--real", real, "--recon", real, "--json", target, "--force")
        assert result.exit_code == 1 and "lies in the input" in result.output, result.output
    assert open_image(real / "a.png").size == (16, 16) and sorted(os.listdir(real)) == ["a.png"]
    with pytest.raises(GanencError, match="is the input"):
        check_output(real / "a.png", force=True, inputs=[real / "a.png"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "--truncation", "1e308"], "truncation = 1e+308: Input should be less than"),
        (["weights", "list", "--family", "bogus"], "no weights of the family 'bogus'; families:"),
        (["eval", "--real", ".", "--recon", ".", "--metrics", ","], "name at least one metric"),
        (["eval", "--real", ".", "--recon", ".", "--resolution", "100000"], "100000 is not in"),
    ],
)
def test_out_of_range_options_are_refused_first(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert not os.listdir(tmp_path)


def test_refinement_options_without_a_refinement_are_refused(tmp_path, tiny_encoder_file):
    images = tmp_path / "images"
    images.mkdir()
    invert = ["invert", "--encoder", tiny_encoder_file, "--images", images, "--out", tmp_path / "o"]
    for option in (
        ["--steps", "5"],
        ["--lr", "0.1"],
        ["--anchor-weight", "1"],
        ["--loss-term", "mse=1"],
        ["--attention", "center"],
        ["--crop-option", "margin=0.1"],
        ["--loss-option", "image_terms={mse: 1}"],
    ):
        result = run_cli(*invert, *option)
        assert result.exit_code == 2
        assert f"{option[0]} only change(s) a refinement" in result.output
    result = run_cli(*invert, "--refine", "optimize", "--lr", "5")
    assert result.exit_code == 2 and "5.0 is not in the range" in result.output
    assert not (tmp_path / "o").exists()


def test_eval_refuses_the_options_of_the_other_mode(tmp_path):
    """Paired folders are already reconstructed: a refinement given there was silently ignored."""
    folder = tmp_path / "f"
    folder.mkdir()
    pairs = ["eval", "--real", folder, "--recon", folder]
    for option in (
        ["--refine", "optimize"],
        ["--steps", "3"],
        ["--batch-size", "2"],
        ["--gan", "x"],
    ):
        result = run_cli(*pairs, *option)
        assert result.exit_code == 2 and f"{option[0]} change(s) how --encoder" in result.output
    result = run_cli("eval", "--encoder", folder, "--images", folder, "--resolution", "32")
    assert result.exit_code == 2 and "--resolution applies to --real/--recon" in result.output
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_download_settings_are_checked_before_anything_is_said(monkeypatch, capsys):
    from ganenc.weights import fetch

    monkeypatch.setenv("GANENC_DOWNLOAD_TIMEOUT", "nan")
    with pytest.raises(ConfigError, match="must be a positive finite number, got 'nan'"):
        fetch("stylegan2:ffhq-1024")
    assert "downloading" not in capsys.readouterr().err
    monkeypatch.delenv("GANENC_DOWNLOAD_TIMEOUT")
    for given, message in (({"timeout": math.inf}, "got inf"), ({"retries": -1}, "got -1")):
        with pytest.raises(ConfigError, match=message):
            fetch("stylegan2:ffhq-1024", **given)
    assert "downloading" not in capsys.readouterr().err
    for option in (["--timeout", "nan"], ["--timeout", "0"], ["--retries", "-2"]):
        result = run_cli("weights", "download", "stylegan2:ffhq-1024", *option)
        assert result.exit_code == 2 and f"Invalid value for '{option[0]}'" in result.output


def test_images_differing_only_by_extension_are_refused_by_both_per_image_commands(
    tmp_path, tiny_encoder_file
):
    """finetune --mode per-image wrote a.png's latents, then skipped a.jpg as done."""
    images = tmp_path / "images"
    images.mkdir()
    for suffix in ("png", "jpg"):
        Image.new("RGB", (32, 32), "red").save(images / f"a.{suffix}")
    common = ["--encoder", tiny_encoder_file, "--images", images, "--out", tmp_path / "out"]
    common += ["--gan", "stylegan2", "--checkpoint", "random", "-O", "resolution=32"]
    common += ["-O", "channel_max=16"]
    for command in (["invert"], ["finetune", "--mode", "per-image", "--device", "cpu"]):
        result = run_cli(*command, *common)
        assert result.exit_code == 1, result.output
        assert "differ only by extension would write the same latent file: a.jpg, a.png" in (
            result.output
        )
        assert not (tmp_path / "out").exists()


def test_a_metrics_row_cut_by_a_kill_is_dropped_and_the_next_row_starts_afresh(tmp_path):
    from ganenc.inversion import append_rows, finished_rows

    metrics = tmp_path / "metrics.csv"
    append_rows(metrics, [{"image": "a.png", "psnr": 20.5, "lpips": None}])
    metrics.write_text(metrics.read_text() + "b.png,19")  # killed while writing b's row
    assert finished_rows(metrics) == {"a.png": {"psnr": 20.5, "lpips": None}}
    append_rows(metrics, [{"image": "b.png", "psnr": 19.0, "lpips": 0.5}])
    assert finished_rows(metrics) == {
        "a.png": {"psnr": 20.5, "lpips": None},
        "b.png": {"psnr": 19.0, "lpips": 0.5},
    }
    metrics.write_text("ima")  # the header itself cut short
    assert finished_rows(metrics) == {}
    append_rows(metrics, [{"image": "c.png", "psnr": 1.0, "lpips": 2.0}])
    assert finished_rows(metrics) == {"c.png": {"psnr": 1.0, "lpips": 2.0}}
    metrics.write_bytes(b"image,psnr\na.png,not-a-number\n")
    with pytest.raises(GanencError, match="is damaged"):
        finished_rows(metrics)


def test_pictures_appear_whole_or_not_at_all(tmp_path, monkeypatch):
    """A failure while a grid, image or curves PNG is written leaves the previous file, no litter."""
    from PIL import Image as PILImage

    from ganenc.images import save_grid, save_image

    images = torch.zeros(2, 3, 8, 8)
    save_grid(images, tmp_path / "grid.png")
    before = (tmp_path / "grid.png").read_bytes()

    def write_half_then_fail(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", write_half_then_fail)
    for write in (lambda: save_grid(images + 1, tmp_path / "grid.png"),
                  lambda: save_image(images[0], tmp_path / "one.png")):  # fmt: skip
        with pytest.raises(OSError, match="No space left"):
            write()
    assert sorted(os.listdir(tmp_path)) == ["grid.png"]
    assert (tmp_path / "grid.png").read_bytes() == before


def test_phone_photos_are_turned_as_their_exif_orientation_says(tmp_path):
    """A JPEG stored sideways with Orientation=6 was inverted sideways, without a word."""
    stored = Image.new("RGB", (60, 40), "white")
    stored.paste((255, 0, 0), (0, 0, 10, 40))  # a red band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the band at the top
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    from ganenc.images import image_size

    assert image_size(tmp_path / "phone.jpg") == (40, 60)
    shown = np.asarray(open_image(tmp_path / "phone.jpg"))
    assert shown.shape == (60, 40, 3)
    assert shown[:8].mean(axis=(0, 1))[0] > 200 and shown[:8].mean(axis=(0, 1))[1] < 60  # red top
    assert shown[-8:].mean() > 240  # white bottom
    damaged = Image.Exif()
    damaged[0x0112] = 99  # no such orientation: left as stored
    stored.save(tmp_path / "odd.jpg", exif=damaged.tobytes())
    assert open_image(tmp_path / "odd.jpg").size == (60, 40)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"anchor_weight": -1.0}, "anchor_weight = -1.0: Input should be greater than or equal"),
        ({"latent_l2": math.inf}, "latent_l2 = inf: Input should be a finite number"),
        ({"cycle_weight": -2}, "cycle_weight = -2"),
        ({"finetune_betas": (0.9, 1.0)}, "betas = (0.9, 1.0): Input should be less than 1"),
        ({"optimize_lr": 5}, "optimize_lr = 5: Input should be less than or equal to 1"),
    ],
)
def test_the_python_inverter_takes_the_limits_of_the_settings(option, message):
    """A negative anchor weight pushed latents away from the encoder's, without a word."""
    from ganenc.inversion import Inverter

    generator = ganenc.load_generator("stylegan2", resolution=32, channel_max=16)
    encoder = ganenc.build_encoder(generator, max_channels=16)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Inverter(encoder, generator, device="cpu", **option)


def test_an_encoder_recording_another_family_than_its_geometry_is_damaged(
    tmp_path, tiny_encoder_file
):
    """It ended in "unknown setting 'channel_max'" from the other family's options model."""
    from ganenc.encoder_runs import EncoderRun

    payload = torch.load(tiny_encoder_file, weights_only=True)
    payload["generator"] = {"gan": "pggan", "checkpoint": "random", "generator_options": {}}
    torch.save(payload, tmp_path / "encoder.pt")
    with pytest.raises(CheckpointError, match="records a pggan generator but was trained for"):
        EncoderRun.open(tmp_path / "encoder.pt")
    payload["generator"]["gan"] = "stylegan"  # an alias of another family's name is no mismatch
    payload["geometry"]["family"] = "stylegan1"
    torch.save(payload, tmp_path / "alias.pt")
    from ganenc.encoder_runs import encoder_generator

    assert encoder_generator(payload, tmp_path / "alias.pt").gan == "stylegan"
