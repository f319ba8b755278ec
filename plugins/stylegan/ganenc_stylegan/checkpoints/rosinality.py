"""rosinality/stylegan2-pytorch ``.pt`` files: architecture from the shapes, read and write.

``{"g_ema": state_dict, "latent_avg": [w_dim]}`` as ``convert_weight.py`` writes
it, or a ``train.py`` checkpoint without ``latent_avg`` (the dispatcher finds
the state dict in either).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganenc.errors import CheckpointError

from ..stylegan2 import StyleGAN2Config, StyleGAN2Generator
from .keymaps import (
    channels_by_level,
    config_from_shapes,
    count_entries,
    entry_shape,
    external_state,
    load_with_plan,
    resolution_from_levels,
    rosinality_kernels,
    rosinality_plan,
)


def infer_rosinality_config(state: Mapping[str, Any], where: str = "checkpoint") -> StyleGAN2Config:
    """The architecture of a rosinality ``Generator`` state dict, from its shapes."""
    mapping_layers = count_entries(state, lambda i: f"style.{i}.weight", start=1)
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('style.1.weight') found")
    first = entry_shape(state, "style.1.weight", where, min_dims=2)
    last = entry_shape(state, f"style.{mapping_layers}.weight", where, min_dims=2)
    levels = 1 + count_entries(state, lambda i: f"to_rgbs.{i}.conv.weight")
    resolution = resolution_from_levels(levels, where)
    channels = channels_by_level(
        state, levels, "input.input", lambda b: f"convs.{2 * (b - 1)}.conv.weight", 1, where
    )
    return config_from_shapes(where, first, last, mapping_layers, resolution, channels)


def stylegan2_from_rosinality(
    state: Mapping[str, Any], latent_avg: torch.Tensor | None = None, where: str = "checkpoint"
) -> StyleGAN2Generator:
    """A generator from a rosinality ``g_ema`` state dict (config inferred, weights loaded)."""
    config = infer_rosinality_config(state, where)
    model = load_with_plan(
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


def rosinality_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as a rosinality ``Generator`` state dict (loads strictly in that repository)."""
    return external_state(model, rosinality_plan(model.config), rosinality_kernels(model.config))


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
