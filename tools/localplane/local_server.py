"""What the local database servers share (:mod:`postgres`, :mod:`redis`): one server process under a Supervisor.

A server lives in its own base directory (its ``server.log`` there), keeps the port chosen at construction across
restarts, drops to uid/gid 65534 when we run as root (so ``base_dir`` must be reachable by that uid), and is stopped
with whatever signal suits it. A subclass builds its command line and says when it is ready (:meth:`LocalServer._ready`).
"""

from __future__ import annotations

import abc
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from tools.localplane._files import check_traversable, make_private_dir, tail
from tools.localplane.supervisor import ManagedProcess, Supervisor, SupervisorError, free_port, unprivileged_ids

__all__ = ["LocalServer"]


class LocalServer(abc.ABC):
    """One supervised server process with its own base directory; a context manager (start/stop)."""

    # Names the process and a supervisor made for it: "<prefix>-<port>".
    _name_prefix: ClassVar[str]
    # The program's name in start-up errors.
    _program: ClassVar[str]
    # What :meth:`_ready` raises while the server is still starting up (retried until the timeout).
    _starting_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, base_dir: Path, *, port: int | None = None, supervisor: Supervisor | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.log_path = self.base_dir / "server.log"
        # Chosen once, so the socket name / TCP port stays the same across restarts.
        self.port = port if port is not None else free_port()
        self._owns_supervisor = supervisor is None
        self._supervisor = supervisor if supervisor is not None else Supervisor(name=f"{self._name_prefix}-{self.port}")
        self._ids = unprivileged_ids()
        self._proc: ManagedProcess | None = None

    def _make_base_dir(self) -> None:
        """Create ``base_dir`` (0700, owned by the server's uid), failing early if that uid cannot reach it."""
        check_traversable(self.base_dir, self._ids)
        make_private_dir(self.base_dir, self._ids, 0o700)

    def _spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        group_signal: bool = True,
    ) -> None:
        """Start the server process from ``base_dir`` as the server's uid, logging to ``log_path`` (the signals and
        timeout as for :meth:`Supervisor.start_process`)."""
        self._proc = self._supervisor.start_process(
            f"{self._name_prefix}-{self.port}",
            argv,
            env=env,
            cwd=self.base_dir,
            uid=self._ids[0] if self._ids else None,
            gid=self._ids[1] if self._ids else None,
            log_path=self.log_path,
            port=self.port,
            stop_signal=stop_signal,
            death_signal=death_signal,
            stop_timeout=stop_timeout,
            group_signal=group_signal,
        )

    @abc.abstractmethod
    def _ready(self) -> bool:
        """True once the server answers; may raise one of ``_starting_errors`` while it starts up."""

    def _wait_ready(self, timeout: float) -> None:
        """Poll :meth:`_ready` until it is true; stop the server and raise SupervisorError if it exits or times out."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or not self._proc.is_running():
                raise SupervisorError(f"{self._program} exited during start-up; log:\n{tail(self.log_path)}")
            try:
                if self._ready():
                    return
            except self._starting_errors as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise SupervisorError(f"{self._program} not ready after {timeout}s ({last_error}); log:\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Stop the server with its stop signal; does nothing when not running."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._supervisor.stop_process(proc)
        if self._owns_supervisor:
            self._supervisor.stop_all()

    @abc.abstractmethod
    def start(self) -> None:
        """Start the server and wait until it is ready."""

    def restart(self) -> None:
        """Stop, then start again on the same port (with the same base directory)."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.is_running()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
