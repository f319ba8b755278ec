"""Reading and writing StyleGAN checkpoints: the architecture comes from the tensor shapes.

Recognised files (all read with ``torch.load(weights_only=True)`` through
:func:`ganenc.checkpoints.read_checkpoint`):

- rosinality/stylegan2-pytorch ``.pt``: ``{"g_ema": state_dict, "latent_avg": [w_dim]}``
  (``convert_weight.py``), or a ``train.py`` checkpoint ``{"g", "d", "g_ema",
  "g_optim", "d_optim", "args": argparse.Namespace, "ada_aug_p"}`` without
  ``latent_avg`` (``argparse.Namespace`` is the one class allowed beyond tensors);
- genforce ``.pth`` for StyleGAN2 and StyleGAN1: ``{"generator_smooth": sd}``
  else ``{"generator": sd}`` (zoo files), or the training runner's
  ``{"models": {...}}``; the average w is ``truncation.w_avg``;
- a bare state dict of either layout, or of NVIDIA's StyleGAN2 layout (what
  ``ganenc convert --to nvidia-state-dict`` writes);
- NVIDIA's network pickles (``.pkl`` of stylegan2-ada-pytorch and stylegan3),
  read by the restricted unpickler of :mod:`ganenc_stylegan.nvidia`, never by
  ``torch.load``/``pickle.load``.

Format differences handled here: genforce stores the modulation ("style")
bias without the +1 that rosinality bakes in, and stores the upsampling
convolution weights flipped (TF convention) where rosinality stores them ready
for ``conv_transpose2d``.

A file without an average latent gets one estimated from the mapping network
(:func:`ensure_w_avg`: mean of ``mapping(z)`` over 10,000 z from a fixed seed),
computed once and kept in the model's ``w_avg`` buffer.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganenc.checkpoints import build_checked, describe_checkpoint, read_checkpoint
from ganenc.checkpoints import identify_checkpoint as identify_family
from ganenc.errors import CheckpointError, ConfigError

from .stylegan2 import StyleGAN2Config, StyleGAN2Generator, fir_kernel

#: Families this module tells apart, with the ``--gan`` name that loads each.
FAMILY_NAMES = {"stylegan2": "StyleGAN2", "stylegan1": "StyleGAN1", "stylegan3": "StyleGAN3"}
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0x5747  # fixed: the estimate is the same on every run

# ----------------------------------------------------------------------------------------
# Key plans: one entry per tensor, with the transforms between the two conventions.


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


def rosinality_plan(config: StyleGAN2Config) -> list[KeyMap]:
    """Internal <-> rosinality ``Generator`` state-dict keys."""
    plan = []
    for i in range(config.mapping_layers):
        for name in ("weight", "bias"):
            plan.append(KeyMap(f"mapping.layers.{i}.{name}", f"style.{i + 1}.{name}"))
    plan.append(KeyMap("synthesis.const", "input.input"))
    for b, prefix, flat in _blocks(config):
        for j, k in enumerate(flat):
            conv = "conv1" if b == 0 else f"convs.{k - 1}"
            inner = f"{prefix}.convs.{j}"
            plan += [
                KeyMap(
                    f"{inner}.conv.weight",
                    f"{conv}.conv.weight",
                    lambda x: x[0],
                    lambda x: x[None],
                ),
                KeyMap(f"{inner}.conv.affine.weight", f"{conv}.conv.modulation.weight"),
                KeyMap(f"{inner}.conv.affine.bias", f"{conv}.conv.modulation.bias"),
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
            KeyMap(
                f"{prefix}.to_rgb.conv.weight",
                f"{rgb}.conv.weight",
                lambda x: x[0],
                lambda x: x[None],
            ),
            KeyMap(f"{prefix}.to_rgb.conv.affine.weight", f"{rgb}.conv.modulation.weight"),
            KeyMap(f"{prefix}.to_rgb.conv.affine.bias", f"{rgb}.conv.modulation.bias"),
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
    plan = []
    for i in range(config.mapping_layers):
        for name in ("weight", "bias"):
            plan.append(KeyMap(f"mapping.layers.{i}.{name}", f"mapping.dense{i}.{name}"))
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


# ----------------------------------------------------------------------------------------
# Shape inference.


def _count(state: Mapping[str, Any], pattern: Callable[[int], str], start: int = 0) -> int:
    n = 0
    while pattern(start + n) in state:
        n += 1
    return n


def _shape(state: Mapping[str, Any], key: str, where: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(
            f"{where}: missing entry {key!r}; the file is not a complete generator"
        )
    value = state[key]
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
    return tuple(value.shape)


def _resolution_from_levels(levels: int, where: str) -> int:
    if levels < 1:
        raise CheckpointError(f"{where}: no ToRGB layers found; not a StyleGAN2 skip generator")
    return 2 ** (levels + 1)


def infer_rosinality_config(state: Mapping[str, Any], where: str = "checkpoint") -> StyleGAN2Config:
    """The architecture of a rosinality ``Generator`` state dict, from its shapes."""
    mapping_layers = _count(state, lambda i: f"style.{i}.weight", start=1)
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('style.1.weight') found")
    first = _shape(state, "style.1.weight", where)
    last = _shape(state, f"style.{mapping_layers}.weight", where)
    levels = 1 + _count(state, lambda i: f"to_rgbs.{i}.conv.weight")
    resolution = _resolution_from_levels(levels, where)
    channels = {4: _shape(state, "input.input", where)[1]}
    for b in range(1, levels):
        channels[2 ** (b + 2)] = _shape(state, f"convs.{2 * (b - 1)}.conv.weight", where)[1]
    return _make_config(
        where,
        resolution=resolution,
        z_dim=first[1],
        w_dim=last[0],
        mapping_layers=mapping_layers,
        mapping_hidden=first[0] if mapping_layers > 1 else None,
        channels=channels,
    )


def infer_genforce_config(state: Mapping[str, Any], where: str = "checkpoint") -> StyleGAN2Config:
    """The architecture of a genforce ``StyleGAN2Generator`` state dict, from its shapes."""
    if "mapping.label_weight" in state:
        raise CheckpointError(
            f"{where}: conditional (label) StyleGAN2 generators are not supported"
        )
    if "synthesis.early_layer.weight" in state:
        raise CheckpointError(f"{where}: StyleGAN2 without a constant input is not supported")
    if any(".skip_layer" in key or key.startswith("synthesis.skip") for key in state):
        raise CheckpointError(f"{where}: the genforce 'resnet' architecture is not supported")
    mapping_layers = _count(state, lambda i: f"mapping.dense{i}.weight")
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('mapping.dense0.weight') found")
    first = _shape(state, "mapping.dense0.weight", where)
    last = _shape(state, f"mapping.dense{mapping_layers - 1}.weight", where)
    levels = _count(state, lambda i: f"synthesis.output{i}.weight")
    conv_layers = _count(state, lambda i: f"synthesis.layer{i}.weight")
    if conv_layers != 2 * levels - 1:
        raise CheckpointError(
            f"{where}: {conv_layers} conv layers but {levels} ToRGB layers; only the config-F"
            " 'skip' architecture (one ToRGB per resolution) is supported"
        )
    w_avg = _shape(state, "truncation.w_avg", where)
    if w_avg != (last[0],):
        raise CheckpointError(
            f"{where}: truncation.w_avg has shape {list(w_avg)}, expected [{last[0]}]"
            " (generators without repeat_w are not supported)"
        )
    resolution = _resolution_from_levels(levels, where)
    channels = {4: _shape(state, "synthesis.early_layer.const", where)[1]}
    for b in range(1, levels):
        channels[2 ** (b + 2)] = _shape(state, f"synthesis.layer{2 * b - 1}.weight", where)[0]
    return _make_config(
        where,
        resolution=resolution,
        z_dim=first[1],
        w_dim=last[0],
        mapping_layers=mapping_layers,
        mapping_hidden=first[0] if mapping_layers > 1 else None,
        channels=channels,
    )


def _make_config(where: str, **fields: Any) -> StyleGAN2Config:
    try:
        return StyleGAN2Config(**fields)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: unsupported architecture ({exc})") from None


# ----------------------------------------------------------------------------------------
# State dict <-> model.


def _load_with_plan(
    config: StyleGAN2Config,
    state: Mapping[str, Any],
    plan: list[KeyMap],
    kernels: dict[str, torch.Tensor],
    where: str,
) -> StyleGAN2Generator:
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


def stylegan2_from_rosinality(
    state: Mapping[str, Any], latent_avg: torch.Tensor | None = None, where: str = "checkpoint"
) -> StyleGAN2Generator:
    """A generator from a rosinality ``g_ema`` state dict (config inferred, weights loaded)."""
    config = infer_rosinality_config(state, where)
    model = _load_with_plan(
        config, state, rosinality_plan(config), rosinality_kernels(config), where
    )
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != config.w_dim:
            shape = list(latent_avg.shape) if isinstance(latent_avg, torch.Tensor) else latent_avg
            raise CheckpointError(
                f"{where}: latent_avg {shape} does not match w_dim {config.w_dim}"
            )
        model.set_w_avg(latent_avg.detach().to(torch.float32))
    return model


def stylegan2_from_genforce(
    state: Mapping[str, Any], where: str = "checkpoint"
) -> StyleGAN2Generator:
    """A generator from a genforce ``StyleGAN2Generator`` state dict (w_avg included)."""
    config = infer_genforce_config(state, where)
    model = _load_with_plan(config, state, genforce_plan(config), genforce_kernels(config), where)
    model.has_w_avg = True
    return model


def _external_state(
    model: StyleGAN2Generator, plan: list[KeyMap], kernels: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    internal = model.state_dict()
    state = {
        e.external: e.to_external(internal[e.internal].detach().cpu()).contiguous() for e in plan
    }
    state.update(kernels)
    return state


def rosinality_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as a rosinality ``Generator`` state dict (loads strictly in that repository)."""
    return _external_state(model, rosinality_plan(model.config), rosinality_kernels(model.config))


def genforce_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as a genforce ``StyleGAN2Generator`` state dict (``truncation.w_avg`` included)."""
    ensure_w_avg(model)
    return _external_state(model, genforce_plan(model.config), genforce_kernels(model.config))


def save_rosinality(
    model: StyleGAN2Generator, path: str | os.PathLike, *, latent_avg: bool = True
) -> Path:
    """Write ``{"g_ema": state_dict, "latent_avg": w_avg}`` as ``convert_weight.py`` does.

    ``latent_avg`` is written only when the model knows its average w (or
    ``latent_avg=False`` leaves it out, like ``train.py`` files).
    """
    path = Path(path)
    checkpoint: dict[str, Any] = {"g_ema": rosinality_state_dict(model)}
    if latent_avg and model.has_w_avg:
        checkpoint["latent_avg"] = model.w_avg.detach().cpu().clone()
    torch.save(checkpoint, path)
    return path


def save_genforce(model: StyleGAN2Generator, path: str | os.PathLike) -> Path:
    """Write ``{"generator_smooth": state_dict}`` as in the genforce model zoo."""
    path = Path(path)
    torch.save({"generator_smooth": genforce_state_dict(model)}, path)
    return path


# ----------------------------------------------------------------------------------------
# Average latent.


@torch.no_grad()
def estimate_w_avg(
    model: nn.Module,
    num_samples: int = W_AVG_SAMPLES,
    seed: int = W_AVG_SEED,
    batch_size: int = 2000,
) -> torch.Tensor:
    """Mean of ``model.mapping(z)`` over ``num_samples`` z drawn from a fixed seed (float32 [w_dim])."""
    generator = torch.Generator().manual_seed(seed)
    device = model.w_avg.device
    total = torch.zeros(model.w_dim, dtype=torch.float64, device=device)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z = torch.randn(n, model.z_dim, generator=generator).to(
            device=device, dtype=model.w_avg.dtype
        )
        total += model.mapping(z).to(torch.float64).sum(dim=0)
        done += n
    return (total / num_samples).to(torch.float32)


def ensure_w_avg(model: nn.Module, num_samples: int = W_AVG_SAMPLES) -> torch.Tensor:
    """``model.w_avg``, estimated with :func:`estimate_w_avg` the first time it is missing.

    Works on any model with the common StyleGAN interface (StyleGAN1 and 2).
    """
    if not getattr(model, "has_w_avg", False):
        estimate = estimate_w_avg(model, num_samples)
        with torch.no_grad():
            model.w_avg.copy_(estimate.to(model.w_avg))
        model.has_w_avg = True
        model.w_avg_estimated = True
    return model.w_avg


# ----------------------------------------------------------------------------------------
# Files.


@dataclass
class IdentifiedCheckpoint:
    """What a loaded object holds: family, layout, the generator state dict and extras."""

    family: str | None  # "stylegan2", "stylegan1" or None (not a StyleGAN file)
    layout: str  # "rosinality", "genforce" or a description from describe_checkpoint
    state: Mapping[str, Any] | None = None
    latent_avg: torch.Tensor | None = None


def _strip_module_prefix(state: Mapping[str, Any]) -> Mapping[str, Any]:
    keys = list(state)
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def classify_state_dict(state: Mapping[str, Any]) -> tuple[str, str] | None:
    """(family, layout) of a generator state dict, or ``None`` when it is no StyleGAN."""
    keys = {k for k in state if isinstance(k, str)}
    if "input.input" in keys and "style.1.weight" in keys:
        return "stylegan2", "rosinality"
    if "synthesis.b4.const" in keys and "mapping.fc0.weight" in keys:
        return "stylegan2", "nvidia"
    if "synthesis.early_layer.const" in keys or any(
        k.startswith("synthesis.") and k.endswith(".noise_strength") for k in keys
    ):
        return "stylegan2", "genforce"
    if "synthesis.layer0.const" in keys or (
        "synthesis.lod" in keys and "mapping.dense0.weight" in keys
    ):
        return "stylegan1", "genforce"
    return None


def identify_checkpoint(obj: Any) -> IdentifiedCheckpoint:
    """Tell which StyleGAN family and layout a loaded checkpoint object is, without building it."""
    if not isinstance(obj, Mapping):
        return IdentifiedCheckpoint(None, describe_checkpoint(obj))
    latent_avg = None
    state: Any = None
    if "g_ema" in obj:
        state, latent_avg = obj["g_ema"], obj.get("latent_avg")
    else:
        container: Any = obj
        if isinstance(obj.get("models"), Mapping):
            container = obj["models"]
        for key in ("generator_smooth", "generator"):
            if isinstance(container.get(key), Mapping):
                state = container[key]
                break
        else:
            if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
                state = obj
    if isinstance(state, Mapping):
        state = _strip_module_prefix(state)
        found = classify_state_dict(state)
        if found is not None:
            return IdentifiedCheckpoint(found[0], found[1], state, latent_avg)
    return IdentifiedCheckpoint(None, describe_checkpoint(obj))


def _not_stylegan_message(path: Path, obj: Any, description: str, wanted: str) -> str:
    name = FAMILY_NAMES[wanted]
    other = identify_family(obj)  # another plugin's family: the engine names none itself
    if other is not None and other.gan not in FAMILY_NAMES:
        return (
            f"{path} looks like {description}, not a {name} checkpoint;"
            f" load it with --gan {other.gan}"
        )
    if "encoder" in description:
        return (
            f"{path} is {description}, not a generator; give it as the encoder"
            " (ganenc.load_encoder / --encoder), and the generator separately"
        )
    expected = {
        "stylegan2": 'a rosinality .pt ({"g_ema": ..., "latent_avg": ...}), a genforce .pth'
        ' ({"generator_smooth": ...}) or an NVIDIA .pkl',
        "stylegan3": "an NVIDIA stylegan3 network pickle (.pkl)",
    }.get(wanted, 'a genforce .pth ({"generator_smooth": ...})')
    return f"{path} is not a {name} checkpoint: found {description}; expected {expected}"


def read_stylegan_checkpoint(path: str | os.PathLike, family: str) -> IdentifiedCheckpoint:
    """Read ``path`` safely and check that it holds a generator of ``family``."""
    path = Path(path)
    from .nvidia import is_nvidia_pickle, read_nvidia_generator

    if is_nvidia_pickle(path):
        generator = read_nvidia_generator(path, family)  # raises if of another family
        return IdentifiedCheckpoint(generator.family, "nvidia-pickle", generator.state)
    obj = read_checkpoint(path, safe_globals=[argparse.Namespace])
    found = identify_checkpoint(obj)
    if found.family is None and "StyleGAN" in found.layout:  # the container says StyleGAN
        raise CheckpointError(
            f"{path} looks like {found.layout}, but its generator is incomplete: entries that"
            " every such generator has are missing (for rosinality 'input.input' and"
            " 'style.1.weight'); the file is damaged or was written by other code"
        )
    if found.family is None:
        raise CheckpointError(_not_stylegan_message(path, obj, found.layout, family))
    if found.family != family:
        raise CheckpointError(
            f"{path} looks like a {found.layout} {FAMILY_NAMES[found.family]} checkpoint,"
            f" not a {FAMILY_NAMES[family]} one; load it with --gan {found.family}"
        )
    return found


def load_stylegan2_checkpoint(path: str | os.PathLike) -> StyleGAN2Generator:
    """A StyleGAN2 generator from a rosinality, genforce or NVIDIA file, architecture from it."""
    from .nvidia import is_nvidia_pickle, load_nvidia_stylegan2, stylegan2_from_nvidia_state

    if is_nvidia_pickle(path):
        return load_nvidia_stylegan2(path)
    found = read_stylegan_checkpoint(path, "stylegan2")
    assert found.state is not None
    where = str(path)
    if found.layout == "rosinality":
        return stylegan2_from_rosinality(found.state, found.latent_avg, where)
    if found.layout == "nvidia":
        return stylegan2_from_nvidia_state(found.state, where)
    return stylegan2_from_genforce(found.state, where)


def load_stylegan3_checkpoint(path: str | os.PathLike) -> nn.Module:
    """A StyleGAN3 generator from NVIDIA's network pickle (the only StyleGAN3 format)."""
    from .nvidia import is_nvidia_pickle, load_nvidia_stylegan3

    if is_nvidia_pickle(path):
        return load_nvidia_stylegan3(path)
    read_stylegan_checkpoint(path, "stylegan3")  # raises with the family the file holds
    raise CheckpointError(f"{path} is not a StyleGAN3 checkpoint")


def load_stylegan1_checkpoint(path: str | os.PathLike) -> nn.Module:
    """A StyleGAN1 generator from a genforce file (built by ``stylegan1_from_genforce``)."""
    found = read_stylegan_checkpoint(path, "stylegan1")
    assert found.state is not None
    from .stylegan1 import stylegan1_from_genforce

    try:
        return stylegan1_from_genforce(dict(found.state))
    except (CheckpointError, ConfigError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
