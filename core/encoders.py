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

from .errors import CheckpointError, ConfigError, GanencError
from .files import plain_data, torch_save
from .geometry import GeneratorGeometry
from .registry import get_registry

ENCODER_FORMAT = "ganenc-encoder/1"


def _geometry_of(generator: Any) -> GeneratorGeometry:
    if isinstance(generator, GeneratorGeometry):
        return generator
    if isinstance(generator, dict):
        return GeneratorGeometry.from_dict(generator)
    if not callable(getattr(generator, "geometry", None)):
        raise GanencError(
            f"an encoder is built for a generator (ganenc.load_generator(...)) or its geometry,"
            f" not a {type(generator).__name__}"
        )
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
            f"several encoder builders serve {geometry.family!r} ({names}); choose one with"
            " 'encoder: NAME' in a --config file (name=NAME in Python)"
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
        "options": plain_data(options, "an encoder option"),
        "geometry": geometry.to_dict(),
    }
    return encoder


def save_encoder(encoder: Any, path: str | os.PathLike, **extra: Any) -> Path:
    """Write the encoder, its builder options and geometry; atomic rename."""
    meta = getattr(encoder, "ganenc_meta", None)
    if meta is None:
        raise GanencError("this encoder was not built by ganenc.build_encoder; cannot save it")
    clash = sorted(set(extra) & {"format", "state_dict", *meta})
    if clash:
        raise ConfigError(
            f"save_encoder: {', '.join(clash)} are the file's own fields; give extras other names"
        )
    extra = plain_data(extra, "save_encoder's extra field", tensors=True)
    payload = {"format": ENCODER_FORMAT, **meta, "state_dict": encoder.state_dict(), **extra}
    problem = _payload_problem({**payload, "state_dict": {}})  # what the reader checks
    if problem:
        raise ConfigError(f"save_encoder: {problem} (nothing was written)")
    return torch_save(payload, path)


#: How an encoder file is made, for messages about files that are not one.
MAKE_ENCODER = "'ganenc train' writes one (encoder.pt and checkpoints/*.pt in its run folder)"


def read_encoder_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read an encoder checkpoint safely, with one clear error for a bad file.

    The payload's structure is checked here, so a crafted file fails with that
    error rather than somewhere in the builder.
    """
    from .checkpoints import read_ganenc_file

    path = Path(path)
    payload = read_ganenc_file(path, "encoder checkpoint", MAKE_ENCODER)
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        from .checkpoints import describe_checkpoint

        raise CheckpointError(
            f"{path} is not a ganenc encoder checkpoint (found {describe_checkpoint(payload)});"
            f" {MAKE_ENCODER}"
        )
    problem = _payload_problem(payload)
    if problem:
        raise CheckpointError(f"{path} is a damaged ganenc encoder checkpoint: {problem}")
    return payload


def _payload_problem(payload: dict) -> str | None:
    """What is wrong with an encoder payload's structure, or ``None``."""
    import torch

    from .checkpoints import weights_problem

    for key in ("builder", "plugin"):
        if not isinstance(payload.get(key), str):
            return f"{key!r} is not a name"
    if not isinstance(payload.get("options"), dict):
        return "'options' is not a mapping"
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        return "'state_dict' is not a mapping of names to tensors"
    problem = weights_problem(state)
    if problem:
        return f"{problem}: the run that saved it diverged; use an earlier checkpoint (checkpoints/step-*.pt)"
    try:
        GeneratorGeometry.from_dict(payload.get("geometry"))
    except GanencError as exc:
        return str(exc)
    if "step" in payload and not (isinstance(payload["step"], int) and payload["step"] >= 0):
        return f"'step' is {payload['step']!r}"
    return None


def load_encoder(path: str | os.PathLike, map_location: Any = "cpu"):
    """Rebuild an encoder saved by :func:`save_encoder` and load its weights.

    ``path`` is what ``--encoder`` takes: an encoder file, a training run folder
    (its ``encoder.pt``, else its last checkpoint) or an encoder weights tag
    (``encoder:stylegan2-emoji-64``).
    """
    from .encoder_runs import encoder_file, install_hint

    path = encoder_file(path)
    payload = read_encoder_checkpoint(path, map_location)
    try:
        with install_hint(path, payload):
            return encoder_from_checkpoint(payload)
    except CheckpointError as exc:
        if str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None


def encoder_from_checkpoint(payload: dict):
    """The encoder of a checkpoint already read by :func:`read_encoder_checkpoint`."""
    geometry = GeneratorGeometry.from_dict(payload["geometry"])
    builder = f"{payload['plugin']}:{payload['builder']}"
    try:
        get_registry().get("encoder", builder)
    except GanencError:
        builder = payload["builder"]
    from .checkpoints import build_checked

    def build():
        return build_encoder(geometry, name=builder, **payload["options"])

    def fits_the_weights(twin: Any) -> None:
        misfit = _weights_misfit(twin.state_dict(), payload["state_dict"])
        if misfit:
            raise CheckpointError(
                f"the encoder checkpoint's weights do not fit the encoder its settings build"
                f" ({misfit})"
            )

    # the options come from the file: its weights are compared with a twin on the meta device
    # (no memory) first, so options far larger than the weights cannot take every byte
    encoder = build_checked(build, "the encoder checkpoint", check=fits_the_weights)
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # missing/unexpected keys or shapes: torch's text lists them
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            "the encoder checkpoint's weights do not fit the encoder its settings build"
            f" ({first[0].strip()})"
        ) from None
    return encoder


def _weights_misfit(expected: dict, found: dict) -> str | None:
    """How ``found`` tensors differ from ``expected`` ones in names or shapes, or ``None``."""
    missing = [k for k in expected if k not in found]
    if missing:
        return f"missing {missing[0]!r}" + (f" and {len(missing) - 1} more" if missing[1:] else "")
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        return f"unexpected {unexpected[0]!r}"
    for key, tensor in expected.items():
        if tuple(found[key].shape) != tuple(tensor.shape):
            return (
                f"{key}: the file holds {tuple(found[key].shape)}, the settings build"
                f" {tuple(tensor.shape)}"
            )
    return None
