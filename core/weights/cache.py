"""Where weights files live: ganenc's cache, torch's hub cache, a package's folder.

Also the on-disk chores every writer of that cache shares: making and removing
folders, ``<file>.part`` names and the lock against concurrent processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GanencError, WeightsNotFoundError

if TYPE_CHECKING:
    from .entries import WeightsEntry, WeightsFile

#: Folder of ganenc's caches (weights under ``weights/``); default: the user cache folder.
HOME_ENV = "GANENC_HOME"
PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"


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


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` (POSIX), so concurrent ranks download once.

    The lock file is removed on release (no litter in ``GANENC_HOME``); a process that
    locked a file removed meanwhile sees another inode at the path and locks again,
    remaking the folders when the holder before it removed them (its download failed).
    Folders this call made are removed again if they end up empty.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    created: list[Path] = []
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        while True:
            created.extend(_make_folders(path.parent))
            try:
                handle = open(lock_path, "a+b")  # noqa: SIM115 - closed below
            except FileNotFoundError:  # a failed holder removed the folder just now
                continue
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    current = os.stat(lock_path).st_ino
                except FileNotFoundError:
                    current = None
            except BaseException:  # interrupted while waiting: leave no lock file we made
                _drop_lock_if_free(handle, lock_path)
                raise
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
        # deepest first: a folder made again later may sit below one made earlier
        _remove_empty_folders(sorted(set(created), key=lambda p: len(p.parts), reverse=True))


def _drop_lock_if_free(handle: Any, lock_path: Path) -> None:
    """Remove an unheld lock file (as a holder would at release), then close ``handle``.

    Only a file locked here may go: removing one another process holds would let a
    third lock a new file beside it.
    """
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino:
                lock_path.unlink()
    except OSError:  # held by another process: it removes the file at release
        pass
    finally:
        handle.close()
