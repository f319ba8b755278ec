"""Helpers for plugin authors (and for ganenc's own tests).

- :func:`isolated_registry`: a registry that loads no entry points, installed as
  the process-wide registry for the duration of a ``with`` block;
- :func:`register_plugin`: register a plugin object for the duration of one test;
- ``check_generator`` / ``check_encoder`` / ``check_cropper`` / ``check_loss``:
  contract checks for each component kind (a tiny CPU forward pass, output
  shapes, determinism in eval mode).  They raise ``AssertionError`` with a
  message that says which part of the contract is broken;
- :func:`contract_tests`: a pytest test running the right check on every
  component a plugin registers (``ganenc plugins --check NAME`` runs the same).

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

from ..contracts import check_images, check_latents, check_loss_value
from ..registry import Registry, get_registry, set_registry

__all__ = [
    "check_component",
    "check_cropper",
    "check_encoder",
    "check_generator",
    "check_loss",
    "contract_tests",
    "isolated_registry",
    "plugin_components",
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


@contextlib.contextmanager
def _as_assertion() -> Iterator[None]:
    """The engine's run-time contract checks, raised as these helpers' ``AssertionError``."""
    from ..errors import PluginContractError

    try:
        yield
    except PluginContractError as exc:
        raise AssertionError(str(exc)) from None


def _assert_close(a: Any, b: Any, what: str) -> None:
    torch = _torch()
    assert torch.equal(a, b) or torch.allclose(a, b, atol=1e-6, rtol=1e-5), (
        f"{what} is not deterministic in eval mode (max diff {(a - b).abs().max().item():.3g})"
    )


def check_generator(generator: Any, batch: int = 2) -> None:
    """A generator adapter: what training depends on.

    Latents reproducible from a seed; ``synthesize`` deterministic in eval mode
    with fixed noise, whatever the global random state; images whose size and
    channels are those of ``geometry()``; ``encoder_targets`` in the shapes of
    ``geometry().encoder_latents`` that synthesise the same images, also with
    truncation (psi < 1, and ``truncation_layers`` where the family has layers).
    """
    torch = _torch()
    from ..adapters import GeneratorAdapter

    assert isinstance(generator, GeneratorAdapter), "generator must subclass GeneratorAdapter"
    assert generator.family, "generator.family must be set to its registered name"
    geometry = generator.geometry()
    assert geometry.family == generator.family, "geometry().family differs from family"
    assert geometry.resolution == generator.resolution, (
        f"geometry().resolution is {geometry.resolution}, the adapter's resolution is"
        f" {generator.resolution}"
    )
    generator.eval()
    latents = generator.sample_latents(batch, seed=0)
    again = generator.sample_latents(batch, seed=0)
    for key in latents:
        assert torch.equal(latents[key], again[key]), f"sample_latents({key!r}) ignores its seed"
    with torch.no_grad():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            images = generator.synthesize(latents, noise_mode="const")
            torch.manual_seed(2)  # fixed noise must not come from the global random state
            repeated = generator.synthesize(latents, noise_mode="const")
        with _as_assertion():  # shape, finite, in [-1, 1] roughly
            check_images(generator, images, batch)
        assert images.dtype == torch.float32, f"synthesize returned {images.dtype}"
        _assert_close(images, repeated, "synthesize with noise_mode='const'")
        targets = generator.encoder_targets(latents)
        assert set(targets) == set(geometry.encoder_latents), (
            f"encoder_targets returned keys {sorted(targets)}; geometry().encoder_latents names"
            f" {sorted(geometry.encoder_latents)}"
        )
        for key, shape in geometry.encoder_latents.items():
            assert tuple(targets[key].shape) == (batch, *shape), (
                f"encoder_targets[{key!r}] has shape {tuple(targets[key].shape)},"
                f" geometry says {(batch, *shape)}"
            )
        _assert_close(generator.synthesize(targets), images, "synthesize(encoder_targets(...))")
        _check_truncation(generator, latents, images)


def _check_truncation(generator: Any, latents: Any, untruncated: Any) -> None:
    """Targets made with truncation synthesise the truncated images (what pre-training uses)."""
    torch = _torch()
    settings: list[dict[str, Any]] = [{"truncation": 0.5}]
    try:
        generator.synthesize(latents, truncation=0.5, truncation_layers=1)
    except (ValueError, NotImplementedError):
        pass  # a family without per-layer truncation (BigGAN) refuses it, which is fine
    else:
        settings.append({"truncation": 0.5, "truncation_layers": 1})
    for truncation in settings:
        images = generator.synthesize(latents, **truncation)
        # (one truncated layer may change nothing: StyleGAN3's first w only moves its input grid)
        assert "truncation_layers" in truncation or not torch.allclose(
            images, untruncated, atol=1e-6
        ), f"synthesize ignores truncation: {truncation} gives the untruncated images"
        targets = generator.encoder_targets(latents, **truncation)
        options = generator.synthesis_options(**truncation)
        recon = generator.synthesize(targets, **options)
        difference = (recon - images).abs().max().item()
        assert torch.allclose(recon, images, atol=1e-5, rtol=1e-4), (
            f"encoder_targets ignores truncation: synthesize(encoder_targets(latents, {truncation}),"
            f" **synthesis_options(...)) differs from synthesize(latents, {truncation}) by up to"
            f" {difference:.3g}"
        )


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
        with _as_assertion():
            check_latents(encoder, out, geometry, batch)
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
    from ..cropping import attention_boxes

    with _as_assertion():  # [N, 4] integers, inside, not empty
        levels = attention_boxes(cropper, images)
    assert levels, "boxes() must return a non-empty list"
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
    with _as_assertion():
        check_loss_value(loss, type(loss).__name__, value)
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
    assert float(same.detach()) <= float(value.detach()) + 1e-6, (
        "loss of identical inputs exceeds that of different ones"
    )


# -- every component of a plugin -------------------------------------------------------------
def find_plugin(plugin: str, registry: Registry | None = None) -> Any:
    """The loaded :class:`~ganenc.registry.PluginInfo` of ``plugin`` (entry-point or
    distribution name), or a clear error for an unknown or failed one."""
    from ..errors import GanencError

    registry = registry or get_registry()
    infos = registry.plugin_infos()  # a plugin whose hooks fail is reported, not empty
    info = registry.plugins.get(plugin)
    if info is None:
        matches = [p for p in infos if p.distribution == plugin]
        info = matches[0] if len(matches) == 1 else None
    if info is None:
        known = ", ".join(sorted(registry.plugins)) or "none"
        raise GanencError(f"no plugin or distribution named {plugin!r}; plugins: {known}")
    if info.status != "ok":
        raise GanencError(f"plugin {info.name!r} is {info.status}: {info.error or 'not loaded'}")
    return info


def plugin_components(plugin: str, registry: Registry | None = None) -> list[Any]:
    """The components registered by ``plugin`` (an entry-point or a distribution name)."""
    registry = registry or get_registry()
    info = find_plugin(plugin, registry)
    return [spec for spec in registry.components() if spec.plugin == info.name]


def check_component(spec: Any, registry: Registry | None = None) -> str:
    """Import a registered component's factory and options model, build it small, check it.

    A component is built with its default options updated by the
    ``check_options`` it registered (``register(..., check_options={...})``:
    a small, fast configuration); generators are built without a checkpoint
    (random weights).  Encoders are checked against a generator they serve.
    Returns what was checked; raises ``AssertionError`` (or the component's
    own error) when something is wrong.
    """
    registry = registry or get_registry()
    spec.load_factory()
    model = spec.load_options_model()
    if model is not None:
        _check_defaults(model, f"the default options of {spec.kind} {spec.qualified_name!r}")
    options = dict(spec.metadata.get("check_options") or {})
    name = spec.qualified_name
    if spec.kind == "generator":
        check_generator(registry.create("generator", name, checkpoint=None, **options))
        return "generator contract"
    if spec.kind == "encoder":
        generator = _generator_for(spec, registry)
        from ..encoders import build_encoder

        check_encoder(build_encoder(generator, name=name, **options), generator)
        return f"encoder contract with generator {generator.family!r}"
    if spec.kind == "cropper":
        check_cropper(registry.create("cropper", name, **options))
        return "cropper contract"
    if spec.kind == "loss":
        check_loss(registry.create("loss", name, **options))
        return "loss contract"
    if spec.kind == "weights":
        from ..weights import WeightsEntry

        entry = spec.load_factory()
        assert isinstance(entry, WeightsEntry), (
            f"weights {spec.name!r}: factory is a {type(entry).__name__}, not a WeightsEntry"
        )
        assert entry.tag == spec.name, f"weights entry tag {entry.tag!r} differs from {spec.name!r}"
        return "weights entry"
    return "imports"


def _check_defaults(model: Any, what: str) -> None:
    """An options model must accept its own defaults (pydantic does not check them unasked)."""
    from ..config import validate_options

    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if not field.is_required()
    }
    validate_options(model, defaults, what)


def _generator_for(spec: Any, registry: Registry) -> Any:
    """A small generator of a family the encoder builder serves."""
    families = spec.metadata.get("generators") or ()
    families = (families,) if isinstance(families, str) else tuple(families)
    for family in families:
        try:
            generator_spec = registry.get("generator", family)
        except Exception:  # noqa: BLE001 - not installed, or ambiguous: try the next
            continue
        options = dict(generator_spec.metadata.get("check_options") or {})
        generator = registry.create(
            "generator", generator_spec.qualified_name, checkpoint=None, **options
        )
        return generator.eval()
    raise AssertionError(
        f"encoder {spec.name!r}: none of the generators it serves ({', '.join(families) or 'none'})"
        " is installed; declare register(..., generators=(...))"
    )


def contract_tests(plugin: str) -> Any:
    """A pytest test that checks every component ``plugin`` registers, one test per component.

    ``plugin`` is an entry-point or a distribution name.  A plugin's whole test::

        from ganenc.testing import contract_tests
        test_contracts = contract_tests("my-ganenc-plugin")
    """
    import pytest

    registry = get_registry()
    try:
        specs = plugin_components(plugin, registry)
    except Exception as exc:  # noqa: BLE001 - reported as the test's failure
        error = exc

        def test_plugin_loads() -> None:
            raise AssertionError(str(error))

        return test_plugin_loads
    if not specs:  # a test that fails, not an assertion at collection (which stops pytest)

        def test_plugin_has_components() -> None:
            raise AssertionError(
                f"plugin {plugin!r} registers no components (check its commands with"
                f" 'ganenc plugins --check {plugin}')"
            )

        return test_plugin_has_components

    @pytest.mark.parametrize("spec", specs, ids=[f"{s.kind}:{s.name}" for s in specs])
    def test_component_contract(spec: Any) -> None:
        check_component(spec)

    return test_component_contract
