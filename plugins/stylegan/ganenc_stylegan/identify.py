"""Which StyleGAN file a loaded checkpoint is, for the ``identify_checkpoint`` hook (no torch).

The engine asks every generator plugin through that hook, so a StyleGAN file
given to another family's loader gets a hint naming ``--gan stylegan2`` or
``--gan stylegan1`` without the engine knowing StyleGAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganenc.checkpoints import CheckpointIdentity

from .checkpoints import FAMILY_NAMES  # the package module imports no torch


def _genforce_stylegan(names: set[str]) -> str | None:
    """Which genforce StyleGAN generator a state dict's key names belong to, if any."""
    joined = " ".join(names)
    if "synthesis.early_layer.const" in names or "noise_strength" in joined:
        return "stylegan2"
    if "synthesis.layer0.const" in names or "apply_noise" in joined or "synthesis.lod" in names:
        return "stylegan1"
    return None


def identify_stylegan_file(checkpoint: Any) -> CheckpointIdentity | None:
    """A rosinality or genforce StyleGAN checkpoint's identity, or ``None``."""
    if not isinstance(checkpoint, Mapping):
        return None
    if "g_ema" in checkpoint:
        return CheckpointIdentity("stylegan2", "a rosinality StyleGAN2 checkpoint")
    state = checkpoint.get("generator_smooth") or checkpoint.get("generator")
    if isinstance(state, Mapping):
        gan = _genforce_stylegan(set(map(str, state)))
        if gan is not None:
            return CheckpointIdentity(gan, f"a genforce {FAMILY_NAMES[gan]} checkpoint")
    return None
