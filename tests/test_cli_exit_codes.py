"""Exit codes and one-line messages of the command line (the probe's findings).

0 done, 1 a runtime failure or a bad file, 2 a bad command-line value (click's usage
error), 130 interrupted (Ctrl-C), 141 the reader of the output went away; plugin text is
shown as written (never read as rich markup); yes/no environment variables are checked.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from training_helpers import TINY_GENERATOR

from ganenc.cli.main import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, cli
from ganenc.config import flag_from_environment
from ganenc.errors import ConfigError, PluginLoadError, UnknownComponentError
from ganenc.registry import Registry

HOSTILE = "raise ImportError(\"needs libfoo[/] >= 2; pip install 'evil-plugin[gpu]'\")"


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


# -- plugin text is not markup ----------------------------------------------------------


def test_a_plugins_error_text_is_shown_as_written_not_read_as_markup(fake_distribution):
    fake_distribution("evil-plugin", "evil", HOSTILE)
    for command in (["list"], ["plugins"], ["plugins", "--traceback"]):
        result = run(*command)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.replace("│", " ").split())  # cells may fold
        assert "needs libfoo[/] >= 2" in text and "'evil-plugin[gpu]'" in text, result.output


# -- Ctrl-C: exit 130, one or two lines -------------------------------------------------


def test_ctrl_c_in_any_command_exits_130_with_one_line(tmp_path, monkeypatch):
    from ganenc.cli import sample

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(sample.SampleSettings, "load", interrupted)
    result = run("sample", "--gan", "stylegan2", "--out", tmp_path / "s.png")
    assert result.exit_code == EXIT_INTERRUPTED == 130
    assert result.output.strip() == "interrupted" and "Aborted" not in result.output


def test_ctrl_c_in_train_exits_130_with_the_resume_command(tmp_path, monkeypatch):
    from ganenc.training.pretrain import Pretrainer

    def interrupted(self, step):
        raise KeyboardInterrupt

    monkeypatch.setattr(Pretrainer, "train_step", interrupted)
    options = [f"-O{key}={value}" for key, value in TINY_GENERATOR.items()]
    result = run(
        "train",
        "--gan",
        "stylegan2",
        *options,
        "--encoder-option",
        "max_channels=32",
        "--loss-option",
        "image_terms={mse: 1}",
        "--attention",
        "none",
        "--iterations",
        2,
        "--batch-size",
        1,
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 130, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("interrupted at step 0; checkpoint saved in"), lines
    assert lines[1] == f"  ganenc train --resume --out {tmp_path / 'run'}"
    assert len(lines) == 2 and "Error" not in result.output


# -- a closed pipe: quiet, 141 ----------------------------------------------------------


def test_a_broken_pipe_in_a_command_is_quiet(monkeypatch):
    import click

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(click, "echo", closed)
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert result.exit_code == EXIT_BROKEN_PIPE == 141 and "Broken pipe" not in result.output


@pytest.mark.parametrize("command", [["list", "--json"], ["plugins"]])
def test_a_reader_gone_before_the_output_ends_the_command_quietly(command):
    script = shutil.which("ganenc", path=os.path.dirname(sys.executable))
    assert script is not None
    read, write = os.pipe()
    os.close(read)  # every write meets a closed pipe
    try:
        done = subprocess.run(
            [script, *command], stdout=write, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == b"", done.stderr.decode()


# -- a bad command-line value is a usage error (2); a bad file stays 1 -------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["sample", "--gan", "stylegan2", "-n", "0"], "'-n'"),
        (["sample", "--device", "gpu"], "'--device'"),
        (["train", "--gan", "stylegan2", "--iterations", "0"], "'--iterations'"),
        (["train", "--gan", "stylegan2", "--batch-size", "-1"], "'--batch-size'"),
        (["finetune", "--encoder", "e", "--images", "i", "--held-out", "2"], "'--held-out'"),
        (["edit", "--latents", ".", "--direction", "pyproject.toml", "--strengths", "a,b"], ""),
    ],
)
def test_a_bad_option_value_is_a_usage_error(args, flag, tmp_path):
    result = run(*args, "--out", tmp_path / "out.png")
    assert result.exit_code == 2, result.output
    assert "Usage: " in result.output and f"Invalid value for {flag}" in result.output


def test_several_bad_or_missing_options_are_one_usage_error():
    result = run("train", "--iterations", "0")
    assert result.exit_code == 2 and "missing setting 'gan'" in result.output
    assert "iterations = 0" in result.output


def test_a_bad_value_in_the_config_file_stays_exit_1(tmp_path):
    config = tmp_path / "sample.yaml"
    config.write_text("gan: stylegan2\nn: 0\n")
    result = run("sample", "--config", config, "--seed", "3", "--out", tmp_path / "a.png")
    assert result.exit_code == 1 and "(from" in result.output and "n = 0" in result.output
    fixed = run("sample", "--config", config, "-n", "-1", "--out", tmp_path / "a.png")
    assert fixed.exit_code == 2 and "Invalid value for '-n'" in fixed.output


def test_a_device_this_machine_lacks_is_a_runtime_error(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run("sample", "--gan", "stylegan2", "--device", "cuda", "--out", tmp_path / "a.png")
    assert result.exit_code == 1 and "no CUDA GPU is available" in result.output


# -- environment variables --------------------------------------------------------------


@pytest.mark.parametrize(
    "variable", ["GANENC_OFFLINE", "GANENC_TRACEBACK", "GANENC_STRICT_PLUGINS"]
)
def test_a_yes_no_variable_with_another_value_is_one_clear_error(variable, monkeypatch):
    monkeypatch.setenv(variable, "maybe")
    result = run("list", "--json")
    assert result.exit_code == 1 and f"{variable}='maybe' is not a yes/no value" in result.output
    with pytest.raises(ConfigError, match=variable):
        flag_from_environment(variable)


def test_every_yes_no_variable_takes_the_same_words(monkeypatch, fake_distribution):
    from ganenc.weights.download import offline

    for word, meaning in [("on", True), ("YES", True), ("1", True), ("off", False), ("", False)]:
        monkeypatch.setenv("GANENC_OFFLINE", word)
        assert offline() is meaning
    monkeypatch.setenv("GANENC_OFFLINE", "maybe")
    with pytest.raises(ConfigError, match="GANENC_OFFLINE"):
        offline()
    monkeypatch.delenv("GANENC_OFFLINE")
    fake_distribution("ganenc-broken", "broken", "raise ImportError('missing xyz')")
    monkeypatch.setenv("GANENC_STRICT_PLUGINS", "on")
    with pytest.raises(PluginLoadError, match="missing xyz"):
        Registry()
    monkeypatch.delenv("GANENC_STRICT_PLUGINS")
    monkeypatch.setenv("GANENC_TRACEBACK", "on")
    result = run("sample", "--gan", "nope", "--out", "x.png")
    assert result.exit_code == 1 and "Traceback" in result.output


def test_an_allow_list_naming_no_installed_plugin_is_said(monkeypatch, caplog):
    monkeypatch.setenv("GANENC_PLUGINS", "nonexistent")
    with caplog.at_level(logging.WARNING, logger="ganenc.registry"):
        registry = Registry()
    assert "GANENC_PLUGINS names no installed plugin: nonexistent" in caplog.text
    assert "stylegan" in caplog.text  # what is installed
    with pytest.raises(UnknownComponentError, match="GANENC_PLUGINS='nonexistent'.*stylegan"):
        registry.get("generator", "stylegan2")
    monkeypatch.setenv("GANENC_PLUGINS", "stylegan")
    caplog.clear()
    Registry()
    assert "no installed plugin" not in caplog.text


# -- narrow terminals -------------------------------------------------------------------


def test_a_narrow_terminal_keeps_names_whole_and_drops_minor_columns(monkeypatch):
    from rich.console import Console

    from ganenc.cli import options

    out = io.StringIO()
    monkeypatch.setattr(options, "table_console", lambda: Console(file=out, width=40))
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 40 for line in lines), out.getvalue()
    assert len(lines) < 40 and "description" not in out.getvalue()
    assert any(line.split()[:2] == ["stylegan2", "generator"] for line in lines if line.split())


# -- a bug says where to report it ------------------------------------------------------


def test_an_unexpected_error_says_to_attach_its_traceback_file(monkeypatch):
    from email.message import Message
    from importlib import metadata

    from ganenc.cli import main

    message = main.report_unexpected(TypeError("a bug"))
    assert "attach " in message and "to a bug report" in message
    path = message.split("attach ", 1)[1].split(" ", 1)[0]
    assert "TypeError: a bug" in open(path, encoding="utf-8").read()
    os.unlink(path)

    known = Message()
    known["Project-URL"] = "Homepage, https://example.org"
    known["Project-URL"] = "Issues, https://example.org/issues"
    monkeypatch.setattr(metadata, "metadata", lambda name: known)
    message = main.report_unexpected(TypeError("a bug"))
    assert message.endswith("to a bug report at https://example.org/issues")
    os.unlink(message.split("attach ", 1)[1].split(" ", 1)[0])
