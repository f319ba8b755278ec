"""A plugin's mistakes are reported as the plugin's, at once, and break nothing else."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from click.testing import CliRunner
from pydantic import BaseModel, Field
from toy_components import ToyEncoder, ToyGenerator, ToyPlugin

import ganenc
from ganenc.checkpoints import CheckpointIdentity, identify_checkpoint
from ganenc.cli.main import cli
from ganenc.config import Settings
from ganenc.errors import ConfigError, GanencError, PluginContractError
from ganenc.testing import check_component, register_plugin
from ganenc.training.pretrain import pretrain
from ganenc.training.settings import TrainSettings


def _json(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# -- hooks that fail are failures wherever plugins are listed ---------------------------------
def test_plugins_reports_a_failing_hook_without_listing_components_first(fake_distribution):
    fake_distribution(
        "acme-plugin",
        "acme",
        "from ganenc import hookimpl\n"
        "@hookimpl\ndef register_croppers(register):\n    return [('x', 'json:dumps')]\n",
    )
    (acme,) = [p for p in _json("plugins") if p["name"] == "acme"]
    assert acme["status"] == "failed" and "returned a list" in acme["error"]
    result = CliRunner().invoke(cli, ["plugins", "--check", "acme"])
    assert result.exit_code == 1 and "returned a list instead of calling register" in result.output


def test_a_plugin_that_exits_at_import_breaks_no_command(fake_distribution):
    fake_distribution("acme-plugin", "acme", "raise SystemExit('acme: config missing')\n")
    rows = _json("list")
    (acme,) = [row for row in rows if row["plugin"] == "acme"]
    assert acme["status"] == "failed" and "SystemExit: acme: config missing" in acme["error"]
    assert any(row["name"] == "center" for row in rows)


def test_a_mislabelled_weights_entry_fails_its_plugin_only(fake_distribution):
    fake_distribution(
        "acme-plugin",
        "acme",
        "from ganenc import hookimpl\nfrom ganenc.weights import WeightsEntry, WeightsFile\n"
        "@hookimpl\ndef register_weights(register):\n"
        "    entry = WeightsEntry('stylegan2:other', (WeightsFile('a.pt', 'https://x/a.pt'),),"
        " 'rosinality')\n"
        "    register('stylegan2:mislabel', entry)\n",
    )
    result = CliRunner().invoke(cli, ["weights", "list"])
    assert result.exit_code == 0, result.output
    assert "stylegan2:emoji-64" in result.output and "mislabel" not in result.output
    (acme,) = [p for p in _json("plugins") if p["name"] == "acme"]
    assert "'stylegan2:other' is registered under the tag 'stylegan2:mislabel'" in acme["error"]


# -- options models -----------------------------------------------------------------------------
class LooseOptions(BaseModel):  # a plain pydantic model: would ignore unknown keys
    margin: float = 0.1


class SelfRefusingOptions(Settings):
    margin: float = Field(2.0, le=1.0)


class PlainSelfRefusing(BaseModel):
    margin: float = Field(2.0, le=1.0)


class Cropper:
    def __init__(self, margin: float = 0.1):
        self.margin = margin


class OptionsPlugin:
    @ganenc.hookimpl
    def register_croppers(self, register):
        register("loose", Cropper, options=LooseOptions)
        register("refusing", Cropper, options=SelfRefusingOptions)
        register("plain-refusing", Cropper, options=PlainSelfRefusing)


def test_a_misspelt_option_is_refused_whatever_the_options_model():
    with register_plugin(OptionsPlugin()) as registry:
        assert ganenc.create("cropper", "loose", margin=0.3).margin == 0.3
        with pytest.raises(ConfigError, match="unknown setting 'margn'.*known settings: margin"):
            ganenc.create("cropper", "loose", margn=0.5)
        with pytest.raises(ConfigError, match="margin = 2.0"):
            ganenc.create("cropper", "refusing")  # Settings validate their defaults
        spec = registry.get("cropper", "plain-refusing")
        with pytest.raises(ConfigError, match="default options of cropper .*margin = 2.0"):
            check_component(spec)


# -- identify_checkpoint --------------------------------------------------------------------
class BrokenIdentifier:
    @ganenc.hookimpl(tryfirst=True)
    def identify_checkpoint(self, checkpoint):
        raise KeyError("boom")


class ToyIdentifier:
    @ganenc.hookimpl
    def identify_checkpoint(self, checkpoint):
        if "toy_weights" in checkpoint:
            return CheckpointIdentity("toy", "a toy checkpoint")
        return None


def test_a_failing_identify_hook_costs_only_its_own_hint(caplog):
    with register_plugin(ToyIdentifier()), register_plugin(BrokenIdentifier(), "broken"):
        with caplog.at_level(logging.WARNING, logger="ganenc.checkpoints"):
            identity = identify_checkpoint({"toy_weights": 1})
    assert identity == CheckpointIdentity("toy", "a toy checkpoint")
    assert "plugin 'broken' failed to identify a checkpoint (KeyError: 'boom')" in caplog.text


# -- broken outputs at the first training step ----------------------------------------------
class ByteRange(ToyGenerator):  # 0..255 images, a common porting mistake
    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        return super().synthesize(latents, truncation, truncation_layers) * 127.5 + 127.5


class HalfSize(ToyGenerator):
    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        return super().synthesize(latents, truncation, truncation_layers)[..., ::2, ::2]


class NaNImages(ToyGenerator):
    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        return super().synthesize(latents, truncation, truncation_layers) * float("nan")


class WrongKeyEncoder(ToyEncoder):
    def forward(self, images, condition=None):
        return {"w": super().forward(images)["z"]}


class OutsideBoxes:
    def boxes(self, images):
        return [torch.tensor([[-5, -5, 20, 20]] * images.shape[0])]


class VectorLoss(torch.nn.Module):
    def forward(self, prediction, target):
        return ((prediction - target) ** 2).flatten(1).mean(1)  # forgot the batch mean


class NaNLoss(torch.nn.Module):
    def forward(self, prediction, target):
        return (prediction - target).abs().mean() * float("nan")


class BrokenPlugin:
    @ganenc.hookimpl
    def register_generators(self, register):
        for name, cls in {"bytes": ByteRange, "half": HalfSize, "nan": NaNImages}.items():
            register(name, cls, options="toy_components:ToyGeneratorOptions")

    @ganenc.hookimpl
    def register_encoders(self, register):
        register("wrong-key", WrongKeyEncoder, generators=("toy",))

    @ganenc.hookimpl
    def register_croppers(self, register):
        register("outside", OutsideBoxes)

    @ganenc.hookimpl
    def register_losses(self, register):
        register("vector", VectorLoss)
        register("nan-loss", NaNLoss)


BROKEN_RUNS = {
    "images in 0..255": (
        {"gan": "bytes"},
        r"generator ByteRange of plugin 'broken' broke its contract: its images have a median"
        r" \|value\| of 1\d\d",
    ),
    "images of half the size": (
        {"gan": "half"},
        r"generator HalfSize of plugin 'broken' broke its contract: synthesize returned images of"
        r" shape \[2, 3, 8, 8\]; its geometry\(\) says \[2, 3, 16, 16\]",
    ),
    "NaN images": ({"gan": "nan"}, "generator NaNImages .*NaN or infinite values"),
    "latents without their key": (
        {"encoder": "wrong-key"},
        r"encoder WrongKeyEncoder .*returned the latents \['w'\]; the generator wants \['z'\]",
    ),
    "boxes outside the image": (
        {"attention": "outside"},
        r"cropper OutsideBoxes of plugin 'broken' broke its contract: at1: a box lies outside",
    ),
    "a loss term that is not a scalar": (
        {"loss": {"image_terms": {"vector": 1.0}}},
        r"loss VectorLoss .*term 'vector' returned a Tensor of shape \[2\]; a loss term returns a"
        r" scalar tensor .*check it with 'ganenc plugins --check broken'",
    ),
    "a NaN loss term": (
        {"loss": {"image_terms": {"nan-loss": 1.0, "mse": 1.0}}},
        r"stopped at step 1: the loss became nan \(not finite: whole/nan-loss\) before any weight"
        r" changed: a loss term or the images give NaN",
    ),
}


@pytest.mark.parametrize("case", BROKEN_RUNS)
def test_a_broken_component_is_named_at_the_first_step(case, tmp_path):
    overrides, message = BROKEN_RUNS[case]
    values = {
        "gan": "toy",
        "encoder": "toy-encoder",
        "generator_options": {"resolution": 16},
        "attention": "none",
        "loss": {"image_terms": {"mse": 1.0}},
        "iterations": 2,
        "batch_size": 2,
        "val_samples": 2,
        "out": tmp_path / "run",
        "progress": False,
        **overrides,
    }
    with register_plugin(ToyPlugin(), "toys"), register_plugin(BrokenPlugin(), "broken"):
        with pytest.raises(GanencError, match=message) as raised:
            pretrain(TrainSettings(**values))
    if case != "a NaN loss term":
        assert isinstance(raised.value, PluginContractError)


class NoCheckpointOptions(Settings):
    resolution: int = 16


def test_a_generator_options_model_must_take_the_checkpoint():
    class Plugin:
        @ganenc.hookimpl
        def register_generators(self, register):
            register("nockpt", ToyGenerator, options=NoCheckpointOptions)

    with register_plugin(Plugin(), "misc"):
        with pytest.raises(GanencError, match="NoCheckpointOptions must declare 'checkpoint: Path"):
            ganenc.load_generator("nockpt")
