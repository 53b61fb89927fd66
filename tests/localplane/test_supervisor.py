"""Supervisor: child processes stop (gracefully, then by force), die with their parent, stop in reverse order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tools.localplane.supervisor import Supervisor, SupervisorError, port_is_free

REPO = str(Path(__file__).resolve().parents[2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its new parent) counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _wait_for_line(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"nothing written to {path}")


def test_start_records_and_stops_with_sigterm(supervisor: Supervisor, tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = supervisor.start_process(
        "echo-child",
        [sys.executable, "-c", "import os, time; print(os.environ['GREETING'], os.getcwd(), flush=True); time.sleep(60)"],
        env={"GREETING": "hello"},
        cwd=tmp_path,
        log_path=log,
        port=5555,
    )
    assert supervisor.get("echo-child") is proc
    assert proc.port == 5555
    assert proc.is_running()
    assert os.getpgid(proc.pid) == proc.pid  # its own process group
    assert _wait_for_line(log) == f"hello {tmp_path}"
    with pytest.raises(SupervisorError):
        supervisor.start_process("echo-child", ["sleep", "1"])
    assert supervisor.stop_process("echo-child") == -signal.SIGTERM  # SIGTERM was enough: no SIGKILL needed
    assert not proc.is_running()
    assert supervisor.get("echo-child") is None


def test_sigkill_after_timeout_takes_the_whole_group(supervisor: Supervisor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = textwrap.dedent(
        f"""
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen(["sleep", "60"])
        open({str(pidfile)!r}, "w").write(f"{{grandchild.pid}}\\n")
        time.sleep(60)
        """
    )
    proc = supervisor.start_process("stubborn", [sys.executable, "-c", script], stop_timeout=0.5)
    grandchild = int(_wait_for_line(pidfile))
    started = time.monotonic()
    assert supervisor.stop_process(proc) == -signal.SIGKILL
    assert time.monotonic() - started > 0.4  # it gave SIGTERM its stop_timeout first
    assert _wait_dead(grandchild)


def test_stop_all_in_reverse_order(tmp_path: Path) -> None:
    order: list[str] = []
    sup = Supervisor(name="order")
    first = sup.start_process("backend", ["sleep", "60"])
    sup.add_callback("front", lambda: order.append(f"front (backend running: {first.is_running()})"))
    second = sup.start_process("late", ["sleep", "60"])
    sup.add_callback("last", lambda: order.append(f"last (late running: {second.is_running()})"))
    sup.close()
    assert order == ["last (late running: True)", "front (backend running: True)"]
    assert not first.is_running()
    assert not second.is_running()
    assert sup.processes == []
    sup.close()  # idempotent


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drop_to_unprivileged_uid(supervisor: Supervisor, tmp_path: Path) -> None:
    log = tmp_path / "id.log"
    proc = supervisor.start_process("whoami", ["sh", "-c", "id -u; id -g; id -G"], uid=65534, gid=65534, log_path=log)
    proc.popen.wait(5)
    assert log.read_text().split() == ["65534", "65534", "65534"]  # no supplementary groups of root either


def test_async_server_on_the_supervisor_loop(supervisor: Supervisor) -> None:
    async def start() -> asyncio.Server:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        return await asyncio.start_server(echo, "127.0.0.1", 0)

    server = supervisor.run_coroutine(start())
    port = server.sockets[0].getsockname()[1]

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        data = await reader.readline()
        writer.close()
        return data

    assert asyncio.run(client()) == b"ping\n"

    async def close() -> None:
        server.close()
        await server.wait_closed()

    supervisor.add_callback("echo", lambda: supervisor.run_coroutine(close()))
    supervisor.stop_all()
    assert port_is_free(port)
    # The loop comes back on demand after stop_all().
    assert supervisor.run_coroutine(asyncio.sleep(0, result=42)) == 42


def _run_parent(tmp_path: Path, body: str) -> tuple[subprocess.Popen[str], int]:
    """A parent process that starts a supervised `sleep` and reports the child's pid, then runs ``body``."""
    pidfile = tmp_path / "child.pid"
    script = (
        textwrap.dedent(
            """
        import sys, time
        from tools.localplane.supervisor import Supervisor
        sup = Supervisor()
        child = sup.start_process("sleeper", ["sleep", "60"])
        """
        )
        + textwrap.dedent(body)
        + textwrap.dedent(
            f"""
        open({str(pidfile)!r}, "w").write(f"{{child.pid}}\\n")
        time.sleep(float(sys.argv[1]))
        """
        )
    )
    parent = subprocess.Popen([sys.executable, "-c", script, "60"], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, text=True)
    return parent, int(_wait_for_line(pidfile))


def test_children_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    parent, child = _run_parent(tmp_path, "")
    try:
        assert _alive(child)
        parent.kill()  # no atexit, no signal handler: only PR_SET_PDEATHSIG can take the child down
        parent.wait(5)
        assert _wait_dead(child)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)])
def test_signal_handlers_stop_everything(tmp_path: Path, sig: int, code: int) -> None:
    parent, child = _run_parent(tmp_path, "sup.install_signal_handlers()")
    try:
        parent.send_signal(sig)
        assert parent.wait(10) == code  # SystemExit(128+15); an unhandled KeyboardInterrupt re-raises SIGINT
        assert _wait_dead(child, timeout=1)
    finally:
        parent.kill()
        parent.wait()


def test_atexit_safety_net(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        from tools.localplane.supervisor import Supervisor
        sup = Supervisor()
        child = sup.start_process("sleeper", ["sleep", "60"], death_signal=0)
        open({str(pidfile)!r}, "w").write(f"{{child.pid}}\\n")
        """
    )
    # death_signal=0 disables PR_SET_PDEATHSIG for this child, so only the atexit hook can stop it.
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, check=True, timeout=30)
    child = int(_wait_for_line(pidfile))
    assert _wait_dead(child, timeout=2)
