"""From a tag to a checked local file: fetch, verify, resolve generator checkpoints."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import CheckpointError, WeightsNotFoundError
from .cache import _locked, cached_path, file_path, find_file, local_path
from .download import (
    OFFLINE_ENV,
    WeightsDownloadError,
    WeightsHashError,
    _tell,
    download_file,
    download_retries,
    download_timeout,
    manual_instructions,
    offline,
)
from .entries import WeightsEntry, WeightsFile, is_tag, weights_entry
from .records import (
    _expected_digest,
    _matches,
    forget_hash,
    hashes_path,
    record_hash,
    recorded_hash,
    sha256_of,
)

if TYPE_CHECKING:
    from ..registry import Registry


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
    # the settings of a download are checked before anything is said or written
    timeout = download_timeout(timeout)
    retries = download_retries(retries)
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
#: Where the tags of the families that are not generators go instead.
NOT_GENERATOR_HINTS = {
    "encoder": "load them with ganenc.load_encoder (--encoder TAG on the command line)",
    "features": "they are a feature network's, chosen where features are (for example"
    " --crop-option classifier=emoji-cnn)",
}


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
    from ..registry import get_registry

    registry = registry or get_registry()
    family = registry.get("generator", generator).name  # an unknown generator fails first
    entry = weights_entry(checkpoint, registry)
    if entry.family in NOT_GENERATOR_HINTS:
        raise CheckpointError(
            f"weights {entry.tag!r} are not a generator's: {NOT_GENERATOR_HINTS[entry.family]}"
        )
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
