"""Settings: pydantic models with ``extra="forbid"``, loaded from YAML/TOML and the command line.

Every command has a settings model; every component validates its own options
with its own model.  Errors name the field and the offending value.  Every run
directory records the resolved settings and the plugin versions that ran.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _path_as_text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: A file path option kept as text (so run records stay plain data); accepts any
#: ``os.PathLike`` such as ``pathlib.Path`` as well.  Every plugin's
#: ``checkpoint`` option uses it.
PathText = Annotated[str, BeforeValidator(_path_as_text)]


class Settings(BaseModel):
    """Base for command settings and component options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def format_validation_error(exc: ValidationError, what: str) -> str:
    """One readable line per problem: ``field = value: reason``."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {location!r} (value {value!r})")
        elif error["type"] == "missing":
            lines.append(f"missing setting {location!r}")
        else:
            lines.append(f"{location} = {value!r}: {error['msg']}")
    return f"invalid {what}: " + "; ".join(lines)


def validate_options(model: type[M], options: dict[str, Any], what: str) -> M:
    """``model(**options)`` with a :class:`ConfigError` that names field and value."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        message = format_validation_error(exc, what)
        extra = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
        if extra:
            message += f" (known settings: {', '.join(model.model_fields)})"
        raise ConfigError(message) from None


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or TOML file as a dict (by extension: .yaml/.yml/.toml/.json)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - parser errors of three libraries
        raise ConfigError(f"cannot parse config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data


def resolve_settings(
    model: type[M],
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    what: str = "settings",
) -> M:
    """Defaults < config file < command-line overrides (``None`` means not given)."""
    data: dict[str, Any] = {}
    if config_file is not None:
        data.update(read_config_file(config_file))
    deep_merge(data, overrides or {})
    source = f"{what} (from {config_file})" if config_file else what
    return validate_options(model, data, source)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Deep-merge ``overrides`` into ``base``; ``None`` means "not given"."""
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value


def jsonable(value: Any) -> Any:
    """Non-finite floats as strings ("inf"), so the JSON of reports stays standard."""
    import math

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_run_metadata(run_dir: str | os.PathLike, settings: BaseModel) -> None:
    """Store the resolved settings and the versions of core and plugins in ``run_dir``."""
    from .registry import get_registry

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(
        json.dumps(settings.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    registry = get_registry()
    plugins = [info.as_dict() for info in registry.plugins.values()]
    versions = {"packages": registry.versions(), "plugins": plugins}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    (run_dir / "versions.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")
