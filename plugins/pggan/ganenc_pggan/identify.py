"""Which PGGAN file a loaded checkpoint is, for the ``identify_checkpoint`` hook (no torch).

The engine asks every generator plugin through that hook, so a PGGAN file
given to another family's loader gets a hint naming ``--gan pggan`` without
the engine knowing PGGAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganenc.checkpoints import CheckpointIdentity


def _is_genforce_pggan(names: set[str]) -> bool:
    """genforce's PGGAN generator: ``layer0.weight``/``lod``, no mapping or synthesis network."""
    if any(name.startswith(("mapping.", "synthesis.")) for name in names):
        return False
    return "layer0.weight" in names or "lod" in names


def identify_pggan_file(checkpoint: Any) -> CheckpointIdentity | None:
    """A pytorch_GAN_zoo or genforce PGGAN checkpoint's identity, or ``None``."""
    if not isinstance(checkpoint, Mapping):
        return None
    keys = set(checkpoint)
    if {"netG", "config"} <= keys or "avgG" in keys:
        return CheckpointIdentity("pggan", "a pytorch_GAN_zoo PGGAN checkpoint")
    state = checkpoint.get("generator_smooth") or checkpoint.get("generator")
    if isinstance(state, Mapping) and _is_genforce_pggan(set(map(str, state))):
        return CheckpointIdentity("pggan", "a genforce PGGAN checkpoint")
    return None
