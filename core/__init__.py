"""ganenc: turn a pretrained GAN generator into an auto-encoder.

The public API is imported lazily so that ``import ganenc`` (and the command
line's start-up) stays free of torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CheckpointError,
    ComponentConflictError,
    ConfigError,
    GanencError,
    ImageReadError,
    PluginLoadError,
    UnknownComponentError,
    WeightsNotFoundError,
)
from .hookspecs import hookimpl
from .registry import create, get_registry

if TYPE_CHECKING:
    from .adapters import GeneratorAdapter

__all__ = [
    "__version__",
    "CheckpointError",
    "ComponentConflictError",
    "ConfigError",
    "GanencError",
    "ImageReadError",
    "PluginLoadError",
    "UnknownComponentError",
    "WeightsNotFoundError",
    "build_encoder",
    "create",
    "get_registry",
    "hookimpl",
    "invert",
    "Inverter",
    "load_encoder",
    "load_generator",
    "save_encoder",
]


def load_generator(name: str, checkpoint: Any = None, **config: Any) -> GeneratorAdapter:
    """Load a generator of family ``name`` from ``checkpoint`` (``None``: random weights).

    ``ganenc.load_generator("stylegan2", "ffhq.pt")`` infers the architecture
    from the file; ``ganenc.load_generator("stylegan2", resolution=64)`` builds a
    randomly initialised one.  ``checkpoint`` may also be a weights tag
    (``"stylegan2:ffhq-1024"``, see ``ganenc weights list``): the file is
    downloaded into the cache once, verified, and its architecture checked.
    A tag alone names its family too: ``ganenc.load_generator("stylegan2:emoji-64")``.
    """
    from .weights.entries import is_tag
    from .weights.resolve import generator_family

    entry = None
    if checkpoint is None and is_tag(name):
        name, checkpoint = generator_family(name), name
    if isinstance(checkpoint, str):
        from .weights import check_architecture, resolve_checkpoint_entry

        checkpoint, entry = resolve_checkpoint_entry(name, checkpoint)
    registry = get_registry()
    generator = registry.create("generator", name, checkpoint=checkpoint, **config)
    model = registry.get("generator", name).load_options_model()
    if checkpoint is not None and model is not None:
        from .config import contradicted_random_only

        problems = contradicted_random_only(model, config, generator)
        if problems:
            from .errors import ConfigError

            raise ConfigError(
                f"generator {name!r}: the checkpoint gives the architecture, and these options"
                f" disagree with it: {', '.join(problems)}; drop them, or use random weights"
                " (--checkpoint random, checkpoint=None in Python) if they are meant"
            )
    from .geometry import check_resolution

    check_resolution(generator.geometry().resolution, f"generator {name!r}")
    if entry is not None:
        check_architecture(generator, entry, checkpoint)
    return generator


def __getattr__(name: str) -> Any:
    if name in {"build_encoder", "save_encoder", "load_encoder"}:
        from . import encoders

        return getattr(encoders, name)
    if name in {"invert", "Inverter"}:
        from . import inversion

        return getattr(inversion, name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # ganenc.weights.fetch(...) works
    raise AttributeError(f"module 'ganenc' has no attribute {name!r}")


def __dir__() -> list[str]:
    """What ``__getattr__`` serves as well (the lazy names and submodules), for completion."""
    submodules = {info.name for info in pkgutil.iter_modules(__path__)}
    return sorted(
        {*globals(), *__all__, *(name for name in submodules if not name.startswith("_"))}
    )
