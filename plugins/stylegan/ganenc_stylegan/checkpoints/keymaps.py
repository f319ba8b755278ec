"""The parameter-name maps between our StyleGAN2 and each checkpoint layout, and their use.

A map ("plan") lists one :class:`KeyMap` per tensor: our key, the layout's key
and the transforms between the two conventions.  Differences handled here:
genforce stores the modulation ("style") bias without the +1 that rosinality
and NVIDIA bake in, and stores the upsampling convolution weights flipped (TF
convention) where the others store them ready for ``conv_transpose2d``;
rosinality and NVIDIA keep extra batch dimensions on some tensors.

:func:`load_with_plan` builds a model from a layout's state dict through its
plan (every entry checked), :func:`external_state` writes one.  The shape
helpers at the end are shared by the layout modules' architecture inference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ganenc.checkpoints import build_checked
from ganenc.errors import CheckpointError, ConfigError

from ..stylegan2 import StyleGAN2Config, StyleGAN2Generator, fir_kernel

# ----------------------------------------------------------------------------------------
# Plans: one entry per tensor, with the transforms between the two conventions.


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class KeyMap:
    """One external checkpoint key and the internal key it becomes."""

    internal: str
    external: str
    to_internal: Callable[[torch.Tensor], torch.Tensor] = _identity
    to_external: Callable[[torch.Tensor], torch.Tensor] = _identity


def _blocks(config: StyleGAN2Config) -> Iterator[tuple[int, str, list[int]]]:
    """(block index, internal prefix, [conv indices in the flat 0..num_ws-2 numbering])."""
    for b, _res in enumerate(config.resolutions):
        flat = [0] if b == 0 else [2 * b - 1, 2 * b]
        yield b, f"synthesis.blocks.{b}", flat


def _mapping_plan(config: StyleGAN2Config, layer: Callable[[int], str]) -> list[KeyMap]:
    """The mapping network's weights and biases; ``layer(i)`` names the layout's i-th layer."""
    return [
        KeyMap(f"mapping.layers.{i}.{name}", f"{layer(i)}.{name}")
        for i in range(config.mapping_layers)
        for name in ("weight", "bias")
    ]


def _rosinality_modulated_conv(ours: str, theirs: str) -> list[KeyMap]:
    """A modulated convolution's weight (rosinality's has a batch dimension) and affine."""
    return [
        KeyMap(f"{ours}.weight", f"{theirs}.weight", lambda x: x[0], lambda x: x[None]),
        KeyMap(f"{ours}.affine.weight", f"{theirs}.modulation.weight"),
        KeyMap(f"{ours}.affine.bias", f"{theirs}.modulation.bias"),
    ]


def rosinality_plan(config: StyleGAN2Config) -> list[KeyMap]:
    """Internal <-> rosinality ``Generator`` state-dict keys."""
    plan = _mapping_plan(config, lambda i: f"style.{i + 1}")
    plan.append(KeyMap("synthesis.const", "input.input"))
    for b, prefix, flat in _blocks(config):
        for j, k in enumerate(flat):
            conv = "conv1" if b == 0 else f"convs.{k - 1}"
            inner = f"{prefix}.convs.{j}"
            plan += [
                *_rosinality_modulated_conv(f"{inner}.conv", f"{conv}.conv"),
                KeyMap(
                    f"{inner}.noise_strength",
                    f"{conv}.noise.weight",
                    lambda x: x.reshape(()),
                    lambda x: x.reshape(1),
                ),
                KeyMap(f"{inner}.bias", f"{conv}.activate.bias"),
                KeyMap(f"{inner}.noise", f"noises.noise_{k}"),
            ]
        rgb = "to_rgb1" if b == 0 else f"to_rgbs.{b - 1}"
        plan += [
            *_rosinality_modulated_conv(f"{prefix}.to_rgb.conv", f"{rgb}.conv"),
            KeyMap(
                f"{prefix}.to_rgb.bias",
                f"{rgb}.bias",
                lambda x: x.reshape(-1),
                lambda x: x.reshape(1, -1, 1, 1),
            ),
        ]
    return plan


def rosinality_kernels(config: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The FIR kernel buffers a rosinality state dict carries (fixed values)."""
    kernel = fir_kernel(config.blur_kernel, 4.0)
    kernels = {}
    for b in range(1, len(config.resolutions)):
        kernels[f"convs.{2 * (b - 1)}.conv.blur.kernel"] = kernel.clone()
        kernels[f"to_rgbs.{b - 1}.upsample.kernel"] = kernel.clone()
    return kernels


def _plus_one(x: torch.Tensor) -> torch.Tensor:
    return x + 1.0


def _minus_one(x: torch.Tensor) -> torch.Tensor:
    return x - 1.0


def _flip(x: torch.Tensor) -> torch.Tensor:
    return x.flip([2, 3])


def genforce_plan(config: StyleGAN2Config) -> list[KeyMap]:
    """Internal <-> genforce ``StyleGAN2Generator`` state-dict keys."""
    plan = _mapping_plan(config, lambda i: f"mapping.dense{i}")
    plan.append(KeyMap("w_avg", "truncation.w_avg"))
    plan.append(KeyMap("synthesis.const", "synthesis.early_layer.const"))
    for b, prefix, flat in _blocks(config):
        for j, k in enumerate(flat):
            layer = f"synthesis.layer{k}"
            inner = f"{prefix}.convs.{j}"
            upsample = b > 0 and j == 0
            plan += [
                KeyMap(
                    f"{inner}.conv.weight",
                    f"{layer}.weight",
                    _flip if upsample else _identity,
                    _flip if upsample else _identity,
                ),
                KeyMap(f"{inner}.conv.affine.weight", f"{layer}.style.weight"),
                KeyMap(f"{inner}.conv.affine.bias", f"{layer}.style.bias", _plus_one, _minus_one),
                KeyMap(f"{inner}.noise_strength", f"{layer}.noise_strength"),
                KeyMap(f"{inner}.bias", f"{layer}.bias"),
                KeyMap(f"{inner}.noise", f"{layer}.noise"),
            ]
        out = f"synthesis.output{b}"
        plan += [
            KeyMap(f"{prefix}.to_rgb.conv.weight", f"{out}.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.weight", f"{out}.style.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.bias", f"{out}.style.bias", _plus_one, _minus_one),
            KeyMap(f"{prefix}.to_rgb.bias", f"{out}.bias"),
        ]
    return plan


def genforce_kernels(config: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The FIR kernel buffers a genforce state dict carries (fixed values)."""
    kernel = fir_kernel(config.blur_kernel, 4.0).flip([0, 1])[None, None]
    kernels = {}
    for b in range(1, len(config.resolutions)):
        kernels[f"synthesis.layer{2 * b - 1}.filter.kernel"] = kernel.clone()
    if len(config.resolutions) > 1:
        kernels["synthesis.upsample.kernel"] = kernel.clone()
    return kernels


def nvidia_stylegan2_plan(config: StyleGAN2Config) -> list[KeyMap]:
    """Internal <-> NVIDIA ``Generator`` (networks.py / networks_stylegan2.py) state-dict keys.

    Same math as ours: the affine bias carries its +1, the upsampling weight is
    the one ``conv_transpose2d`` uses, ``noise_const`` is ``[r, r]``.
    """
    plan = _mapping_plan(config, lambda i: f"mapping.fc{i}")
    plan.append(KeyMap("w_avg", "mapping.w_avg"))
    plan.append(KeyMap("synthesis.const", "synthesis.b4.const", _add_batch, _drop_batch))
    for b, res in enumerate(config.resolutions):
        prefix = f"synthesis.blocks.{b}"
        block = f"synthesis.b{res}"
        convs = ["conv1"] if b == 0 else ["conv0", "conv1"]
        for j, conv in enumerate(convs):
            inner = f"{prefix}.convs.{j}"
            plan += [
                KeyMap(f"{inner}.conv.weight", f"{block}.{conv}.weight"),
                KeyMap(f"{inner}.conv.affine.weight", f"{block}.{conv}.affine.weight"),
                KeyMap(f"{inner}.conv.affine.bias", f"{block}.{conv}.affine.bias"),
                KeyMap(f"{inner}.noise_strength", f"{block}.{conv}.noise_strength"),
                KeyMap(f"{inner}.bias", f"{block}.{conv}.bias"),
                KeyMap(f"{inner}.noise", f"{block}.{conv}.noise_const", _add_two, _drop_two),
            ]
        plan += [
            KeyMap(f"{prefix}.to_rgb.conv.weight", f"{block}.torgb.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.weight", f"{block}.torgb.affine.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.bias", f"{block}.torgb.affine.bias"),
            KeyMap(f"{prefix}.to_rgb.bias", f"{block}.torgb.bias"),
        ]
    return plan


def _add_batch(x: torch.Tensor) -> torch.Tensor:
    return x[None]


def _drop_batch(x: torch.Tensor) -> torch.Tensor:
    return x[0]


def _add_two(x: torch.Tensor) -> torch.Tensor:
    return x[None, None]


def _drop_two(x: torch.Tensor) -> torch.Tensor:
    return x[0, 0]


def nvidia_stylegan2_filters(config: StyleGAN2Config) -> dict[str, torch.Tensor]:
    """The ``resample_filter`` buffers of an NVIDIA StyleGAN2 state dict (fixed values)."""
    kernel = fir_kernel(config.blur_kernel)
    filters = {}
    for b, res in enumerate(config.resolutions):
        block = f"synthesis.b{res}"
        filters[f"{block}.resample_filter"] = kernel.clone()
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            filters[f"{block}.{conv}.resample_filter"] = kernel.clone()
    return filters


# ----------------------------------------------------------------------------------------
# State dict <-> model through a plan.


def load_with_plan(
    config: StyleGAN2Config,
    state: Mapping[str, Any],
    plan: list[KeyMap],
    kernels: dict[str, torch.Tensor],
    where: str,
) -> StyleGAN2Generator:
    """Our generator from a layout's ``state``: every entry mapped, shape-checked, none left over."""
    model = build_checked(lambda: StyleGAN2Generator(config), where)
    target = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for entry in plan:
        if entry.external not in state:
            raise CheckpointError(f"{where}: missing entry {entry.external!r}")
        value = state[entry.external]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise CheckpointError(f"{where}: entry {entry.external!r} is not a float tensor")
        tensor = entry.to_internal(value.detach().to(torch.float32))
        expected = tuple(target[entry.internal].shape)
        if tuple(tensor.shape) != expected:
            raise CheckpointError(
                f"{where}: entry {entry.external!r} has shape {list(value.shape)}, which does not"
                f" fit the architecture inferred from the file (expected {list(expected)} here)"
            )
        converted[entry.internal] = tensor
    for key, kernel in kernels.items():
        value = state.get(key)
        if not isinstance(value, torch.Tensor) or value.shape != kernel.shape:
            raise CheckpointError(f"{where}: missing or malformed filter entry {key!r}")
        if not torch.allclose(value.to(torch.float32), kernel, atol=1e-6):
            raise CheckpointError(
                f"{where}: {key!r} is not the (1, 3, 3, 1) filter of config F; other filters"
                " are not supported"
            )
    known = {entry.external for entry in plan} | set(kernels)
    unexpected = sorted(set(state) - known)
    if unexpected:
        raise CheckpointError(
            f"{where}: unexpected entries {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''};"
            " the layout is not a StyleGAN2 config-F generator this loader knows"
        )
    if "w_avg" not in converted:
        converted["w_avg"] = target["w_avg"]
    model.load_state_dict(converted, strict=True)
    return model.eval()


def external_state(
    model: StyleGAN2Generator, plan: list[KeyMap], kernels: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The model's tensors under a layout's key names (``kernels`` added as they are)."""
    internal = model.state_dict()
    state = {
        e.external: e.to_external(internal[e.internal].detach().cpu()).contiguous() for e in plan
    }
    state.update(kernels)
    return state


# ----------------------------------------------------------------------------------------
# Shape inference helpers shared by the layouts.


def count_entries(state: Mapping[str, Any], pattern: Callable[[int], str], start: int = 0) -> int:
    """How many consecutive ``pattern(i)`` keys, from ``i = start``, ``state`` holds."""
    n = 0
    while pattern(start + n) in state:
        n += 1
    return n


def entry_shape(
    state: Mapping[str, Any], key: str, where: str, min_dims: int = 1
) -> tuple[int, ...]:
    """The shape of tensor ``key`` (at least ``min_dims`` long, so its sizes can be read), or a
    clear error when it is missing, no tensor, or has too few dimensions."""
    if key not in state:
        raise CheckpointError(
            f"{where}: missing entry {key!r}; the file is not a complete generator"
        )
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
    if value.dim() < min_dims:
        raise CheckpointError(
            f"{where}: entry {key!r} has shape {list(value.shape)}, expected at least"
            f" {min_dims} dimensions; the file is damaged or not such a generator"
        )
    return tuple(value.shape)


def resolution_from_levels(levels: int, where: str) -> int:
    """The output resolution of a skip generator with ``levels`` ToRGB layers."""
    if levels < 1:
        raise CheckpointError(f"{where}: no ToRGB layers found; not a StyleGAN2 skip generator")
    return 2 ** (levels + 1)


def channels_by_level(
    state: Mapping[str, Any],
    levels: int,
    const_key: str,
    conv_key: Callable[[int], str],
    out_axis: int,
    where: str,
) -> dict[int, int]:
    """Channels per resolution: the constant's, then the first conv's output of each level."""
    channels = {4: entry_shape(state, const_key, where, min_dims=2)[1]}
    for b in range(1, levels):
        channels[2 ** (b + 2)] = entry_shape(state, conv_key(b), where, out_axis + 1)[out_axis]
    return channels


def config_from_shapes(
    where: str,
    first: tuple[int, ...],
    last: tuple[int, ...],
    mapping_layers: int,
    resolution: int,
    channels: dict[int, int],
    **extra: Any,
) -> StyleGAN2Config:
    """The architecture from the shapes of the first and last mapping weights and the channels
    per resolution; an unsupported one is reported as the file's fault."""
    try:
        return StyleGAN2Config(
            resolution=resolution,
            z_dim=first[1],
            w_dim=last[0],
            mapping_layers=mapping_layers,
            mapping_hidden=first[0] if mapping_layers > 1 else None,
            channels=channels,
            **extra,
        )
    except ConfigError as exc:
        raise CheckpointError(f"{where}: unsupported architecture ({exc})") from None
