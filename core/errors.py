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
