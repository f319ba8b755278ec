"""The ``ganenc`` command line.

Start-up imports neither torch nor any network code: commands import what
they need when they run.  Plugins add commands through the
``register_commands`` hook; a plugin whose hook fails is reported by
``ganenc list`` / ``ganenc plugins`` and never breaks the others.
"""

from __future__ import annotations

import errno
import json
import os
import traceback
import warnings
from typing import Any

import click

from ganenc import __version__
from ganenc.config import flag_from_environment
from ganenc.errors import GanencError, PluginLoadError, PluginRegistrationError, first_line
from ganenc.registry import (
    ENTRY_POINT_GROUP,
    KINDS,
    PluginInfo,
    get_registry,
    is_project_distribution,
    plugin_code,
    preferred,
    short_error,
    strict_plugins,
)

from .options import print_table

#: The yes/no environment variables (``ganenc.config.flag_from_environment`` reads each).
ENVIRONMENT_SWITCHES = ("GANENC_OFFLINE", "GANENC_TRACEBACK", "GANENC_STRICT_PLUGINS")


class GanencGroup(click.Group):
    """Adds plugin commands lazily; turns every error of a command into a one-line message.

    :class:`GanencError` and operating-system errors are the user's to fix and say how; any
    other exception is a bug, reported with the file its traceback was written to.
    """

    def plugin_commands(self) -> dict[str, click.Command]:
        registry = get_registry()
        registry.plugin_infos()  # component hooks first: a plugin failing there adds no command
        # kept on the registry itself (a dead registry's id may be a new one's), per generation
        # (a plugin added or removed: collect again)
        cache = vars(registry).setdefault("_cli_commands", {})
        key = registry.generation
        if key not in cache:
            commands = _collect_plugin_commands(registry, set(self.commands))
            # a plugin failing here left the component table (a new generation): same commands
            cache[key] = cache[registry.generation] = commands
        return cache[key]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self.plugin_commands().get(cmd_name)

    def make_context(self, info_name: str | None, args: list[str], *more: Any, **extra: Any):
        for name in ENVIRONMENT_SWITCHES:  # a typo in one is said before anything runs
            try:
                flag_from_environment(name)
            except GanencError as exc:
                raise click.ClickException(str(exc)) from None
        return super().make_context(info_name, args, *more, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        show_traceback = wants_traceback(ctx)
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C (SIGTERM in a training run): never "Aborted!"
            click.echo(str(exc) or "interrupted", err=True)  # a run's own says how to resume
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - every error becomes one line, never swallowed
            if _broken_pipe(exc):
                stop_writing_stdout()
                ctx.exit(EXIT_BROKEN_PIPE)
            if show_traceback:
                click.echo(traceback.format_exc().rstrip(), err=True)
            command = self.get_command(ctx, ctx.invoked_subcommand or "")
            owner = getattr(command, "ganenc_plugin", None)  # a plugin's command: its bug
            raise click.ClickException(describe_error(exc, owner)) from None


#: Exit statuses of a stop from outside, as a shell reports a process its signal ended
#: (128 + the signal): Ctrl-C (SIGINT; SIGTERM stops a training run the same way), and a
#: reader of the output that went away (SIGPIPE: ``ganenc list --json | head -1``).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


def stop_writing_stdout() -> None:
    """The reader of standard output is gone: send what is left to the null device, so that
    neither a later write nor Python's flush at exit reports the closed pipe."""
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's stream)
        pass


def describe_error(exc: Exception, owner: Any = None) -> str:
    """The one line a command's error is shown as.

    :class:`GanencError` says what to fix; an operating-system error (a full disk, a read-only
    folder) names the file and a hint; running out of memory says what to lower; anything
    else is a bug, reported with the file its traceback was written to, and to whom: ``owner``
    is the :class:`~ganenc.registry.PluginInfo` of the plugin whose command failed.
    """
    if isinstance(exc, GanencError):
        return str(exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if _out_of_memory(exc):
        return (
            "out of memory; use a smaller --batch-size or resolution (or smaller sizes in the"
            " component options), or a larger machine"
        )
    return report_unexpected(exc, owner)


def _out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or torch's (CUDA ``OutOfMemoryError``, a failed CPU allocation)."""
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))
    )


#: What to do about an operating-system error, by errno.
_OS_ERROR_HINTS = {
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free space or write elsewhere",
    errno.EACCES: "no permission; choose a writable place (--out, or GANENC_HOME for the cache)",
    errno.EPERM: "no permission; choose a writable place (--out, or GANENC_HOME for the cache)",
    errno.EROFS: "a read-only file system; choose a writable place (--out, or GANENC_HOME)",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EISDIR: "a folder stands where a file is expected",
}


def describe_os_error(exc: OSError) -> str:
    """One line: what failed on which file, and what to do."""
    names = " -> ".join(str(n) for n in (exc.filename, exc.filename2) if n is not None)
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_ERROR_HINTS.get(exc.errno or 0)
    return f"{what}" + (f": {names}" if names else "") + (f" ({hint})" if hint else "")


def report_unexpected(exc: BaseException, owner: Any = None) -> str:
    """Write the traceback of a bug to a file; return one line that says where.

    A traceback is for the developers, not the user: the file keeps every detail for a bug
    report while the terminal shows what happened.
    """
    import tempfile

    summary = f"{type(exc).__name__}: {first_line(exc, empty='')}".rstrip(": ")
    text = "".join(traceback.format_exception(exc))
    try:
        handle, name = tempfile.mkstemp(prefix="ganenc-error-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError:
        where = (
            "the traceback could not be written to a file; rerun with --traceback for a bug report"
        )
    else:
        where = f"attach {name} (its full traceback) to a bug report"
    if owner is not None:  # a plugin's command: its authors can fix it, not ganenc's
        made_by = " ".join(str(part) for part in (owner.distribution, owner.version) if part)
        return (
            f"unexpected error in a command of plugin {owner.name!r}"
            f"{f' ({made_by})' if made_by else ''}: {summary[:300]}; {where}"
            f" to {owner.distribution or 'its authors'}"
        )
    url = issue_url()
    return f"unexpected error ({summary[:300]}); {where}" + (f" at {url}" if url else "")


def issue_url(distribution: str = "ganenc") -> str | None:
    """Where bugs are reported: the ``Issues`` (or ``Bug Tracker``) URL of ``[project.urls]``."""
    from importlib import metadata

    try:
        entries = metadata.metadata(distribution).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower().replace(" ", "") in {"issues", "bugtracker", "bugs"}:
            return url.strip() or None
    return None


def wants_traceback(ctx: click.Context | None = None) -> bool:
    """``ganenc --traceback`` or ``GANENC_TRACEBACK=1``: show where an error came from."""
    if flag_from_environment("GANENC_TRACEBACK"):
        return True
    root = ctx.find_root() if ctx is not None else click.get_current_context(silent=True)
    return bool(root is not None and root.find_root().meta.get("ganenc.traceback"))


def _remember_traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["ganenc.traceback"] = True


def _collect_plugin_commands(registry: Any, builtin: set[str]) -> dict[str, click.Command]:
    """Each plugin adds commands to its own collector; a failing plugin is recorded.

    Names are settled after every plugin has spoken, so load order decides nothing: a
    built-in command's name is never a plugin's; of plugins claiming one name, the project's
    own (``ganenc-*``) keeps it and the others fail naming it; two others both fail.
    """
    claims: dict[str, list[Any]] = {}
    added: dict[str, dict[str, click.Command]] = {}
    for impl in registry.plugin_manager.hook.register_commands.get_hookimpls():
        collector = click.Group()
        info = registry.plugins.get(impl.plugin_name)
        if info is not None and info.status != "ok":  # failed in another hook: nothing of it
            continue
        try:
            with plugin_code():
                returned = impl.function(cli=collector)
            if returned is not None:
                raise PluginRegistrationError(
                    f"register_commands returned a {type(returned).__name__} instead of"
                    " adding commands to cli; nothing it returned is registered"
                )
            odd = [n for n, c in collector.commands.items() if not isinstance(c, click.Command)]
            if odd:
                raise PluginRegistrationError(
                    f"register_commands added {', '.join(map(repr, odd))}, which is not a"
                    " click command (decorate it with @cli.command())"
                )
            taken = sorted(set(collector.commands) & builtin)
            if taken:
                raise GanencError(f"command name(s) of ganenc itself: {', '.join(taken)}")
        # SystemExit too: a plugin's sys.exit() must not end every command
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the plugin's fault, shown by 'list'
            _command_plugin_failed(registry, impl.plugin_name, info, exc)
            continue
        added[impl.plugin_name] = collector.commands
        for name in collector.commands:
            claims.setdefault(name, []).append(info or impl.plugin_name)
    for name, owners in claims.items():
        if len(owners) < 2:
            continue
        own = [o for o in owners if is_project_distribution(getattr(o, "distribution", None))]
        keeper = own[0] if len(own) == 1 else None
        for owner in owners:
            if owner is keeper:
                continue
            others = " and ".join(_plugin_label(o) for o in owners if o is not owner)
            plugin_name = getattr(owner, "name", owner)
            added.pop(plugin_name, None)
            _command_plugin_failed(
                registry,
                plugin_name,
                owner if isinstance(owner, PluginInfo) else None,
                GanencError(f"command name {name!r} is also {others}'s"),
            )
    commands: dict[str, click.Command] = {}
    for plugin_name, plugin_commands in added.items():
        for command in plugin_commands.values():
            command.ganenc_plugin = registry.plugins.get(plugin_name)  # whose bug, if it fails
        commands.update(plugin_commands)
    return commands


def _plugin_label(owner: Any) -> str:
    if isinstance(owner, PluginInfo):
        return f"plugin {owner.name!r} ({owner.distribution or 'not installed'})"
    return f"plugin {owner!r}"


def _command_plugin_failed(registry: Any, name: str, info: Any, exc: BaseException) -> None:
    """Mark the plugin failed, its components gone too: a plugin is wholly in or out."""
    if info is not None:
        info.status = "failed"
        info.error = f"register_commands: {short_error(exc)}"
        info.traceback = "".join(traceback.format_exception(exc))
        registry.refresh()
    if strict_plugins():
        raise PluginLoadError(f"plugin {name!r} failed: {short_error(exc)}") from exc


def _installed_versions() -> list[tuple[str, str]]:
    """Core and plugin distributions, from metadata only (no plugin import)."""
    import importlib_metadata

    found = {("ganenc", __version__)}
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            found.add((ep.dist.name, ep.dist.version))
    return sorted(found, key=lambda item: (item[0] != "ganenc", item[0]))


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, version in _installed_versions():
        click.echo(f"{name} {version}")
    ctx.exit()


@click.group(cls=GanencGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of ganenc and its plugins and exit.",
)
@click.option(
    "--traceback",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_remember_traceback,
    help="On an error, print its traceback too (or set GANENC_TRACEBACK=1).",
)
def cli() -> None:
    """ganenc: train encoders that invert pretrained GAN generators."""


@cli.command("list")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only components of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(kind: str | None, as_json: bool) -> None:
    """List registered components and plugins that failed to load."""
    registry = get_registry()
    cli.plugin_commands()  # a plugin whose command hook fails is listed as failed too
    rows = []
    hidden = 0
    for spec in registry.components(kind):
        if kind is None and spec.kind == "weights":
            hidden += 1  # dozens of tags: shown with --kind weights or 'ganenc weights list'
            continue
        row = spec.as_dict()
        conflicts = registry.conflicts(spec)
        if conflicts:
            row["conflicts_with"] = [other.qualified_name for other in conflicts]
            row["bare_name"] = preferred([spec, *conflicts]) is spec
        rows.append(row)
    for info in registry.plugin_infos():
        if info.status == "failed":
            rows.append(
                {
                    "name": info.name,
                    "kind": None,
                    "plugin": info.name,
                    "distribution": info.distribution,
                    "version": info.version,
                    "description": f"plugin failed to load ({info.module})",
                    "aliases": [],
                    "status": "failed",
                    "error": info.error,
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.text import Text

    cells = []
    for row in rows:  # plugins' text as written: Text cells are never read as markup
        name = row["name"] + (f" ({', '.join(row['aliases'])})" if row["aliases"] else "")
        dist = f"{row['distribution'] or '-'} {row['version'] or ''}".strip()
        if row["status"] == "failed":
            status = Text.assemble(("failed", "red"), f": {row['error']}")
        elif "conflicts_with" in row:
            shared = ", ".join(row["conflicts_with"])
            if row["bare_name"]:
                status = Text(f"ok, the bare name is this one (also {shared})", "yellow")
            else:
                status = Text(
                    f"ok as {row['plugin']}:{row['name']} (name shared with {shared})", "yellow"
                )
        else:
            status = Text("ok", "green")
        cells.append((name, row["kind"] or "-", row["plugin"], dist, row["description"], status))
    print_table(
        "ganenc components",
        # a narrow terminal drops the plugin, distribution and description, never splits a name
        [
            ("name", 0, True),
            ("kind", 0, True),
            ("plugin", 110, False),
            ("distribution", 130, False),
            ("description", 80, False),
            ("status", 0, False),
        ],
        cells,
        caption=f"{hidden} weights tags: ganenc list --kind weights" if hidden else None,
    )


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show tracebacks of failures.")
@click.option(
    "--check",
    "check",
    metavar="NAME",
    help="Import every component of plugin NAME (or distribution) and run its contract checks.",
)
def plugins_command(as_json: bool, show_traceback: bool, check: str | None) -> None:
    """List installed plugins with their distribution, version and status."""
    registry = get_registry()
    cli.plugin_commands()
    if check is not None:
        _check_plugin(registry, check, show_traceback)
        return
    infos = registry.plugin_infos()
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    from rich.text import Text

    cells = []
    for info in infos:
        status = {"ok": Text("ok", "green"), "disabled": Text("disabled", "dim")}.get(
            info.status
        ) or Text.assemble(("failed", "red"), f": {info.error}")
        cells.append(
            (info.name, info.module, info.distribution or "-", info.version or "-", status)
        )
    console = print_table(
        "ganenc plugins",
        [
            ("plugin", 0, True),
            ("module", 100, False),
            ("distribution", 70, False),
            ("version", 70, True),
            ("status", 0, False),
        ],
        cells,
    )
    if show_traceback:
        for info in infos:
            if info.traceback:
                console.print(Text.assemble((info.name, "bold"), "\n", info.traceback))


def _check_plugin(registry: Any, plugin: str, show_traceback: bool) -> None:
    """One line per component: its contract check passed, or why not; exit 1 on a failure."""
    from ganenc.features import RandomFeatureWeightsWarning
    from ganenc.testing import check_component, find_plugin, plugin_components

    specs = plugin_components(plugin, registry)
    name = find_plugin(plugin, registry).name
    commands = {
        command_name: command
        for command_name, command in cli.plugin_commands().items()
        if getattr(getattr(command, "ganenc_plugin", None), "name", None) == name
    }
    if not specs and not commands:
        raise click.ClickException(f"plugin {plugin!r} registers no components and no commands")
    broken = 0
    for command_name, command in sorted(commands.items()):  # its --help renders: click accepts it
        try:
            with click.Context(command, info_name=f"ganenc {command_name}") as ctx:
                command.get_help(ctx)
        except Exception as exc:  # noqa: BLE001 - a broken command is the report, not a crash
            broken += 1
            click.echo(f"FAIL  command {command_name}: {type(exc).__name__}: {first_line(exc)}")
            continue
        click.echo(f"ok    command {command_name}: its --help renders")
    if not specs:
        if broken:
            raise SystemExit(1)
        return
    failed = 0
    for spec in specs:
        label = f"{spec.kind} {spec.qualified_name}"
        try:
            with warnings.catch_warnings():  # each warning is logged already; say it once
                warnings.simplefilter("ignore", RandomFeatureWeightsWarning)
                checked = check_component(spec, registry)
        except Exception as exc:  # noqa: BLE001 - a broken component is the report, not a crash
            failed += 1
            reason = first_line(exc, empty="")
            click.echo(f"FAIL  {label}: {type(exc).__name__}: {reason}".rstrip(": "))
            if show_traceback:
                click.echo("".join(traceback.format_exception(exc)), err=True)
            continue
        click.echo(f"ok    {label}: {checked}")
    click.echo(f"{len(specs) - failed} of {len(specs)} component(s) passed")
    if failed or broken:
        raise SystemExit(1)


def _add_builtin_commands() -> None:
    from .directions import directions_command
    from .edit import edit_command
    from .evaluate import eval_command
    from .finetune import finetune_command
    from .invert import invert_command
    from .sample import sample_command
    from .train import train_command
    from .weights import weights_group

    cli.add_command(sample_command)
    cli.add_command(train_command)
    cli.add_command(finetune_command)
    cli.add_command(invert_command)
    cli.add_command(directions_command)
    cli.add_command(edit_command)
    cli.add_command(eval_command)
    cli.add_command(weights_group)
    try:
        from .crop_preview import crop_preview_command
    except ImportError:  # pragma: no cover - arrives with the cropper work
        pass
    else:
        cli.add_command(crop_preview_command)


_add_builtin_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ganenc`` script."""
    # the random-feature-weights warning is logged as one line already; Python's copy of it
    # would repeat it with a source line (matched by text: importing it would load torch)
    warnings.filterwarnings("ignore", message=".* uses RANDOM feature weights")
    try:
        cli.main(args=argv, prog_name="ganenc")
    finally:  # output still buffered meets a closed pipe only here: quiet too
        import sys

        try:
            sys.stdout.flush()
        except BrokenPipeError:
            stop_writing_stdout()
            raise SystemExit(EXIT_BROKEN_PIPE) from None


if __name__ == "__main__":  # pragma: no cover
    main()
