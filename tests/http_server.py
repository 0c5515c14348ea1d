"""A static file server on 127.0.0.1 for the download code: byte ranges, a request log, faults on demand."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerLog:
    """What the server was asked for: ``(path, Range header or None)`` per request, in order."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes after which the connection drops

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=N-`` (206 answers) when ``ranges`` is set."""

    log: ServerLog
    ranges: bool

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.log.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().do_GET()  # 404s and directory listings as usual
        data = path.read_bytes()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if self.ranges and match:
            start = int(match[1])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut = self.log.cut_after.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.close_connection = True


@contextlib.contextmanager
def serve(directory: Path, *, ranges: bool = True) -> Iterator[tuple[str, ServerLog]]:
    """Serve ``directory`` on an ephemeral port; yields ``(base URL ending in '/', request log)``."""
    log = ServerLog()
    handler_class = type("Handler", (_Handler,), {"log": log, "ranges": ranges})
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()
