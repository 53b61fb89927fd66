"""Container health check: ``python -m services.common.healthcheck``.

GET ``http://127.0.0.1:$PORT$HEALTH_CHECK_PATH``; exit 0 on a 200 within 3 seconds, else 1. Standard library only, so
it starts in a few tens of milliseconds (the image has no curl or wget, and importing the services would be slow).
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time
from collections.abc import Mapping

__all__ = ["TIMEOUT_SECONDS", "check", "main"]

TIMEOUT_SECONDS = 3.0


def check(environ: Mapping[str, str], timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    """Probe the local service; (healthy, one-line reason)."""
    port_text = environ.get("PORT", "")
    path = environ.get("HEALTH_CHECK_PATH", "")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return False, f"PORT={port_text!r} is not a port number"
    if not path.startswith("/"):
        return False, f"HEALTH_CHECK_PATH={path!r} is not an absolute path"
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection("127.0.0.1", int(port_text), timeout=timeout)
    try:
        conn.request("GET", path, headers={"user-agent": "scalepay-healthcheck"})
        if conn.sock is not None:  # the connect used part of the budget: the read gets only what is left
            conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
        response = conn.getresponse()
        response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {path} on port {port_text} failed: {type(exc).__name__}"
    finally:
        conn.close()
    if time.monotonic() > deadline:
        return False, f"GET {path} took longer than {timeout:g}s"
    if response.status != 200:
        return False, f"GET {path} answered {response.status}"
    return True, f"GET {path} answered 200"


def _timeout(signum: int, frame: object) -> None:
    # A last resort for a server that trickles its answer byte by byte (each read within the socket timeout).
    print(f"unhealthy: no answer within {TIMEOUT_SECONDS:g}s", file=sys.stderr)
    os._exit(1)


def main() -> int:
    """Exit status for the container runtime: 0 healthy, 1 unhealthy."""
    signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_SECONDS + 0.5)
    healthy, reason = check(os.environ)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if not healthy:
        print(f"unhealthy: {reason}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
