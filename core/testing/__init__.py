"""Helpers for plugin authors (and for ganenc's own tests).

- :func:`isolated_registry`: a registry that loads no entry points, installed as
  the process-wide registry for the duration of a ``with`` block;
- :func:`register_plugin`: register a plugin object for the duration of one test;
- ``check_generator`` / ``check_encoder`` / ``check_cropper`` / ``check_loss``:
  contract checks for each component kind (a tiny CPU forward pass, output
  shapes, determinism in eval mode).  They raise ``AssertionError`` with a
  message that says which part of the contract is broken.

Example (pytest)::

    from ganenc import hookimpl
    from ganenc.testing import check_cropper, register_plugin

    class MyPlugin:
        @hookimpl
        def register_croppers(self, register):
            register("mine", MyCropper)

    def test_my_cropper():
        with register_plugin(MyPlugin()):
            check_cropper(ganenc.create("cropper", "mine"))
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

from ..registry import Registry, get_registry, set_registry

__all__ = [
    "check_cropper",
    "check_encoder",
    "check_generator",
    "check_loss",
    "isolated_registry",
    "register_plugin",
]

_counter = itertools.count()


@contextlib.contextmanager
def isolated_registry(*, builtins: bool = True) -> Iterator[Registry]:
    """A fresh registry with no entry-point plugins, process-wide inside the block."""
    registry = Registry(entry_points=False, builtins=builtins)
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)


@contextlib.contextmanager
def register_plugin(
    plugin: object,
    name: str | None = None,
    *,
    distribution: str | None = "test-plugin",
    version: str | None = "0",
    registry: Registry | None = None,
) -> Iterator[Registry]:
    """Register ``plugin`` (a module or object with hook implementations) for one block."""
    registry = registry or get_registry()
    name = name or f"test-plugin-{next(_counter)}"
    registry.add_plugin(plugin, name=name, distribution=distribution, version=version)
    try:
        yield registry
    finally:
        registry.remove_plugin(name)


def _torch():
    import torch

    return torch


def _assert_close(a: Any, b: Any, what: str) -> None:
    torch = _torch()
    assert torch.equal(a, b) or torch.allclose(a, b, atol=1e-6, rtol=1e-5), (
        f"{what} is not deterministic in eval mode (max diff {(a - b).abs().max().item():.3g})"
    )


def check_generator(generator: Any, batch: int = 2) -> None:
    """A generator adapter: latents from the prior, shapes, targets round trip, determinism."""
    torch = _torch()
    from ..adapters import GeneratorAdapter

    assert isinstance(generator, GeneratorAdapter), "generator must subclass GeneratorAdapter"
    assert generator.family, "generator.family must be set to its registered name"
    geometry = generator.geometry()
    assert geometry.family == generator.family, "geometry().family differs from family"
    generator.eval()
    latents = generator.sample_latents(batch, seed=0)
    again = generator.sample_latents(batch, seed=0)
    for key in latents:
        assert torch.equal(latents[key], again[key]), f"sample_latents({key!r}) ignores its seed"
    with torch.no_grad():
        images = generator.synthesize(latents)
        r = generator.resolution
        assert tuple(images.shape) == (batch, 3, r, r), (
            f"synthesize returned {tuple(images.shape)}, expected {(batch, 3, r, r)}"
        )
        assert images.dtype == torch.float32, f"synthesize returned {images.dtype}"
        assert torch.isfinite(images).all(), "synthesize returned non-finite values"
        _assert_close(images, generator.synthesize(latents), "synthesize")
        targets = generator.encoder_targets(latents)
        for key, shape in geometry.encoder_latents.items():
            assert key in targets, f"encoder_targets lacks {key!r} named in geometry"
            assert tuple(targets[key].shape) == (batch, *shape), (
                f"encoder_targets[{key!r}] has shape {tuple(targets[key].shape)},"
                f" geometry says {(batch, *shape)}"
            )
        _assert_close(generator.synthesize(targets), images, "synthesize(encoder_targets(...))")


def check_encoder(encoder: Any, generator: Any, batch: int = 2) -> None:
    """An encoder: output keys/shapes match the geometry, it feeds the generator, eval determinism."""
    torch = _torch()
    geometry = generator.geometry()
    r = geometry.resolution
    images = torch.rand(
        batch, geometry.image_channels, r, r, generator=torch.Generator().manual_seed(0)
    )
    images = images * 2 - 1
    encoder.eval()
    with torch.no_grad():
        out = encoder(images)
        assert isinstance(out, dict), f"encoder returned {type(out).__name__}, expected a dict"
        assert set(out) == set(geometry.encoder_latents), (
            f"encoder returned keys {sorted(out)}, geometry wants {sorted(geometry.encoder_latents)}"
        )
        for key, shape in geometry.encoder_latents.items():
            assert tuple(out[key].shape) == (batch, *shape), (
                f"encoder output {key!r} has shape {tuple(out[key].shape)}, expected {(batch, *shape)}"
            )
        again = encoder(images)
        for key in out:
            _assert_close(out[key], again[key], f"encoder output {key!r}")
        recon = generator.synthesize(out)
        assert tuple(recon.shape) == (batch, 3, r, r), "encoder output does not feed the generator"


def check_cropper(cropper: Any, resolution: int = 64, batch: int = 2) -> None:
    """A cropper: one [N,4] integer box tensor per level, inside the image, non-empty."""
    torch = _torch()
    images = torch.rand(
        batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)
    )
    images = images * 2 - 1
    levels = cropper.boxes(images)
    assert isinstance(levels, list | tuple) and levels, "boxes() must return a non-empty list"
    for level, boxes in enumerate(levels):
        assert tuple(boxes.shape) == (batch, 4), f"level {level}: boxes shape {tuple(boxes.shape)}"
        assert not boxes.is_floating_point(), f"level {level}: boxes must be integer tensors"
        x0, y0, x1, y1 = boxes.unbind(1)
        assert bool(((x0 >= 0) & (y0 >= 0)).all()), f"level {level}: box starts outside the image"
        assert bool(((x1 <= resolution) & (y1 <= resolution)).all()), (
            f"level {level}: box ends outside"
        )
        assert bool(((x1 > x0) & (y1 > y0)).all()), f"level {level}: empty box"
    again = cropper.boxes(images)
    for level, (a, b) in enumerate(zip(levels, again, strict=True)):
        assert torch.equal(a, b), f"level {level}: boxes are not deterministic"


def check_loss(loss: Any, shape: tuple[int, ...] = (2, 3, 32, 32)) -> None:
    """A loss term: a finite scalar, zero-ish on identical inputs, gradients reach the prediction."""
    torch = _torch()
    source = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=source) * 2 - 1
    prediction = (torch.rand(shape, generator=source) * 2 - 1).requires_grad_(True)
    value = loss(prediction, target)
    assert value.dim() == 0, f"loss returned shape {tuple(value.shape)}, expected a scalar"
    assert torch.isfinite(value), "loss is not finite"
    try:
        value.backward()
    except RuntimeError as exc:
        raise AssertionError(
            f"no gradient reaches the prediction (detached loss?): {exc}"
        ) from None
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0, (
        "no gradient reaches the prediction (detached loss?)"
    )
    same = loss(target.clone(), target)
    assert float(same) <= float(value) + 1e-6, (
        "loss of identical inputs exceeds that of different ones"
    )
