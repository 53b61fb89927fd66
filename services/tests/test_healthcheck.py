"""``python -m services.common.healthcheck``: exit 0 on a 200 within 3 s, else 1; standard library only, fast."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.common.healthcheck import check
from services.tests.support import REPO_ROOT, free_port, run_healthcheck


class _Handler(BaseHTTPRequestHandler):
    """Answers /ok 200, /error 503, /slow after 4 s; records the paths it was asked for."""

    paths: list[str] = []

    def do_GET(self) -> None:
        """Serve one probe."""
        self.paths.append(self.path)
        if self.path == "/slow/health":
            time.sleep(4)
        status = {"/ok/health": 200, "/error/health": 503}.get(self.path, 200)
        try:
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:  # the slow probe's client gave up long ago
            pass

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP server on a free 127.0.0.1 port, shut down after the test."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # do not wait for the slow handler still sleeping after its client gave up
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def env_for(server: ThreadingHTTPServer, path: str) -> dict[str, str]:
    """PORT and HEALTH_CHECK_PATH as the task definition sets them."""
    return {"PORT": str(server.server_address[1]), "HEALTH_CHECK_PATH": path}


def test_200_is_healthy_and_the_configured_path_is_probed(server: ThreadingHTTPServer) -> None:
    """GET 127.0.0.1:$PORT$HEALTH_CHECK_PATH answering 200 -> healthy."""
    assert check(env_for(server, "/ok/health")) == (True, "GET /ok/health answered 200")
    assert _Handler.paths[-1] == "/ok/health"


def test_non_200_and_nothing_listening_are_unhealthy(server: ThreadingHTTPServer) -> None:
    """503, a closed port and a bad PORT are all unhealthy."""
    assert check(env_for(server, "/error/health")) == (False, "GET /error/health answered 503")
    healthy, reason = check({"PORT": str(free_port()), "HEALTH_CHECK_PATH": "/ok/health"})
    assert not healthy and "ConnectionRefusedError" in reason
    assert check({"PORT": "http", "HEALTH_CHECK_PATH": "/ok/health"}) == (False, "PORT='http' is not a port number")


def test_slow_answer_is_unhealthy_within_the_timeout(server: ThreadingHTTPServer) -> None:
    """A server that takes 4 s is unhealthy after the 3 s timeout: a TimeoutError, not the late answer."""
    started = time.monotonic()
    healthy, reason = check(env_for(server, "/slow/health"))
    elapsed = time.monotonic() - started
    assert not healthy and "TimeoutError" in reason
    assert elapsed >= 2.9  # it waited for the timeout; TimeoutError (not a 4 s answer) shows it gave up then


def test_module_exit_status_and_start_up_time(server: ThreadingHTTPServer) -> None:
    """As the container runs it: exit 0 when healthy, 1 when not; imports nothing heavy (so it starts fast)."""
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    ok = run_healthcheck({**base, **env_for(server, "/ok/health")})
    bad = run_healthcheck({**base, **env_for(server, "/error/health")})
    assert ok.returncode == 0 and ok.stderr == ""
    assert bad.returncode == 1 and bad.stderr.strip() == "unhealthy: GET /error/health answered 503"
    heavy = ("fastapi", "httpx", "botocore", "psycopg", "redis")
    probe = f"import sys, services.common.healthcheck; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    imported = subprocess.run([sys.executable, "-c", probe], env=base, capture_output=True, text=True, timeout=10)
    assert imported.stdout.strip() == "[]"
