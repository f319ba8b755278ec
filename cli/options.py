"""Shared command-line plumbing: ``--config`` files, ``-O key=value`` options, settings."""

from __future__ import annotations

from typing import Any

import click

from ganenc.config import resolve_settings
from ganenc.errors import ConfigError


def default_of(model: type, field: str) -> Any:
    """The default of a settings field, for help texts (``"optimizer.lr"`` follows nested models).

    Help texts quote the pydantic models instead of restating their numbers, so
    a changed default cannot leave ``--help`` behind.
    """
    head, *rest = field.split(".")
    value = model.model_fields[head].get_default(call_default_factory=True)
    for name in rest:  # the nested model's own default may differ from its class's
        value = getattr(value, name)
    return value


def parse_key_values(pairs: tuple[str, ...], what: str = "--option") -> dict[str, Any]:
    """``("channel_max=32", "blur=true")`` -> ``{"channel_max": 32, "blur": True}`` (YAML scalars)."""
    import yaml

    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} expects KEY=VALUE, got {pair!r}")
        try:
            result[key.strip().replace("-", "_")] = yaml.safe_load(value)
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
