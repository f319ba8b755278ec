"""ganenc.testing: the contract checks catch broken components."""

from __future__ import annotations

import pytest
import torch
from toy_components import ToyEncoder, ToyGenerator, ToyPlugin

import ganenc
from ganenc.losses.terms import MSELoss
from ganenc.testing import (
    check_cropper,
    check_encoder,
    check_generator,
    check_loss,
    isolated_registry,
    register_plugin,
)


def test_isolated_registry_loads_no_entry_points():
    with isolated_registry() as registry:
        assert set(registry.plugins) == {"ganenc"}
        assert registry.get("loss", "mse")
    assert ganenc.get_registry() is not registry
    assert ganenc.get_registry().get("generator", "stylegan2")


def test_checks_pass_for_good_components():
    generator = ToyGenerator(resolution=8)
    check_generator(generator)
    check_encoder(ToyEncoder(generator.geometry()), generator)
    check_loss(MSELoss())


def test_generator_check_catches_an_ignored_seed():
    class Unseeded(ToyGenerator):
        def sample_latents(self, n, seed=None, device=None):
            return {"z": torch.randn(n, self.z_dim)}

    with pytest.raises(AssertionError, match="ignores its seed"):
        check_generator(Unseeded(resolution=8))


def test_generator_check_catches_targets_that_do_not_round_trip():
    class Broken(ToyGenerator):
        def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
            return {"z": latents["z"] + 1}

    with pytest.raises(AssertionError, match="encoder_targets"):
        check_generator(Broken(resolution=8))


def test_encoder_check_catches_stochastic_eval_and_wrong_keys():
    generator = ToyGenerator(resolution=8)

    class Noisy(ToyEncoder):
        def forward(self, images, condition=None):
            return {"z": super().forward(images)["z"] + torch.randn(images.shape[0], self.z_dim)}

    class WrongKey(ToyEncoder):
        def forward(self, images, condition=None):
            return {"w": super().forward(images)["z"]}

    with pytest.raises(AssertionError, match="not deterministic"):
        check_encoder(Noisy(generator.geometry()), generator)
    with pytest.raises(AssertionError, match=r"latents \['w'\]; the generator wants \['z'\]"):
        check_encoder(WrongKey(generator.geometry()), generator)


def test_cropper_and_loss_checks_catch_bad_output():
    class FloatBoxes:
        def boxes(self, images):
            return [torch.zeros(images.shape[0], 4)]

    class Detached(torch.nn.Module):
        def forward(self, prediction, target):
            return ((prediction.detach() - target) ** 2).mean()

    with pytest.raises(AssertionError, match="integer"):
        check_cropper(FloatBoxes())
    with pytest.raises(AssertionError, match="detached"):
        check_loss(Detached())


def test_encoders_save_and_load_with_their_config(tmp_path):
    with isolated_registry(), register_plugin(ToyPlugin()):
        generator = ganenc.load_generator("toy", resolution=8)
        encoder = ganenc.build_encoder(generator, width=5)
        path = ganenc.save_encoder(encoder, tmp_path / "enc.pt", step=7)
        loaded = ganenc.load_encoder(path)
        images = torch.rand(2, 3, 8, 8)
        assert torch.equal(encoder(images)["z"], loaded(images)["z"])
        assert loaded.conv.out_channels == 5
        assert torch.load(path, weights_only=True)["step"] == 7
        # what --encoder takes: a run folder stands for its encoder.pt
        ganenc.save_encoder(encoder, tmp_path / "run" / "encoder.pt")
        assert torch.equal(ganenc.load_encoder(tmp_path / "run")(images)["z"], loaded(images)["z"])


def test_bad_encoder_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ganenc.CheckpointError, match="not found"):
        ganenc.load_encoder(tmp_path / "missing.pt")
    with pytest.raises(ganenc.CheckpointError, match="not a readable encoder checkpoint"):
        ganenc.load_encoder(tmp_path / "junk.pt")
    with pytest.raises(ganenc.CheckpointError, match="not a ganenc encoder checkpoint"):
        ganenc.load_encoder(tmp_path / "other.pt")


def test_no_encoder_builder_for_a_family_is_a_clear_error():
    with isolated_registry(), register_plugin(ToyPlugin()):
        generator = ganenc.load_generator("toy", resolution=8)
        generator.family = "unserved"
        with pytest.raises(
            ganenc.GanencError, match="no encoder builder serves generator family 'unserved'"
        ):
            ganenc.build_encoder(generator)
