"""Shared command-line plumbing: ``--config`` files, ``KEY=VALUE`` options, settings.

One spelling per idea in every command: ``-O/--option`` generator options,
``--encoder-option``, ``--crop-option`` and ``--loss-option`` the encoder's,
cropper's and composite loss's.  Older spellings stay accepted as hidden aliases.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import click

from ganenc.config import MAX_SEED, SettingsError, resolve_settings
from ganenc.errors import ConfigError


class FiniteFloat(click.FloatRange):
    """A number option: finite (click's float takes ``inf`` and ``nan``), within a range if given."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        # click would show "[x<=None]" for a number without bounds
        return "" if self.min is None and self.max is None else super()._describe_range()


#: A seed option: a whole number in [0, MAX_SEED] (what numpy and torch take).
SEED = click.IntRange(0, MAX_SEED)


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


def given_options(*names: str) -> list[str]:
    """The options among ``names`` (parameter names) that the user gave, as spelled (``--lr``).

    What a command does not use in the mode it runs in is refused with these
    names, rather than silently ignored: a default is not "given".
    """
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name in names else None
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given.append(max(param.opts, key=len))
    return given


class Device(click.ParamType):
    """A ``--device`` name: one torch does not know is a usage error (exit 2).

    A device this machine lacks (``cuda`` without a GPU) is the command's runtime error.
    """

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import torch

        from ganenc.devices import resolve_device

        try:
            if value != "auto":
                torch.device(value)
        except (RuntimeError, TypeError):
            try:
                resolve_device(value)  # says what a device name is
            except ConfigError as exc:
                self.fail(str(exc), param, ctx)
        return value  # the name: settings record "auto", not the device it meant here


#: Every command's ``--device``.
DEVICE = Device()


class Strengths(click.ParamType):
    """``-3,0,3``: finite, distinct strengths along a direction (``ganenc edit``)."""

    name = "numbers"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ganenc.editing import parse_strengths

        try:
            return parse_strengths(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


STRENGTHS = Strengths()


def device_option(default: str = "auto"):
    """``--device`` of a command without a settings model: one spelling and help everywhere."""
    return click.option(
        "--device",
        type=DEVICE,
        default=default,
        show_default=True,
        help="auto (CUDA when available), cpu, cuda or cuda:N.",
    )


def parse_key_values(
    pairs: tuple[str, ...], what: str = "--option", *, names: bool = False
) -> dict[str, Any]:
    """``("channel_max=32", "blur=true")`` -> ``{"channel_max": 32, "blur": True}`` (YAML scalars).

    Keys are option names, where ``-`` means ``_`` (``channel-max``); with ``names`` they
    are component names (``--loss-term acme-l2=1``), kept as written.
    """
    import yaml

    from ganenc.config import load_yaml

    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} expects KEY=VALUE, got {pair!r}")
        key = key.strip() if names else key.strip().replace("-", "_")
        try:
            result[key] = load_yaml(value)
        except yaml.YAMLError:
            result[key] = value
    return result


logger = logging.getLogger("ganenc.cli")


def key_value_option(
    *flags: str,
    dest: str,
    help: str,
    aliases: tuple[str, ...] = (),
    deprecated: str | None = None,
) -> Callable:
    """A repeatable ``KEY=VALUE`` option; ``aliases`` are hidden old spellings of it.

    The values of the aliases join the option's own (``dest`` receives them all).
    With ``deprecated``, using an alias logs that message once.
    """

    def decorate(function: Callable) -> Callable:
        alias_dest = f"{dest}__aliases"

        @functools.wraps(function)
        def command(*args: Any, **kwargs: Any) -> Any:
            old = tuple(kwargs.pop(alias_dest, ()) or ())
            if old and deprecated:
                logger.warning(deprecated)
            kwargs[dest] = tuple(kwargs.get(dest) or ()) + old
            return function(*args, **kwargs)

        if aliases:
            command = click.option(*aliases, alias_dest, multiple=True, hidden=True)(command)
        return click.option(*flags, dest, multiple=True, metavar="KEY=VALUE", help=help)(command)

    return decorate


#: The four kinds of component options, spelt the same in every command.
generator_option = functools.partial(
    key_value_option,
    "-O",
    "--option",
    dest="gen_options",
    aliases=("--gen-option",),
)
encoder_option = functools.partial(key_value_option, "--encoder-option", dest="encoder_options")
crop_option = functools.partial(key_value_option, "--crop-option", dest="crop_options")
loss_option = functools.partial(
    key_value_option,
    "--loss-option",
    dest="loss_options",
    help="Composite loss setting, e.g. --loss-option attention_strategy=1 or"
    " --loss-option 'image_terms={mse: 1, lpips: 1}' (repeatable; see docs/hooks.md).",
)


def loss_settings(loss_options: tuple[str, ...], feature_weights: str | None) -> dict | None:
    """The ``loss`` settings given on the command line (``None``: none given)."""
    loss = parse_key_values(loss_options, "--loss-option")
    if feature_weights is not None:
        loss["feature_weights"] = feature_weights
    return loss or None


def given_run_options(
    given: dict[str, Any],
    gen_options: tuple[str, ...],
    crop_options: tuple[str, ...],
    lr: float | None,
    loss_options: tuple[str, ...],
    feature_weights: str | None,
) -> None:
    """Put the generator, cropper, optimizer and loss options of a run command into ``given``.

    ``train`` and ``finetune`` take these the same way, so they are parsed here once.
    """
    given["generator_options"] = parse_key_values(gen_options, "-O/--option") or None
    given["cropper_options"] = parse_key_values(crop_options, "--crop-option") or None
    given["optimizer"] = {"lr": lr} if lr is not None else None
    given["loss"] = loss_settings(loss_options, feature_weights)


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


def step_options(model: type, *, iterations: str, batch_size: str, lr: str):
    """``--iterations``, ``--batch-size``, ``--lr``; each help's ``{}`` is ``model``'s default."""
    options = [
        click.option(
            "--iterations", type=int, help=iterations.format(default_of(model, "iterations"))
        ),
        click.option(
            "--batch-size", type=int, help=batch_size.format(default_of(model, "batch_size"))
        ),
        click.option("--lr", type=FiniteFloat(), help=lr.format(default_of(model, "optimizer.lr"))),
    ]

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def run_options(model: type, command: str):
    """Options of a run directory shared by ``train`` and ``finetune``: device, out, intervals.

    ``model`` is the command's settings model (help texts quote its defaults);
    ``command`` names the default run directory.
    """
    options = [
        click.option(
            "--feature-weights",
            help="VGG16 weights file for LPIPS/Grad-CAM, or 'random' (warns).",
        ),
        click.option(
            "--device",
            type=DEVICE,
            help=f"auto, cpu or cuda (default {default_of(model, 'device')}).",
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16", "fp16"]),
            help="Mixed precision (CUDA).",
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False),
            help=f"Run directory (default runs/{command}-GAN-TIME).",
        ),
        click.option("--checkpoint-every", type=int, help="Save a checkpoint every N steps."),
        click.option("--image-every", type=int, help="Save an image grid every N steps."),
        click.option("--log-every", type=int, help="Append to metrics.jsonl every N steps."),
        click.option(
            "--resume",
            is_flag=True,
            default=None,
            help="Continue the run in --out from its last checkpoint.",
        ),
        click.option(
            "--no-progress", "progress", flag_value=False, default=None, help="No progress bar."
        ),
    ]

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML, TOML or JSON file of settings; command-line options override it.",
)


def settings_from_cli(model: type, config_file: str | None, what: str, **given: Any):
    """Resolve a settings model from defaults, ``--config`` and the options actually given."""
    with usage_errors(given, other_source=config_file is not None):
        return resolve_settings(model, config_file, given, what=what)


def _given_at(given: dict[str, Any], location: tuple) -> bool:
    """Whether the value at ``location`` (or a whole setting holding it) came from ``given``."""
    node: Any = given
    for depth, part in enumerate(location):
        if not isinstance(node, dict) or node.get(part) is None:
            return depth > 0 and not isinstance(node, dict)
        node = node[part]
    return True


@contextlib.contextmanager
def usage_errors(given: dict[str, Any], *, other_source: bool) -> Iterator[None]:
    """Invalid settings that all come from command-line options are a usage error (exit 2).

    A value the ``--config`` file (or a resumed run) holds stays a :class:`ConfigError`
    (exit 1): the file is what to fix.  ``other_source``: settings came from one as well.
    """
    try:
        yield
    except SettingsError as exc:
        flags = [_given_at(given, location) for location, _, _ in exc.problems]
        if other_source and not all(flags):
            raise
        if len(exc.problems) == 1:  # click's own words: "Invalid value for '--batch-size'"
            (head, *rest), value, reason = exc.problems[0]
            ctx = click.get_current_context(silent=True)
            params = {p.name: p for p in ctx.command.params} if ctx is not None else {}
            if not rest and head in params and reason != "Field required":
                raise click.BadParameter(f"{value!r}: {reason}", ctx, params[head]) from None
        raise click.UsageError(str(exc)) from None


def run_settings(model: type, config_file: str | None, what: str, given: dict[str, Any]):
    """Settings of a training-like command: from defaults/file/options, or the run on --resume.

    ``resume`` and ``out`` may come from the ``--config`` file as well: a resume asked for
    there is checked like one asked for on the command line.
    """
    from ganenc.config import read_config_file
    from ganenc.training.runs import changeable_on_resume, resume_settings, stored_config

    if config_file is not None and not (given.get("resume") and given.get("out")):
        from_file = read_config_file(config_file)
        given = dict(given)
        given["resume"] = given.get("resume") or from_file.get("resume") is True
        if given["resume"] and not given.get("out") and from_file.get("out"):
            given["out"] = from_file["out"]
    if not given.get("resume"):
        return settings_from_cli(model, config_file, what, **given)
    if not given.get("out"):
        raise click.UsageError("--resume needs --out RUN_DIR (or out: in the --config file)")
    given = {key: value for key, value in given.items() if value is not None}
    stored = stored_config(given["out"])
    with usage_errors(given, other_source=True):
        return resume_settings(model, stored, given, changeable_on_resume(stored), config_file)


def table_console():
    """A rich console for tables; wide when the output is a pipe or a file, so rows stay whole."""
    from rich.console import Console

    class TableConsole(Console):
        def on_broken_pipe(self) -> None:  # rich would exit 1 itself: the command line says
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    console = TableConsole()
    return console if console.is_terminal else TableConsole(width=220)


#: A column of :func:`print_table`: its header, the narrowest terminal that still shows it
#: (0: always shown), and whether its cells stay on one line (names: never split mid-word).
TableColumn = tuple[str, int, bool]


def print_table(
    title: str, columns: list[TableColumn], rows: list[tuple], caption: str | None = None
):
    """Print ``rows`` (one cell per column: text or rich ``Text``) on :func:`table_console`.

    Cells are never read as rich markup (a plugin's error text is shown as written).  On a
    narrow terminal the less important columns are left out rather than every column
    folded to a few letters a line; returns the console, for more output after the table.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    console = table_console()
    shown = [i for i, (_, narrowest, _) in enumerate(columns) if console.width >= narrowest]
    narrow = console.width < 60  # no frame: its columns of lines take a sixth of 40
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    table.show_edge = table.pad_edge = not narrow
    table.collapse_padding = narrow
    for i in shown:
        header, _, whole = columns[i]
        # a header is a word, never folded ("status", not "s/t/a/t/u/s")
        table.add_column(
            header,
            no_wrap=whole,
            overflow="ellipsis" if whole else "fold",
            min_width=min(len(header), 8),
        )
    for row in rows:
        table.add_row(
            *(c if isinstance(c, Text) else Text(str(c)) for c in (row[i] for i in shown))
        )
    console.print(table)
    return console
