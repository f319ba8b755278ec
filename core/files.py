"""Writing the user's files: outputs checked before work starts, atomic writes, strict JSON.

Every command that writes goes through these three rules: an output is checked (free, and
writable) before any work; a file appears whole or not at all (no stale ``.tmp`` after a full
disk or a kill); JSON never holds ``NaN``/``Infinity`` (not JSON; NaN is written as ``null``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, GanencError


def check_output(
    path: str | os.PathLike,
    *,
    folder: bool = False,
    force: bool | None = None,
    option: str = "--out",
    inputs: Iterable[str | os.PathLike] = (),
    dash: bool = False,
) -> Path:
    """Raise unless ``path`` may be written: free (or ``force``) and in a writable place.

    ``folder``: ``path`` is a folder that must be missing or empty.  ``force`` is ``None``
    for a command without ``--force`` (the message then offers only another path).
    ``inputs``: files and folders the command reads; ``path`` may be none of them nor lie
    inside one, ``--force`` or not (a report written over the images it reports on).
    ``dash``: the option takes ``-`` for standard output (a refusal of ``/dev/stdout`` says so).
    A device, pipe or socket (or a link to one) is refused, ``--force`` or not: see
    :func:`refuse_special_file`.
    """
    path = Path(path)
    for given in inputs:
        source = Path(given).resolve()
        target = path.resolve()
        if target == source or (source.is_dir() and target.is_relative_to(source)):
            where = "is" if target == source else "lies in"
            raise GanencError(
                f"{option} {path} {where} the input {given}; choose another {option}"
                " (nothing was written)"
            )
    verb = "write into it" if folder else "overwrite it"
    how = (f"pass --force to {verb} or " if force is not None else "") + f"choose another {option}"
    if folder:
        if path.exists() and not path.is_dir():
            raise GanencError(f"{option} {path} is a file, not a folder")
        if not force and path.is_dir() and any(path.iterdir()):
            raise GanencError(f"{path} already holds files; {how} (nothing was overwritten)")
    else:
        if path.is_dir():
            raise GanencError(f"{option} {path} is a folder; give a file name")
        refuse_special_file(path, option, f"; for standard output give {option} -" if dash else "")
        if not force and path.exists():
            raise GanencError(f"{path} exists; {how} (nothing was overwritten)")
    existing = path if folder and path.exists() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GanencError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GanencError(
            f"cannot write {path}: {existing} is not writable; choose another {option}"
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A path to write ``path``'s new content to, moved onto ``path`` if the block succeeds.

    It has ``path``'s own name, in a temporary folder beside it (removed either way): a
    writer that records its file's name, as ``torch.save`` names the archive inside after
    it, then writes the same bytes as a direct write, so a shipped file's sha256 is
    reproducible.  A symbolic link is replaced by the new file, never written through: a write
    changes only the path it was given (a link in an output folder to a file elsewhere stays
    untouched); a device, pipe or socket is refused, never replaced
    (:func:`refuse_special_file`).
    """
    import tempfile

    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the whole write
        raise GanencError(f"{path} is a folder; give a file name (nothing was written)")
    refuse_special_file(path, "the output")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    ) as folder:
        staged = Path(folder) / path.name
        yield staged
        os.replace(staged, path)


def refuse_special_file(path: Path, option: str, hint: str = "") -> None:
    """Raise if ``path`` (or what its link names) exists but is not a regular file.

    A device, FIFO or socket (``/dev/stdout``, ``/dev/fd/1``, ``<(...)``) cannot be replaced
    by a new file, and must not be (as root, ``/dev/null`` would become a file); nor may the
    file this process's standard output or error is redirected to (``--json out.txt >
    out.txt`` would replace it under the stream).
    """
    try:
        status = os.stat(path)
    except OSError:  # missing (a dangling link: its target is created), or unreadable
        return
    if not stat.S_ISREG(status.st_mode):
        raise GanencError(
            f"{option} {path} is not a regular file (a device, pipe or socket); give the name"
            f" of a file to write{hint} (nothing was written)"
        )
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            stream = os.fstat(fd)
            if (stream.st_dev, stream.st_ino) == (status.st_dev, status.st_ino):
                raise GanencError(
                    f"{option} {path} is where this command's output goes; give another"
                    f" file name{hint} (nothing was written)"
                )


def torch_save(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that leaves either the whole file or the previous one (never a ``.tmp``)."""
    import torch

    with atomic_path(path) as staged:
        try:
            torch.save(payload, staged)
        except RuntimeError as exc:
            # torch's zip writer reports a failed write as a RuntimeError ("unexpected pos");
            # on a full disk it is the OSError every other writer raises
            if shutil.disk_usage(staged.parent).free >= FULL_DISK_BYTES:
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
    return Path(path)


#: Less free space than this after a failed write means the write failed for want of it.
FULL_DISK_BYTES = 1 << 20


def plain_data(value: Any, what: str, *, tensors: bool = False) -> Any:
    """``value`` as data the safe readers take back (``torch.load(weights_only=True)``, JSON).

    Paths become strings, numpy numbers and arrays Python numbers and lists; dicts, lists,
    tuples, numbers, strings and ``None`` stay (tensors too, with ``tensors``).  Anything
    else is refused before a file is written: a writer that pickled it would make a file
    its own reader refuses.
    """
    if isinstance(value, dict):
        bad = next((k for k in value if not isinstance(k, str | int)), None)
        if bad is not None:
            raise ConfigError(f"{what}: the key {bad!r} cannot be saved; use strings")
        return {k: plain_data(v, what, tensors=tensors) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [plain_data(v, what, tensors=tensors) for v in value]
        return items if isinstance(value, list) else tuple(items)
    import numpy as np
    import torch

    if isinstance(value, np.generic | np.ndarray):  # before float: np.float64 is a float
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if tensors and isinstance(value, torch.Tensor):
        return value
    kinds = "numbers, strings, lists, dicts" + (" or tensors" if tensors else " or None")
    raise ConfigError(f"{what}: {type(value).__name__} {value!r:.60} cannot be saved; give {kinds}")


def json_safe(value: Any) -> Any:
    """``value`` with NaN as ``None`` and infinities as ``"inf"``/``"-inf"`` (strict JSON)."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """Strict JSON (see :func:`json_safe`), indented, ending in a newline."""
    return json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """:func:`json_text` of ``data``, written atomically."""
    text = json_text(data)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses ``NaN`` and ``Infinity`` (Python's accepts them)."""
    return json.loads(text, parse_constant=_no_constant)
