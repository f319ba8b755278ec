"""Kept for compatibility: NVIDIA's network pickles are now read in :mod:`ganenc_stylegan.checkpoints`.

Every public name this module had is re-exported from its new home: the
restricted unpickler (``checkpoints.nvidia_unpickler``), the ``.pkl`` layout
(``checkpoints.nvidia_pickle``), the bare NVIDIA state dict
(``checkpoints.nvidia_state``) and its key map (``checkpoints.keymaps``).
New code imports from there.
"""

from __future__ import annotations

from .checkpoints.keymaps import nvidia_stylegan2_filters, nvidia_stylegan2_plan
from .checkpoints.nvidia_pickle import (
    LEGACY_TORCH_MAGIC,
    LEGACY_TORCH_PREFIX,
    PERSISTENCE_MARKER,
    SNIFF_BYTES,
    NvidiaGenerator,
    is_nvidia_pickle,
    load_nvidia_stylegan2,
    load_nvidia_stylegan3,
    nvidia_family,
    read_nvidia_generator,
    read_nvidia_pickle,
    stylegan2_from_nvidia,
)
from .checkpoints.nvidia_state import (
    nvidia_state_dict,
    save_nvidia_state_dict,
    stylegan2_config_from_nvidia_state,
    stylegan2_from_nvidia_state,
)
from .checkpoints.nvidia_unpickler import (
    ALLOWED_GLOBALS,
    EasyDict,
    NumpyArray,
    NumpyDType,
    PersistentObject,
    RefusedGlobalError,
    RestrictedUnpickler,
)

__all__ = [
    "ALLOWED_GLOBALS",
    "LEGACY_TORCH_MAGIC",
    "LEGACY_TORCH_PREFIX",
    "PERSISTENCE_MARKER",
    "SNIFF_BYTES",
    "EasyDict",
    "NumpyArray",
    "NumpyDType",
    "NvidiaGenerator",
    "PersistentObject",
    "RefusedGlobalError",
    "RestrictedUnpickler",
    "is_nvidia_pickle",
    "load_nvidia_stylegan2",
    "load_nvidia_stylegan3",
    "nvidia_family",
    "nvidia_state_dict",
    "nvidia_stylegan2_filters",
    "nvidia_stylegan2_plan",
    "read_nvidia_generator",
    "read_nvidia_pickle",
    "save_nvidia_state_dict",
    "stylegan2_config_from_nvidia_state",
    "stylegan2_from_nvidia",
    "stylegan2_from_nvidia_state",
]
