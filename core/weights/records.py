"""Hash records: sha256 digests recorded at first download (``sha256.json``) and checked later."""

from __future__ import annotations

import datetime as _datetime
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GanencError
from ..files import atomic_path
from .cache import _locked, weights_dir

if TYPE_CHECKING:
    from .entries import WeightsEntry, WeightsFile

#: The file of sha256 digests recorded at first download (inside the weights folder).
HASHES_FILE = "sha256.json"
CHUNK_BYTES = 1 << 20


def hashes_path() -> Path:
    """The JSON file of digests recorded at first download."""
    return weights_dir() / HASHES_FILE


def _record_key(entry: WeightsEntry, weights_file: WeightsFile) -> str:
    return f"{entry.tag}/{weights_file.filename}"


def _read_records() -> dict[str, Any]:
    path = hashes_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise GanencError(
            f"cannot read the recorded weight hashes {path}: {exc}; fix or delete the file"
        ) from None
    return data if isinstance(data, dict) else {}


def recorded_hash(entry: WeightsEntry, weights_file: WeightsFile) -> str | None:
    """The sha256 recorded for a file at its first download, if any."""
    record = _read_records().get(_record_key(entry, weights_file))
    return record.get("sha256") if isinstance(record, dict) else None


def _write_record(entry: WeightsEntry, weights_file: WeightsFile, record: dict | None) -> None:
    path = hashes_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        records = _read_records()
        if record is None:
            records.pop(_record_key(entry, weights_file), None)
        else:
            records[_record_key(entry, weights_file)] = record
        text = json.dumps(records, indent=2, sort_keys=True) + "\n"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


def record_hash(
    entry: WeightsEntry, weights_file: WeightsFile, digest: str, source: str | None = None
) -> None:
    """Remember a file's digest (trust on first download) for later checks."""
    now = _datetime.datetime.now(_datetime.UTC).replace(microsecond=0).isoformat()
    record = {"sha256": digest, "recorded": now}
    if source:
        record["source"] = source
    _write_record(entry, weights_file, record)


def forget_hash(entry: WeightsEntry, weights_file: WeightsFile) -> None:
    """Drop a recorded digest (after an upstream file was legitimately replaced)."""
    _write_record(entry, weights_file, None)


def _expected_digest(entry: WeightsEntry, weights_file: WeightsFile) -> tuple[str | None, str]:
    """The digest (or prefix) a file must match, and where that expectation comes from."""
    if weights_file.full_sha256:
        return weights_file.sha256, "published sha256"
    recorded = recorded_hash(entry, weights_file)
    if recorded:
        return recorded, f"sha256 recorded at first download ({hashes_path()})"
    if weights_file.sha256:
        return weights_file.sha256, "sha256 prefix in the file name"
    return None, "no known sha256"


def _matches(digest: str, expected: str) -> bool:
    return digest.startswith(expected)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()
