"""What the TLS/IAM-auth fronts of the data stores share (:mod:`pg_front` for Aurora, :mod:`redis_front` for ElastiCache).

A front listens on 127.0.0.1 on the supervisor's event loop, runs one task per client connection that logs the client
in (within the config's ``auth_timeout``) and then pipes bytes between the client and its own backend connection, and
on stop closes the listener and every connection. A subclass says how a client logs in (:meth:`AuthFront._login`),
what the backend needs before the first login (:meth:`AuthFront._prepare_backend`) and whether TLS starts with the
first byte (``_tls_on_connect``) or is negotiated inside the protocol.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import ssl
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypedDict, TypeVar

from tools.localplane._aio import cancel_and_wait, close_stream
from tools.localplane.iam_auth import CredentialRegistry, PolicyChecker
from tools.localplane.pki import server_ssl_context
from tools.localplane.supervisor import Supervisor

__all__ = ["AuthFront", "FrontConfig", "FrontOptions", "pipe_both_ways"]

log = logging.getLogger(__name__)


class FrontConfig(Protocol):
    """The settings every front's config has."""

    port: int | None  # the local listener's port; None picks a free one
    min_tls_version: str
    auth_timeout: float  # seconds a client has to finish logging in


class FrontOptions(TypedDict):
    """The keyword arguments of every front's constructor: its certificate, IAM checks, supervisor and name."""

    cert_path: Path
    key_path: Path
    registry: CredentialRegistry
    policy: PolicyChecker
    supervisor: Supervisor
    name: str


ConfigT = TypeVar("ConfigT", bound=FrontConfig)
BackendT = TypeVar("BackendT")


class AuthFront(abc.ABC, Generic[ConfigT, BackendT]):
    """A data store's endpoint stand-in in front of ``backend``; runs on the supervisor's event loop."""

    _default_name: ClassVar[str] = "front"
    # TLS from the first byte (ElastiCache), rather than negotiated inside the protocol (PostgreSQL's SSLRequest).
    _tls_on_connect: ClassVar[bool] = False
    # How a client connection normally ends (hang-up, bad TLS, garbage, timeout): logged at debug level only.
    _connection_ended: ClassVar[tuple[type[Exception], ...]] = (
        TimeoutError,
        ConnectionError,
        ssl.SSLError,
        asyncio.IncompleteReadError,
        ValueError,
    )
    # The subclass's module logger, so that log lines keep naming the front's module.
    _log: ClassVar[logging.Logger] = log

    def __init__(
        self,
        config: ConfigT,
        backend: BackendT,
        *,
        cert_path: Path,
        key_path: Path,
        registry: CredentialRegistry,
        policy: PolicyChecker,
        supervisor: Supervisor,
        name: str | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.registry = registry
        self.policy = policy
        self.supervisor = supervisor
        self.name = self._default_name if name is None else name
        self._ssl = server_ssl_context(cert_path, key_path, config.min_tls_version)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The local TCP port clients connect to on 127.0.0.1."""
        if self._port is None:
            raise RuntimeError("front not started")
        return self._port

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the backend, listen on 127.0.0.1 (configured port, or a free one) and register with the supervisor
        for stop_all()."""
        if self._server is not None:
            return
        self._prepare_backend()
        self.supervisor.run_coroutine(self._start())
        self.supervisor.add_callback(self.name, self._stop_from_supervisor)

    @abc.abstractmethod
    def _prepare_backend(self) -> None:
        """What the backend needs before the first login (blocking; called by :meth:`start`)."""

    async def _start(self) -> None:
        tls = self._ssl if self._tls_on_connect else None
        self._server = await asyncio.start_server(
            self._on_connection,
            host="127.0.0.1",
            port=self.config.port or 0,
            ssl=tls,
            ssl_handshake_timeout=10 if tls is not None else None,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        self._log.info("%s listening on 127.0.0.1:%s%s", self.name, self._port, " (TLS)" if tls is not None else "")

    def stop(self) -> None:
        """Stop listening and close every client connection."""
        self.supervisor.remove_callback(self.name)
        self._stop_from_supervisor()

    def _stop_from_supervisor(self) -> None:
        if self._server is not None:
            self.supervisor.run_coroutine(self._stop())

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await cancel_and_wait(self._tasks)
        if server is not None:
            await server.wait_closed()

    # -- connections -------------------------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            backend = await asyncio.wait_for(self._login(reader, writer), self.config.auth_timeout)
            if backend is not None:
                await self._pipe(reader, writer, *backend)
        except self._connection_ended as exc:
            self._log.debug("%s: connection ended: %r", self.name, exc)
        except Exception:
            self._log.exception("%s: connection failed", self.name)
        finally:
            self._tasks.discard(task)
            await close_stream(writer)

    @abc.abstractmethod
    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Log the client in; its backend connection, or None when the client was turned away or left."""

    async def _pipe(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        backend_reader: asyncio.StreamReader,
        backend_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy bytes both ways until either side closes; then close both (a backend restart ends the session)."""
        try:
            await pipe_both_ways(client_reader, client_writer, backend_reader, backend_writer)
        finally:
            await close_stream(backend_writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            return
        writer.write(data)
        await writer.drain()


async def pipe_both_ways(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy a->b and b->a until either direction ends (EOF or error), then cancel the other."""
    tasks = [asyncio.ensure_future(_copy(a_reader, b_writer)), asyncio.ensure_future(_copy(b_reader, a_writer))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks)
