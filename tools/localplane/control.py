"""The running platform's control endpoint: its status, and the failures an operator (or a test) injects.

An HTTP server on 127.0.0.1 (a free port) that needs ``Authorization: Bearer <token>``; the URL and token are
in ``cfn-outputs/<stack>/local-platform.json`` (mode 0600) while the platform runs. It is how the integration
scenarios, run by pytest in another process, stop a database or kill a task of the platform ``make deploy`` or
``make integration`` runs:

* ``GET /status``: :meth:`LocalPlatform.describe` (front doors, data stores, tasks with pid and health);
* ``POST /stacks/<stack>/databases/<cluster id>/stop`` and ``.../start``: the PostgreSQL server behind the cluster
  endpoint (a fast shutdown: sessions are cut, as in an Aurora failover or reboot; data is kept);
* ``POST /stacks/<stack>/caches/<replication group id>/stop`` and ``.../start``: the Valkey server (data is lost,
  as in a node replacement);
* ``POST /stacks/<stack>/caches/<replication group id>/scan`` ``{"match": "payments:*"}``: key names and TTLs
  (never values), read with the server's admin login;
* ``POST /stacks/<stack>/services/<service>/kill`` ``{"taskId": ...}``: SIGKILL a task's process (ECS replaces it);
* ``POST /stacks/<stack>/services/<service>/exec`` ``{"argv": [...], "env": {...}}``: run a command with a
  running task's environment and identity (its role's credentials), like ECS Exec, and return its exit status
  and output. The stack's task definitions disable ECS Exec on AWS; this exists only on the local platform.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from tools.localplane._http import BackgroundHttpServer, JsonRequestHandler

Action = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class ControlServer:
    """Serves ``status`` and the failure-injection ``actions`` of a platform on 127.0.0.1."""

    def __init__(self, status: Callable[[], dict[str, Any]], actions: dict[str, Action]) -> None:
        self._status = status
        self._actions = actions  # "databases/stop" -> action(stack, name, body)
        self.token = secrets.token_urlsafe(32)
        self._server: BackgroundHttpServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("control server not started")
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> None:
        """Listen and serve on a daemon thread."""
        self._server = BackgroundHttpServer(self._handler(), name="platform-control", poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def _handler(self) -> type[JsonRequestHandler]:
        control = self

        class Handler(JsonRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # no access log on the operator's terminal

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                if hmac.compare_digest(header.encode(), f"Bearer {control.token}".encode()):
                    return True
                self._reply(HTTPStatus.UNAUTHORIZED, {"error": "a bearer token is required"})
                return False

            def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler method name
                if not self._authorised():
                    return
                if self.path != "/status":
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {self.path}"})
                    return
                self._reply(HTTPStatus.OK, control._status())

            def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler method name
                if not self._authorised():
                    return
                match = re.fullmatch(r"/stacks/([^/]+)/(databases|caches|services)/([^/]+)/([a-z]+)", self.path)
                action = control._actions.get(f"{match.group(2)}/{match.group(4)}") if match else None
                if match is None or action is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such action: {self.path}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                except ValueError:
                    self._reply(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
                    return
                try:
                    self._reply(HTTPStatus.OK, action(match.group(1), match.group(3), body))
                except KeyError as exc:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"unknown {exc}"})

        return Handler
