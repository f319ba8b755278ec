"""The engine's built-in plugin: its own components, registered through the same hooks."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def register_losses(register):
    """Built-in loss terms (see :mod:`ganenc.losses`)."""
    from .losses.catalog import register_builtin_losses

    register_builtin_losses(register)


@hookimpl
def register_weights(register):
    """Feature networks as weights tags: ``features:vgg16``, ``features:inception-fid``, ...

    The only registry of feature networks: :mod:`ganenc.features` looks them up here.
    """
    from .features import builtin_weights_entries
    from .weights import register_entries

    register_entries(register, builtin_weights_entries())
