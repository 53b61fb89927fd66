"""One owner for every child process and in-process server of the local data plane.

The local data plane starts real servers (PostgreSQL, Valkey) as child processes and runs its TLS/auth fronts as asyncio
servers inside this process. A :class:`Supervisor` owns all of them so nothing outlives a run:

* child processes are started in their own session/process group, optionally as an unprivileged uid/gid, with stdout
  and stderr going to a log file; stopping sends a stop signal, waits, then SIGKILLs the whole process group;
* every child gets ``prctl(PR_SET_PDEATHSIG)`` so it is signalled when this process dies, even on SIGKILL. The kernel
  ties that signal to the *thread* that forked the child, so all children are forked from the supervisor's own
  long-lived event-loop thread (never from a short-lived caller thread whose exit would kill them);
* in-process asyncio servers run on that same background event loop (:attr:`Supervisor.loop`,
  :meth:`Supervisor.run_coroutine`) and are stopped by :meth:`Supervisor.stop_all`, which stops everything in reverse
  start order (fronts before the servers behind them);
* :meth:`Supervisor.install_signal_handlers` makes SIGINT/SIGTERM stop everything, and an ``atexit`` hook is the
  safety net when the owner forgets to call :meth:`Supervisor.stop_all`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from tools.localplane._aio import cancel_other_tasks

__all__ = ["ManagedProcess", "Supervisor", "SupervisorError", "free_port", "port_is_free", "unprivileged_ids"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
# Resolved once in the parent: loading a library inside a forked child of a multi-threaded process can deadlock on the
# dynamic loader's lock, so the child only calls an already-resolved function.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_PRCTL = _LIBC.prctl
_PRCTL.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_PRCTL.restype = ctypes.c_int

NOBODY_UID = 65534
NOBODY_GID = 65534


class SupervisorError(RuntimeError):
    """A child process could not be started or misbehaved."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (bind to port 0 and read it back)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port right now (a server could bind it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections lingering in TIME_WAIT do not make the port unusable, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def unprivileged_ids() -> tuple[int, int] | None:
    """The uid/gid servers should drop to: 65534 ('nobody') when running as root, otherwise None (stay as we are)."""
    return (NOBODY_UID, NOBODY_GID) if os.geteuid() == 0 else None


@dataclass
class ManagedProcess:
    """A child process the supervisor started, with what is needed to find and stop it."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    port: int | None
    stop_signal: int
    stop_timeout: float
    group_signal: bool
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        """The child's pid (also its process-group id: every child leads its own session)."""
        return self.popen.pid

    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self.popen.poll() is None


@dataclass
class _Callback:
    """An in-process service (an asyncio server, an HTTP thread) to stop, in order, with the child processes."""

    name: str
    stop: Callable[[], None]


def _make_preexec(death_signal: int, parent_pid: int) -> Callable[[], None]:
    """Build the function the forked child runs before exec: ask for ``death_signal`` when the parent dies.

    subprocess drops uid/gid *before* calling preexec_fn; that matters because the kernel clears the parent-death
    signal whenever a process changes its credentials, so it has to be set after the drop, as here.
    """

    def preexec() -> None:
        if _PRCTL(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
            os._exit(125)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent_pid:
            os._exit(125)

    return preexec


class Supervisor:
    """Owns the child processes and in-process servers of one local data plane run.

    Use as a context manager (``with Supervisor() as sup: ...``) or call :meth:`stop_all` yourself.
    """

    def __init__(self, name: str = "localplane") -> None:
        self.name = name
        self._lock = threading.RLock()
        self._entries: list[ManagedProcess | _Callback] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._stopping = False
        atexit.register(self._atexit)

    # -- background event loop ---------------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The supervisor's event loop, running on its own daemon thread (started on first use)."""
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                # Daemon: interpreter shutdown must not wait for it (the atexit hook stops it properly first).
                thread = threading.Thread(target=run, name=f"{self.name}-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop_thread(self) -> bool:
        """True when called from the supervisor's event-loop thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the supervisor's loop and return a concurrent future for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run_coroutine(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the supervisor's loop and wait for its result (from any thread but the loop's own)."""
        if self.in_loop_thread():
            coro.close()
            raise SupervisorError("run_coroutine() called from the supervisor loop itself; await the coroutine instead")
        return self.submit(coro).result(timeout)

    def _call_in_loop_thread(self, fn: Callable[[], T]) -> T:
        """Run a blocking function on the loop thread (used for fork, so PDEATHSIG is tied to a long-lived thread)."""
        if self.in_loop_thread():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the caller's thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result()

    # -- child processes ---------------------------------------------------------------------------------------------

    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        uid: int | None = None,
        gid: int | None = None,
        log_path: str | Path | None = None,
        port: int | None = None,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        group_signal: bool = True,
    ) -> ManagedProcess:
        """Start ``argv`` as a supervised child and record it under ``name`` (which must be unique among live ones).

        ``env`` replaces the environment when given; ``uid``/``gid`` are dropped to before exec (root only);
        stdout/stderr append to ``log_path`` (else discarded); ``port`` is recorded for callers. ``stop_signal`` is
        what :meth:`stop_process` sends first (to the whole process group when ``group_signal``, else to the leader
        only, e.g. for PostgreSQL, whose postmaster orchestrates its own children), ``death_signal`` is what the child
        receives if this process dies.
        """
        with self._lock:
            if any(isinstance(e, ManagedProcess) and e.name == name and e.is_running() for e in self._entries):
                raise SupervisorError(f"a process named {name!r} is already running")
        log_file = open(log_path, "ab") if log_path is not None else None  # handed to the child, closed below
        try:
            preexec = _make_preexec(death_signal, os.getpid())

            def spawn() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    list(argv),
                    env=dict(env) if env is not None else None,
                    cwd=str(cwd) if cwd is not None else None,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file if log_file is not None else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order; it also makes
                    # the child's pid its process-group id for the group kill.
                    start_new_session=True,
                    user=uid,
                    group=gid,
                    # Shed root's supplementary groups along with its uid.
                    extra_groups=[] if uid is not None and os.geteuid() == 0 else None,
                    preexec_fn=preexec,
                    close_fds=True,
                )

            popen = self._call_in_loop_thread(spawn)
        except OSError as exc:
            raise SupervisorError(f"cannot start {name}: {exc}") from exc
        finally:
            if log_file is not None:
                log_file.close()
        proc = ManagedProcess(
            name=name,
            argv=list(argv),
            popen=popen,
            log_path=Path(log_path) if log_path is not None else None,
            port=port,
            stop_signal=stop_signal,
            stop_timeout=stop_timeout,
            group_signal=group_signal,
        )
        with self._lock:
            self._entries.append(proc)
        log.info("started %s (pid %s%s)", name, popen.pid, f", port {port}" if port else "")
        return proc

    def get(self, name: str) -> ManagedProcess | None:
        """The most recent process started under ``name``, if any."""
        with self._lock:
            for entry in reversed(self._entries):
                if isinstance(entry, ManagedProcess) and entry.name == name:
                    return entry
        return None

    @property
    def processes(self) -> list[ManagedProcess]:
        """The supervised child processes still recorded, in start order."""
        with self._lock:
            return [e for e in self._entries if isinstance(e, ManagedProcess)]

    def stop_process(self, proc: ManagedProcess | str, timeout: float | None = None) -> int | None:
        """Stop a child: its stop signal, then SIGKILL to the whole process group after ``timeout``; returns the code."""
        if isinstance(proc, str):
            found = self.get(proc)
            if found is None:
                return None
            proc = found
        with self._lock:
            if proc in self._entries:
                self._entries.remove(proc)
        return self._terminate(proc, proc.stop_timeout if timeout is None else timeout)

    @staticmethod
    def _signal(proc: ManagedProcess, sig: int, group: bool) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    def _terminate(self, proc: ManagedProcess, timeout: float) -> int | None:
        if proc.popen.poll() is None:
            self._signal(proc, proc.stop_signal, proc.group_signal)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %s) did not stop within %.1fs: SIGKILL", proc.name, proc.pid, timeout)
                self._signal(proc, signal.SIGKILL, True)
                proc.popen.wait()
        # Leftover group members (e.g. a server's helper processes) must not survive their leader.
        self._signal(proc, signal.SIGKILL, True)
        return proc.popen.returncode

    # -- in-process services -----------------------------------------------------------------------------------------

    def add_callback(self, name: str, stop: Callable[[], None]) -> None:
        """Register an in-process service's stop function, called by :meth:`stop_all` in reverse registration order."""
        with self._lock:
            self._entries.append(_Callback(name, stop))

    def remove_callback(self, name: str) -> None:
        """Forget a registered stop function (after the service stopped itself)."""
        with self._lock:
            self._entries = [e for e in self._entries if not (isinstance(e, _Callback) and e.name == name)]

    # -- stopping ----------------------------------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Stop every child process and in-process service, newest first, then the background event loop."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        try:
            while True:
                with self._lock:
                    if not self._entries:
                        break
                    entry = self._entries.pop()
                try:
                    if isinstance(entry, ManagedProcess):
                        self._terminate(entry, entry.stop_timeout)
                    else:
                        entry.stop()
                except Exception:  # one failing stop must not leave the others running
                    log.exception("stopping %s failed", entry.name)
            self._stop_loop()
        finally:
            with self._lock:
                self._stopping = False

    def _stop_loop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        if threading.current_thread() is not thread:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_other_tasks(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()
        else:
            loop.call_soon(loop.stop)

    def _atexit(self) -> None:
        if self._entries:
            log.warning("supervisor %s: stopping leftovers at exit", self.name)
        self.stop_all()

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM stop everything, then exit (KeyboardInterrupt / SystemExit(143)); main thread only."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop_all()
            self.restore_signal_handlers()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[sig] = signal.signal(sig, handler)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers that were in place before :meth:`install_signal_handlers`."""
        for sig, previous in self._previous_handlers.items():
            signal.signal(sig, previous)
        self._previous_handlers.clear()

    def close(self) -> None:
        """Stop everything and drop the atexit hook."""
        self.stop_all()
        atexit.unregister(self._atexit)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
