"""Kept for compatibility: the StyleGAN checkpoint code now lives in :mod:`ganenc_stylegan.checkpoints`.

Every public name this module had is re-exported from its new home (key maps
in ``checkpoints.keymaps``, one module per layout, the dispatcher in
``checkpoints.dispatch``, the average latent in ``ganenc_stylegan.average_latent``).
New code imports from there.
"""

from __future__ import annotations

from .average_latent import W_AVG_SAMPLES, W_AVG_SEED, ensure_w_avg, estimate_w_avg
from .checkpoints import FAMILY_NAMES
from .checkpoints.dispatch import (
    IdentifiedCheckpoint,
    classify_state_dict,
    identify_checkpoint,
    load_stylegan1_checkpoint,
    load_stylegan2_checkpoint,
    load_stylegan3_checkpoint,
    read_stylegan_checkpoint,
)
from .checkpoints.genforce import (
    genforce_state_dict,
    infer_genforce_config,
    save_genforce,
    stylegan2_from_genforce,
)
from .checkpoints.keymaps import (
    KeyMap,
    genforce_kernels,
    genforce_plan,
    rosinality_kernels,
    rosinality_plan,
)
from .checkpoints.rosinality import (
    infer_rosinality_config,
    rosinality_state_dict,
    save_rosinality,
    stylegan2_from_rosinality,
)

__all__ = [
    "FAMILY_NAMES",
    "W_AVG_SAMPLES",
    "W_AVG_SEED",
    "IdentifiedCheckpoint",
    "KeyMap",
    "classify_state_dict",
    "ensure_w_avg",
    "estimate_w_avg",
    "genforce_kernels",
    "genforce_plan",
    "genforce_state_dict",
    "identify_checkpoint",
    "infer_genforce_config",
    "infer_rosinality_config",
    "load_stylegan1_checkpoint",
    "load_stylegan2_checkpoint",
    "load_stylegan3_checkpoint",
    "read_stylegan_checkpoint",
    "rosinality_kernels",
    "rosinality_plan",
    "rosinality_state_dict",
    "save_genforce",
    "save_rosinality",
    "stylegan2_from_genforce",
    "stylegan2_from_rosinality",
]
