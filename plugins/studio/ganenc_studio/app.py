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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ganenc.errors import GanencError

from .session import MAX_UPLOAD_BYTES, Studio, png_data_url

STATIC_DIR = Path(__file__).with_name("static")
PANEL_GROUP = "ganenc_studio.panels"
#: Only this server's own files: no CDN script, font or style can load, even by mistake.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self';"
    " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'"
)


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


class Jobs:
    """Refinements run one at a time in a worker thread; the page polls their progress."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-job")
        self._jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def submit(self, work: Callable[[Callable[[int, int], None]], Any]) -> str:
        job_id = f"j{next(self._ids)}"
        state: dict[str, Any] = {"status": "queued", "done": 0, "total": 0}
        with self._lock:
            self._jobs[job_id] = state

        def progress(done: int, total: int) -> None:
            state.update(done=done, total=total)

        def run() -> None:
            state["status"] = "running"
            try:
                state["result"] = work(progress)
                state["status"] = "done"
            except GanencError as exc:
                state.update(status="error", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - shown on the page, the server goes on
                state.update(status="error", error=f"{type(exc).__name__}: {exc}")

        self._pool.submit(run)
        return job_id

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            if job_id not in self._jobs:
                raise HTTPException(404, f"no job {job_id!r}")
            return dict(self._jobs[job_id])

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return body


async def _capped_body(request: Request) -> bytes:
    """The request body, refused as soon as it passes :data:`MAX_UPLOAD_BYTES`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
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
            return _error(str(exc))

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
        data = await _capped_body(request)
        filename = request.headers.get("x-filename", "upload.png")
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
        kind = request.path_params["kind"]
        try:
            edit_state = json.loads(request.query_params.get("edit") or "{}")
        except ValueError:
            return _error("edit must be JSON")
        if not isinstance(edit_state, dict):
            return _error("edit must be a JSON object")
        try:
            path = await run_in_threadpool(
                studio.export,
                request.path_params["subject"],
                kind,
                edit_state.get("strengths") or {},
                edit_state.get("layers"),
            )
        except GanencError as exc:
            return _error(str(exc))
        media = "image/png" if kind == "png" else "application/octet-stream"
        return FileResponse(path, media_type=media, filename=path.name)

    async def on_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(str(exc.detail), exc.status_code)

    async def on_ganenc_error(request: Request, exc: GanencError) -> JSONResponse:
        return _error(str(exc))

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
        exception_handlers={HTTPException: on_error, GanencError: on_ganenc_error},
        lifespan=lifespan,
    )
    app.state.studio = studio
    app.state.jobs = jobs
    return app
