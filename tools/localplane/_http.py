"""HTTP helpers shared by the platform's control endpoint and the container-credentials endpoint: a JSON-answering
request handler and a threading HTTP server on 127.0.0.1 served from a daemon thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonRequestHandler(BaseHTTPRequestHandler):
    """A request handler whose answers are JSON documents."""

    def _reply(self, status: HTTPStatus, body: Mapping[str, Any]) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class BackgroundHttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 (``port`` 0: a free one), serving from a daemon thread once constructed.

    Request threads are daemons too, so a hanging request never keeps the process alive. ``poll_interval`` is how
    often the serving loop checks for :meth:`stop`: short keeps stopping fast (shutdown waits for the loop to notice).
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str, port: int = 0, poll_interval: float = 0.1) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(poll_interval,), name=name, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving, free the port and wait (up to 5 s) for the serving thread to end."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
