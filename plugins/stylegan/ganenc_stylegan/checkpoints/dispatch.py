"""The one entry point for StyleGAN checkpoint files: decide the layout once, call its reader.

Recognised files (read with ``torch.load(weights_only=True)`` through
:func:`ganenc.checkpoints.read_checkpoint`, except NVIDIA's pickles):

- rosinality/stylegan2-pytorch ``.pt``: ``{"g_ema": state_dict, "latent_avg": [w_dim]}``
  (``convert_weight.py``), or a ``train.py`` checkpoint ``{"g", "d", "g_ema",
  "g_optim", "d_optim", "args": argparse.Namespace, "ada_aug_p"}`` without
  ``latent_avg`` (``argparse.Namespace`` is the one class allowed beyond tensors);
- genforce ``.pth`` for StyleGAN2 and StyleGAN1: ``{"generator_smooth": sd}``
  else ``{"generator": sd}`` (zoo files), or the training runner's
  ``{"models": {...}}``;
- a bare state dict of either layout, or of NVIDIA's StyleGAN2 layout (what
  ``ganenc convert --to nvidia-state-dict`` writes);
- NVIDIA's network pickles (``.pkl`` of stylegan2-ada-pytorch and stylegan3),
  read by the restricted unpickler (:mod:`.nvidia_pickle`), never by
  ``torch.load``/``pickle.load``.

:func:`read_stylegan_checkpoint` opens the file once, sniffs its head once
(:func:`.nvidia_pickle.looks_like_nvidia_pickle`), reads it with the matching
reader and names its family and layout; the ``load_*`` functions hand the
result to that layout's builder.  A file of
another GAN family gets the ``--gan`` hint of the plugin that recognises it
(the ``identify_checkpoint`` hook): this plugin names no other family.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganenc.checkpoints import describe_checkpoint, existing_checkpoint, read_checkpoint
from ganenc.checkpoints import identify_checkpoint as identify_family
from ganenc.errors import CheckpointError, ConfigError, GanencError

from ..stylegan2 import StyleGAN2Generator
from . import FAMILY_NAMES
from .genforce import save_genforce, stylegan2_from_genforce
from .nvidia_pickle import (
    SNIFF_BYTES,
    NvidiaGenerator,
    generator_from_pickle,
    looks_like_nvidia_pickle,
    read_nvidia_generator,
)
from .nvidia_state import save_nvidia_state_dict, stylegan2_from_nvidia_state
from .rosinality import save_rosinality, stylegan2_from_rosinality

# ----------------------------------------------------------------------------------------
# Which layout a file holds.


@dataclass
class IdentifiedCheckpoint:
    """What a loaded object holds: family, layout, the generator state dict and extras."""

    family: str | None  # "stylegan2", "stylegan1" or None (not a StyleGAN file)
    layout: str  # "rosinality", "genforce", "nvidia", "nvidia-pickle" or a description from describe_checkpoint
    state: Mapping[str, Any] | None = None
    latent_avg: torch.Tensor | None = None
    nvidia: NvidiaGenerator | None = None  # G_ema of an NVIDIA pickle (layout "nvidia-pickle")


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
    """Read ``path`` safely and check that it holds a generator of ``family``.

    The one place that decides a file's layout: it opens the file once, sniffs
    its head once and hands the open file to the matching reader.  An NVIDIA
    pickle comes back with its ``G_ema`` in :attr:`IdentifiedCheckpoint.nvidia`.
    """
    path = existing_checkpoint(path)
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        handle.seek(0)
        if looks_like_nvidia_pickle(path, head):
            generator = read_nvidia_generator(path, family, handle)  # raises if another family
            return IdentifiedCheckpoint(
                generator.family, "nvidia-pickle", generator.state, nvidia=generator
            )
        obj = read_checkpoint(path, safe_globals=[argparse.Namespace], opened=handle)
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


# ----------------------------------------------------------------------------------------
# Loading: the layout's builder for what read_stylegan_checkpoint found.


def load_stylegan2_checkpoint(path: str | os.PathLike) -> StyleGAN2Generator:
    """A StyleGAN2 generator from a rosinality, genforce or NVIDIA file, architecture from it."""
    found = read_stylegan_checkpoint(path, "stylegan2")
    assert found.state is not None
    where = str(path)
    if found.nvidia is not None:
        return generator_from_pickle(found.nvidia, path)
    if found.layout == "rosinality":
        return stylegan2_from_rosinality(found.state, found.latent_avg, where)
    if found.layout == "nvidia":
        return stylegan2_from_nvidia_state(found.state, where)
    return stylegan2_from_genforce(found.state, where)


def load_stylegan3_checkpoint(path: str | os.PathLike) -> nn.Module:
    """A StyleGAN3 generator from NVIDIA's network pickle (the only StyleGAN3 format)."""
    found = read_stylegan_checkpoint(path, "stylegan3")  # raises with the family a file holds
    if found.nvidia is None:
        raise CheckpointError(f"{path} is not a StyleGAN3 checkpoint")
    return generator_from_pickle(found.nvidia, path)


def load_stylegan1_checkpoint(path: str | os.PathLike) -> nn.Module:
    """A StyleGAN1 generator from a genforce file (built by ``stylegan1_from_genforce``)."""
    found = read_stylegan_checkpoint(path, "stylegan1")
    assert found.state is not None
    from ..stylegan1 import stylegan1_from_genforce

    try:
        return stylegan1_from_genforce(dict(found.state))
    except (CheckpointError, ConfigError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------------------
# Writing.

#: The writer of each layout a StyleGAN2 generator can be saved in.
WRITERS = {
    "rosinality": save_rosinality,
    "nvidia-state-dict": save_nvidia_state_dict,
    "genforce": save_genforce,
}


def write_stylegan2_checkpoint(
    model: StyleGAN2Generator, path: str | os.PathLike, layout: str
) -> Path:
    """Write ``model`` to ``path`` in ``layout`` (a key of :data:`WRITERS`)."""
    if layout not in WRITERS:
        raise GanencError(f"layout must be one of {', '.join(WRITERS)}, got {layout!r}")
    return WRITERS[layout](model, path)
