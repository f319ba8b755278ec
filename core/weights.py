"""The model zoo: pretrained weights named by tags, downloaded once, verified, cached.

A tag is ``family:name``, e.g. ``stylegan2:ffhq-1024`` or ``features:vgg16``.
Plugins contribute tags through the ``register_weights`` hook; each is a
:class:`WeightsEntry` listing its file(s), their download URLs (mirrors, tried in
order), the file format, the architecture the file must produce, its licence and
its source.  ``ganenc.load_generator("stylegan2", "stylegan2:ffhq-1024")`` and
``--checkpoint stylegan2:ffhq-1024`` turn a tag into a local file through
:func:`resolve_checkpoint`; strings that are not tags (paths) pass unchanged.

Where files live:

- generator weights: ``$GANENC_HOME/weights/<family>/<name>/<file>`` (``GANENC_HOME``
  defaults to the user's cache folder, e.g. ``~/.cache/ganenc``);
- feature networks (``cache="torch-hub"``): torch's hub cache,
  ``$TORCH_HOME/hub/checkpoints/<file>``, so weights that torchvision, pytorch-fid
  or torch-fidelity already fetched are found and vice versa;
- weights shipped inside a distribution (``cache="package"``, e.g. the emoji
  models): the folder of the importable package ``package``.  They are never
  downloaded; their full sha256 is known, ``verify`` checks it and never deletes
  them (a mismatch means a broken install: reinstall the distribution).

Downloads use only the standard library (``urllib``): a socket timeout, retries
with back-off, ``HTTP Range`` resumption of ``<file>.part``, an atomic rename, a
lock against concurrent processes (DDP ranks), a rich progress bar on terminals,
and a sha256 check.  Where no published hash exists (the torch.hub file-name
prefix ``name-<sha256 prefix>.ext`` counts as one), the digest is recorded at first
download in ``$GANENC_HOME/weights/sha256.json`` and the user is told; later
downloads and ``ganenc weights verify`` are checked against it.  A file that fails
its check is deleted, never kept.  Nothing is downloaded at import time, and
``GANENC_OFFLINE=1`` forbids downloads (cached files still work).  When a file
cannot be fetched, one :class:`WeightsDownloadError` names each URL and the exact
path at which to place the file by hand.

This module imports neither torch nor rich at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _datetime
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import (
    CheckpointError,
    ConfigError,
    GanencError,
    UnknownComponentError,
    WeightsNotFoundError,
)
from .files import atomic_path

if TYPE_CHECKING:
    from .registry import ComponentSpec, Registry

logger = logging.getLogger(__name__)

#: Folder of ganenc's caches (weights under ``weights/``); default: the user cache folder.
HOME_ENV = "GANENC_HOME"
#: ``GANENC_OFFLINE=1`` forbids downloads (cached files and explicit paths still work).
OFFLINE_ENV = "GANENC_OFFLINE"
#: Seconds a socket may stall (connect or read) before a download attempt gives up.
DOWNLOAD_TIMEOUT_ENV = "GANENC_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT = 10.0
#: Further attempts after a failed one (timeouts, resets, 5xx), each resuming the part file.
DOWNLOAD_RETRIES_ENV = "GANENC_DOWNLOAD_RETRIES"
DEFAULT_DOWNLOAD_RETRIES = 3
#: First pause between attempts, doubled after each failure.
RETRY_BACKOFF_SECONDS = 0.2
#: The file of sha256 digests recorded at first download (inside the weights folder).
HASHES_FILE = "sha256.json"
PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"
CHUNK_BYTES = 1 << 20

_PART_RE = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
#: ``family:name``: what a weights tag looks like (also on the command line).
TAG_RE = re.compile(rf"^({_PART_RE}):({_PART_RE})$")
_HEX_RE = re.compile(r"^[0-9a-f]{8,64}$")
_HUB_HASH_RE = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


class WeightsDownloadError(WeightsNotFoundError):
    """Weights could not be fetched: the message names each URL and where to put the file."""

    def __init__(self, message: str, reasons: Iterable[str] = ()) -> None:
        super().__init__(message)
        #: ``"<url>: <why>"`` for each URL that was tried.
        self.reasons = list(reasons)


class WeightsHashError(WeightsDownloadError):
    """A file's sha256 differs from the expected one; the file was deleted."""


# -- entries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightsFile:
    """One file of a weights entry.

    ``filename`` is its name in the cache; ``urls`` are mirrors of the same bytes,
    tried in order.  ``sha256`` is the full hex digest, or a prefix of it of at
    least 8 characters (torch.hub's ``name-<prefix>.ext`` convention), or ``None``
    when unknown (then it is recorded at first download).  ``aliases`` are other
    names under which other tools store the same bytes in the same cache folder
    (e.g. torch-fidelity's name of the FID Inception weights).
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.urls, str):
            object.__setattr__(self, "urls", (self.urls,))
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ConfigError(f"weights file name {self.filename!r} must be a plain file name")
        if self.sha256 is not None:
            digest = self.sha256.lower()
            if not _HEX_RE.match(digest):
                raise ConfigError(
                    f"sha256 of {self.filename!r} must be 8 to 64 hex digits, got {self.sha256!r}"
                )
            object.__setattr__(self, "sha256", digest)

    @classmethod
    def from_hub_url(cls, url: str, *mirrors: str, **fields: Any) -> WeightsFile:
        """A file named like the URL's last part, its sha256 prefix read from a torch.hub name."""
        filename = url.rsplit("/", 1)[-1]
        match = _HUB_HASH_RE.search(filename)
        fields.setdefault("sha256", match.group(1) if match else None)
        return cls(filename=filename, urls=(url, *mirrors), **fields)

    @property
    def full_sha256(self) -> bool:
        """Whether the complete digest is known (not only a prefix)."""
        return self.sha256 is not None and len(self.sha256) == 64


@dataclass(frozen=True)
class WeightsEntry:
    """A tagged set of pretrained weights: files, format, architecture, licence, source.

    ``tag`` is ``family:name`` (the family is the generator's registered name,
    or ``features`` for feature networks).  ``resolution`` and ``latents``
    (latent name -> size, e.g. ``{"z": 512}``) are what the loaded generator
    must show; ``load_generator`` checks them.  With several files (or
    ``folder=True``) the files are stored in one folder and the checkpoint path
    is that folder (e.g. HuggingFace BigGAN: ``config.json`` + ``pytorch_model.bin``).
    ``notes`` are shown in listings and in download errors (e.g. "OneDrive link:
    may need manual download").  ``cache="package"`` with ``package="dist.assets"``
    names files shipped in that importable package's folder (never downloaded).
    The entry is callable (returns itself) so it can be registered directly as a
    component factory.
    """

    tag: str
    files: tuple[WeightsFile, ...]
    format: str
    description: str = ""
    resolution: int | None = None
    latents: Mapping[str, int] = field(default_factory=dict)
    licence: str = "unknown"
    source: str = ""
    notes: str = ""
    cache: Literal["ganenc", "torch-hub", "package"] = "ganenc"
    folder: bool | None = None
    package: str | None = None

    def __post_init__(self) -> None:
        if not TAG_RE.match(self.tag):
            raise ConfigError(f"invalid weights tag {self.tag!r}: use family:name, e.g. x:ffhq-256")
        if isinstance(self.files, WeightsFile):
            object.__setattr__(self, "files", (self.files,))
        object.__setattr__(self, "files", tuple(self.files))
        if not self.files:
            raise ConfigError(f"weights {self.tag!r} list no files")
        names = [f.filename for f in self.files]
        if len(set(names)) != len(names):
            raise ConfigError(f"weights {self.tag!r} list a file name twice: {names}")
        if self.cache not in ("ganenc", "torch-hub", "package"):
            raise ConfigError(
                f"weights {self.tag!r}: cache must be 'ganenc', 'torch-hub' or 'package'"
            )
        if self.cache == "torch-hub" and self.is_folder:
            raise ConfigError(f"weights {self.tag!r}: the torch hub cache holds single files only")
        if (self.cache == "package") != (self.package is not None):
            raise ConfigError(
                f"weights {self.tag!r}: give package=<importable package> exactly when"
                " cache='package'"
            )
        if self.cache == "package" and not all(f.full_sha256 for f in self.files):
            raise ConfigError(f"weights {self.tag!r}: packaged files need their full sha256")

    def __call__(self) -> WeightsEntry:
        return self

    @property
    def family(self) -> str:
        return self.tag.partition(":")[0]

    @property
    def name(self) -> str:
        return self.tag.partition(":")[2]

    @property
    def is_folder(self) -> bool:
        return bool(self.folder) if self.folder is not None else len(self.files) > 1

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (``ganenc weights list --json``)."""
        return {
            "tag": self.tag,
            "family": self.family,
            "format": self.format,
            "description": self.description,
            "resolution": self.resolution,
            "latents": dict(self.latents),
            "licence": self.licence,
            "source": self.source,
            "notes": self.notes,
            "path": str(local_path(self)),
            "status": cache_status(self),
            "files": [
                {
                    "filename": f.filename,
                    "urls": list(f.urls),
                    "sha256": f.sha256,
                    "recorded_sha256": recorded_hash(self, f),
                    "size": f.size,
                    "path": str(file_path(self, f)),
                }
                for f in self.files
            ],
        }


def register_entries(register: Callable[..., Any], entries: Iterable[WeightsEntry]) -> None:
    """Register each entry under its tag (what a plugin's ``register_weights`` hook calls)."""
    for entry in entries:
        register(entry.tag, entry, description=entry.description, family=entry.family)


def entry_from_spec(spec: ComponentSpec) -> WeightsEntry:
    """The :class:`WeightsEntry` a registered ``weights`` component stands for."""
    factory = spec.load_factory()
    entry = factory if isinstance(factory, WeightsEntry) else factory()
    if not isinstance(entry, WeightsEntry):
        raise GanencError(
            f"weights {spec.qualified_name!r} of plugin {spec.plugin!r} is a"
            f" {type(entry).__name__}, not a ganenc.weights.WeightsEntry"
        )
    if entry.tag != spec.name:
        raise GanencError(
            f"plugin {spec.plugin!r} registered weights {entry.tag!r} under the tag {spec.name!r}"
        )
    return entry


def is_tag(checkpoint: object) -> bool:
    """Whether ``checkpoint`` is a weights tag (``family:name``) rather than a path.

    A string that names an existing file or folder is a path even when it looks
    like a tag.
    """
    if not isinstance(checkpoint, str) or not TAG_RE.match(checkpoint):
        return False
    return not Path(checkpoint).exists()


def list_entries(family: str | None = None, registry: Registry | None = None) -> list[WeightsEntry]:
    """Every registered weights entry (of one family), sorted by tag."""
    from .registry import get_registry

    registry = registry or get_registry()
    found = []
    for spec in registry.components("weights"):
        if family is None or spec.name.partition(":")[0] == family:
            found.append(entry_from_spec(spec))
    return sorted(found, key=lambda e: e.tag)


def weights_entry(tag: str, registry: Registry | None = None) -> WeightsEntry:
    """The entry registered under ``tag``; the family may be a generator alias."""
    from .registry import get_registry

    registry = registry or get_registry()
    match = TAG_RE.match(tag)
    if not match:
        raise ConfigError(f"{tag!r} is not a weights tag (family:name, e.g. stylegan2:ffhq-1024)")
    family, name = match.groups()
    tags = {spec.name: spec for spec in registry.components("weights")}
    canonical = _canonical_family(family, registry)
    for candidate in dict.fromkeys((tag, f"{canonical}:{name}")):
        if candidate in tags:
            return entry_from_spec(registry.get("weights", candidate))
    same_family = sorted(t for t in tags if t.partition(":")[0] in {family, canonical})
    known = ", ".join(same_family) if same_family else "none"
    raise UnknownComponentError(
        f"no weights tagged {tag!r} (nor a file of that name); tags of family {canonical!r}:"
        f" {known}. See 'ganenc weights list'."
    )


def _canonical_family(family: str, registry: Registry) -> str:
    """A generator alias (``stylegan``) -> its registered name (``stylegan1``)."""
    try:
        return registry.get("generator", family).name
    except GanencError:
        return family


# -- where files live ---------------------------------------------------------------------------
def default_cache_home() -> Path:
    """The user cache folder for ganenc (XDG on Linux, Library/Caches on macOS, LOCALAPPDATA)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return Path(base) / "ganenc" / "Cache"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Caches")) / "ganenc"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "ganenc"


def ganenc_home() -> Path:
    """``$GANENC_HOME``, else :func:`default_cache_home`."""
    value = os.environ.get(HOME_ENV)
    home = Path(os.path.expanduser(value)) if value else default_cache_home()
    if home.exists() and not home.is_dir():
        raise GanencError(
            f"the cache folder {home} is a file; set {HOME_ENV} to a folder (or move the file)"
        )
    return home


def weights_dir() -> Path:
    """Where generator weights are cached: ``$GANENC_HOME/weights``."""
    return ganenc_home() / "weights"


def torch_hub_checkpoint_dir() -> Path:
    """torch's hub cache for weight files (``torch.hub.get_dir()/checkpoints``).

    Computed as torch does (``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else
    ``~/.cache/torch``) without importing torch; when torch is already imported
    its own answer (which honours ``torch.hub.set_dir``) is used.
    """
    if "torch" in sys.modules:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def package_dir(package: str) -> Path:
    """The folder of an importable package (where packaged weights files lie)."""
    import importlib.resources

    try:
        return Path(str(importlib.resources.files(package)))
    except (ModuleNotFoundError, TypeError) as exc:
        raise WeightsNotFoundError(
            f"the package {package!r} that ships these weights is not installed ({exc})"
        ) from None


def _folder(entry: WeightsEntry) -> Path:
    """The folder an entry's files live in (its own folder under ``weights_dir`` by default)."""
    if entry.cache == "torch-hub":
        return torch_hub_checkpoint_dir()
    if entry.cache == "package":
        return package_dir(str(entry.package))
    return weights_dir() / entry.family / entry.name


def local_path(entry: WeightsEntry) -> Path:
    """The checkpoint path of an entry: its file, or its folder for multi-file entries."""
    if entry.is_folder and entry.cache == "ganenc":
        return _folder(entry)
    return _folder(entry) / entry.files[0].filename


def file_path(entry: WeightsEntry, weights_file: WeightsFile) -> Path:
    """Where one file of ``entry`` is stored (and where to place it by hand)."""
    return _folder(entry) / weights_file.filename


def find_file(entry: WeightsEntry, weights_file: WeightsFile) -> Path | None:
    """The cached copy of a file (under its name or one of its aliases), or ``None``."""
    path = file_path(entry, weights_file)
    for candidate in (path, *(path.with_name(alias) for alias in weights_file.aliases)):
        if candidate.is_file():
            return candidate
    return None


def cached_path(entry: WeightsEntry) -> Path | None:
    """The checkpoint path if every file is cached (a file may sit under an alias), else None."""
    found = [find_file(entry, f) for f in entry.files]
    if any(path is None for path in found):
        return None
    return local_path(entry) if entry.is_folder else found[0]


def cache_status(entry: WeightsEntry) -> str:
    """``cached`` (``packaged`` for shipped files), ``partial`` (some files, or an
    interrupted download) or ``missing``."""
    present = [find_file(entry, f) is not None for f in entry.files]
    if all(present):
        return "packaged" if entry.cache == "package" else "cached"
    parts = [_part_path(file_path(entry, f)).exists() for f in entry.files]
    return "partial" if any(present) or any(parts) else "missing"


def _part_path(path: Path) -> Path:
    return path.with_name(path.name + PART_SUFFIX)


# -- settings from the environment -------------------------------------------------------------
def offline() -> bool:
    """Whether ``GANENC_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def download_timeout() -> float:
    """The socket timeout of a download, from ``GANENC_DOWNLOAD_TIMEOUT`` (seconds)."""
    value = os.environ.get(DOWNLOAD_TIMEOUT_ENV)
    if not value:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        raise ConfigError(f"{DOWNLOAD_TIMEOUT_ENV}={value!r} is not a number of seconds") from None
    if timeout <= 0:
        raise ConfigError(f"{DOWNLOAD_TIMEOUT_ENV} must be positive, got {value!r}")
    return timeout


def download_retries() -> int:
    """How many times a failed attempt is retried, from ``GANENC_DOWNLOAD_RETRIES``."""
    value = os.environ.get(DOWNLOAD_RETRIES_ENV)
    if not value:
        return DEFAULT_DOWNLOAD_RETRIES
    try:
        retries = int(value)
    except ValueError:
        raise ConfigError(f"{DOWNLOAD_RETRIES_ENV}={value!r} is not a whole number") from None
    if retries < 0:
        raise ConfigError(f"{DOWNLOAD_RETRIES_ENV} must be 0 or more, got {value!r}")
    return retries


# -- recorded hashes ----------------------------------------------------------------------------
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


# -- telling the user ----------------------------------------------------------------------------
def _tell(message: str) -> None:
    """A line on stderr for the person at the terminal (and the log)."""
    logger.info(message)
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _progress_bar(
    label: str, total: int | None, completed: int, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; ``advance(n)`` adds received bytes."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=total, completed=completed)
        yield lambda n: progress.advance(task, n)


# -- downloading ---------------------------------------------------------------------------------
class _PermanentHTTPError(Exception):
    """An HTTP answer that retrying the same URL will not change (404, 403, ...)."""


def _transient(exc: BaseException) -> bool:
    """Worth another attempt at the same URL: timeouts, resets, short reads, 5xx, 408, 429.

    A refused connection, an unknown host name (offline) and a missing or
    unreadable local ``file://`` file fail at once.
    """
    import http.client  # network modules load only when a download happens
    import socket
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(
        reason, ConnectionRefusedError | socket.gaierror | FileNotFoundError | PermissionError
    ):
        return False
    return isinstance(exc, urllib.error.URLError | OSError | http.client.HTTPException)


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    return int(match.group(1)) if match else None


def _fetch_once(
    url: str, part: Path, timeout: float, progress: bool, label: str
) -> tuple[str, bool]:
    """One attempt: fetch ``url`` into ``part`` (resuming it); returns (sha256, resumed)."""
    import http.client  # network modules load only when a download happens
    import urllib.error
    import urllib.request

    offset = part.stat().st_size if part.exists() else 0
    headers = {
        "User-Agent": "ganenc (+https://pypi.org/project/ganenc)",
        "Accept-Encoding": "identity",
    }
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file is not a prefix of this file: start over
            part.unlink(missing_ok=True)
            return _fetch_once(url, part, timeout, progress, label)
        if not _transient(exc):
            raise _PermanentHTTPError(f"HTTP {exc.code} {exc.reason}") from None
        raise
    with response:
        resumed = bool(offset) and response.status == 206
        if resumed and _content_range_start(response.headers.get("Content-Range")) != offset:
            resumed = False
        if not resumed:
            offset = 0
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        total = offset + length if length is not None else None
        hasher = hashlib.sha256()
        if resumed:
            with part.open("rb") as existing:
                while chunk := existing.read(CHUNK_BYTES):
                    hasher.update(chunk)
        received = 0
        with (
            part.open("ab" if resumed else "wb") as handle,
            _progress_bar(label, total, offset, progress) as advance,
        ):
            while chunk := response.read(CHUNK_BYTES):
                handle.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                advance(len(chunk))
        if length is not None and received != length:
            raise http.client.IncompleteRead(b"", length - received)
    return hasher.hexdigest(), resumed


def download_file(
    urls: str | Iterable[str],
    destination: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    progress: bool | None = None,
    label: str | None = None,
) -> tuple[str, str]:
    """Download the first URL that works to ``destination``; returns ``(sha256, url)``.

    Bytes go to ``<destination>.part``, which a later attempt (or a later call)
    resumes with an HTTP ``Range`` request; the finished file is checked against
    ``sha256`` (full digest or prefix) and ``size``, then renamed into place
    atomically.  A file that fails the check is deleted (after a resumed
    download, it is fetched once more from scratch first) and the next mirror
    is tried.  Timeouts, resets and
    5xx answers are retried ``retries`` times with back-off; 4xx answers move on
    to the next mirror.  Raises :class:`WeightsHashError` on a bad file and
    :class:`WeightsDownloadError` when no URL works.
    """
    destination = Path(destination)
    created = _make_folders(destination.parent)
    try:
        return _download_file(urls, destination, sha256, size, timeout, retries, progress, label)
    except BaseException:
        # No litter: an empty part file cannot be resumed, and folders made for nothing go.
        part = _part_path(destination)
        if part.is_file() and part.stat().st_size == 0:
            part.unlink(missing_ok=True)
        _remove_empty_folders(created)
        raise


def _make_folders(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, deepest first."""
    created = []
    current = folder
    while not current.exists() and current != current.parent:
        created.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another download), or already gone
            return


def _download_file(
    urls: str | Iterable[str],
    destination: Path,
    sha256: str | None,
    size: int | None,
    timeout: float | None,
    retries: int | None,
    progress: bool | None,
    label: str | None,
) -> tuple[str, str]:
    import http.client  # network modules load only when a download happens
    import urllib.error

    urls = [urls] if isinstance(urls, str) else list(urls)
    part = _part_path(destination)
    timeout = download_timeout() if timeout is None else timeout
    retries = download_retries() if retries is None else retries
    progress = sys.stderr.isatty() if progress is None else progress
    label = label or destination.name
    expected = sha256.lower() if sha256 else None
    failures: list[str] = []
    bad_files: list[str] = []
    for url in urls:
        attempt = 0
        restarted = False
        while True:
            try:
                digest, resumed = _fetch_once(url, part, timeout, progress, label)
            except (_PermanentHTTPError, ValueError) as exc:  # 4xx, or not a usable URL
                failures.append(f"{url}: {exc}")
                break
            except Exception as exc:  # noqa: BLE001 - classified below; others are re-raised
                if not isinstance(exc, urllib.error.URLError | OSError | http.client.HTTPException):
                    raise
                attempt += 1
                reason = _describe(exc)
                if attempt > retries or not _transient(exc):
                    failures.append(f"{url}: {reason}")
                    break
                logger.warning(
                    "download of %s failed (%s); retry %d/%d", url, reason, attempt, retries
                )
                time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            actual_size = part.stat().st_size
            problem = None
            if expected and not _matches(digest, expected):
                problem = f"sha256 {digest} does not match the expected {expected}"
            elif size is not None and actual_size != size:
                problem = f"size {actual_size} bytes differs from the expected {size}"
            if problem is None:
                os.replace(part, destination)
                return digest, url
            part.unlink(missing_ok=True)
            if resumed and not restarted:  # the old part file may have been the bad bit
                restarted = True
                logger.warning("resumed download of %s failed its check; starting over", url)
                continue
            bad_files.append(f"{url}: {problem}")
            break  # another mirror may serve the right file
    if bad_files:
        raise WeightsHashError(
            f"downloaded {'; '.join(bad_files)}; the file was deleted, nothing was kept at"
            f" {destination}",
            bad_files + failures,
        )
    raise WeightsDownloadError(
        f"cannot download {destination.name}: {'; '.join(failures)}."
        f" Download it yourself and save it as {destination}",
        failures,
    )


def _describe(exc: BaseException) -> str:
    import http.client  # network modules load only when a download happens
    import urllib.error

    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({exc.expected} bytes missing)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` (POSIX), so concurrent ranks download once.

    The lock file is removed on release (no litter in ``GANENC_HOME``); a process that
    locked a file removed meanwhile sees another inode at the path and locks again.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    created = _make_folders(path.parent)
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        while True:
            handle = open(lock_path, "a+b")  # noqa: SIM115 - closed below
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(lock_path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(handle.fileno()).st_ino:
                break
            handle.close()  # the holder before us removed that file: lock the new one
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
    finally:
        _remove_empty_folders(created)


def manual_instructions(entry: WeightsEntry, files: Iterable[WeightsFile] | None = None) -> str:
    """``download URL and save it as PATH`` for each (missing) file, then the entry's notes."""
    files = list(entry.files if files is None else files)
    steps = [
        f"download {f.urls[0] if f.urls else '(no URL known)'} and save it as {file_path(entry, f)}"
        for f in files
    ]
    text = "; ".join(steps)
    if entry.notes:
        text += f". Note: {entry.notes}"
    return text


def fetch(
    entry: WeightsEntry | str,
    *,
    download: bool | None = None,
    force: bool = False,
    progress: bool | None = None,
    timeout: float | None = None,
    retries: int | None = None,
) -> Path:
    """The local checkpoint path of ``entry`` (or a tag), downloading missing files.

    ``download=None`` downloads unless ``GANENC_OFFLINE`` is set; ``force``
    fetches again even if cached.  Cached files are used without network
    access.  Raises :class:`WeightsDownloadError` naming each URL and the path
    to place the file at by hand.
    """
    if isinstance(entry, str):
        entry = weights_entry(entry)
    if entry.cache == "package":
        return _packaged_path(entry)
    for weights_file in entry.files:
        if not force and find_file(entry, weights_file) is not None:
            continue
        try:
            _fetch_file(entry, weights_file, download, force, progress, timeout, retries)
        except WeightsHashError:
            raise
        except WeightsDownloadError as exc:
            missing = [f for f in entry.files if find_file(entry, f) is None]
            raise WeightsDownloadError(
                f"{exc}. To place the weights by hand, {manual_instructions(entry, missing)}"
            ) from None
    return cached_path(entry) or local_path(entry)


def _packaged_path(entry: WeightsEntry) -> Path:
    """The shipped file(s) of a ``cache="package"`` entry; never downloaded."""
    missing = [file_path(entry, f) for f in entry.files if find_file(entry, f) is None]
    if missing:
        raise WeightsNotFoundError(
            f"weights {entry.tag} ship with the package {entry.package!r}, but"
            f" {', '.join(map(str, missing))} is missing: the installation is incomplete;"
            " reinstall the distribution that provides it"
        )
    return local_path(entry)


def _fetch_file(
    entry: WeightsEntry,
    weights_file: WeightsFile,
    download: bool | None,
    force: bool,
    progress: bool | None,
    timeout: float | None,
    retries: int | None,
) -> None:
    destination = file_path(entry, weights_file)
    if download is None:
        download = not offline()
    if not download:
        raise WeightsDownloadError(
            f"weights {entry.tag} are not cached and downloads are off ({OFFLINE_ENV}=1)"
        )
    if not weights_file.urls:
        raise WeightsDownloadError(f"weights {entry.tag} have no download URL")
    with _locked(destination):
        if not force and destination.is_file():  # another process finished it meanwhile
            return
        expected, origin = _expected_digest(entry, weights_file)
        _tell(f"downloading {entry.tag} ({weights_file.filename}) to {destination}")
        try:
            digest, url = download_file(
                weights_file.urls,
                destination if not force else destination.with_name(destination.name + ".new"),
                sha256=expected,
                size=weights_file.size,
                timeout=timeout,
                retries=retries,
                progress=progress,
                label=f"{entry.tag} {weights_file.filename}",
            )
        except WeightsHashError as exc:
            raise WeightsHashError(
                f"weights {entry.tag}: {exc} (expected: {origin}). If the upstream file was"
                f" replaced on purpose, run 'ganenc weights verify {entry.tag} --forget' and retry."
            ) from None
        except WeightsDownloadError as exc:
            reasons = "; ".join(exc.reasons) or str(exc)
            raise WeightsDownloadError(f"cannot download weights {entry.tag}: {reasons}") from None
        if force:
            os.replace(destination.with_name(destination.name + ".new"), destination)
        remember_download(entry, weights_file, digest, url)
        _tell(f"saved {entry.tag} to {destination}")


def remember_download(
    entry: WeightsEntry, weights_file: WeightsFile, digest: str, url: str
) -> None:
    """Record a fresh download's digest when no full published one exists, and say so."""
    if weights_file.full_sha256 or recorded_hash(entry, weights_file) == digest:
        return
    record_hash(entry, weights_file, digest, url)
    checked = (
        f"it matches the prefix {weights_file.sha256} in its file name; "
        if weights_file.sha256
        else "no published checksum exists; "
    )
    _tell(
        f"recorded sha256 {digest} of {entry.tag} ({weights_file.filename}): {checked}"
        f"later downloads and 'ganenc weights verify {entry.tag}' are checked against it"
        f" ({hashes_path()})"
    )


# -- verifying -----------------------------------------------------------------------------------
@dataclass
class VerifyResult:
    """The outcome of checking one cached file."""

    tag: str
    filename: str
    path: Path
    status: Literal["ok", "recorded", "mismatch", "missing"]
    sha256: str | None = None
    detail: str = ""


def verify(entry: WeightsEntry | str, *, forget: bool = False) -> list[VerifyResult]:
    """Hash every cached file of ``entry`` and compare it with what is known.

    Files matching the published or recorded sha256 are ``ok``; files with no
    known hash get one recorded (``recorded``); files that differ are deleted
    (``mismatch``), so the cache never keeps them.  ``forget`` drops the recorded
    hashes first (use after an upstream file was replaced on purpose).
    """
    if isinstance(entry, str):
        entry = weights_entry(entry)
    results = []
    for weights_file in entry.files:
        if forget:
            forget_hash(entry, weights_file)
        path = find_file(entry, weights_file)
        if path is None:
            results.append(
                VerifyResult(
                    entry.tag, weights_file.filename, file_path(entry, weights_file), "missing"
                )
            )
            continue
        if path.name != weights_file.filename:
            # Found under another tool's name: the published hash belongs to the primary
            # name, so this copy is only checked against what was recorded for it.
            weights_file = dataclasses.replace(weights_file, filename=path.name, sha256=None)
        digest = sha256_of(path)
        expected, origin = _expected_digest(entry, weights_file)
        if entry.cache == "package" and not _matches(digest, str(weights_file.sha256)):
            detail = (
                f"expected {weights_file.sha256} (shipped with {entry.package}); the installed"
                " file differs: reinstall the distribution (the file was kept)"
            )
            results.append(
                VerifyResult(entry.tag, weights_file.filename, path, "mismatch", digest, detail)
            )
        elif weights_file.size is not None and path.stat().st_size != weights_file.size:
            path.unlink()
            detail = f"size differs from {weights_file.size} bytes; deleted"
            results.append(
                VerifyResult(entry.tag, weights_file.filename, path, "mismatch", digest, detail)
            )
        elif expected is None:
            record_hash(entry, weights_file, digest, "verify")
            detail = f"no known sha256; recorded in {hashes_path()}"
            results.append(
                VerifyResult(entry.tag, weights_file.filename, path, "recorded", digest, detail)
            )
        elif _matches(digest, expected):
            if not weights_file.full_sha256 and recorded_hash(entry, weights_file) is None:
                record_hash(entry, weights_file, digest, "verify")
            results.append(
                VerifyResult(entry.tag, weights_file.filename, path, "ok", digest, origin)
            )
        else:
            path.unlink()
            detail = f"expected {expected} ({origin}); the file was deleted"
            results.append(
                VerifyResult(entry.tag, weights_file.filename, path, "mismatch", digest, detail)
            )
    return results


# -- generator checkpoints -----------------------------------------------------------------------
def resolve_checkpoint(
    generator: str, checkpoint: Any, registry: Registry | None = None, **fetch_options: Any
) -> Any:
    """A checkpoint argument with tags turned into local paths (downloading if needed).

    ``resolve_checkpoint("stylegan2", "stylegan2:ffhq-1024")`` returns the cached
    file's path as a string; anything that is not a tag (``None``, paths) is
    returned unchanged.
    """
    return resolve_checkpoint_entry(generator, checkpoint, registry, **fetch_options)[0]


def resolve_checkpoint_entry(
    generator: str, checkpoint: Any, registry: Registry | None = None, **fetch_options: Any
) -> tuple[Any, WeightsEntry | None]:
    """Like :func:`resolve_checkpoint`, also returning the entry a tag named (else ``None``)."""
    if not is_tag(checkpoint):
        return checkpoint, None
    from .registry import get_registry

    registry = registry or get_registry()
    family = registry.get("generator", generator).name  # an unknown generator fails first
    entry = weights_entry(checkpoint, registry)
    if entry.family != family:
        raise CheckpointError(
            f"weights {entry.tag!r} are for the {entry.family!r} generator, not {generator!r};"
            f" use ganenc.load_generator({entry.family!r}, {entry.tag!r})"
            f" (or --gan {entry.family})"
        )
    return str(fetch(entry, **fetch_options)), entry


def check_architecture(generator: Any, entry: WeightsEntry, path: Any = None) -> None:
    """The loaded generator has the resolution and latent sizes the entry promises.

    A mismatch means the cached file is not the registered one (a file placed
    by hand under the wrong tag): one :class:`CheckpointError` says so.
    """
    where = f"{path}" if path else str(local_path(entry))
    problems = []
    resolution = getattr(generator, "resolution", None)
    if entry.resolution is not None and resolution not in (None, entry.resolution):
        problems.append(f"resolution {resolution} (expected {entry.resolution})")
    if entry.latents and hasattr(generator, "sample_latents"):
        latents = generator.sample_latents(1, seed=0)
        for key, size in entry.latents.items():
            value = latents.get(key)
            if value is not None and value.dim() == 2 and int(value.shape[1]) != size:
                problems.append(f"latent {key!r} of size {int(value.shape[1])} (expected {size})")
    if problems:
        raise CheckpointError(
            f"the file for weights {entry.tag} at {where} gives a generator with "
            + ", ".join(problems)
            + "; it is not the registered file. Delete it and fetch it again"
            f" ('ganenc weights download {entry.tag} --force')."
        )
