"""Shared command-line plumbing: ``--config`` files, ``-O key=value`` options, settings."""

from __future__ import annotations

import math
from typing import Any

import click

from ganenc.config import MAX_SEED, resolve_settings
from ganenc.errors import ConfigError


class FiniteFloat(click.FloatRange):
    """A number option: finite (click's float takes ``inf`` and ``nan``), within a range if given."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


#: A seed option: a whole number in [0, MAX_SEED] (what numpy and torch take).
SEED = click.IntRange(0, MAX_SEED)


def parse_key_values(pairs: tuple[str, ...], what: str = "--option") -> dict[str, Any]:
    """``("channel_max=32", "blur=true")`` -> ``{"channel_max": 32, "blur": True}`` (YAML scalars)."""
    import yaml

    from ganenc.config import load_yaml

    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} expects KEY=VALUE, got {pair!r}")
        try:
            result[key.strip().replace("-", "_")] = load_yaml(value)
        except yaml.YAMLError:
            result[key.strip().replace("-", "_")] = value
    return result


def speed_options(command):
    """The opt-in speed flags shared by ``train`` and ``finetune`` (see docs/benchmarks.md)."""
    flags = [
        click.option(
            "--channels-last",
            is_flag=True,
            default=None,
            help="channels_last memory layout (opt-in; measure).",
        ),
        click.option(
            "--compile",
            "compile",
            is_flag=True,
            default=None,
            help="torch.compile the encoder (opt-in).",
        ),
        click.option(
            "--gradient-checkpointing",
            is_flag=True,
            default=None,
            help="Recompute encoder activations: less memory at high resolution.",
        ),
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML or TOML file of settings; command-line options override it.",
)


def settings_from_cli(model: type, config_file: str | None, what: str, **given: Any):
    """Resolve a settings model from defaults, ``--config`` and the options actually given."""
    return resolve_settings(model, config_file, given, what=what)


#: Settings a resumed run may change (everything else is fixed by the run).
RESUMABLE = {"iterations", "device", "progress", "checkpoint_every", "image_every", "log_every"}


def run_settings(model: type, config_file: str | None, what: str, given: dict[str, Any]):
    """Settings of a training-like command: from defaults/file/options, or the run on --resume."""
    from ganenc.training.runs import resume_settings, stored_config

    if not given.get("resume"):
        return settings_from_cli(model, config_file, what, **given)
    if not given.get("out"):
        raise click.UsageError("--resume needs --out RUN_DIR")
    given = {key: value for key, value in given.items() if value is not None}
    return resume_settings(model, stored_config(given["out"]), given, RESUMABLE, config_file)
