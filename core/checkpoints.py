"""Safe reading of checkpoint files that may come from strangers.

Every loader goes through :func:`read_checkpoint`: ``torch.load`` with
``weights_only=True`` (plus a narrow allow-list of harmless classes a format
needs, such as ``argparse.Namespace``), and one clear
:class:`~ganenc.errors.CheckpointError` per failure mode.  :func:`describe_checkpoint`
names known formats (each generator plugin recognises its own through the
``identify_checkpoint`` hook) so a file given to the wrong family gets a
helpful hint.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import CheckpointError, first_line

logger = logging.getLogger(__name__)


def existing_checkpoint(path: str | os.PathLike) -> Path:
    """``path``, checked to name a non-empty file (one clear error for each other case).

    Every reader of checkpoint files starts here, whatever unpickler it then uses.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"expected a checkpoint file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    return path


def read_checkpoint(
    path: str | os.PathLike,
    *,
    safe_globals: Iterable[Any] = (),
    map_location: Any = "cpu",
    opened: BinaryIO | None = None,
) -> Any:
    """``torch.load(path, weights_only=True)`` with readable errors.

    ``safe_globals`` lists extra classes the format legitimately stores (for
    example ``argparse.Namespace`` in rosinality's ``train.py`` checkpoints).
    ``opened`` is a binary handle on ``path``, at its start, read instead of
    opening the file again (a caller that sniffed the file's head opens it once).
    """
    import torch

    path = existing_checkpoint(path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            source = path if opened is None else opened
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text advises turning weights_only off: only the facts are kept.
        text = str(exc).split("WeightsUnpickler error:")[-1]
        named = re.search(r"GLOBAL ([\w.]+)", text)
        if named:
            raise CheckpointError(
                f"{path} needs code execution to load: it pickles the Python object"
                f" {named.group(1)}, beyond tensors and plain data; ganenc refuses such files"
            ) from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        detail = re.split(r"\. (?=[A-Z])", (lines or [""])[0])[0].rstrip(".")
        detail = _foreign_bytes(path) or detail
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ganenc can read ({detail})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a stranger's bytes can break the parser anywhere
        # (RuntimeError, BadZipFile, EOFError, struct.error, IndexError, ...); weights_only
        # already guarantees no code ran, so every failure is "not a checkpoint we can read".
        message = first_line(exc)
        hint = "truncated or corrupt" if _looks_truncated(path) else "not a PyTorch checkpoint"
        message = _foreign_bytes(path) or message
        raise CheckpointError(f"{path} is {hint} ({message})") from None


def read_ganenc_file(path: str | os.PathLike, what: str, made_by: str) -> Any:
    """:func:`read_checkpoint` for a file ganenc writes: errors say what the file is not and
    which command makes a valid one (never how to loosen the safe loading)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return read_checkpoint(path)
    except CheckpointError as exc:
        reason = str(exc).removeprefix(f"{path} ").removeprefix("is ")
        raise CheckpointError(f"{path} is not a readable {what} ({reason}); {made_by}") from None


def _head(path: Path, size: int = 16) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def _foreign_bytes(path: Path) -> str | None:
    """Why a file that is neither torch's zip archive nor a pickle cannot be one, showing its
    first bytes (an HTML page saved by a failed download starts ``b'<!DOCTYPE html'``)."""
    head = _head(path)
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return None
    return f"neither torch's zip archive nor a binary pickle; it starts with {head!r}"


def _looks_truncated(path: Path) -> bool:
    """A zip-format torch file whose end-of-archive record is missing."""
    if _head(path, 4) != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path):
            return False
    except zipfile.BadZipFile:
        return True


@dataclass(frozen=True)
class CheckpointIdentity:
    """A plugin's answer to ``identify_checkpoint``: which generator loads a file."""

    gan: str  # the registered generator name that loads the file, e.g. "pggan"
    description: str  # a short phrase for messages, e.g. "a genforce PGGAN checkpoint"

    @property
    def hint(self) -> str:
        """The wrong-``--gan`` hint: ``this file is ...; use --gan pggan``."""
        return f"this file is {self.description}; use --gan {self.gan}"


def identify_checkpoint(obj: Any) -> CheckpointIdentity | None:
    """Ask the installed generator plugins which family a loaded checkpoint belongs to.

    The engine knows no GAN family: each plugin recognises its own layouts
    through the ``identify_checkpoint`` hook.  A plugin that fails here costs
    only its own hint (logged), never another plugin's nor the error message
    being built.
    """
    if not isinstance(obj, Mapping):
        return None
    from .registry import get_registry, short_error

    hook = get_registry().plugin_manager.hook.identify_checkpoint
    for impl in reversed(hook.get_hookimpls()):  # pluggy's call order
        try:
            identity = impl.function(checkpoint=obj)
        except Exception as exc:  # noqa: BLE001 - a broken plugin costs only its own hint
            logger.warning(
                "plugin %r failed to identify a checkpoint (%s); its hint is skipped",
                impl.plugin_name,
                short_error(exc),
            )
            continue
        if identity is not None:
            return identity
    return None


def describe_checkpoint(obj: Any) -> str:
    """A short human name for a loaded checkpoint's format, for error messages."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__} object"
    keys = set(obj)
    fmt = obj.get("format")
    if isinstance(fmt, str) and fmt.startswith("ganenc-encoder"):
        from .encoders import ENCODER_FORMAT

        if fmt == ENCODER_FORMAT:
            return "a ganenc encoder checkpoint"
        name, current = repr(fmt[:40]), ENCODER_FORMAT.rpartition("/")[2]
        newer = re.fullmatch(r"ganenc-encoder/(\d{1,9})", fmt)
        if newer and int(newer.group(1)) > int(current):
            return (
                f"a ganenc encoder checkpoint of format {name}, which this version of ganenc"
                f" cannot read (it reads {ENCODER_FORMAT}): upgrade ganenc"
            )
        return (
            f"a ganenc encoder checkpoint of unknown format {name} (ganenc reads {ENCODER_FORMAT})"
        )
    identity = identify_checkpoint(obj)
    if identity is not None:
        return identity.description
    if all(isinstance(key, str) for key in keys) and keys:
        return f"a state dict with keys such as {sorted(keys)[:3]}"
    return "an unrecognised checkpoint"


#: Largest model a checkpoint may make ganenc build (parameters and buffers).  Real GAN
#: generators are well below 1 GiB; a crafted file can declare shapes worth terabytes.
MAX_MODEL_BYTES = 16 << 30


def build_checked(
    build: Callable[[], Any],
    where: str,
    limit: int = MAX_MODEL_BYTES,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """``build()``, after a twin built on the ``meta`` device (no memory) shows it fits ``limit``.

    Architectures inferred from a stranger's file are only known to be sane once their size
    is; the meta twin measures it without allocating a byte.  ``check(twin)`` may refuse
    it for other reasons (its weights' shapes against the file's).
    """
    import torch

    try:
        with torch.device("meta"):
            twin = build()
    except (NotImplementedError, RuntimeError):  # a builder that computes values: measure later
        twin = None
    if twin is not None:
        size = sum(t.numel() * t.element_size() for t in (*twin.parameters(), *twin.buffers()))
        if size > limit:
            raise CheckpointError(
                f"{where}: the model it describes would take {size / 2**30:,.1f} GiB"
                f" (ganenc builds at most {limit / 2**30:,.0f} GiB); a damaged or crafted file,"
                " or options far too large"
            )
        if check is not None:
            check(twin)
    return build()


def weights_problem(state_dict: Mapping[str, Any]) -> str | None:
    """What makes these weights unusable (NaN/inf, or nothing but zeros), or ``None``: asked of
    every network file ganenc loads (feature networks, encoders)."""
    import torch

    floats = {
        k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
    }
    diverged = next((k for k, v in floats.items() if not bool(torch.isfinite(v).all())), None)
    if diverged is not None:
        return f"its weights hold NaN or inf ({diverged})"
    if floats and not any(bool(v.any()) for v in floats.values()):
        return "its weights are all zero (not a trained network)"
    return None
