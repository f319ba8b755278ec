"""Settings: pydantic models with ``extra="forbid"``, loaded from YAML/TOML and the command line.

Every command has a settings model; every component validates its own options
with its own model.  Errors name the field and the offending value.  Every run
directory records the resolved settings and the plugin versions that ran.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .files import json_safe, strict_json, write_json

M = TypeVar("M", bound=BaseModel)
_N = TypeVar("_N", int, float)


def _path_as_text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: A file path option kept as text (so run records stay plain data); accepts any
#: ``os.PathLike`` such as ``pathlib.Path`` as well.  Every plugin's
#: ``checkpoint`` option uses it.
PathText = Annotated[str, BeforeValidator(_path_as_text)]


def absolute_if_present(value: Any) -> Any:
    """An existing relative path made absolute (tags, ``random`` and missing paths as given)."""
    text = _path_as_text(value)
    if isinstance(text, str) and text != "random" and not os.path.isabs(text):
        if os.path.exists(text):
            return os.path.abspath(text)
    return text


#: Marks a file or folder setting a run records (generator checkpoint, encoder, images,
#: weights): an existing relative path is made absolute when the settings are read, so that
#: ``--resume``, ``invert --encoder RUN`` and ``edit`` work from any folder.  Tags, ``random``
#: (a keyword of checkpoint and weights settings) and paths not found are kept as written.
ABSOLUTE_IF_PRESENT = BeforeValidator(absolute_if_present)
#: A :data:`PathText` recorded with a run (see :data:`ABSOLUTE_IF_PRESENT`).
RecordedPath = Annotated[str, ABSOLUTE_IF_PRESENT]


class Settings(BaseModel):
    """Base for command settings and component options: unknown keys are errors.

    NaN and infinities are refused in every float field (``--lr inf``, ``eps: .nan``);
    defaults are validated too (a default its own constraints refuse is an error).
    """

    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), allow_inf_nan=False, validate_default=True
    )

    def __init__(self, /, **data: Any) -> None:
        """Built in Python (``TrainSettings(iterations=0)``): one :class:`ConfigError`, as
        :func:`validate_options` gives for files and flags, not pydantic's report."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, type(self).__name__)) from None

    # pydantic's own mark (as on BaseModel.__init__): validation of nested settings and
    # model_validate keep pydantic's path, so their errors stay field by field
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


#: The ``json_schema_extra`` of a generator option that only shapes a randomly initialised
#: generator (declared with :func:`random_only`). With a checkpoint the file gives the
#: architecture; :func:`contradicted_random_only` names such options that were given anyway,
#: so ``-O resolution=128`` with a 64 px checkpoint is refused, not ignored.
RANDOM_ONLY = {"random_only": True}


def random_only(default: Any, description: str, **constraints: Any) -> Any:
    """``Field(default, ...)`` of a :data:`RANDOM_ONLY` generator option."""
    return Field(default, description=description, json_schema_extra=RANDOM_ONLY, **constraints)


def random_only_fields(model: type[BaseModel]) -> set[str]:
    """The names of ``model``'s :data:`RANDOM_ONLY` options."""
    return {
        name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("random_only")
    }


def contradicted_random_only(
    model: type[BaseModel], given: dict[str, Any], built: Any
) -> list[str]:
    """The :data:`RANDOM_ONLY` options in ``given`` that the generator ``built`` from a file denies.

    An option the generator has as an attribute of the same name (``resolution``, ``z_dim``)
    may restate the file's value (a config that says ``resolution: 64`` for a 64 px file);
    any other random-only option (``channel_base``, ``seed``) has no effect with a file.
    """
    validated = validate_options(model, given, f"options of {type(built).__name__}")
    problems = []
    fields = random_only_fields(model)
    for key in [key for key in given if key in fields]:  # in the order given
        value, actual = getattr(validated, key), getattr(built, key, None)
        if isinstance(actual, (bool, int, float, str)):
            if actual != value:
                problems.append(f"{key}={value!r} (the file gives {actual!r})")
        else:
            problems.append(f"{key}={value!r} (used only for random weights)")
    return problems


#: Largest seed any setting takes (and the room above it that seed ranges use): numpy and
#: torch take 32-bit seeds safely; a seed of 1e23 used to fail deep inside torch.
MAX_SEED = 2**32 - 1
#: A seed: a whole number in [0, MAX_SEED].
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

#: Largest truncation psi a setting takes: psi > 1 extrapolates away from the average latent,
#: and far beyond a few the images overflow (psi 1e308 drew an all-black grid).
MAX_TRUNCATION = 10.0
#: A truncation psi in (0, MAX_TRUNCATION]: 1 is none, 0.7 the usual, above 1 extrapolates.
Truncation = Annotated[float, Field(gt=0, le=MAX_TRUNCATION)]

#: Config files are a few kilobytes; a larger one is not a settings file.
MAX_CONFIG_BYTES = 1 << 20


def number_from_environment(
    name: str,
    default: _N,
    parse: Callable[[str], _N],
    kind: str,
    rule: str,
    invalid: Callable[[_N], bool],
) -> _N:
    """``$name`` parsed with ``parse``; unset or empty gives ``default``, a bad value one clear error."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = parse(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not {kind}") from None
    if invalid(number):
        raise ConfigError(f"{name} must be {rule}, got {value!r}")
    return number


#: The spellings of a yes/no environment variable (``GANENC_OFFLINE``, ``GANENC_TRACEBACK``...).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def flag_from_environment(name: str) -> bool:
    """``$name`` as a yes/no switch; unset or empty is no, a value of neither kind one clear error.

    Every ``GANENC_*`` switch reads its value here, so ``on`` means the same to all of them
    and a typo (``GANENC_OFFLINE=maybe``) is refused rather than silently taken as no.
    """
    value = os.environ.get(name, "").strip()
    if value.lower() in TRUE_WORDS:
        return True
    if not value or value.lower() in FALSE_WORDS:
        return False
    raise ConfigError(
        f"{name}={value!r} is not a yes/no value; set it to 1, true, yes or on (or 0, false,"
        " no, off, or unset it)"
    )


def load_yaml(text: str) -> Any:
    """YAML with the safe loader and without aliases.

    Anchors and aliases let a 783-byte file expand to gigabytes ("billion laughs");
    settings never need them, so an alias is an error.
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                mark = event.start_mark
                raise yaml.YAMLError(
                    f"YAML aliases (*{event.anchor}, line {mark.line + 1}) are not allowed in"
                    " settings; write the values out"
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


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


class SettingsError(ConfigError):
    """Invalid settings; :attr:`problems` says where and why, one ``(location, value, reason)``
    per problem (a pydantic location: ``("optimizer", "lr")``).

    The command line tells a bad flag (a usage error) from a bad ``--config`` file by them.
    """

    def __init__(self, message: str, problems: Iterable[tuple[tuple, Any, str]] = ()) -> None:
        super().__init__(message)
        self.problems = [(tuple(location), value, reason) for location, value, reason in problems]


def validate_options(model: type[M], options: dict[str, Any], what: str) -> M:
    """``model(**options)`` with a :class:`ConfigError` that names field and value.

    Unknown keys are refused even by a plugin's model that would ignore them (a
    plain pydantic ``BaseModel``): a misspelt option must never be dropped silently.
    """
    if model.model_config.get("extra") != "forbid":
        fields = model.model_fields
        known = set(fields) | {field.alias for field in fields.values() if field.alias}
        unknown = [key for key in options if key not in known]
        if unknown:
            raise SettingsError(
                f"invalid {what}: unknown setting {unknown[0]!r} (value {options[unknown[0]]!r})"
                f" (known settings: {', '.join(fields) or 'none'})",
                [((unknown[0],), options[unknown[0]], "unknown setting")],
            )
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        message = format_validation_error(exc, what)
        parents = {e["loc"][:-1] for e in exc.errors() if e["type"] == "extra_forbidden"}
        for parent in sorted(parents, key=len):
            known = _settings_at(model, parent)
            if known is not None:
                where = f" of {'.'.join(map(str, parent))!r}" if parent else ""
                message += f" (known settings{where}: {', '.join(known)})"
        problems = [(e["loc"], e.get("input"), e["msg"]) for e in exc.errors()]
        raise SettingsError(message, problems) from None


def _settings_at(model: type[BaseModel], parent: tuple) -> list[str] | None:
    """The setting names of the (nested) settings model at ``parent``, if it is one."""
    for part in parent:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        nested = field.annotation if field is not None else None
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            return None
        model = nested
    return list(model.model_fields)


@functools.lru_cache(maxsize=256)
def _field_adapter(model: type[BaseModel], field: str) -> Any:
    """The validator of one field, built once (building takes ~0.1 ms; the adapters check
    every sample's seed and every synthesis's truncation)."""
    from pydantic import AllowInfNan, TypeAdapter

    info = model.model_fields[field]
    finite = (AllowInfNan(False),) if info.annotation is float else ()  # as Settings' floats
    extras = (*info.metadata, *finite)
    return TypeAdapter(Annotated[info.annotation, *extras] if extras else info.annotation)


def check_field(model: type[BaseModel], field: str, value: Any, what: str | None = None) -> Any:
    """``value`` validated as ``model``'s ``field`` (its type and limits), else a ConfigError.

    For code that takes a setting as a plain argument (the Python API): the limits stay
    written once, on the settings model.
    """
    try:
        return _field_adapter(model, field).validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"{what or field} = {value!r}: {error['msg']}") from None


def builds_from(model: type[M], what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a component factory written against its validated options model.

    ``build(*args, options: Model)`` becomes a factory called with keyword values
    that validates them once; its ``from_options`` attribute is ``build`` itself.
    :meth:`ganenc.registry.Registry.create` validates a component's options with
    the registered model and hands the instance to ``from_options``, so a factory
    never validates again what the registry already checked.
    """

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(build, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        def factory(*args: Any, **fields: Any) -> Any:
            return build(*args, validate_options(model, fields, what))

        factory.from_options = build  # type: ignore[attr-defined]
        factory.options_model = model  # type: ignore[attr-defined]
        return factory

    return decorate


def _one_line(exc: Exception) -> str:
    """A parser's message on one line, with the line and column it gives (YAML's span three)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # PyYAML: "<problem> (line L, column C)"
        problem = getattr(exc, "problem", None) or str(exc)
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or TOML file as a dict (by extension: .yaml/.yml/.toml/.json)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {path} has {path.stat().st_size:,} bytes; settings files are small"
            f" (at most {MAX_CONFIG_BYTES:,})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = load_yaml(text) or {}
        elif path.suffix == ".json":
            data = strict_json(text)
        else:
            raise ConfigError(f"config file {path} must end in .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - parser errors of three libraries
        raise ConfigError(f"cannot parse config file {path}: {_one_line(exc)}") from None
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


#: Strict-JSON conversion of reports: one rule, in :mod:`ganenc.files` (NaN as null).
jsonable = json_safe


def write_run_metadata(run_dir: str | os.PathLike, settings: BaseModel) -> None:
    """Store the resolved settings and the versions of core and plugins in ``run_dir``."""
    from .registry import get_registry

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", settings.model_dump(mode="json"))
    registry = get_registry()
    plugins = [info.as_dict() for info in registry.plugin_infos()]
    versions = {"packages": registry.versions(), "plugins": plugins}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    write_json(run_dir / "versions.json", versions)
