"""Rebuild the weights of a reference-compatibility fixture from its manifest.

The fixtures (``tests/fixtures/*`` and each plugin's ``tests/fixtures``) ship no
checkpoint: a manifest lists every tensor with a fill rule, and each tensor is
drawn from a torch generator seeded by the first 8 bytes (little-endian, 63
bits) of ``sha256(f"{seed}/{key}")``, in float64, then cast.  Rebuilding gives
the exact tensors the reference implementation ran on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch


def load_manifest(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _seed_for(seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def rebuild_tensor(seed: int, key: str, entry: dict[str, Any]) -> torch.Tensor:
    """One tensor by its rule: ``randn`` (times ``scale``), ``positive`` or ``value``."""
    dtype = getattr(torch, entry["dtype"])
    shape = tuple(entry["shape"])
    rule = entry.get("rule", "randn")
    if rule == "value":
        return torch.tensor(entry["value"], dtype=dtype).reshape(shape)
    draw = torch.randn(
        shape, generator=torch.Generator().manual_seed(_seed_for(seed, key)), dtype=torch.float64
    )
    if rule == "positive":
        return (draw.abs() + 0.5).to(dtype)
    if rule == "randn":
        return (draw * float(entry.get("scale", 1.0))).to(dtype)
    raise ValueError(f"unknown fill rule {rule!r} for {key}")


def build_state_dict(
    manifest: dict[str, Any], entries_key: str = "entries"
) -> dict[str, torch.Tensor]:
    """``{key: tensor}`` for ``manifest[entries_key]`` (``"extra_entries"`` for latent_avg)."""
    seed = int(manifest["seed"])
    return {key: rebuild_tensor(seed, key, entry) for key, entry in manifest[entries_key].items()}
