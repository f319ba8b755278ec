"""Every hook is documented and exercised (meta-tests, as datasette does)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from toy_components import ToyEncoder, ToyGenerator, ToyPlugin

import ganenc
from ganenc import hookimpl, hookspecs
from ganenc.registry import KINDS
from ganenc.testing import isolated_registry, register_plugin

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOOKS = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if callable(obj) and hasattr(obj, "ganenc_spec")  # every function marked @hookspec
)


def test_there_is_a_hook_per_component_kind_one_for_commands_and_one_for_files():
    assert set(KINDS.values()) | {"register_commands", "identify_checkpoint"} == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook):
    assert len(inspect.getdoc(getattr(hookspecs, hook)) or "") > 80


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_in_the_hook_reference(hook):
    reference = (DOCS / "hooks.md").read_text()
    assert re.search(rf"^## {hook}\(", reference, re.MULTILINE), f"docs/hooks.md lacks '## {hook}('"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_here(hook):
    assert f"test_hook_{hook}" in globals(), f"write test_hook_{hook} in {__file__}"


def test_hook_register_generators():
    with isolated_registry(), register_plugin(ToyPlugin()):
        generator = ganenc.load_generator("toy", resolution=8)
        assert isinstance(generator, ToyGenerator) and generator.resolution == 8
        assert ganenc.get_registry().get("generator", "toy").description == "toy generator"


def test_hook_register_encoders():
    with isolated_registry(), register_plugin(ToyPlugin()):
        generator = ganenc.load_generator("toy", resolution=8)
        encoder = ganenc.build_encoder(generator, width=3)
        assert isinstance(encoder, ToyEncoder)
        assert encoder.ganenc_meta["builder"] == "toy-encoder"
        assert encoder(torch.zeros(2, 3, 8, 8))["z"].shape == (2, 8)


def test_hook_register_croppers():
    class Plugin:
        @hookimpl
        def register_croppers(self, register):
            register("whole", lambda: "cropper", description="no crop")

    with isolated_registry(), register_plugin(Plugin()):
        assert ganenc.create("cropper", "whole") == "cropper"


def test_hook_register_losses():
    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register("l1", torch.nn.L1Loss, domain="image")

    with isolated_registry() as registry, register_plugin(Plugin()):
        loss = ganenc.create("loss", "l1")
        assert float(loss(torch.ones(2), torch.zeros(2))) == 1.0
        assert registry.get("loss", "l1").metadata["domain"] == "image"


def test_hook_register_commands():
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("greet")
            @click.argument("name")
            def greet(name):
                click.echo(f"hi {name}")

    from ganenc.cli.main import cli

    with isolated_registry(), register_plugin(Plugin()):
        result = CliRunner().invoke(cli, ["greet", "you"])
        assert result.output == "hi you\n"
    result = CliRunner().invoke(cli, ["greet", "you"])
    assert result.exit_code != 0, "the command must leave with its plugin"


def test_hook_register_weights(tmp_path, monkeypatch):
    from ganenc.weights import WeightsEntry, WeightsFile, register_entries, weights_entry

    monkeypatch.setenv("GANENC_HOME", str(tmp_path))
    entry = WeightsEntry(
        tag="toy:tiny-8",
        files=(WeightsFile("toy.pt", ("http://127.0.0.1:9/toy.pt",)),),
        format="toy",
        description="toy weights",
        resolution=8,
    )

    class Plugin:
        @hookimpl
        def register_weights(self, register):
            register_entries(register, [entry])

    with isolated_registry() as registry, register_plugin(Plugin()):
        spec = registry.get("weights", "toy:tiny-8")
        assert spec.description == "toy weights" and spec.metadata["family"] == "toy"
        assert weights_entry("toy:tiny-8") is entry
        assert ganenc.create("weights", "toy:tiny-8") is entry
        assert [s.name for s in registry.find("weights", family="toy")] == ["toy:tiny-8"]


def test_hook_identify_checkpoint(tmp_path):
    from ganenc.checkpoints import CheckpointIdentity, describe_checkpoint, identify_checkpoint

    class Plugin:
        @hookimpl
        def identify_checkpoint(self, checkpoint):
            if "toy_state" in checkpoint:
                return CheckpointIdentity("toy", "a toy checkpoint")
            return None

    toy_file = {"toy_state": {}}
    with isolated_registry(), register_plugin(Plugin()):
        identity = identify_checkpoint(toy_file)
        assert identity == CheckpointIdentity("toy", "a toy checkpoint")
        assert identity.hint == "this file is a toy checkpoint; use --gan toy"
        assert describe_checkpoint(toy_file) == "a toy checkpoint"
        assert identify_checkpoint({"other": 1}) is None
        assert identify_checkpoint(torch.zeros(1)) is None
    assert identify_checkpoint(toy_file) is None, "the answer must leave with its plugin"
    assert describe_checkpoint(toy_file) == "a state dict with keys such as ['toy_state']"
