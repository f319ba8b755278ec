"""Plugin authors' mistakes are loud, built-in names stay built-in, checks catch what matters."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import torch
from click.testing import CliRunner
from toy_components import ToyGenerator, ToyPlugin

import ganenc
from ganenc.cli.main import cli
from ganenc.errors import ComponentConflictError, UnknownComponentError
from ganenc.registry import Registry
from ganenc.testing import check_generator, check_loss, register_plugin


def _failed(registry: Registry, plugin: str) -> str:
    info = registry.plugins[plugin]
    assert info.status == "failed", f"{plugin} loaded although it is broken"
    return info.error


# -- 1. mistakes are loud ---------------------------------------------------------------------
MISTAKES = {
    "misspelt hook": (
        "@hookimpl\ndef register_cropers(register):\n    pass\n",
        "register_cropers is not a ganenc hook (did you mean register_croppers?)",
    ),
    "no @hookimpl": (
        "def register_croppers(register):\n    pass\n",
        "register_croppers is not decorated with @ganenc.hookimpl",
    ),
    "returns a value": (
        "@hookimpl\ndef register_croppers(register):\n    return [('x', 'json:dumps')]\n",
        "register_croppers returned a list instead of calling register(...)",
    ),
    "missing module": (
        "@hookimpl\ndef register_croppers(register):\n    register('x', 'no_such_mod:Cropper')\n",
        "no module named 'no_such_mod'",
    ),
    "missing attribute": (
        "@hookimpl\ndef register_croppers(register):\n    register('x', 'json:NoSuchCropper')\n",
        "module 'json' has no attribute 'NoSuchCropper'",
    ),
    "missing options model": (
        "@hookimpl\ndef register_croppers(register):\n"
        "    register('x', 'json:dumps', options='acme_plugin_plugin:Nope')\n",
        "module 'acme_plugin_plugin' has no attribute 'Nope'",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_plugin_mistakes_are_reported_with_their_reason(mistake, fake_distribution):
    body, reason = MISTAKES[mistake]
    fake_distribution("acme-plugin", "acme", "from ganenc import hookimpl\n" + body)
    registry = ganenc.get_registry()
    registry.components()
    assert reason in _failed(registry, "acme")
    rows = json.loads(CliRunner().invoke(cli, ["list", "--json"]).output)
    (row,) = [row for row in rows if row["plugin"] == "acme"]
    assert row["status"] == "failed" and reason in row["error"]
    plugins = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert {"name": "acme", "status": "failed"}.items() <= {
        k: v for p in plugins if p["name"] == "acme" for k, v in p.items()
    }.items()
    assert registry.get("cropper", "center")  # everything else still works


def test_an_imported_helper_named_like_a_hook_is_not_a_mistake(fake_distribution):
    fake_distribution(
        "acme-plugin",
        "acme",
        "from ganenc import hookimpl\nfrom ganenc.weights import register_entries\n"
        "@hookimpl\ndef register_weights(register):\n    register_entries(register, [])\n",
    )
    assert Registry().plugins["acme"].status == "ok"


def test_plugins_check_runs_the_contract_checks_per_component():
    class Truncation(ToyGenerator):
        def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
            return {"z": latents["z"]}  # forgets psi: pre-training would learn wrong targets

    class Plugin(ToyPlugin):
        @ganenc.hookimpl
        def register_croppers(self, register):
            register("bad-generator-cropper", "ganenc_attention_center.cropper:CenterCropper")

    with register_plugin(Plugin(), "toys", distribution="acme-toys"):
        result = CliRunner().invoke(cli, ["plugins", "--check", "acme-toys"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "ok    generator toys:toy: generator contract" in lines
    assert "ok    encoder toys:toy-encoder: encoder contract with generator 'toy'" in lines
    assert "3 of 3 component(s) passed" in lines

    class BadPlugin:
        @ganenc.hookimpl
        def register_generators(self, register):
            register("toy", Truncation)

    with register_plugin(BadPlugin(), "bad"):
        result = CliRunner().invoke(cli, ["plugins", "--check", "bad"])
    assert result.exit_code == 1
    assert "FAIL  generator bad:toy: AssertionError: encoder_targets ignores truncation" in (
        result.output
    )
    result = CliRunner().invoke(cli, ["plugins", "--check", "no-such-plugin"])
    assert result.exit_code == 1 and "no plugin or distribution named" in result.output


# -- 2. third-party plugins cannot take a built-in name ------------------------------------------
THIRD_PARTY = """
from ganenc import hookimpl
@hookimpl
def register_generators(register):
    register("stylegan2", "json:dumps", description="not the real one")
"""


def test_a_third_party_plugin_does_not_break_a_builtin_name(fake_distribution, caplog):
    fake_distribution("acme-gans", "acme", THIRD_PARTY)
    registry = ganenc.get_registry()
    with caplog.at_level(logging.WARNING, logger="ganenc.registry"):
        assert registry.get("generator", "stylegan2").distribution == "ganenc-stylegan"
        registry.get("generator", "stylegan2")
    (record,) = caplog.records  # once, not at every look-up
    assert "plugin 'acme' (acme-gans) registers it too: select that one as 'acme:stylegan2'" in (
        record.getMessage()
    )
    assert registry.get("generator", "acme:stylegan2").distribution == "acme-gans"
    rows = json.loads(CliRunner().invoke(cli, ["list", "--kind", "generator", "--json"]).output)
    bare = {row["plugin"]: row["bare_name"] for row in rows if row["name"] == "stylegan2"}
    assert bare == {"stylegan": True, "acme": False}


def test_two_third_party_plugins_with_one_name_stay_ambiguous(fake_distribution):
    source = THIRD_PARTY.replace("stylegan2", "mygan")
    fake_distribution("acme-gans", "acme", source)
    fake_distribution("other-gans", "other", source)
    with pytest.raises(ComponentConflictError, match="registered by both.*choose one with"):
        ganenc.get_registry().get("generator", "mygan")


# -- 4. the contract checks catch what training depends on ----------------------------------------
class _NoisySynthesis(ToyGenerator):
    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        images = super().synthesize(latents, truncation, truncation_layers)
        return images + 0.1 * torch.randn_like(images)  # noise drawn even with noise_mode="const"


class _WrongGeometry(ToyGenerator):
    def geometry(self):
        geometry = super().geometry()
        return type(geometry)(geometry.family, self.resolution * 2, geometry.encoder_latents)


class _LayersIgnored(ToyGenerator):
    """Truncates every layer in synthesize but only the first in encoder_targets."""

    def synthesize(self, latents, truncation=1.0, truncation_layers=None, noise_mode="const"):
        z = latents["z"].clone()
        layers = truncation_layers or z.shape[1]
        z[:, :layers] = z[:, :layers] * truncation
        return torch.tanh(self.linear(z)).view(-1, 3, self.resolution, self.resolution)

    def encoder_targets(self, latents, truncation=1.0, truncation_layers=None):
        return {"z": latents["z"] * truncation}


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        (_NoisySynthesis(resolution=8), "not deterministic"),
        (_WrongGeometry(resolution=8), "geometry().resolution is 16"),
        (_LayersIgnored(resolution=8), "encoder_targets ignores truncation"),
    ],
)
def test_check_generator_catches(generator, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_generator(generator)


def test_check_loss_raises_no_warnings_of_its_own():
    from ganenc.losses.terms import MSELoss

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_loss(MSELoss())


# -- 5. errors point at the cause ---------------------------------------------------------------
def test_a_run_whose_plugin_is_missing_names_the_distribution(tmp_path):
    from ganenc.inversion import Inverter

    run = tmp_path / "run"
    with register_plugin(ToyPlugin(), "toys", distribution="acme-toys", version="1.2"):
        encoder = ganenc.build_encoder(ToyGenerator(resolution=8))
        gan = {"gan": "toy", "checkpoint": "random", "generator_options": {"resolution": 8}}
        ganenc.save_encoder(encoder, run / "encoder.pt", generator=gan)
        plugins = [{"name": "toys", "distribution": "acme-toys", "version": "1.2"}]
        (run / "versions.json").write_text(json.dumps({"plugins": plugins}))
        assert Inverter.from_encoder(run).generator.family == "toy"
    with pytest.raises(UnknownComponentError, match=r"acme-toys 1\.2.*pip install acme-toys"):
        Inverter.from_encoder(run)
    with pytest.raises(UnknownComponentError, match=r"acme-toys 1\.2.*pip install acme-toys"):
        ganenc.load_encoder(run / "encoder.pt")
    # installed, but without the builder the file names: no install advice
    payload = torch.load(run / "encoder.pt", weights_only=True)
    payload["builder"] = "../../etc"
    torch.save(payload, run / "crafted.pt")
    with register_plugin(ToyPlugin(), "toys", distribution="acme-toys", version="1.2"):
        with pytest.raises(UnknownComponentError, match=r"is installed \(acme-toys 1\.2\)") as e:
            ganenc.load_encoder(run / "crafted.pt")
    assert "pip install" not in str(e.value)


def test_strict_mode_failures_show_their_traceback_on_request(fake_distribution, monkeypatch):
    fake_distribution("acme-broken", "acme", "raise ImportError('acme needs libfoo')\n")
    monkeypatch.setenv("GANENC_STRICT_PLUGINS", "1")
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 1 and "acme needs libfoo" in result.output
    assert "Traceback" not in result.output
    for args, env in ((["--traceback", "list"], {}), (["list"], {"GANENC_TRACEBACK": "1"})):
        ganenc.registry.set_registry(None)
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1 and "Traceback" in result.output, result.output
        assert "acme needs libfoo" in result.output


def test_the_lpips_note_names_the_missing_file(monkeypatch, tmp_path):
    from ganenc.evaluation import lpips_or_reason

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GANENC_OFFLINE", raising=False)
    term, note = lpips_or_reason(None)
    assert term is None
    assert note.startswith("LPIPS not computed: needs the file vgg16-397923af.pth in ")
    assert str(tmp_path / "torch") in note and "GANENC_OFFLINE" not in note
    term, note = lpips_or_reason(str(tmp_path / "vgg.pth"))
    assert f"not found at {tmp_path / 'vgg.pth'}" in note


def test_an_unimported_module_is_judged_from_its_source(tmp_path, monkeypatch):
    from ganenc.registry import reference_problem

    (tmp_path / "acme_unimported.py").write_text(
        "import torch\nfrom os import path as joined\nclass Generator:\n    pass\n"
        "if True:\n    LATE = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("Generator", "joined", "LATE", "torch"):
        assert reference_problem(f"acme_unimported:{name}") is None
    assert "defines no 'Nope'" in reference_problem("acme_unimported:Nope")
    import sys

    assert "acme_unimported" not in sys.modules  # judged without importing it


# -- 6. one spelling per idea on the command line --------------------------------------------------
@pytest.mark.parametrize(
    ("command", "spellings"),
    [
        ("sample", ["-O, --option"]),
        ("train", ["-O, --option", "--encoder-option", "--crop-option", "--loss-option"]),
        ("finetune", ["-O, --option", "--crop-option", "--loss-option"]),
        ("invert", ["-O, --option", "--crop-option", "--loss-option"]),
        ("eval", ["-O, --option", "--crop-option", "--loss-option"]),
        ("crop-preview", ["--crop-option"]),
        ("edit", ["-O, --option"]),
    ],
)
def test_component_options_are_spelt_alike_in_every_command(command, spellings):
    text = CliRunner().invoke(cli, [command, "--help"]).output
    for spelling in spellings:
        assert f"{spelling} KEY=VALUE" in text
    assert "--gen-option" not in text  # old spellings work but are not advertised
    if command == "crop-preview":
        assert "-O" not in text


def test_the_old_generator_option_spelling_still_works(tmp_path):
    with register_plugin(ToyPlugin()):
        for spelling in ("-O", "--option", "--gen-option"):
            out = tmp_path / f"{spelling.strip('-')}.png"
            args = ["sample", "--gan", "toy", "-n", "1", "--out", str(out), spelling, "z_dimm=3"]
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 1 and "unknown setting 'z_dimm'" in result.output
            args[-1] = "resolution=8"
            assert CliRunner().invoke(cli, args).exit_code == 0
            assert out.is_file()


def test_a_missing_local_weights_file_fails_at_once(tmp_path, caplog, monkeypatch):
    from ganenc import weights

    # a retry would hang the test (the downloader reads the pause from its own module)
    monkeypatch.setattr(weights.download, "RETRY_BACKOFF_SECONDS", 60.0)
    missing = (tmp_path / "missing.pt").as_uri()
    with (
        caplog.at_level(logging.WARNING, logger="ganenc"),
        pytest.raises(weights.WeightsDownloadError, match="missing.pt"),
    ):
        weights.download_file(missing, tmp_path / "cache" / "model.pt", retries=3)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]
    (tmp_path / "there.pt").write_bytes(b"weights")
    weights.download_file((tmp_path / "there.pt").as_uri(), tmp_path / "cache" / "model.pt")
    assert (tmp_path / "cache" / "model.pt").read_bytes() == b"weights"


def test_helpers_and_commands_hooks(fake_distribution):
    fake_distribution(
        "acme-plugin",
        "acme",
        "from ganenc import hookimpl\n"
        "def register_models(table, extra):  # a helper, not a hook\n    pass\n"
        "@hookimpl\ndef register_commands(cli):\n    return ['mine']\n",
    )
    registry = ganenc.get_registry()
    assert registry.plugins["acme"].status == "ok"
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    (info,) = [p for p in json.loads(result.output) if p["name"] == "acme"]
    assert info["status"] == "failed"
    assert "register_commands returned a list instead of adding commands" in info["error"]
