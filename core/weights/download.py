"""Downloading one file: mirrors, retries with back-off, resumed ``.part`` files, progress.

Only the standard library (``urllib``); network modules load only when a
download happens.  The environment settings (``GANENC_OFFLINE``, the timeout,
the retries) live here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import flag_from_environment, number_from_environment
from ..errors import ConfigError, WeightsNotFoundError, first_line
from .cache import _make_folders, _part_path, _remove_empty_folders, file_path
from .records import CHUNK_BYTES, _matches

if TYPE_CHECKING:
    from .entries import WeightsEntry, WeightsFile

logger = logging.getLogger(__name__)

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


class WeightsDownloadError(WeightsNotFoundError):
    """Weights could not be fetched: the message names each URL and where to put the file."""

    def __init__(self, message: str, reasons: Iterable[str] = ()) -> None:
        super().__init__(message)
        #: ``"<url>: <why>"`` for each URL that was tried.
        self.reasons = list(reasons)


class WeightsHashError(WeightsDownloadError):
    """A file's sha256 (or size) differs from the expected one; the file was deleted."""

    def __init__(
        self, message: str, reasons: Iterable[str] = (), *, digest_mismatch: bool = True
    ) -> None:
        super().__init__(message, reasons)
        #: Whether a sha256 differed (``False``: only a size did), so advice fits the cause.
        self.digest_mismatch = digest_mismatch


class Downloaded(tuple):
    """``(sha256, url)`` as :func:`download_file` returns it, plus ``complete``.

    ``complete`` is ``False`` when nothing proved the file whole: no hash, no size
    and no length from the server (a connection cut early looks like the end).
    """

    complete: bool

    def __new__(cls, sha256: str, url: str, complete: bool = True) -> Downloaded:
        result = super().__new__(cls, (sha256, url))
        result.complete = complete
        return result


# -- settings from the environment -------------------------------------------------------------
def offline() -> bool:
    """Whether ``GANENC_OFFLINE`` forbids downloads (a value that is not yes/no is an error)."""
    return flag_from_environment(OFFLINE_ENV)


def _bad_timeout(seconds: float) -> bool:
    return not math.isfinite(seconds) or seconds <= 0


def _bad_retries(retries: int) -> bool:
    return retries < 0


def _download_setting(given, name, default, parse, kind, rule, invalid, what):
    """``given`` checked by ``invalid``, else ``$name`` read with the same rule."""
    if given is not None:
        if invalid(given):
            raise ConfigError(f"the download {what} must be {rule}, got {given}")
        return given
    return number_from_environment(name, default, parse, kind, rule, invalid)


def download_timeout(given: float | None = None) -> float:
    """The socket timeout of a download: ``given``, else ``GANENC_DOWNLOAD_TIMEOUT`` (seconds)."""
    return _download_setting(
        given,
        DOWNLOAD_TIMEOUT_ENV,
        DEFAULT_DOWNLOAD_TIMEOUT,
        float,
        "a number of seconds",
        "a positive finite number",
        _bad_timeout,
        "timeout",
    )


def download_retries(given: int | None = None) -> int:
    """Retries after a failed attempt: ``given``, else ``GANENC_DOWNLOAD_RETRIES``."""
    return _download_setting(
        given,
        DOWNLOAD_RETRIES_ENV,
        DEFAULT_DOWNLOAD_RETRIES,
        int,
        "a whole number",
        "0 or more",
        _bad_retries,
        "retries",
    )


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
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from ..progress import stderr_console

    console = stderr_console()
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


class _NotWeightsError(_PermanentHTTPError):
    """The server answered with a web page (a sign-in or share page), not the file."""


#: How a web page starts (after white space): never a weights file's first bytes.
_HTML_STARTS = (b"<!doctype", b"<html")


def _looks_like_html(content_type: str | None, first_chunk: bytes) -> bool:
    """Whether an answer is a web page, by its Content-Type or its first bytes."""
    if (content_type or "").split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    return first_chunk[:512].lstrip().lower().startswith(_HTML_STARTS)


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
    url: str, part: Path, timeout: float, progress: bool, label: str, resume: bool = True
) -> tuple[str, bool, bool]:
    """One attempt: fetch ``url`` into ``part``; returns (sha256, resumed, length known).

    ``resume=False`` starts over even if ``part`` holds bytes (nothing could check
    the splice).  A web page is refused before a byte is written.
    """
    import http.client  # network modules load only when a download happens
    import urllib.error
    import urllib.request

    offset = part.stat().st_size if resume and part.exists() else 0
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
            raise _PermanentHTTPError(
                f"HTTP {exc.code} {first_line(exc.reason, empty='')}"
            ) from None
        raise
    with response:
        resumed = bool(offset) and response.status == 206
        if resumed and _content_range_start(response.headers.get("Content-Range")) != offset:
            resumed = False
        if not resumed:
            offset = 0
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        # a chunked body that ends early raises IncompleteRead, so its end is known too
        chunked = "chunked" in (response.headers.get("Transfer-Encoding") or "").lower()
        total = offset + length if length is not None else None
        first = response.read(CHUNK_BYTES)
        if _looks_like_html(response.headers.get("Content-Type"), first):
            raise _NotWeightsError(
                "the server answered with a web page (HTML), not a weights file: the link"
                " needs a browser (or has moved)"
            )
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
            chunk = first
            while chunk:
                handle.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                advance(len(chunk))
                chunk = response.read(CHUNK_BYTES)
        if length is not None and received != length:
            raise http.client.IncompleteRead(b"", length - received)
    return hasher.hexdigest(), resumed, length is not None or chunked


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
) -> Downloaded:
    """Download the first URL that works to ``destination``; returns ``(sha256, url)``.

    Bytes go to ``<destination>.part``, which a later attempt (or a later call)
    resumes with an HTTP ``Range`` request when ``sha256`` can check the result
    (without one, a download always starts over); the finished file is checked
    against ``sha256`` (full digest or prefix) and ``size``, then renamed into
    place atomically.  A file that fails the check is deleted (after a resumed
    download, it is fetched once more from scratch first) and the next mirror
    is tried; so is a URL that answers with a web page.  Timeouts, resets and
    5xx answers are retried ``retries`` times with back-off; 4xx answers move on
    to the next mirror.  Raises :class:`WeightsHashError` on a bad file and
    :class:`WeightsDownloadError` when no URL works.  The result's ``complete``
    says whether anything proved the file whole (see :class:`Downloaded`).
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_file():  # found before any byte is fetched
        raise WeightsDownloadError(
            f"cannot download to {destination}: it is a folder, not a file; move it away and retry"
        )
    created = _make_folders(destination.parent)
    try:
        return _download_file(urls, destination, sha256, size, timeout, retries, progress, label)
    except BaseException:
        # No litter: an empty part file cannot be resumed, nor can one that no hash could
        # check; folders made for nothing go.
        part = _part_path(destination)
        if part.is_file() and (not sha256 or part.stat().st_size == 0):
            part.unlink(missing_ok=True)
        _remove_empty_folders(created)
        raise


def _download_file(
    urls: str | Iterable[str],
    destination: Path,
    sha256: str | None,
    size: int | None,
    timeout: float | None,
    retries: int | None,
    progress: bool | None,
    label: str | None,
) -> Downloaded:
    import http.client  # network modules load only when a download happens
    import urllib.error

    urls = [urls] if isinstance(urls, str) else list(urls)
    part = _part_path(destination)
    timeout = download_timeout(timeout)
    retries = download_retries(retries)
    progress = sys.stderr.isatty() if progress is None else progress
    label = label or destination.name
    expected = sha256.lower() if sha256 else None
    failures: list[str] = []
    bad_files: list[str] = []
    digest_mismatch = False
    for url in urls:
        attempt = 0
        restarted = False
        while True:
            try:
                # without a hash, a resumed splice could never be checked: start over
                digest, resumed, length_known = _fetch_once(
                    url, part, timeout, progress, label, resume=expected is not None
                )
            except (_PermanentHTTPError, ValueError) as exc:  # 4xx, a web page, a bad URL
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
                digest_mismatch = True
            elif size is not None and actual_size != size:
                problem = f"size {actual_size} bytes differs from the expected {size}"
            if problem is None:
                os.replace(part, destination)
                complete = length_known or expected is not None or size is not None
                return Downloaded(digest, url, complete)
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
            digest_mismatch=digest_mismatch,
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
        return f"{type(exc.reason).__name__}: {first_line(exc.reason, empty='')}"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({exc.expected} bytes missing)"
    text = first_line(exc, empty="")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
