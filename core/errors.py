"""Exceptions with messages meant for the person at the terminal.

The command line prints a :class:`GanencError` as one line, without a traceback.
"""

from __future__ import annotations


class GanencError(Exception):
    """Base class: something the user can fix, with a message that says how."""


class ConfigError(GanencError, ValueError):
    """Invalid settings or component options (names the field and the value)."""


class PluginLoadError(GanencError):
    """A plugin could not be imported or registered."""


class PluginRegistrationError(PluginLoadError):
    """A plugin registered an invalid component."""


class UnknownComponentError(GanencError, KeyError):
    """No component of that kind and name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ComponentConflictError(GanencError):
    """Two plugins registered the same component name; use ``plugin:name``."""


class CheckpointError(GanencError):
    """A checkpoint file is missing, corrupt, or of another format or family."""


class WeightsNotFoundError(GanencError, FileNotFoundError):
    """Pretrained weights are missing: the message names the file and where to put it."""


class ImageReadError(GanencError):
    """A user image is missing, not in an allowed format, too large, or damaged."""


class PluginContractError(GanencError):
    """A component handed back what its kind's contract forbids (names it and its plugin)."""


def first_line(message: object, empty: str | None = None) -> str:
    """The first line of an exception's (or any) message; ``empty``, else its type's name, if none.

    Libraries' messages run over several lines (torch's, urllib's); a user sees one.
    """
    text = str(message).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(message).__name__ if empty is None else empty


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run that can continue: the message says what is kept and how.

    Still a :class:`KeyboardInterrupt`, so code that catches :class:`GanencError` (a sweep
    trying other settings) does not swallow Ctrl-C; the command line prints the message
    and exits 130, as for every interrupted command.
    """


def run_interrupted(kept: str, command: str) -> RunInterrupted:
    """``interrupted<kept>. Continue with:`` and the command on a line of its own."""
    return RunInterrupted(f"interrupted{kept}. Continue with:\n  ganenc {command}")
