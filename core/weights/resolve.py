"""From a tag to a checked local file: fetch, verify, resolve generator checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
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
from .entries import WeightsEntry, WeightsFile, hub_name_prefix, is_tag, weights_entry
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
    if not isinstance(entry, WeightsEntry):
        raise ConfigError(
            f"fetch takes a weights tag (a string) or a WeightsEntry, not {entry!r:.60}"
        )
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
        from_record = expected is not None and expected == recorded_hash(entry, weights_file)
        _tell(f"downloading {entry.tag} ({weights_file.filename}) to {destination}")
        try:
            # the old file stays until the new one passed its check (the rename is atomic)
            result = download_file(
                weights_file.urls,
                destination,
                sha256=expected,
                size=weights_file.size,
                timeout=timeout,
                retries=retries,
                progress=progress,
                label=f"{entry.tag} {weights_file.filename}",
            )
        except WeightsHashError as exc:
            advice = (
                f" If the upstream file was replaced on purpose, run 'ganenc weights verify"
                f" {entry.tag} --forget' and retry."
                if from_record and exc.digest_mismatch
                else " The download was damaged or the upstream file changed: retry later, or"
                " tell the plugin that registers the tag."
            )
            raise WeightsHashError(
                f"weights {entry.tag}: {exc} (expected: {origin}).{advice}",
                exc.reasons,
                digest_mismatch=exc.digest_mismatch,
            ) from None
        except WeightsDownloadError as exc:
            reasons = "; ".join(exc.reasons) or str(exc)
            raise WeightsDownloadError(f"cannot download weights {entry.tag}: {reasons}") from None
        digest, url = result
        if getattr(result, "complete", True):  # a stand-in downloader may give a plain tuple
            remember_download(entry, weights_file, digest, url)
        else:
            _tell(
                f"{url} sent no length and no sha256 is known, so {destination} may be cut"
                f" short; its sha256 was not recorded: once it loads, run 'ganenc weights verify"
                f" {entry.tag}' to record it"
            )
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
    known hash get one recorded (``recorded``).  A file that differs from a
    published sha256 (or size) is deleted, so the cache never keeps it; one
    that differs only from the hash recorded at first download (trust on first
    use, perhaps of a bad download) is kept and reported, since it may be the
    right file placed by hand.  ``forget`` drops the recorded hashes first
    (accepting such a file, or an upstream file replaced on purpose).
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
        alias = path.name != weights_file.filename
        if alias:
            # Found under another tool's name: the primary name's hash is not this name's;
            # a torch.hub name carries its own sha256 prefix, which is checked.
            weights_file = dataclasses.replace(
                weights_file, filename=path.name, sha256=hub_name_prefix(path.name)
            )
        results.append(_verify_file(entry, weights_file, path, alias))
    return results


def _verify_file(
    entry: WeightsEntry, weights_file: WeightsFile, path: Path, alias: bool
) -> VerifyResult:
    """Check one found file: delete it only when it contradicts what was published."""
    digest = sha256_of(path)
    published = weights_file.sha256
    recorded = None if weights_file.full_sha256 else recorded_hash(entry, weights_file)

    def result(status: Literal["ok", "recorded", "mismatch"], detail: str) -> VerifyResult:
        return VerifyResult(entry.tag, weights_file.filename, path, status, digest, detail)

    if entry.cache == "package" and not _matches(digest, str(published)):
        return result(
            "mismatch",
            f"expected {published} (shipped with {entry.package}); the installed"
            " file differs: reinstall the distribution (the file was kept)",
        )
    size_differs = weights_file.size is not None and path.stat().st_size != weights_file.size
    if size_differs or (published and not _matches(digest, published)):
        if size_differs:
            expected = f"a size of {weights_file.size} bytes"
        elif weights_file.full_sha256:
            expected = f"{published} (published sha256)"
        else:
            expected = f"{published} (sha256 prefix in the file name)"
        if alias:  # another tool's copy is reported, never deleted by ganenc
            return result(
                "mismatch", f"expected {expected}; another tool's copy: delete it yourself"
            )
        path.unlink()
        return result("mismatch", f"expected {expected}; the file was deleted")
    if recorded is not None and not _matches(digest, recorded):
        return result(
            "mismatch",
            f"expected {recorded} (recorded at first download, {hashes_path()}); the file was"
            f" kept: if it is the right file, accept it with 'ganenc weights verify"
            f" {entry.tag} --forget'",
        )
    if published is None and recorded is None:
        record_hash(entry, weights_file, digest, "verify")
        return result("recorded", f"no known sha256; recorded in {hashes_path()}")
    if recorded is None and not weights_file.full_sha256:
        record_hash(entry, weights_file, digest, "verify")
    if weights_file.full_sha256:
        origin = "published sha256"
    elif recorded is not None:
        origin = f"sha256 recorded at first download ({hashes_path()})"
    else:
        origin = "sha256 prefix in the file name"
    return result("ok", origin)


# -- generator checkpoints -----------------------------------------------------------------------
#: Where the tags of the families that are not generators go instead.
NOT_GENERATOR_HINTS = {
    "encoder": "load them with ganenc.load_encoder (--encoder TAG on the command line)",
    "features": "they are a feature network's, chosen where features are (for example"
    " --crop-option classifier=emoji-cnn)",
}


def generator_family(tag: str) -> str:
    """The family a generator's tag names; an encoder's or feature network's tag is refused.

    Said before the family is looked up as a generator, so the user learns where
    such a tag goes rather than that no generator has its family's name.
    """
    family = tag.partition(":")[0]
    if family in NOT_GENERATOR_HINTS:
        raise CheckpointError(
            f"weights {tag!r} are not a generator's: {NOT_GENERATOR_HINTS[family]}"
        )
    return family


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
    generator_family(entry.tag)
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
