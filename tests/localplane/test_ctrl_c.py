"""Ctrl-C on ``make deploy`` stops everything it started: nothing is left running or listening.

``python -m tools.deploy up`` (what ``make deploy`` runs) is started as a user would, in its own session, with
its outputs in a temporary directory; once the platform serves, every process of its tree and every port it
reported is recorded, the process gets SIGINT, and all of them must be gone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (walking /proc, so processes in their own sessions count too)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ports(platform_file: Path) -> set[int]:
    detail = json.loads(platform_file.read_text())
    urls = [detail["endpoint"], detail["control"]["url"], *(d["https"] for d in detail["frontDoors"])]
    urls += [d["http"] for d in detail["frontDoors"] if d["http"]]
    ports = {int(urlsplit(url).port or 0) for url in urls}
    ports |= {int(local.rsplit(":", 1)[1]) for local in detail["dataStores"].values()}
    ports |= {int(url.rsplit(":", 1)[1]) for url in detail["serviceConnect"].values()}
    ports |= {task["port"] for service in detail["services"].values() for task in service["tasks"]}
    return ports


def test_ctrl_c_stops_every_process_and_port(tmp_path: Path) -> None:
    log = (tmp_path / "deploy.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.deploy",
            "up",
            "--env",
            "dev",
            "--health-check-interval",
            "1",
            "--outputs-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while "Press Ctrl-C to stop everything" not in (tmp_path / "deploy.log").read_text():
            assert process.poll() is None, (tmp_path / "deploy.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the platform did not come up in 180 s"
            time.sleep(0.5)
        platform_file = tmp_path / "dev" / "local-platform.json"
        ports = _ports(platform_file)
        tree = _children(process.pid)
        assert len(tree) >= 5, f"expected the emulator, servers and tasks among the children: {tree}"
        assert all(_listening(port) for port in ports), "a reported port does not listen while the platform runs"

        # What Ctrl-C in a terminal does: SIGINT to the whole foreground process group, so the emulator and the
        # servers get it too, in no particular order, while the deploy tool is still stopping its tasks.
        os.killpg(process.pid, signal.SIGINT)
        try:
            assert process.wait(60) == 0
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # tools.deploy prints every thread's stack
            time.sleep(2)
            pytest.fail("still running 60 s after SIGINT:\n" + (tmp_path / "deploy.log").read_text()[-6000:])
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in tree if _alive(pid)], "processes outlived Ctrl-C"
        assert not [port for port in ports if _listening(port)], "ports still listen after Ctrl-C"
        assert not platform_file.exists(), "the platform's description outlived it"
        # An emulator that exited first is expected on Ctrl-C: stopping must not report it as an error.
        shutdown = (tmp_path / "deploy.log").read_text().split("Press Ctrl-C to stop everything", 1)[1]
        assert "Could not connect" not in shutdown and "Traceback" not in shutdown, shutdown[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


if not sys.platform.startswith("linux"):  # /proc walks
    pytestmark = pytest.mark.skip(reason="reads /proc: Linux only")
