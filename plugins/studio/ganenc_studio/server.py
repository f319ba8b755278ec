"""Running the studio: uvicorn in the foreground (the command) or in a thread (tests, notebooks)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import click

from .plugin import bare_host, url_host


def _allowed_hosts(host: str) -> list[str]:
    """The Host headers to answer: loopback names and ``host`` as a URL names it."""
    if bare_host(host) in {"0.0.0.0", "::"}:
        return ["*"]  # every interface: any name this machine is reached by
    return ["127.0.0.1", "localhost", "[::1]", url_host(host)]


def serve(
    *,
    encoder: str | None,
    directions: str | None,
    host: str,
    port: int,
    device: str = "auto",
) -> None:
    """Load the encoder and directions, then serve the page until Ctrl+C."""
    import uvicorn

    from ganenc.training.loop import interrupt_as_keyboard_interrupt

    from .app import create_app, discover_panels
    from .session import Studio

    studio = Studio.open(encoder, directions, device=device)  # the workspace comes last
    app = None
    try:
        app = create_app(studio, discover_panels(studio), allowed_hosts=_allowed_hosts(host))
        info = studio.info()
        click.echo(
            f"encoder {info['encoder']} ({info['gan']}, {info['resolution']} px) on"
            f" {info['device']}; {len(info['directions'])} direction(s)"
        )
        click.echo(f"workspace (uploads and downloads, removed at exit): {studio.workspace}")
        click.echo(f"studio at http://{url_host(host)}:{port}/  (Ctrl+C to stop)")
        # SIGTERM (kill, timeout, systemd, docker) ends it like Ctrl+C: uvicorn re-raises the
        # signal after shutting down, and Python's default for SIGTERM would skip the cleanup
        with interrupt_as_keyboard_interrupt():
            uvicorn.run(app, host=bare_host(host), port=port, log_level="warning")
    finally:
        if app is not None:  # a running refinement would keep the process alive at exit
            app.state.jobs.shutdown()
        studio.close()  # uploads and downloads go with the workspace


@contextlib.contextmanager
def running(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` in a thread; yields its base URL (``port=0``: a free port)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="studio-server")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the studio server did not start")
        time.sleep(0.05)
    sockets: Sequence[Any] = [s for srv in server.servers for s in srv.sockets]
    bound_port = sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
