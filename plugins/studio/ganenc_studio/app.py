"""The studio's web application: one plain page and a small JSON API (Starlette).

The page loads nothing from outside (its scripts and styles are served here,
and the Content-Security-Policy forbids anything else); long refinements run
as jobs whose progress the page polls.  Plugins add panels through the
``ganenc_studio.panels`` entry-point group (see :class:`Panel`).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ganenc.errors import GanencError, first_line

from .session import MAX_UPLOAD_BYTES, Studio, SubjectNotFoundError, png_data_url

STATIC_DIR = Path(__file__).with_name("static")
PANEL_GROUP = "ganenc_studio.panels"
#: Only this server's own files: no CDN script, font or style can load, even by mistake.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self';"
    " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'"
)
#: JSON request bodies (slider states, budgets) are small; larger ones are refused unread.
MAX_JSON_BYTES = 64 * 2**10
#: Refinements queued or running at once (they run one at a time); more are refused with 503.
MAX_PENDING_JOBS = 4
#: Finished jobs whose result can still be fetched; older ones are forgotten (memory stays bounded).
MAX_FINISHED_JOBS = 16


@dataclass
class Panel:
    """A section a plugin adds to the page.

    ``html`` is inserted in the page; ``script`` (JavaScript, optional) is served
    as ``/plugins/<name>/panel.js`` and loaded after the studio's own script, so
    it can use ``window.studio`` (the current image, ``studio.api(path, body)``);
    ``routes`` are mounted under ``/plugins/<name>/``.
    """

    name: str
    title: str
    html: str
    script: str = ""
    routes: Sequence[BaseRoute] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", self.name):
            raise GanencError(f"panel name {self.name!r}: use lowercase letters, digits, - and _")


def discover_panels(studio: Studio) -> list[Panel]:
    """Panels of installed plugins: each entry point is a callable ``(studio) -> Panel``."""
    from importlib.metadata import entry_points

    panels = []
    for entry in entry_points(group=PANEL_GROUP):
        try:
            panels.append(entry.load()(studio))
        except Exception as exc:  # noqa: BLE001 - a broken panel must not stop the studio
            print(f"studio panel {entry.name!r} skipped: {type(exc).__name__}: {exc}")
    return panels


#: Job states after which nothing changes.
FINISHED = frozenset({"done", "error", "stopped"})


class JobStopped(Exception):
    """Raised in a job's progress callback when the studio stops, so the refinement ends now."""


class Jobs:
    """Refinements run one at a time in a worker thread; the page polls their progress.

    :meth:`shutdown` stops the running refinement at its next step: Python waits for
    a pool's worker threads at exit, so a job that went on would keep the process alive.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-job")
        self._jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def submit(self, work: Callable[[Callable[[int, int], None]], Any]) -> str:
        """Queue ``work(progress)``; 503 when :data:`MAX_PENDING_JOBS` are waiting or running."""
        state: dict[str, Any] = {"status": "queued", "done": 0, "total": 0}
        with self._lock:
            if self._stopping.is_set():
                raise HTTPException(503, "the studio is stopping")
            pending = sum(job["status"] not in FINISHED for job in self._jobs.values())
            if pending >= MAX_PENDING_JOBS:
                raise HTTPException(
                    503,
                    f"{pending} refinements are already queued or running (at most"
                    f" {MAX_PENDING_JOBS}); try again when one has finished",
                )
            finished = [job_id for job_id, job in self._jobs.items() if job["status"] in FINISHED]
            for old in finished[: max(0, len(finished) - MAX_FINISHED_JOBS + 1)]:
                del self._jobs[old]
            job_id = f"j{next(self._ids)}"
            self._jobs[job_id] = state

        def progress(done: int, total: int) -> None:
            if self._stopping.is_set():
                raise JobStopped("the studio stopped before the refinement finished")
            state.update(done=done, total=total)

        def run() -> None:
            state["status"] = "running"
            try:
                progress(0, 0)  # stopped while queued: not even started
                state["result"] = work(progress)
                state["status"] = "done"
            except JobStopped as exc:
                state.update(status="stopped", error=str(exc))
            except GanencError as exc:
                state.update(status="error", error=first_line(exc))
            except Exception as exc:  # noqa: BLE001 - shown on the page, the server goes on
                state.update(status="error", error=f"{type(exc).__name__}: {first_line(exc)}")

        self._pool.submit(run)
        return job_id

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            if job_id not in self._jobs:
                raise HTTPException(404, f"no job {job_id!r}")
            return dict(self._jobs[job_id])

    def shutdown(self) -> None:
        """Stop the running job at its next step and drop the queued ones; returns at once."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _attachment(name: str) -> dict[str, str]:
    """The Content-Disposition a download of ``name`` gets (Starlette's, non-ASCII names too)."""
    return {"content-disposition": FileResponse(name, filename=name).headers["content-disposition"]}


def _error(
    message: str, status: int = 400, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _ganenc_error(exc: GanencError) -> JSONResponse:
    """One line for the page: 404 for an image the session does not hold, else 400."""
    return _error(first_line(exc), 404 if isinstance(exc, SubjectNotFoundError) else 400)


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    """``text`` as a JSON object, or a 400 that says what is wrong with it."""
    try:
        value = json.loads(text)
    except RecursionError:  # "[[[[...": deeper than Python's parser goes
        raise HTTPException(400, f"{what} nests too deeply") from None
    except ValueError:
        raise HTTPException(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise HTTPException(400, f"{what} must be a JSON object")
    return value


async def _json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, its size capped before it is parsed."""
    return _json_object(await _capped_body(request, MAX_JSON_BYTES), "the request body")


async def _capped_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes."""
    too_big = HTTPException(413, f"the request body is limited to {limit} bytes")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    studio: Studio,
    panels: Sequence[Panel] = (),
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "[::1]", "testserver"),
) -> Starlette:
    """The Starlette application of ``studio`` with the given plugin panels.

    ``allowed_hosts``: Host headers accepted (DNS rebinding protection); the
    command adds the ``--host`` it binds to.
    """
    names = [p.name for p in panels]
    if len(set(names)) != len(names):
        raise GanencError(f"two studio panels share a name: {names}")
    jobs = Jobs()
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    panel_html = "\n".join(
        f'<section class="card panel" id="panel-{p.name}"><h2>{html.escape(p.title)}</h2>'
        f"{p.html}</section>"
        for p in panels
    )
    panel_scripts = "\n".join(
        f'<script src="/plugins/{p.name}/panel.js"></script>' for p in panels if p.script
    )
    page = page.replace("<!-- panels -->", panel_html).replace(
        "<!-- panel scripts -->", panel_scripts
    )

    async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> JSONResponse:
        """Torch work in a worker thread (the page's other requests go on), errors as JSON."""
        try:
            return JSONResponse(await run_in_threadpool(function, *args, **kwargs))
        except GanencError as exc:
            return _ganenc_error(exc)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(studio.info())

    async def example(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in studio.examples():
            raise HTTPException(404, f"no example {name!r}")
        return FileResponse(studio.examples_dir / name, media_type="image/png")

    def described(subject) -> dict[str, Any]:
        original = subject.image[0] if subject.image is not None else None
        return {
            "subject": subject.id,
            "name": subject.name,
            "original": png_data_url(original) if original is not None else None,
        }

    async def add_subject(request: Request) -> JSONResponse:
        example_name = request.query_params.get("example")
        if example_name is not None:
            return await call(lambda: described(studio.add_example(example_name)))
        data = await _capped_body(request, MAX_UPLOAD_BYTES)
        # the page sends the name percent-encoded: a header holds Latin-1 only
        filename = unquote(request.headers.get("x-filename", "upload.png"))
        return await call(lambda: described(studio.add_upload(data, filename)))

    async def invert(request: Request) -> JSONResponse:
        body = await _json(request)
        subject = studio.subject(request.path_params["subject"])  # unknown: an error now
        refine = body.get("refine", "none")
        steps = body.get("steps")
        if refine == "none":
            return await call(studio.invert, subject.id, "none")
        studio.parse_refine(refine, steps)  # a bad budget is refused before the job starts
        if subject.image is None:  # as the direct path says it, not as a failed job
            return _error("a generator sample has no image to invert")
        job = jobs.submit(lambda progress: studio.invert(subject.id, refine, steps, progress))
        return JSONResponse({"job": job})

    async def job(request: Request) -> JSONResponse:
        return JSONResponse(jobs.get(request.path_params["job"]))

    async def edit(request: Request) -> JSONResponse:
        body = await _json(request)
        return await call(
            studio.edit, request.path_params["subject"], body.get("strengths"), body.get("layers")
        )

    async def sample(request: Request) -> JSONResponse:
        body = await _json(request)
        seed, truncation = body.get("seed", 0), body.get("truncation", 0.7)

        def run() -> dict[str, Any]:
            subject = studio.sample(seed, truncation)
            return {**described(subject), **studio.edit(subject.id, {})}

        return await call(run)

    async def download(request: Request) -> Response:
        subject_id, kind = request.path_params["subject"], request.path_params["kind"]
        edit_state = _json_object(request.query_params.get("edit") or "{}", "edit")
        strengths, layers = edit_state.get("strengths"), edit_state.get("layers")
        media = "image/png" if kind == "png" else "application/octet-stream"
        try:
            if request.method == "HEAD":  # the request checked and its name, but nothing made
                name = await run_in_threadpool(
                    studio.download_name, subject_id, kind, strengths, layers
                )
                response = Response(media_type=media, headers=_attachment(name))
                del response.headers["content-length"]  # unknown until the file is made
                return response
            path = await run_in_threadpool(studio.export, subject_id, kind, strengths, layers)
        except GanencError as exc:
            return _ganenc_error(exc)
        return FileResponse(
            path,
            media_type=media,
            filename=path.name,
            background=BackgroundTask(studio.discard_download, path),  # after it is sent
        )

    async def on_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(str(exc.detail), exc.status_code, exc.headers)  # 405 keeps its Allow

    async def on_ganenc_error(request: Request, exc: GanencError) -> JSONResponse:
        return _ganenc_error(exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        """A bug: one line for the page; the traceback goes to the server's log, not the page."""
        return _error(
            f"unexpected error in the studio ({type(exc).__name__}); the studio's log has the"
            " details",
            500,
        )

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/examples/{name}", example),
        Route("/api/subjects", add_subject, methods=["POST"]),
        Route("/api/subjects/{subject}/invert", invert, methods=["POST"]),
        Route("/api/subjects/{subject}/edit", edit, methods=["POST"]),
        Route("/api/subjects/{subject}/download/{kind}", download),
        Route("/api/jobs/{job}", job),
        Route("/api/samples", sample, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    for panel in panels:
        panel_routes = list(panel.routes)
        if panel.script:
            script = panel.script

            async def serve_script(request: Request, script: str = script) -> Response:
                return Response(script, media_type="text/javascript")

            panel_routes.append(Route("/panel.js", serve_script))
        routes.append(Mount(f"/plugins/{panel.name}", routes=panel_routes))

    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    from contextlib import asynccontextmanager

    from starlette.middleware.base import BaseHTTPMiddleware

    @asynccontextmanager
    async def lifespan(app):
        yield
        jobs.shutdown()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
            Middleware(BaseHTTPMiddleware, dispatch=security_headers),
        ],
        exception_handlers={
            HTTPException: on_error,
            GanencError: on_ganenc_error,
            Exception: on_unexpected,  # after the response, Starlette re-raises it to be logged
        },
        lifespan=lifespan,
    )
    app.state.studio = studio
    app.state.jobs = jobs
    return app
