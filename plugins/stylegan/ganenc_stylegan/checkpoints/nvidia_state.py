"""A bare state dict with the key names of NVIDIA's StyleGAN2 ``Generator``: read and write.

This is the layout of ``G_ema`` inside NVIDIA's pickles (stylegan2-ada-pytorch
``training/networks.py``, ``networks_stylegan2.py`` of the stylegan3
repository) and what ``ganenc convert --to nvidia-state-dict`` writes.  Same
math as ours: the affine bias carries its +1, the upsampling weight is the one
``conv_transpose2d`` uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganenc.errors import CheckpointError

from ..average_latent import ensure_w_avg
from ..stylegan2 import StyleGAN2Config, StyleGAN2Generator
from .keymaps import (
    config_from_shapes,
    count_entries,
    entry_shape,
    external_state,
    load_with_plan,
    nvidia_stylegan2_filters,
    nvidia_stylegan2_plan,
)


# Deliberately alike: only the parameter list matches another signature; the bodies differ
def stylegan2_config_from_nvidia_state(
    state: Mapping[str, Any],
    where: str = "checkpoint",
    conv_clamp: float | None = None,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Config:
    """The architecture of an NVIDIA StyleGAN2 ``G`` state dict, from its tensor shapes."""
    mapping_layers = count_entries(state, lambda i: f"mapping.fc{i}.weight")
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('mapping.fc0.weight') found")
    if "mapping.embed.weight" in state:
        raise CheckpointError(f"{where}: class-conditional generators are not supported")
    first = entry_shape(state, "mapping.fc0.weight", where, min_dims=2)
    last = entry_shape(state, f"mapping.fc{mapping_layers - 1}.weight", where, min_dims=2)
    const = entry_shape(state, "synthesis.b4.const", where)
    channels = {4: const[0]}
    resolution = 4
    while f"synthesis.b{resolution * 2}.conv0.weight" in state:
        resolution *= 2
        channels[resolution] = entry_shape(
            state, f"synthesis.b{resolution}.conv0.weight", where, min_dims=2
        )[0]
    return config_from_shapes(
        where,
        first,
        last,
        mapping_layers,
        resolution,
        channels,
        conv_clamp=conv_clamp,
        mapping_lr_mul=mapping_lr_mul,
    )


def _noise_free(state: dict[str, torch.Tensor], config: StyleGAN2Config) -> None:
    """Fill in zero noise for generators built with ``use_noise=False`` (same output)."""
    for b, res in enumerate(config.resolutions):
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            key = f"synthesis.b{res}.{conv}"
            if f"{key}.weight" in state and f"{key}.noise_const" not in state:
                state[f"{key}.noise_const"] = torch.zeros(res, res)
                state[f"{key}.noise_strength"] = torch.zeros(())


# Deliberately alike: only the parameter list matches another signature; the bodies differ
def stylegan2_from_nvidia_state(
    state: Mapping[str, Any],
    where: str = "checkpoint",
    conv_clamp: float | None = None,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Generator:
    """A generator from an NVIDIA StyleGAN2 ``G`` / ``G_ema`` state dict (w_avg included).

    A bare state dict does not record ``conv_clamp`` (default: no clamp) nor the
    mapping's learning-rate multiplier (default: NVIDIA's 0.01).
    """
    state = dict(state)
    config = stylegan2_config_from_nvidia_state(state, where, conv_clamp, mapping_lr_mul)
    _noise_free(state, config)
    model = load_with_plan(
        config, state, nvidia_stylegan2_plan(config), nvidia_stylegan2_filters(config), where
    )
    model.has_w_avg = True
    return model


def nvidia_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as NVIDIA's StyleGAN2 ``Generator`` state dict (``G.load_state_dict`` loads it).

    It needs ``c_dim=0``, ``architecture='skip'`` and the file's resolution,
    ``z_dim``, ``w_dim`` and channels on NVIDIA's side.
    """
    ensure_w_avg(model)
    config = model.config
    state = external_state(model, nvidia_stylegan2_plan(config), {})
    ordered: dict[str, torch.Tensor] = {}
    filters = nvidia_stylegan2_filters(config)
    # NVIDIA's order: synthesis (per block: const, filter, layers), then mapping (w_avg first).
    for b, res in enumerate(config.resolutions):
        block = f"synthesis.b{res}"
        if b == 0:
            ordered[f"{block}.const"] = state[f"{block}.const"]
        ordered[f"{block}.resample_filter"] = filters[f"{block}.resample_filter"]
        for conv in ["conv1"] if b == 0 else ["conv0", "conv1"]:
            key = f"{block}.{conv}"
            for name in ("weight", "noise_strength", "bias"):
                ordered[f"{key}.{name}"] = state[f"{key}.{name}"]
            ordered[f"{key}.resample_filter"] = filters[f"{key}.resample_filter"]
            ordered[f"{key}.noise_const"] = state[f"{key}.noise_const"]
            ordered[f"{key}.affine.weight"] = state[f"{key}.affine.weight"]
            ordered[f"{key}.affine.bias"] = state[f"{key}.affine.bias"]
        for name in ("weight", "bias", "affine.weight", "affine.bias"):
            ordered[f"{block}.torgb.{name}"] = state[f"{block}.torgb.{name}"]
    ordered["mapping.w_avg"] = state["mapping.w_avg"]
    for i in range(config.mapping_layers):
        for name in ("weight", "bias"):
            ordered[f"mapping.fc{i}.{name}"] = state[f"mapping.fc{i}.{name}"]
    missing = set(state) - set(ordered)
    assert not missing, missing
    return ordered


def save_nvidia_state_dict(model: StyleGAN2Generator, path: str | os.PathLike) -> Path:
    """``torch.save`` of :func:`nvidia_state_dict`: a bare state dict with NVIDIA's key names."""
    path = Path(path)
    torch.save(nvidia_state_dict(model), path)
    return path
