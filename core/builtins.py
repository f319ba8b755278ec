"""The engine's built-in plugin: its own components, registered through the same hooks."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def register_losses(register):
    """Built-in loss terms (see :mod:`ganenc.losses`)."""
    from .losses.catalog import register_builtin_losses

    register_builtin_losses(register)
