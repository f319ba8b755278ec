"""A loopback HTTP file server for the model-zoo tests (HTTP Range, faults on demand).

Tests never touch the internet: every URL is ``http://127.0.0.1:<port>/...``.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ServedFile:
    """Bytes served at one path, and how the server misbehaves for it."""

    data: bytes
    #: Requests still to cut short: the server promises every byte, sends this many, hangs up.
    cut_after: list[int] = field(default_factory=list)
    #: Answer ``Range`` requests with the whole file (200), as some servers do.
    ignore_range: bool = False
    status: int = 200
    #: Requests still to stall: the server waits this many seconds before answering.
    stall: list[float] = field(default_factory=list)


class LoopbackServer:
    """``http.server`` in a thread on 127.0.0.1; records each request's path and Range."""

    def __init__(self) -> None:
        self.files: dict[str, ServedFile] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                served = server.files.get(self.path)
                if served is not None and served.stall:
                    time.sleep(served.stall.pop(0))
                if served is None or served.status != 200:
                    status = 404 if served is None else served.status
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                data, start = served.data, 0
                match = re.match(r"^bytes=(\d+)-$", range_header or "")
                if match and not served.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.send_header("Connection", "close")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if served.cut_after:
                    self.wfile.write(body[: served.cut_after.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def serve(self, path: str, data: bytes, **behaviour: object) -> str:
        """Serve ``data`` at ``path``; returns its URL."""
        self.files[path] = ServedFile(data, **behaviour)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
