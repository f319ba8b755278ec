"""What components hand back, checked where the engine uses it.

A plugin's generator, encoder, cropper or loss term that breaks its kind's
contract (images of the wrong size or scale, latents without their keys, boxes
outside the image, a loss that is not a scalar) is reported as a
:class:`~ganenc.errors.PluginContractError` that names the component and its
plugin, not as a ganenc bug.  ``ganenc.testing``'s ``check_*`` use the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .data import pixel_scale_problem
from .errors import PluginContractError


def owner(component: Any) -> str | None:
    """The plugin that registered ``component``'s class, else whose package defines it."""
    from .registry import get_registry

    registry = get_registry()
    cls = type(component)
    for spec in registry.components():
        if spec.factory is cls or spec.factory == f"{cls.__module__}:{cls.__qualname__}":
            return spec.plugin
    package = cls.__module__.partition(".")[0]
    for info in registry.plugins.values():
        if info.module.partition(":")[0].partition(".")[0] == package:
            return info.name
    return None


def contract_error(kind: str, component: Any, problem: str) -> PluginContractError:
    """``<kind> <Class> of plugin 'x' broke its contract: <problem>; check it with ...``."""
    plugin = owner(component)
    where = f" of plugin {plugin!r}" if plugin else ""
    check = f"; check it with 'ganenc plugins --check {plugin}'" if plugin else ""
    return PluginContractError(
        f"{kind} {type(component).__name__}{where} broke its contract: {problem}{check}"
    )


def check_images(generator: Any, images: Any, batch: int, *, values: bool = True) -> None:
    """``synthesize`` gave ``[batch, C, R, R]`` floats (``values``: finite, about [-1, 1])."""
    import torch

    geometry = generator.geometry()
    expected = (batch, geometry.image_channels, geometry.resolution, geometry.resolution)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise contract_error(
            "generator", generator, f"synthesize returned {_describe(images)}, not float images"
        )
    if tuple(images.shape) != expected:
        raise contract_error(
            "generator",
            generator,
            f"synthesize returned images of shape {list(images.shape)}; its geometry()"
            f" says {list(expected)}",
        )
    if not values:
        return
    detached = images.detach()
    if not bool(torch.isfinite(detached).all()):
        raise contract_error("generator", generator, "synthesize returned NaN or infinite values")
    problem = pixel_scale_problem(detached)
    if problem:
        raise contract_error("generator", generator, f"its images have {problem}")


def check_latents(encoder: Any, latents: Any, geometry: Any, batch: int) -> None:
    """An encoder gave one ``[batch, *shape]`` tensor per key of ``geometry.encoder_latents``."""
    if not isinstance(latents, Mapping):
        raise contract_error(
            "encoder", encoder, f"it returned {_describe(latents)}, not a dict of latents"
        )
    wanted = geometry.encoder_latents
    if set(latents) != set(wanted):
        raise contract_error(
            "encoder",
            encoder,
            f"it returned the latents {sorted(latents)}; the generator wants {sorted(wanted)}",
        )
    for key, shape in wanted.items():
        got = tuple(getattr(latents[key], "shape", ()))
        if got != (batch, *shape):
            raise contract_error(
                "encoder",
                encoder,
                f"latent {key!r} has shape {list(got)}; the generator wants {[batch, *shape]}",
            )


def check_loss_value(term: Any, name: str, value: Any) -> None:
    """A loss term gave a scalar tensor (NaN is the training loop's to report, with the step)."""
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise contract_error(
            "loss",
            term,
            f"term {name!r} returned {_describe(value)}; a loss term returns a scalar tensor"
            " (reduce it, e.g. .mean())",
        )


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {list(shape)}"
    return f"a {type(value).__name__}"
