"""The command line: list, plugins, --version, plugin commands, errors, sample."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from toy_components import ToyPlugin

import ganenc
from ganenc import hookimpl
from ganenc.cli.main import cli
from ganenc.testing import isolated_registry, register_plugin


def run(*args, ok=True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_list_json_has_the_documented_keys():
    rows = json.loads(run("list", "--json").output)
    by_name = {(row["kind"], row["name"]): row for row in rows}
    row = by_name[("generator", "stylegan2")]
    assert {"name", "kind", "plugin", "distribution", "version", "description", "status"} <= set(
        row
    )
    assert (row["plugin"], row["distribution"], row["status"]) == (
        "stylegan",
        "ganenc-stylegan",
        "ok",
    )
    assert by_name[("loss", "mse")]["distribution"] == "ganenc"


def test_list_filters_by_kind():
    rows = json.loads(run("list", "--kind", "cropper", "--json").output)
    assert {row["name"] for row in rows} >= {"center", "gradcam"}
    assert {row["kind"] for row in rows} == {"cropper"}
    assert run("list", "--kind", "colour", ok=False).exit_code == 2


def test_list_table_shows_components_and_failed_plugins(fake_distribution):
    fake_distribution("ganenc-broken", "broken", "raise ImportError('needs libfoo')")
    output = run("list").output
    assert "stylegan2" in output and "ganenc-stylegan" in output
    assert "broken" in output and "failed" in output and "libfoo" in output
    rows = json.loads(run("list", "--json").output)
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed == [
        {
            "name": "broken",
            "kind": None,
            "plugin": "broken",
            "distribution": "ganenc-broken",
            "version": "1.0",
            "description": "plugin failed to load (ganenc_broken_plugin)",
            "aliases": [],
            "status": "failed",
            "error": "ImportError: needs libfoo",
        }
    ]


def test_plugins_command_lists_distributions_and_versions():
    rows = json.loads(run("plugins", "--json").output)
    assert {(r["name"], r["distribution"]) for r in rows} >= {
        ("ganenc", "ganenc"),
        ("stylegan", "ganenc-stylegan"),
        ("pggan", "ganenc-pggan"),
        ("biggan", "ganenc-biggan"),
        ("attention_center", "ganenc-attention-center"),
        ("attention_gradcam", "ganenc-attention-gradcam"),
    }


def test_version_lists_core_and_plugins():
    output = run("--version").output
    assert output.splitlines()[0].startswith("ganenc 0.")
    assert "ganenc-stylegan" in output and "ganenc-attention-gradcam" in output


def test_plugins_can_add_commands_and_a_failing_one_breaks_nothing():
    class Commands:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def hello():
                click.echo("hello from a plugin")

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("command hook exploded")

    with isolated_registry(), register_plugin(Commands()), register_plugin(Broken(), name="broken"):
        assert "hello from a plugin" in run("hello").output
        assert "hello" in run("--help").output
        rows = json.loads(run("list", "--json").output)
        (failed,) = [row for row in rows if row["status"] == "failed"]
        assert failed["name"] == "broken" and "command hook exploded" in failed["error"]


def _command_plugin(name, body):
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            body(cli)

    Plugin.__name__ = name
    return Plugin()


def _failed(name):
    rows = json.loads(run("plugins", "--json").output)
    return next(row for row in rows if row["name"] == name)


def test_plugin_command_names_do_not_depend_on_load_order():
    """A third-party 'convert' took ganenc-stylegan's and marked stylegan failed."""

    def convert(cli):
        @cli.command("convert")
        def mine():
            click.echo("THIRD-PARTY convert")

    for order in ((0, 1), (1, 0)):
        plugins = [
            (_command_plugin("Own", convert), "own", "ganenc-own"),
            (_command_plugin("Acme", convert), "acme", "acme-convert"),
        ]
        with isolated_registry(), contextlib.ExitStack() as stack:
            for index in order:
                plugin, name, distribution = plugins[index]
                stack.enter_context(register_plugin(plugin, name, distribution=distribution))
            assert "THIRD-PARTY" in run("convert").output  # the project's own, here 'own'
            failed = _failed("acme")
            assert failed["status"] == "failed"
            assert "command name 'convert' is also plugin 'own' (ganenc-own)'s" in failed["error"]
            assert _failed("own")["status"] == "ok"


def test_plugin_command_mistakes_fail_the_plugin_not_ganenc():
    def not_a_command(cli):
        cli.add_command(lambda: None, "weird")  # a function, not a click command

    def exits(cli):
        raise SystemExit("plugin hook exits")

    def buggy(cli):
        @cli.command("acme-bug")
        def bug():
            raise ValueError("acme bug inside")

    with (
        isolated_registry(),
        register_plugin(_command_plugin("A", not_a_command), "weird-plugin"),
        register_plugin(_command_plugin("B", exits), "exiting"),
        register_plugin(_command_plugin("C", buggy), "acme_cmds", distribution="acme-cmds"),
    ):
        help_text = run("--help")
        assert help_text.exit_code == 0 and "acme-bug" in help_text.output
        assert "not a click command" in _failed("weird-plugin")["error"]
        assert "plugin hook exits" in _failed("exiting")["error"]
        result = run("acme-bug", ok=False)
        assert result.exit_code == 1
        assert "unexpected error in a command of plugin 'acme_cmds' (acme-cmds 0)" in result.output
        assert "to acme-cmds" in result.output


def test_a_command_plugin_registered_for_a_block_is_seen_in_it_only():
    """The commands were cached for the registry: a plugin added later was never seen."""

    def hello(cli):
        @cli.command("hello-block")
        def said():
            click.echo("hello from the block")

    with isolated_registry():
        assert "hello-block" not in run("--help").output
        with register_plugin(_command_plugin("H", hello)):
            assert "hello from the block" in run("hello-block").output
        assert run("hello-block", ok=False).exit_code == 2


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["list"], ["list", "--json"]])
def test_start_up_imports_no_torch(args):
    code = (
        "import sys\n"
        "from ganenc.cli.main import main\n"
        f"try:\n    main({args!r})\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'torchvision', 'lpips', 'requests', 'urllib3', 'urllib.request', 'http.client') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in result.stderr, result.stderr


def test_user_errors_are_one_line_without_traceback():
    result = run("sample", "--gan", "no-such-gan", ok=False)
    assert result.exit_code == 1
    assert "Error: no generator named 'no-such-gan'" in result.output
    assert "Traceback" not in result.output


def test_sample_writes_a_grid_and_latents(tmp_path):
    out = tmp_path / "grid.png"
    with isolated_registry(), register_plugin(ToyPlugin()):
        run(
            "sample",
            "--gan",
            "toy",
            "-n",
            "4",
            "--seed",
            "3",
            "--out",
            str(out),
            "--save-latents",
            "-O",
            "resolution=8",
        )
    from PIL import Image

    assert Image.open(out).size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)
    import torch

    saved = torch.load(out.with_suffix(".latents.pt"), weights_only=True)
    assert saved["latents"]["z"].shape == (4, 8) and saved["seed"] == 3
    # one reader for every latent file: a batch counts as one latent per row
    from ganenc.latents import read_latents

    latent_set = read_latents(out.with_suffix(".latents.pt"))
    assert latent_set.names == [f"grid.latents-{i}" for i in range(4)]
    assert torch.equal(latent_set.latents["z"], saved["latents"]["z"])
    assert latent_set.generator_spec()["gan"] == "toy"


def test_config_file_values_and_errors(tmp_path):
    good = tmp_path / "sample.toml"
    good.write_text('gan = "toy"\nn = 2\nout = "%s"\n' % (tmp_path / "a.png"))
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text("gan: toy\nn: lots\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("gan: toy\ncolour: red\n")
    with isolated_registry(), register_plugin(ToyPlugin()):
        run("sample", "--config", str(good))
        assert (tmp_path / "a.png").is_file()
        # the command line overrides the file
        run("sample", "--config", str(good), "--out", str(tmp_path / "b.png"))
        assert (tmp_path / "b.png").is_file()
        result = run("sample", "--config", str(bad_value), ok=False)
        assert result.exit_code == 1 and "n = 'lots'" in result.output
        result = run("sample", "--config", str(unknown), ok=False)
        assert "unknown setting 'colour' (value 'red')" in result.output
        result = run("sample", "--config", str(tmp_path / "missing.yaml"), ok=False)
        assert "config file not found" in result.output
        result = run("sample", "--gan", "toy", "-O", "nonsense", ok=False)
        assert "expects KEY=VALUE" in result.output
        result = run("sample", "--gan", "toy", "-O", "z_dimm=3", ok=False)
        assert "unknown setting 'z_dimm'" in result.output


def test_help_texts_quote_the_settings_defaults():
    """``--help`` reads defaults from the pydantic models, nested ones included."""
    from ganenc.cli.options import default_of
    from ganenc.training.settings import FinetuneSettings, TrainSettings

    assert default_of(FinetuneSettings, "optimizer.lr") == 0.005  # not OptimizerSettings' own
    assert default_of(TrainSettings, "optimizer.lr") == 0.0015
    finetune_help = " ".join(run("finetune", "--help").output.split())
    assert "Adam learning rate (default 0.005, the reference's)" in finetune_help
    assert "in per-image mode; default 1500)" in finetune_help
    train_help = " ".join(run("train", "--help").output.split())
    assert "Adam learning rate (default 0.0015)" in train_help
    assert "Training steps (default 210000, the reference's)" in train_help


@pytest.mark.parametrize("command", ["invert", "eval"])
def test_refinement_help_quotes_the_refinement_settings(command):
    """``invert``/``eval --help`` state RefinementSettings' defaults, whatever they are."""
    from ganenc.cli.options import default_of
    from ganenc.inversion import DEFAULT_FINETUNE_LR, DEFAULT_OPTIMIZE_LR, DEFAULT_STEPS
    from ganenc.training.settings import FinetuneSettings, RefinementSettings

    defaults = RefinementSettings()
    text = " ".join(run(command, "--help").output.split())
    assert (
        f"(default {defaults.optimize_steps} for optimize, {defaults.finetune_steps} for finetune)"
        in text
    )
    assert f"(default {defaults.optimize_lr} optimize, {defaults.finetune_lr} finetune)" in text
    # per-image fine-tuning is one refinement: invert's defaults are finetune's
    assert defaults.finetune_steps == FinetuneSettings.model_fields["iterations"].default
    assert defaults.finetune_lr == default_of(FinetuneSettings, "optimizer.lr")
    assert DEFAULT_STEPS["optimize"] == defaults.optimize_steps
    assert (DEFAULT_OPTIMIZE_LR, DEFAULT_FINETUNE_LR) == (
        defaults.optimize_lr,
        defaults.finetune_lr,
    )


def test_train_help_quotes_the_default_cropper():
    from ganenc.training.settings import TrainSettings

    text = " ".join(run("train", "--help").output.split())
    assert f"default {TrainSettings.model_fields['attention'].default})" in text


def test_loss_term_names_are_kept_as_written():
    """--loss-term acme-l2=1 asked for 'acme_l2': option keys map - to _, names must not."""
    from ganenc.cli.options import parse_key_values

    assert parse_key_values(("acme-l2=1",), "--loss-term", names=True) == {"acme-l2": 1}
    assert parse_key_values(("channel-max=32",)) == {"channel_max": 32}


def test_plugins_check_covers_a_plugin_of_commands_only():
    """'plugins --check studio' said 'registers no components' and exited 1."""

    def hello(cli):
        @cli.command("hello-check")
        def said():
            click.echo("hi")

    with isolated_registry(), register_plugin(_command_plugin("H", hello), "hello_plugin"):
        result = run("plugins", "--check", "hello_plugin")
        assert "ok    command hello-check: its --help renders" in result.output


def test_a_plugin_failing_in_one_hook_is_out_of_every_command():
    """A plugin whose loss hook raised still added its command, and one whose command clashed
    still had its loss built by the commands that do not list plugin commands."""
    from ganenc.losses.terms import MSELoss

    class HalfBroken:
        @hookimpl
        def register_losses(self, register):
            raise RuntimeError("loss hook exploded")

        @hookimpl
        def register_commands(self, cli):
            @cli.command("half-cmd")
            def half():
                click.echo("half")

    class Clashing:
        @hookimpl
        def register_losses(self, register):
            register("clashloss", MSELoss)

        @hookimpl
        def register_commands(self, cli):
            @cli.command("train")
            def mine():
                click.echo("not ganenc's train")

    with (
        isolated_registry() as registry,
        register_plugin(HalfBroken(), "half"),
        register_plugin(Clashing(), "clashing"),
    ):
        assert "half-cmd" not in run("--help").output
        assert registry.plugins["clashing"].status == "failed"
        with pytest.raises(ganenc.errors.UnknownComponentError):
            registry.get("loss", "clashloss")


def test_a_plugin_that_prints_leaves_json_outputs_whole():
    """One plugin printing in its hooks corrupted 'list --json' and every JSON listing."""
    from ganenc.losses.terms import MSELoss

    class Chatty:
        @hookimpl
        def register_losses(self, register):
            print("chatty plugin says hello")
            register("chatty", MSELoss)

    with isolated_registry(), register_plugin(Chatty(), "chatty"):
        result = CliRunner().invoke(cli, ["list", "--json"])
        assert result.exit_code == 0
        rows = json.loads(result.stdout)
        assert any(row["name"] == "chatty" for row in rows)
        assert "chatty plugin says hello" in result.stderr
