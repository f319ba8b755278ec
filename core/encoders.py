"""Build, save and load encoders, whatever their generator family.

The builder is chosen from the generator's family through the encoder
registry (each builder declares ``generators=(...)`` when it registers).
Encoder checkpoints hold plain data only (state dict, options, geometry), so
they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError, GanencError
from .geometry import GeneratorGeometry
from .registry import get_registry

ENCODER_FORMAT = "ganenc-encoder/1"


def _geometry_of(generator: Any) -> GeneratorGeometry:
    if isinstance(generator, GeneratorGeometry):
        return generator
    if isinstance(generator, dict):
        return GeneratorGeometry.from_dict(generator)
    return generator.geometry()


def encoder_builder_for(geometry: GeneratorGeometry, name: str | None = None):
    """The registered encoder builder for ``geometry.family`` (or the one named)."""
    registry = get_registry()
    if name is not None:
        return registry.get("encoder", name)
    specs = registry.find("encoder", generators=geometry.family)
    if not specs:
        raise GanencError(
            f"no encoder builder serves generator family {geometry.family!r};"
            " install its plugin or pass name=... (see 'ganenc list --kind encoder')"
        )
    if len(specs) > 1:
        names = ", ".join(repr(s.qualified_name) for s in specs)
        raise GanencError(
            f"several encoder builders serve {geometry.family!r} ({names}); pass name=..."
        )
    return specs[0]


def build_encoder(generator: Any, name: str | None = None, **options: Any):
    """Build the encoder that mirrors ``generator`` (an adapter, or its geometry).

    The returned module carries ``ganenc_meta`` (builder, options, geometry) so
    :func:`save_encoder` can write a self-describing checkpoint.
    """
    geometry = _geometry_of(generator)
    spec = encoder_builder_for(geometry, name)
    encoder = get_registry().create("encoder", spec.qualified_name, geometry, **options)
    encoder.ganenc_meta = {
        "builder": spec.name,
        "plugin": spec.plugin,
        "options": _plain(options),
        "geometry": geometry.to_dict(),
    }
    return encoder


def _plain(value: Any) -> Any:
    """Options as plain data (so ``weights_only`` loading accepts them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise GanencError(f"encoder option value {value!r} cannot be saved; use plain data")


def save_encoder(encoder: Any, path: str | os.PathLike, **extra: Any) -> Path:
    """Write the encoder, its builder options and geometry; atomic rename."""
    import torch

    meta = getattr(encoder, "ganenc_meta", None)
    if meta is None:
        raise GanencError("this encoder was not built by ganenc.build_encoder; cannot save it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": ENCODER_FORMAT, **meta, "state_dict": encoder.state_dict(), **extra}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_encoder_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read an encoder checkpoint safely, with one clear error for a bad file."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"encoder checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable encoder checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{path} is not a ganenc encoder checkpoint")
    return payload


def load_encoder(path: str | os.PathLike, map_location: Any = "cpu"):
    """Rebuild an encoder saved by :func:`save_encoder` and load its weights."""
    from .encoder_runs import install_hint

    payload = read_encoder_checkpoint(path, map_location)
    with install_hint(path, payload):
        return encoder_from_checkpoint(payload)


def encoder_from_checkpoint(payload: dict):
    """The encoder of a checkpoint already read by :func:`read_encoder_checkpoint`."""
    geometry = GeneratorGeometry.from_dict(payload["geometry"])
    builder = f"{payload['plugin']}:{payload['builder']}"
    try:
        get_registry().get("encoder", builder)
    except GanencError:
        builder = payload["builder"]
    encoder = build_encoder(geometry, name=builder, **payload["options"])
    encoder.load_state_dict(payload["state_dict"])
    return encoder
