"""Start and stop the moto AWS emulator on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

# Settings the deployment relies on; moto reads them from the environment (some at import time).
EMULATOR_ENV = {
    # AWS-managed policies (AmazonECSTaskExecutionRolePolicy, ...) exist, so attachments resolve.
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    # ACM "validates" DNS certificates at once instead of after 60 s.
    "MOTO_ACM_VALIDATION_WAIT": "0",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(endpoint: str, timeout: float = 30.0) -> None:
    """Poll the emulator's health endpoint until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator at {endpoint} did not come up within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class Emulator:
    """A running moto server; ``stop()`` ends it."""

    endpoint: str
    _stop: Any = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._stop is not None:
            self._stop()
            self._stop = None


def start(port: int | None = None, in_process: bool = False) -> Emulator:
    """Start moto's server on 127.0.0.1.

    By default it runs as a ``python -m moto.server`` subprocess: on a 2-core machine the emulator
    and the Pulumi program then run on separate cores instead of sharing one interpreter lock.
    ``in_process`` runs :class:`moto.server.ThreadedMotoServer` in this process instead (tests).
    """
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if in_process:
        saved = {k: os.environ.get(k) for k in EMULATOR_ENV}
        os.environ.update(EMULATOR_ENV)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto import settings as moto_settings
        from moto.server import ThreadedMotoServer

        # moto read this at import time, possibly before the environment was set here.
        moto_settings.ACM_VALIDATION_WAIT = int(EMULATOR_ENV["MOTO_ACM_VALIDATION_WAIT"])

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        wait_until_up(endpoint)

        def stop_in_process() -> None:
            server.stop()
            # Leave the environment of the hosting process (a test session) as it was.
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        return Emulator(endpoint, stop_in_process)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **EMULATOR_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    try:
        wait_until_up(endpoint)
    except RuntimeError:
        stop()
        raise
    return Emulator(endpoint, stop)


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.emulator.server [--port N]``: run the emulator in the foreground until stopped.

    For flows where the emulator must outlive one command (deploy, then run the integration tests).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tools.emulator.server", description="run the moto AWS emulator")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    os.environ.update(EMULATOR_ENV)
    from moto.server import main as moto_main

    print(f"moto emulator on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    moto_main(["-H", args.host, "-p", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
