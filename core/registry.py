"""The component registry: what every plugin registered, where it came from, and how to build it.

Plugins are found through the ``ganenc`` entry-point group and loaded one by one,
so a plugin that fails to import, or that registers something invalid, is
recorded as failed and never takes the command line down with it.  Components
are registered with lazy factories (``"module:attribute"`` strings), so listing
them imports neither torch nor any network code.

Environment variables:

``GANENC_PLUGINS``
    Comma-separated allow-list of plugins (entry-point or distribution names).
    Unset: load every installed plugin.  Set but empty: load none.
``GANENC_DISABLE_PLUGINS``
    Comma-separated block-list, applied after the allow-list.
``GANENC_STRICT_PLUGINS``
    ``1``/``true``/``yes``/``on``: a plugin failure raises instead of being recorded (for
    plugin authors who want the traceback).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import (
    ComponentConflictError,
    ConfigError,
    GanencError,
    PluginLoadError,
    PluginRegistrationError,
    UnknownComponentError,
)

ENTRY_POINT_GROUP = "ganenc"
BUILTIN_PLUGIN = "ganenc"

logger = logging.getLogger(__name__)

#: Component kind -> the hook that registers it.  New kinds come with new hookspecs.
KINDS: dict[str, str] = {
    "generator": "register_generators",
    "encoder": "register_encoders",
    "cropper": "register_croppers",
    "loss": "register_losses",
    "weights": "register_weights",
}

#: Kind -> what its factory takes before the keyword options (see hookspecs); others: nothing.
POSITIONAL = {"encoder": ("the generator's geometry",)}

#: Kinds whose names are ``family:name`` tags (``stylegan2:ffhq-1024``), not plain names.
TAGGED_KINDS = frozenset({"weights"})

_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_NAME_RE = re.compile(rf"^{_NAME_PART}$")
#: ``family:name``: what a weights tag looks like (also on the command line).
TAG_RE = re.compile(rf"^({_NAME_PART}):({_NAME_PART})$")


@dataclass
class PluginInfo:
    """One plugin: where it came from and whether it loaded."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # "ok", "failed" or "disabled"
    error: str | None = None
    traceback: str | None = None

    # Deliberately alike: each record class lists its own fields as plain data
    def as_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
        }
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class ComponentSpec:
    """A registered component, with its provenance and a lazy factory."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    plugin: str
    distribution: str | None
    version: str | None
    description: str = ""
    options: type | str | None = None
    aliases: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    def load_factory(self) -> Callable[..., Any]:
        if callable(self.factory):
            return self.factory
        return _import_object(self.factory, f"{self.kind} {self.qualified_name!r}")

    def load_options_model(self) -> type | None:
        if self.options is None or isinstance(self.options, type):
            return self.options
        return _import_object(self.options, f"options of {self.kind} {self.qualified_name!r}")

    # Deliberately alike: each record class lists its own fields as plain data
    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "description": self.description,
            "aliases": list(self.aliases),
            "status": "ok",
        }


def plugin_code() -> contextlib.AbstractContextManager:
    """Around a plugin's code (import, hooks): what it prints goes to stderr.

    Standard output carries ganenc's own output, which ``--json`` makes machine-read:
    one plugin's ``print`` at import would corrupt every listing.
    """
    return contextlib.redirect_stdout(sys.stderr)


def _import_object(reference: str, what: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        with plugin_code():
            obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever the plugin's module raises
        raise PluginLoadError(
            f"cannot import {reference!r} for {what}: {short_error(exc)}"
        ) from exc
    return obj


def _env_list(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def strict_plugins() -> bool:
    """``GANENC_STRICT_PLUGINS`` (a yes/no value): a plugin failure raises."""
    from .config import flag_from_environment

    return flag_from_environment("GANENC_STRICT_PLUGINS")


def short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Registry:
    """Plugins and the components they register.

    ``Registry()`` loads the built-in plugin and every plugin of the ``ganenc``
    entry-point group.  ``Registry(entry_points=False)`` loads none of the
    installed plugins (see :func:`ganenc.testing.isolated_registry`).
    """

    def __init__(self, *, entry_points: bool = True, builtins: bool = True) -> None:
        #: Counts changes of the plugin set, so caches built from it (commands) know when to go.
        self.generation = 0
        self.plugin_manager = pluggy.PluginManager("ganenc")
        self.plugin_manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._components: dict[str, dict[str, list[ComponentSpec]]] | None = None
        self._warned: set[tuple[str, str]] = set()
        if builtins:
            from . import builtins as builtin_plugin
            from ._version import __version__

            self.add_plugin(
                builtin_plugin, name=BUILTIN_PLUGIN, distribution="ganenc", version=__version__
            )
        if entry_points:
            self._load_entry_points()

    # -- plugins -------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        import importlib_metadata

        allow = _env_list("GANENC_PLUGINS")
        block = _env_list("GANENC_DISABLE_PLUGINS") or set()
        seen: set[tuple[str, str]] = set()
        installed: set[str] = set()  # entry-point and distribution names
        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            info = PluginInfo(name=ep.name, module=ep.value, distribution=dist, version=version)
            names = {ep.name, dist or ""}
            installed |= names
            if (allow is not None and not names & allow) or names & block:
                info.status = "disabled"
                self.plugins[ep.name] = info
                continue
            if ep.name in self.plugins:
                info.status = "failed"
                info.error = (
                    f"plugin name {ep.name!r} is used by both {self.plugins[ep.name].distribution}"
                    f" and {dist}"
                )
                self.plugins[f"{ep.name} ({dist})"] = info
                if strict_plugins():
                    raise PluginLoadError(info.error)
                continue
            try:
                with plugin_code():
                    module = ep.load()
            # SystemExit too: a plugin's ``sys.exit()`` at import must not end every command
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is the plugin's
                self._record_failure(info, exc)
                continue
            self.add_plugin(module, name=ep.name, distribution=dist, version=version, info=info)
        unmatched = sorted((allow or set()) - installed - {BUILTIN_PLUGIN})
        if unmatched:  # a typo there disables every plugin, silently otherwise
            logger.warning(
                "GANENC_PLUGINS names no installed plugin: %s (installed: %s)",
                ", ".join(unmatched),
                ", ".join(sorted(name for name, _ in seen)) or "none",
            )

    def add_plugin(
        self,
        plugin: object,
        *,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
        info: PluginInfo | None = None,
    ) -> PluginInfo:
        """Register a plugin object (a module or any object with hook implementations)."""
        if name in self.plugins and self.plugins[name].status == "ok":
            raise PluginLoadError(f"a plugin named {name!r} is already registered")
        if info is None:
            module = getattr(plugin, "__name__", type(plugin).__name__)
            info = PluginInfo(name=name, module=module, distribution=distribution, version=version)
        try:
            self.plugin_manager.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors
            self._record_failure(info, exc)
            return info
        problems = hook_problems(self.plugin_manager, plugin)
        if problems:
            self.plugin_manager.unregister(plugin, name=name)
            self._record_failure(info, PluginRegistrationError("; ".join(problems)))
            return info
        self.plugins[name] = info
        self._components = None
        self.generation += 1
        return info

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and forget its components."""
        plugin = self.plugin_manager.get_plugin(name)
        if plugin is not None:
            self.plugin_manager.unregister(plugin, name=name)
        self.plugins.pop(name, None)
        self._components = None
        self.generation += 1

    def refresh(self) -> None:
        """Collect the components again on next use: a plugin's table changed at run time."""
        self._components = None
        self.generation += 1

    def _record_failure(self, info: PluginInfo, exc: BaseException) -> None:
        info.status = "failed"
        info.error = short_error(exc)
        info.traceback = "".join(traceback.format_exception(exc))
        self.plugins[info.name] = info
        if strict_plugins():
            raise PluginLoadError(f"plugin {info.name!r} failed: {info.error}") from exc

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin with its status once its hooks have run: a failing hook shows as failed."""
        self._table  # noqa: B018 - collecting runs every plugin's registration hooks
        return list(self.plugins.values())

    # -- components ----------------------------------------------------------------
    @property
    def _table(self) -> dict[str, dict[str, list[ComponentSpec]]]:
        if self._components is None:
            self._components = self._collect()
        return self._components

    def _collect(self) -> dict[str, dict[str, list[ComponentSpec]]]:
        table: dict[str, dict[str, list[ComponentSpec]]] = {kind: {} for kind in KINDS}
        for plugin_name, info in list(self.plugins.items()):
            if info.status != "ok":
                continue
            try:
                with plugin_code():
                    collected = self._collect_plugin(plugin_name, info)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - the plugin's hook raised
                self._record_failure(info, exc)
                continue
            for spec in collected:
                for key in (spec.name, *spec.aliases):
                    table[spec.kind].setdefault(key, []).append(spec)
        return table

    def _collect_plugin(self, plugin_name: str, info: PluginInfo) -> list[ComponentSpec]:
        plugin = self.plugin_manager.get_plugin(plugin_name)
        collected: list[ComponentSpec] = []
        own_keys: set[tuple[str, str]] = set()
        for kind, hook_name in KINDS.items():
            hook = getattr(self.plugin_manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin is not plugin:
                    continue

                def register(
                    name: str,
                    factory: Callable[..., Any] | str,
                    *,
                    description: str = "",
                    options: type | str | None = None,
                    aliases: Iterable[str] = (),
                    _kind: str = kind,
                    **metadata: Any,
                ) -> None:
                    spec = ComponentSpec(
                        kind=_kind,
                        name=name,
                        factory=factory,
                        plugin=plugin_name,
                        distribution=info.distribution,
                        version=info.version,
                        description=description,
                        options=options,
                        aliases=tuple(aliases),
                        metadata=metadata,
                    )
                    _validate_spec(spec)
                    for key in (spec.name, *spec.aliases):
                        if (_kind, key) in own_keys:
                            raise PluginRegistrationError(
                                f"plugin {plugin_name!r} registers {_kind} {key!r} twice"
                            )
                        own_keys.add((_kind, key))
                    collected.append(spec)

                returned = impl.function(register=register)
                if returned is not None:
                    raise PluginRegistrationError(returned_value_message(hook_name, returned))
        return collected

    def components(self, kind: str | None = None) -> list[ComponentSpec]:
        """Every registered component (of one kind), each once, sorted by kind and name."""
        if kind is not None and kind not in KINDS:
            raise GanencError(f"unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}")
        specs: dict[int, ComponentSpec] = {}
        for k, by_name in self._table.items():
            if kind is not None and k != kind:
                continue
            for candidates in by_name.values():
                for spec in candidates:
                    specs[id(spec)] = spec
        return sorted(specs.values(), key=lambda s: (s.kind, s.name, s.plugin))

    def conflicts(self, spec: ComponentSpec) -> list[ComponentSpec]:
        """Other plugins' components registered under one of ``spec``'s names."""
        others: dict[int, ComponentSpec] = {}
        for key in (spec.name, *spec.aliases):
            for other in self._table[spec.kind].get(key, []):
                if other is not spec:
                    others[id(other)] = other
        return list(others.values())

    def get(self, kind: str, name: str) -> ComponentSpec:
        """Look a component up by kind and name (or alias, or ``plugin:name``)."""
        if kind not in KINDS:
            raise GanencError(f"unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}")
        if not isinstance(name, str):
            raise GanencError(f"a {kind} name is a string, not {name!r}")
        table = self._table[kind]
        if kind in TAGGED_KINDS:  # "tag" or "plugin:tag", the tag itself holding one ':'
            plugin_name, sep, bare = name.partition(":") if name not in table else ("", "", name)
        else:
            plugin_name, sep, bare = name.rpartition(":")
        candidates = table.get(bare if sep else name, [])
        if sep:
            candidates = [spec for spec in candidates if spec.plugin == plugin_name]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise UnknownComponentError(self._unknown_message(kind, name))
        chosen = preferred(candidates)
        if chosen is not None:  # a third-party plugin never takes a name from the project
            self._warn_shadowed(kind, name, chosen, [s for s in candidates if s is not chosen])
            return chosen
        owners = " and ".join(
            f"plugin {spec.plugin!r} ({spec.distribution} {spec.version})" for spec in candidates
        )
        choices = " or ".join(repr(spec.qualified_name) for spec in candidates)
        raise ComponentConflictError(
            f"{kind} {name!r} is registered by both {owners}; choose one with {choices}"
        )

    def _warn_shadowed(
        self, kind: str, name: str, chosen: ComponentSpec, others: list[ComponentSpec]
    ) -> None:
        """Say once per name that another plugin's component of that name was passed over."""
        key = (kind, name)
        if key in self._warned:
            return
        self._warned.add(key)
        for other in others:
            logger.warning(
                "%s %r is %s's (%s); plugin %r (%s) registers it too: select that one as %r",
                kind,
                name,
                chosen.plugin,
                chosen.distribution,
                other.plugin,
                other.distribution,
                other.qualified_name,
            )

    def _unknown_message(self, kind: str, name: str) -> str:
        import difflib

        known = sorted({spec.name for spec in self.components(kind)})
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}? " if close else ""
        message = f"no {kind} named {name!r}; {hint}available: {', '.join(known) or 'none'}"
        failed = [p.name for p in self.plugins.values() if p.status == "failed"]
        if failed:
            message += f" (plugins that failed to load: {', '.join(failed)}; see 'ganenc list')"
        disabled = [p.name for p in self.plugins.values() if p.status == "disabled"]
        if disabled:  # an allow- or block-list left plugins out: maybe the one meant
            limits = " and ".join(
                f"{variable}={os.environ[variable]!r}"
                for variable in ("GANENC_PLUGINS", "GANENC_DISABLE_PLUGINS")
                if variable in os.environ
            )
            message += (
                f" (plugins disabled by {limits or 'the environment'}: {', '.join(disabled)};"
                " change or unset it to load them)"
            )
        return message

    def create(self, kind: str, name: str, /, *args: Any, **options: Any) -> Any:
        """Build a component: validate ``options`` with its model (once), then call its factory.

        A factory made with :func:`ganenc.config.builds_from` gets the validated
        model instance; any other factory gets its fields as keyword arguments.
        """
        spec = self.get(kind, name)
        model = spec.load_options_model()
        takes = POSITIONAL.get(kind, ())
        if len(args) > len(takes):
            names = ", ".join(model.model_fields) if model is not None else "see its documentation"
            raise ConfigError(
                f"create({kind!r}, {name!r}, ...) got {len(args)} positional argument(s): a {kind}"
                f" takes {' then '.join((*takes, 'its options'))} as keywords"
                f" (its options: {names or 'none'})"
            )
        factory = spec.load_factory()
        if model is not None:
            from .config import validate_options

            if kind == "generator" and "checkpoint" not in model.model_fields:
                raise PluginRegistrationError(
                    f"generator {spec.qualified_name!r}: its options model {model.__name__} must"
                    " declare 'checkpoint: Path | None = None' (how --checkpoint reaches it)"
                )
            validated = validate_options(model, options, what=f"{kind} {spec.name!r}")
            # a factory made with ganenc.config.builds_from takes the validated model itself
            takes_model = getattr(factory, "from_options", None)
            if takes_model is not None and isinstance(validated, factory.options_model):
                return takes_model(*args, validated)
            options = {key: getattr(validated, key) for key in type(validated).model_fields}
        return factory(*args, **options)

    def find(self, kind: str, **metadata: Any) -> list[ComponentSpec]:
        """Components of ``kind`` whose metadata lists each given value.

        ``find("encoder", generators="stylegan2")`` returns the encoder builders
        that declared ``generators=(..., "stylegan2", ...)``.
        """
        found = []
        for spec in self.components(kind):
            for key, value in metadata.items():
                declared = spec.metadata.get(key)
                if isinstance(declared, str | bytes) or not isinstance(declared, Iterable):
                    declared = (declared,)
                if value not in declared:
                    break
            else:
                found.append(spec)
        return found

    def versions(self) -> dict[str, str | None]:
        """Distribution -> version of the core and of every loaded plugin."""
        result: dict[str, str | None] = {}
        for info in self.plugins.values():
            if info.status == "ok" and info.distribution:
                result[info.distribution] = info.version
        return result


def _validate_spec(spec: ComponentSpec) -> None:
    pattern = TAG_RE if spec.kind in TAGGED_KINDS else _NAME_RE
    if not isinstance(spec.name, str) or not pattern.match(spec.name):
        if spec.kind in TAGGED_KINDS:
            raise PluginRegistrationError(
                f"invalid {spec.kind} tag {spec.name!r}: use family:name, each part made of"
                " letters, digits, '_', '.', '-' (e.g. 'stylegan2:ffhq-1024')"
            )
        raise PluginRegistrationError(
            f"invalid {spec.kind} name {spec.name!r}: use letters, digits, '_', '.', '-'"
        )
    for alias in spec.aliases:
        if not isinstance(alias, str) or not pattern.match(alias):
            raise PluginRegistrationError(f"invalid alias {alias!r} for {spec.kind} {spec.name!r}")
    if not (callable(spec.factory) or _is_reference(spec.factory)):
        raise PluginRegistrationError(
            f"{spec.kind} {spec.name!r}: factory must be a callable or a 'module:attribute'"
            f" string, got {spec.factory!r}"
        )
    options = spec.options
    if options is not None and not (isinstance(options, type) or _is_reference(options)):
        raise PluginRegistrationError(
            f"{spec.kind} {spec.name!r}: options must be a pydantic model or a"
            f" 'module:attribute' string, got {options!r}"
        )
    for what, value in (("factory", spec.factory), ("options", options)):
        problem = reference_problem(value) if _is_reference(value) else None
        if problem:
            raise PluginRegistrationError(f"{spec.kind} {spec.name!r}: {what} {problem}")
    if isinstance(options, type):
        from pydantic import BaseModel

        if not issubclass(options, BaseModel):
            raise PluginRegistrationError(
                f"{spec.kind} {spec.name!r}: options {options!r} is not a pydantic model"
            )
    if not isinstance(spec.description, str):
        raise PluginRegistrationError(f"{spec.kind} {spec.name!r}: description must be a string")
    entry_tag = getattr(spec.factory, "tag", spec.name) if spec.kind == "weights" else spec.name
    if entry_tag != spec.name:
        raise PluginRegistrationError(
            f"weights entry {entry_tag!r} is registered under the tag {spec.name!r}:"
            " register each entry under its own tag"
        )


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^[\w.]+:[\w.]+$", value) is not None


def preferred(candidates: list[ComponentSpec]) -> ComponentSpec | None:
    """The one of several same-named components a bare name means: the project's, if only one is."""
    own = [spec for spec in candidates if is_project_distribution(spec.distribution)]
    return own[0] if len(own) == 1 else None


def is_project_distribution(distribution: str | None) -> bool:
    """The project's own distributions (``ganenc`` and ``ganenc-*``) keep their bare names."""
    if not distribution:
        return False
    normalized = re.sub(r"[-_.]+", "-", distribution).lower()
    return normalized == "ganenc" or normalized.startswith("ganenc-")


def reference_problem(reference: str) -> str | None:
    """Why the lazy ``"module:attribute"`` cannot work, found without importing the module.

    An imported module is asked directly; otherwise the module is located with
    :func:`importlib.util.find_spec` and its source read for top-level names, so
    listing components still imports no torch.  ``None`` when nothing is wrong (or
    the module builds its names dynamically and cannot be judged).
    """
    module_name, _, attribute = reference.partition(":")
    first = attribute.split(".")[0]
    module = sys.modules.get(module_name)
    if module is not None:
        if not hasattr(module, first):
            return f"{reference!r}: module {module_name!r} has no attribute {first!r}"
        return None
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        return f"{reference!r}: module {module_name!r} cannot be found ({short_error(exc)})"
    if found is None:
        return f"{reference!r}: no module named {module_name!r}"
    names = _top_level_names(found.origin) if found.origin else None
    if names is not None and first not in names:
        return f"{reference!r}: module {module_name!r} defines no {first!r}"
    return None


@functools.lru_cache(maxsize=256)
def _top_level_names(origin: str) -> frozenset[str] | None:
    """Names a Python source file binds at module level; ``None`` when that cannot be told."""
    if not origin.endswith(".py"):
        return None
    try:
        with open(origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=origin)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None  # importing it will give the real error
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for field_name in ("body", "orelse", "finalbody", "handlers"):
                body.extend(getattr(node, field_name, []) or [])
        elif isinstance(node, ast.ExceptHandler):
            body.extend(node.body)
    if "__getattr__" in names:
        return None
    return frozenset(names)


def hook_problems(plugin_manager: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations that pluggy would silently ignore or accept.

    A ``@hookimpl`` whose name is no ganenc hook (``register_cropers``) and a
    function named like a hook but not decorated with ``@hookimpl``.
    """
    hook_names = set(_hook_spec_names())
    problems = []
    module_name = getattr(plugin, "__name__", None) if inspect.ismodule(plugin) else None
    for name in dir(plugin):
        if name.startswith("_"):
            continue
        value = inspect.getattr_static(plugin, name, None)
        function = getattr(value, "__func__", value)
        if not inspect.isfunction(function):
            continue
        decorated = plugin_manager.parse_hookimpl_opts(plugin, name) is not None
        close = difflib.get_close_matches(name, sorted(hook_names), n=1, cutoff=0.8)
        if decorated and name not in hook_names:
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(
                f"{name} is not a ganenc hook{hint}; hooks are: {', '.join(sorted(hook_names))}"
            )
        elif not decorated and close:
            own = module_name is None or function.__module__ == module_name
            if not own or not _takes_hook_arguments(function):
                continue  # helpers, such as an imported ganenc.weights.register_entries
            if name in hook_names:
                problems.append(f"{name} is not decorated with @ganenc.hookimpl, so it never runs")
            else:
                problems.append(
                    f"{name} looks like the hook {close[0]} but is neither spelt like it nor"
                    " decorated with @ganenc.hookimpl"
                )
    return problems


def _takes_hook_arguments(function: Callable[..., Any]) -> bool:
    """Whether ``function`` has a hook's signature: ``(register)``, ``(cli)`` or ``(checkpoint)``."""
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    return names in (["register"], ["cli"], ["checkpoint"]) or (
        names[:1] == ["self"] and names[1:] in (["register"], ["cli"], ["checkpoint"])
    )


def _hook_spec_names() -> list[str]:
    """Every function of ``ganenc.hookspecs`` marked ``@hookspec`` (``identify_checkpoint`` too)."""
    return [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganenc_spec")]


def returned_value_message(hook_name: str, returned: object) -> str:
    """The error of a hook that returned something instead of calling ``register``."""
    return (
        f"{hook_name} returned a {type(returned).__name__} instead of calling"
        f" register(...) for each component; nothing it returned is registered"
    )


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (``None``: reload on next use); returns the old one."""
    global _registry
    previous, _registry = _registry, registry
    return previous


def create(kind: str, name: str, /, *args: Any, **options: Any) -> Any:
    """Build a registered component, e.g. ``ganenc.create("cropper", "center", at1_margin_x=0.2)``."""
    return get_registry().create(kind, name, *args, **options)
