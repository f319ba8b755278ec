"""Latent files: one writer and one reader for every command that makes or takes latents.

A latent file (``ganenc-latents/1``) holds ``latents`` (a dict of tensors with a
batch dimension) and plain metadata (the image, the generator spec, the
synthesis options ...).  ``ganenc invert``, ``edit``, per-image ``finetune`` and
``sample --save-latents`` write them with :func:`save_latent_file`; ``edit`` and
``directions`` read them with :func:`read_latents` (a file holding a batch
counts as one latent per row, named ``<stem>-<row>``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from .adapters import NOISE_MODES, Latents
from .config import Settings, Truncation, validate_options
from .errors import CheckpointError, ConfigError, GanencError
from .files import plain_data, torch_save

LATENTS_FORMAT = "ganenc-latents/1"
LATENTS_DIR = "latents"


def save_latent_file(path: str | os.PathLike, latents: Latents, **metadata: Any) -> Path:
    """One image's latents (``[1, ...]`` tensors) and plain metadata; atomic.

    What :func:`read_latent_file` would refuse is refused here, before the file is written.
    """
    if not isinstance(latents, dict):
        raise ConfigError(f"latents must be a dict of tensors, not a {type(latents).__name__}")
    if "format" in metadata or "latents" in metadata:
        raise ConfigError("'format' and 'latents' are a latent file's own fields")
    payload = {
        "format": LATENTS_FORMAT,
        "latents": {
            k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v
            for k, v in latents.items()
        },
        **plain_data(metadata, "a latent file's metadata"),
    }
    problem = latent_payload_problem(payload)
    if problem:
        raise ConfigError(f"cannot save latents to {path}: {problem} (nothing was written)")
    return torch_save(payload, path)


#: Which command makes latent files, for messages about files that are not one.
MAKE_LATENTS = "'ganenc invert' (or 'ganenc sample --save-latents') writes latent files"


def read_latent_file(path: str | os.PathLike) -> dict[str, Any]:
    """A latent file written by ``ganenc invert``/``edit`` (or per-image ``finetune``), safely."""
    from .checkpoints import read_ganenc_file

    path = Path(path)
    payload = read_ganenc_file(path, "latent file", MAKE_LATENTS)
    latents = payload.get("latents") if isinstance(payload, dict) else None
    if not isinstance(latents, dict) or not latents:
        raise CheckpointError(
            f"{path} is not a ganenc latent file (no 'latents' dict); {MAKE_LATENTS}"
        )
    problem = latent_payload_problem(payload)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    if payload.get("synthesis_options") is not None:
        payload["synthesis_options"] = checked_synthesis_options(
            payload["synthesis_options"], f"{path}'s synthesis_options"
        )
    return payload


def latent_payload_problem(payload: dict[str, Any]) -> str | None:
    """What is wrong with a latent file's content (its writer and reader both ask), or None."""
    latents = payload["latents"]
    if not latents:
        return "it holds no latents"
    for key, value in latents.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor) or value.dim() < 1:
            return f"latent {key!r} is not a tensor with a batch dimension"
        if value.dtype in (torch.bool, torch.complex64, torch.complex128) or (
            value.is_floating_point() and not bool(torch.isfinite(value).all())
        ):
            return f"latent {key!r} holds NaN, infinite or non-real values"
    batches = {key: int(value.shape[0]) for key, value in latents.items()}
    if min(batches.values()) == 0 or len(set(batches.values())) > 1:
        return f"its latents hold batches of {batches} (one size, > 0)"
    if payload.get("synthesis_options") is not None:
        try:
            checked_synthesis_options(payload["synthesis_options"], "synthesis_options")
        except CheckpointError as exc:
            return str(exc)
    return None


class SynthesisOptions(Settings):
    """What a latent file may ask of ``GeneratorAdapter.synthesize`` (its keyword arguments)."""

    truncation: Truncation | None = None
    truncation_layers: int | None = Field(None, ge=1)
    noise_mode: Literal[NOISE_MODES] | None = None  # type: ignore[valid-type]


def checked_synthesis_options(options: Any, where: str) -> dict[str, Any]:
    """``options`` from a file, validated (types, ranges, no unknown key): the keys it gives."""
    if not isinstance(options, dict):
        raise CheckpointError(f"{where} is {options!r}, not a mapping")
    try:
        checked = validate_options(SynthesisOptions, options, where)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    return checked.model_dump(exclude_unset=True)


def check_latents_fit(latents: Latents, generator: Any, source: str) -> None:
    """Raise unless ``latents`` are what ``generator`` synthesises from.

    That is its encoder's latents (``geometry().encoder_latents``) or the ones it samples
    (``sample --save-latents``), by name and shape: latents of another generator would
    otherwise fail deep inside it.
    """
    found = latent_shapes(latents)
    geometry = generator.geometry()
    encoder = {k: list(v) for k, v in geometry.encoder_latents.items()}
    sampled = latent_shapes(generator.sample_latents(1, seed=0))
    if not any(
        set(found) == set(wanted) and all(found[k] == shape for k, shape in wanted.items())
        for wanted in (encoder, sampled)
    ):  # an extra key is refused too: no generator would read it
        raise GanencError(
            f"{source} holds latents {found}, but the {geometry.family} generator at"
            f" {geometry.resolution} px takes {encoder} (or sampled {sampled}): they were made"
            " for another generator"
        )


@dataclass
class LatentSet:
    """Latent files of a folder (or one file), in name order, batched."""

    names: list[str]  # file stems (``<stem>-<row>`` for a file holding a batch)
    latents: Latents  # batched over the files
    records: list[dict[str, Any]]  # each latent's file metadata (without its tensors)
    paths: list[Path]  # each latent's file

    def generator_spec(self) -> dict[str, Any] | None:
        """The generator the latents were made for, when the files record it.

        Files that record different generators are an error (whichever file comes first).
        """
        found: tuple[dict[str, Any], Path] | None = None
        for record, path in zip(self.records, self.paths, strict=True):
            spec = record.get("generator")
            if not (isinstance(spec, dict) and spec.get("gan")):
                spec = {"gan": record["gan"]} if record.get("gan") else None
            if spec is None:
                continue
            if found is None:
                found = (spec, path)
            elif spec != found[0]:
                raise GanencError(
                    f"{found[1].name} and {path.name} record different generators ({found[0]}"
                    f" and {spec}); use the latents of one generator at a time"
                )
        return found[0] if found else None


def read_latents(source: str | os.PathLike) -> LatentSet:
    """Latents from one file, a folder of ``*.pt`` files, or an ``invert`` output folder."""
    if not isinstance(source, str | os.PathLike):
        raise ConfigError(f"latents are read from a file or a folder, not {source!r:.60}")
    source = Path(source)
    if source.is_file():
        paths = [source]
    elif source.is_dir():
        folder = source / LATENTS_DIR if (source / LATENTS_DIR).is_dir() else source
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".pt" and p.is_file())
        if not paths:
            raise GanencError(f"no latent files (*.pt) in {folder}")
    else:
        raise GanencError(f"latents not found: {source}")
    names, parts, records, sources = [], [], [], []
    for path in paths:
        payload = read_latent_file(path)
        latents = payload["latents"]
        batch = {v.shape[0] for v in latents.values()}
        if len(batch) != 1:
            raise CheckpointError(
                f"{path} holds latents with different batch sizes {sorted(batch)}"
            )
        (rows,) = batch
        record = {k: v for k, v in payload.items() if k != "latents"}
        width = len(str(rows - 1))
        for row in range(rows):  # a batch (sample --save-latents): one latent per row
            names.append(path.stem if rows == 1 else f"{path.stem}-{row:0{width}d}")
            parts.append({k: v[row : row + 1] for k, v in latents.items()})
            records.append(record)
            sources.append(path)
    keys = set(parts[0])
    for path, part in zip(sources, parts, strict=True):
        if set(part) != keys or any(part[k].shape != parts[0][k].shape for k in keys):
            raise GanencError(
                f"{path} holds latents {latent_shapes(part)}, unlike {paths[0].name} {latent_shapes(parts[0])}:"
                " the files come from different generators"
            )
    merged = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return LatentSet(names, merged, records, sources)


def latent_shapes(latents: Latents) -> dict[str, list[int]]:
    """Each latent's shape without the batch dimension (for messages and index files)."""
    return {k: list(v.shape[1:]) for k, v in latents.items()}
