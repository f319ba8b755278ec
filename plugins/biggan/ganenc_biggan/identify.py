"""Which BigGAN file a loaded checkpoint is, for the ``identify_checkpoint`` hook (no torch).

The engine asks every generator plugin through that hook, so a BigGAN state
dict given to another family's loader gets a hint naming ``--gan biggan``
without the engine knowing BigGAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganenc.checkpoints import CheckpointIdentity

#: How messages name a HuggingFace pytorch-pretrained-BigGAN ``pytorch_model.bin``.
HF_STATE_DICT = "a HuggingFace BigGAN state dict"


def identify_biggan_file(checkpoint: Any) -> CheckpointIdentity | None:
    """A HuggingFace BigGAN state dict's identity, or ``None``."""
    if not isinstance(checkpoint, Mapping):
        return None
    names = " ".join(map(str, checkpoint))
    if "generator.gen_z.weight_orig" in names or (
        "embeddings.weight" in names and "generator." in names
    ):
        return CheckpointIdentity("biggan", HF_STATE_DICT)
    return None
