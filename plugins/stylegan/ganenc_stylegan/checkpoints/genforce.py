"""genforce StyleGAN2 ``.pth`` state dicts: architecture from the shapes, read and write.

genforce's zoo files are ``{"generator_smooth": sd}`` (else ``{"generator": sd}``)
or the training runner's ``{"models": {...}}``; the average w is
``truncation.w_avg``.  StyleGAN1's genforce reader lives with its model
(:func:`ganenc_stylegan.stylegan1.stylegan1_from_genforce`).
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
    channels_by_level,
    config_from_shapes,
    count_entries,
    entry_shape,
    external_state,
    genforce_kernels,
    genforce_plan,
    load_with_plan,
    resolution_from_levels,
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
    mapping_layers = count_entries(state, lambda i: f"mapping.dense{i}.weight")
    if mapping_layers == 0:
        raise CheckpointError(f"{where}: no mapping layers ('mapping.dense0.weight') found")
    first = entry_shape(state, "mapping.dense0.weight", where, min_dims=2)
    last = entry_shape(state, f"mapping.dense{mapping_layers - 1}.weight", where, min_dims=2)
    levels = count_entries(state, lambda i: f"synthesis.output{i}.weight")
    conv_layers = count_entries(state, lambda i: f"synthesis.layer{i}.weight")
    if conv_layers != 2 * levels - 1:
        raise CheckpointError(
            f"{where}: {conv_layers} conv layers but {levels} ToRGB layers; only the config-F"
            " 'skip' architecture (one ToRGB per resolution) is supported"
        )
    w_avg = entry_shape(state, "truncation.w_avg", where)
    if w_avg != (last[0],):
        raise CheckpointError(
            f"{where}: truncation.w_avg has shape {list(w_avg)}, expected [{last[0]}]"
            " (generators without repeat_w are not supported)"
        )
    resolution = resolution_from_levels(levels, where)
    channels = channels_by_level(
        state,
        levels,
        "synthesis.early_layer.const",
        lambda b: f"synthesis.layer{2 * b - 1}.weight",
        0,
        where,
    )
    return config_from_shapes(where, first, last, mapping_layers, resolution, channels)


def stylegan2_from_genforce(
    state: Mapping[str, Any], where: str = "checkpoint"
) -> StyleGAN2Generator:
    """A generator from a genforce ``StyleGAN2Generator`` state dict (w_avg included)."""
    config = infer_genforce_config(state, where)
    model = load_with_plan(config, state, genforce_plan(config), genforce_kernels(config), where)
    model.has_w_avg = True
    return model


def genforce_state_dict(model: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The model as a genforce ``StyleGAN2Generator`` state dict (``truncation.w_avg`` included)."""
    ensure_w_avg(model)
    return external_state(model, genforce_plan(model.config), genforce_kernels(model.config))


def save_genforce(model: StyleGAN2Generator, path: str | os.PathLike) -> Path:
    """Write ``{"generator_smooth": state_dict}`` as in the genforce model zoo."""
    path = Path(path)
    torch.save({"generator_smooth": genforce_state_dict(model)}, path)
    return path
