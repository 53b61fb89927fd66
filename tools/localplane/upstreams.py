"""HTTP upstream pools with ALB-style active health checks, and the serving plumbing both local proxies share.

The local front door (the ALB stand-in, :mod:`tools.localplane.frontdoor`) and the Service Connect stand-in
(:mod:`tools.localplane.service_connect`) both forward requests to a changing set of local task processes.
This module holds what they have in common:

* :class:`UpstreamPool`: the targets of one target group (or one Service Connect service), their health
  state machine (``initial`` -> ``healthy`` <-> ``unhealthy``, ``draining`` after deregistration) driven by
  active HTTP health checks on the asyncio loop, and round-robin selection over the healthy ones;
* :class:`HttpForwarder`: a keep-alive connection pool (h11) that sends a buffered request to a target and hands
  back the streaming response, with failures classified the way a load balancer needs them (connect vs. timeout);
* :class:`AsgiListener`: a uvicorn server on a socket bound to 127.0.0.1 (port 0 = free port), optionally TLS;
* :class:`BackgroundLoop`: an asyncio loop on its own daemon thread for callers that are not async.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import h11
import uvicorn

from tools.localplane._aio import cancel_other_tasks

LOG = logging.getLogger("localplane.upstreams")

#: The only address anything in the local plane listens on.
LOCALHOST = "127.0.0.1"

#: Headers that describe one connection, not the message (RFC 9110 7.6.1): a proxy never forwards them.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

#: Methods RFC 9110 9.2.2 calls idempotent: safe to send again to another target after a failure.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

T = TypeVar("T")

# ASGI callables, typed loosely on purpose: the ASGI message dicts are untyped by nature.
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- health checks ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def parse_matcher(matcher: str) -> tuple[tuple[int, int], ...]:
    """ALB ``Matcher.HttpCode`` (``"200"``, ``"200-399"``, ``"200,204"``) -> inclusive status ranges.

    Raises ``ValueError`` for anything else, so a typo in a configuration fails at start instead of
    silently marking every target unhealthy.
    """
    ranges: list[tuple[int, int]] = []
    for part in matcher.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            lo, hi = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"invalid health check matcher {matcher!r}: expected codes like 200, 200-399 or 200,204") from None
        if not 100 <= lo <= hi <= 599:
            raise ValueError(f"invalid health check matcher {matcher!r}: codes must be 100-599, low <= high")
        ranges.append((lo, hi))
    return tuple(ranges)


@dataclass(frozen=True)
class HealthCheck:
    """Active HTTP health check of a target group (the fields of an ALB target group's health check).

    ``interval_s`` and ``timeout_s`` are floats so tests can run checks every few tens of milliseconds.
    """

    path: str = "/"
    interval_s: float = 30.0
    timeout_s: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"health check path must start with '/': {self.path!r}")
        if self.interval_s <= 0 or self.timeout_s <= 0:
            raise ValueError("health check interval and timeout must be positive")
        if self.healthy_threshold < 1 or self.unhealthy_threshold < 1:
            raise ValueError("health check thresholds must be at least 1")
        parse_matcher(self.matcher)

    def matches(self, status: int) -> bool:
        """Whether ``status`` counts as a passing check under ``matcher``."""
        return any(lo <= status <= hi for lo, hi in parse_matcher(self.matcher))


@dataclass(frozen=True, order=True)
class Target:
    """A registered target: where a task listens (always 127.0.0.1 locally)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"


class TargetState(enum.StrEnum):
    """Target health states, named like ``DescribeTargetHealth``'s ``TargetHealth.State``."""

    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


@dataclass(frozen=True)
class TargetStatus:
    """One target's state and counters at the time of :meth:`UpstreamPool.snapshot`."""

    target: Target
    state: TargetState
    requests: int
    in_flight: int
    errors: int
    checks_passed: int
    checks_failed: int
    consecutive_successes: int
    consecutive_failures: int
    last_check: str


class _Entry:
    """Mutable bookkeeping of one target; only touched on the pool's event loop."""

    __slots__ = (
        "checks_failed",
        "checks_passed",
        "consecutive_failures",
        "consecutive_successes",
        "drain_handle",
        "errors",
        "in_flight",
        "last_check",
        "requests",
        "state",
        "target",
        "task",
    )

    def __init__(self, target: Target, state: TargetState) -> None:
        self.target = target
        self.state = state
        self.requests = 0
        self.in_flight = 0
        self.errors = 0
        self.checks_passed = 0
        self.checks_failed = 0
        self.consecutive_successes = 0
        self.consecutive_failures = 0
        self.last_check = "-"
        self.task: asyncio.Task[None] | None = None
        self.drain_handle: asyncio.TimerHandle | None = None

    def status(self) -> TargetStatus:
        return TargetStatus(
            target=self.target,
            state=self.state,
            requests=self.requests,
            in_flight=self.in_flight,
            errors=self.errors,
            checks_passed=self.checks_passed,
            checks_failed=self.checks_failed,
            consecutive_successes=self.consecutive_successes,
            consecutive_failures=self.consecutive_failures,
            last_check=self.last_check,
        )


class Lease:
    """One request's use of a target: counts it in flight until :meth:`release`."""

    __slots__ = ("_entry", "_pool", "_released", "target")

    def __init__(self, pool: UpstreamPool, entry: _Entry) -> None:
        self._pool = pool
        self._entry = entry
        self._released = False
        self.target = entry.target

    def release(self, *, failed: bool = False) -> None:
        """End the request (idempotent); ``failed`` counts a proxy error against the target."""
        if not self._released:
            self._released = True
            self._pool._release(self._entry, failed)


class UpstreamPool:
    """The targets of one target group: health checks, round robin over the healthy ones, draining.

    Like an ALB target group: a newly registered target is ``initial`` and only receives traffic after
    ``healthy_threshold`` consecutive passing checks; a healthy target leaves rotation after
    ``unhealthy_threshold`` consecutive failures and returns after ``healthy_threshold`` passes; a
    deregistered target is ``draining`` (no new requests) until its in-flight requests finish or
    ``deregistration_delay_s`` passes. With ``health=None`` there are no active checks and targets are
    in rotation as soon as they are registered (what Service Connect does for tasks without a health check).

    Health checks run on the asyncio loop :meth:`start` is awaited on. :meth:`set_targets`,
    :meth:`snapshot` and :meth:`next_target` may be called from any thread; calls from other threads are
    carried out on the pool's loop.
    """

    def __init__(
        self,
        name: str,
        health: HealthCheck | None,
        *,
        deregistration_delay_s: float = 30.0,
        user_agent: str = "ELB-HealthChecker/2.0",
    ) -> None:
        self.name = name
        self.health = health
        self.deregistration_delay_s = deregistration_delay_s
        self._user_agent = user_agent
        self._entries: dict[Target, _Entry] = {}
        self._healthy: list[_Entry] = []
        self._rr = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # No pooling for checks, like the ALB: each check must prove the task still accepts connections.
        self._checker = HttpForwarder(max_idle_per_target=0)

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the pool to the running loop and start health-checking the registered targets."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for entry in self._entries.values():
            if entry.state is not TargetState.DRAINING:
                self._start_checks(entry)

    async def stop(self) -> None:
        """Stop the health checks and close their client; the targets stay registered."""
        tasks = []
        for entry in self._entries.values():
            if entry.task is not None:
                entry.task.cancel()
                tasks.append(entry.task)
                entry.task = None
            if entry.drain_handle is not None:
                entry.drain_handle.cancel()
                entry.drain_handle = None
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None

    # --- membership -------------------------------------------------------------------------------

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Make ``targets`` the registered set: new ones start ``initial``, missing ones start draining."""
        self._on_loop(self._apply_targets, list(targets))

    def _apply_targets(self, targets: list[Target]) -> None:
        wanted = dict.fromkeys(targets)
        for target in wanted:
            entry = self._entries.get(target)
            if entry is None or entry.state is TargetState.DRAINING:
                self._register(target, entry)
        for target, entry in list(self._entries.items()):
            if target not in wanted and entry.state is not TargetState.DRAINING:
                self._deregister(entry)
        self._rebuild()

    def _register(self, target: Target, previous: _Entry | None) -> None:
        if previous is not None:
            # Registered again while draining: like a fresh registration, it has to prove itself healthy again.
            if previous.drain_handle is not None:
                previous.drain_handle.cancel()
                previous.drain_handle = None
            entry = previous
            entry.state = TargetState.INITIAL if self.health is not None else TargetState.HEALTHY
            entry.consecutive_successes = entry.consecutive_failures = 0
        else:
            entry = _Entry(target, TargetState.INITIAL if self.health is not None else TargetState.HEALTHY)
            self._entries[target] = entry
        LOG.info("%s: registered %s (%s)", self.name, target, entry.state)
        if self._loop is not None:
            self._start_checks(entry)

    def _deregister(self, entry: _Entry) -> None:
        entry.state = TargetState.DRAINING
        if entry.task is not None:
            # The ALB stops health-checking a target once it is deregistering.
            entry.task.cancel()
            entry.task = None
        LOG.info("%s: draining %s (%d in flight)", self.name, entry.target, entry.in_flight)
        if entry.in_flight == 0:
            self._forget(entry)
        elif self._loop is not None:
            # In-flight requests get up to the deregistration delay; after it the target is forgotten anyway.
            entry.drain_handle = self._loop.call_later(self.deregistration_delay_s, self._forget, entry)

    def _forget(self, entry: _Entry) -> None:
        if self._entries.get(entry.target) is entry and entry.state is TargetState.DRAINING:
            del self._entries[entry.target]
            if entry.drain_handle is not None:
                entry.drain_handle.cancel()
                entry.drain_handle = None
            LOG.info("%s: deregistered %s", self.name, entry.target)

    def _rebuild(self) -> None:
        # Registration order keeps the rotation stable when membership or health changes.
        self._healthy = [e for e in self._entries.values() if e.state is TargetState.HEALTHY]

    # --- selection ------------------------------------------------------------------------------------

    def next_target(self, exclude: frozenset[Target] | set[Target] = frozenset()) -> Target | None:
        """The next healthy target in round-robin order (skipping ``exclude``), or None if there is none."""
        entry = self._next_entry(exclude)
        return entry.target if entry is not None else None

    def _next_entry(self, exclude: frozenset[Target] | set[Target]) -> _Entry | None:
        healthy = self._healthy
        count = len(healthy)
        for _ in range(count):
            entry = healthy[self._rr % count]
            self._rr += 1
            if entry.target not in exclude:
                return entry
        return None

    def acquire(self, exclude: frozenset[Target] | set[Target] = frozenset()) -> Lease | None:
        """Pick the next healthy target and count a request in flight on it (call on the pool's loop)."""
        entry = self._next_entry(exclude)
        if entry is None:
            return None
        entry.requests += 1
        entry.in_flight += 1
        return Lease(self, entry)

    def _release(self, entry: _Entry, failed: bool) -> None:
        entry.in_flight -= 1
        if failed:
            entry.errors += 1
        if entry.state is TargetState.DRAINING and entry.in_flight == 0:
            self._forget(entry)

    # --- health checks --------------------------------------------------------------------------------

    def _start_checks(self, entry: _Entry) -> None:
        if self.health is None or entry.task is not None or self._loop is None:
            return
        entry.task = self._loop.create_task(self._check_loop(entry, self.health), name=f"health:{self.name}:{entry.target}")

    async def _check_loop(self, entry: _Entry, health: HealthCheck) -> None:
        # The first check runs at registration; later ones every interval, measured start to start.
        while True:
            started = time.monotonic()
            ok, detail = await self._probe(entry.target, health)
            if entry.state is TargetState.DRAINING or self._entries.get(entry.target) is not entry:
                return
            self._record(entry, health, ok, detail)
            await asyncio.sleep(max(0.0, started + health.interval_s - time.monotonic()))

    async def _probe(self, target: Target, health: HealthCheck) -> tuple[bool, str]:
        """One check: ``GET path`` on a new connection, passing if the status matches within the timeout."""
        headers = [(b"host", str(target).encode()), (b"user-agent", self._user_agent.encode()), (b"connection", b"close")]
        try:
            async with asyncio.timeout(health.timeout_s):
                response = await self._checker.send(target, "GET", health.path.encode(), headers, b"")
                await response.aclose()  # only the status counts; the body is not read
        except TimeoutError:
            return False, "Target.Timeout"
        except UpstreamError as exc:
            return False, f"Target.FailedHealthChecks ({exc.kind})"
        if health.matches(response.status_code):
            return True, f"HTTP {response.status_code}"
        return False, f"Target.ResponseCodeMismatch (HTTP {response.status_code})"

    def _record(self, entry: _Entry, health: HealthCheck, ok: bool, detail: str) -> None:
        entry.last_check = detail
        before = entry.state
        if ok:
            entry.checks_passed += 1
            entry.consecutive_successes += 1
            entry.consecutive_failures = 0
            if entry.state is not TargetState.HEALTHY and entry.consecutive_successes >= health.healthy_threshold:
                entry.state = TargetState.HEALTHY
        else:
            entry.checks_failed += 1
            entry.consecutive_failures += 1
            entry.consecutive_successes = 0
            if entry.state is not TargetState.UNHEALTHY and entry.consecutive_failures >= health.unhealthy_threshold:
                entry.state = TargetState.UNHEALTHY
        if entry.state is not before:
            LOG.info("%s: %s %s -> %s (%s)", self.name, entry.target, before, entry.state, detail)
            self._rebuild()

    # --- introspection --------------------------------------------------------------------------------

    def snapshot(self) -> dict[Target, TargetStatus]:
        """Every registered or draining target's state and counters."""
        return self._on_loop(lambda: {t: e.status() for t, e in self._entries.items()})

    def healthy_targets(self) -> list[Target]:
        """The targets in rotation right now, in rotation order."""
        return self._on_loop(lambda: [e.target for e in self._healthy])

    def _on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the pool's loop (state is only mutated there); directly if not started or already there."""
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return fn(*args)

        async def call() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# --- forwarding -------------------------------------------------------------------------------------------


class UpstreamError(Exception):
    """Forwarding to a target failed.

    ``kind`` is ``connect`` (refused/reset while connecting), ``connect_timeout``, ``timeout`` (no data
    within the idle timeout after sending) or ``protocol`` (the connection broke after the request was
    sent). ``sent`` tells whether the target may have seen the request, which decides whether a retry
    on another target is safe.
    """

    def __init__(self, kind: str, sent: bool, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.sent = sent
        self.detail = detail


class _Connection:
    """One keep-alive HTTP/1.1 connection to a target: asyncio streams plus an h11 client state machine."""

    __slots__ = ("h11", "idle_since", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False

    def usable(self, now: float, expiry: float) -> bool:
        # A target that closed an idle connection shows it as EOF on the reader: never send on such a one.
        return (
            now - self.idle_since < expiry
            and not self.reader.at_eof()
            and not self.writer.is_closing()
            and self.h11.our_state is h11.IDLE
        )

    def close(self) -> None:
        self.writer.close()


class UpstreamResponse:
    """A target's response: status and headers at once, the body read chunk by chunk with :meth:`read_chunk`.

    :meth:`aclose` must be called (``relay_response`` does): a fully read response returns its connection
    to the pool for the next request, anything else closes it.
    """

    __slots__ = ("_conn", "_done", "_forwarder", "_target", "headers", "status_code")

    def __init__(
        self, forwarder: HttpForwarder, target: Target, conn: _Connection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self._forwarder = forwarder
        self._target = target
        self._conn: _Connection | None = conn
        self._done = False
        self.status_code = status
        self.headers = headers

    async def read_chunk(self) -> tuple[bytes, bool]:
        """``(data, finished)``: the body bytes available now (waiting for some if none are), and whether that was all."""
        conn = self._conn
        if conn is None or self._done:
            return b"", True
        chunks: list[bytes] = []
        while True:
            try:
                event = conn.h11.next_event()
            except h11.ProtocolError as exc:  # e.g. the target hung up in the middle of the body
                raise UpstreamError("protocol", True, str(exc)) from None
            if event is h11.NEED_DATA:
                if chunks:
                    return b"".join(chunks), False
                await self._forwarder._receive(conn)
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
                return b"".join(chunks), True
            else:
                raise UpstreamError("protocol", True, f"unexpected {type(event).__name__} in the response body")

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the exchange completed cleanly, closed otherwise."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._forwarder._release(self._target, conn, reusable=self._done)


class HttpForwarder:
    """Sends buffered requests to targets over pooled HTTP/1.1 keep-alive connections.

    A small pool over asyncio streams with h11 doing all HTTP parsing and framing. httpx's pool was the
    first choice but cost ~2 ms of CPU per proxied request here (its pool re-scans every connection per
    request, and without ``sniffio`` installed httpcore retries that failing import on every request);
    this keeps the proxy several times faster on two cores. Idle connections are reused LIFO and dropped
    after ``keepalive_expiry_s``: below uvicorn's 5 s keep-alive, so the proxy does not pick a connection
    the target is just closing.
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        idle_timeout_s: float = 60.0,
        max_idle_per_target: int = 128,
        keepalive_expiry_s: float = 4.0,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_idle_per_target = max_idle_per_target
        self.keepalive_expiry_s = keepalive_expiry_s
        self._idle: dict[Target, list[_Connection]] = {}
        self._closed = False

    async def send(
        self, target: Target, method: str, raw_target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> UpstreamResponse:
        """Send ``method raw_target`` (path and query, as received) with ``headers`` and ``body`` to ``target``.

        ``headers`` must not carry Content-Length or hop-by-hop headers (the forwarder frames the body).
        Raises :class:`UpstreamError`.
        """
        request_headers = list(headers)
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE"):
            request_headers.append((b"content-length", str(len(body)).encode()))
        if not any(name == b"host" for name, _ in request_headers):
            request_headers.append((b"host", str(target).encode()))
        request = h11.Request(method=method, target=raw_target, headers=request_headers)
        conn = self._pooled(target)
        if conn is not None:
            try:
                return await self._exchange(target, conn, request, body)
            except UpstreamError as exc:
                # A reused connection that failed before any response byte was most likely closed by the target
                # while idle: the request did not get processed, and a fresh connection is worth one try.
                if exc.kind != "stale" or method not in IDEMPOTENT_METHODS:
                    raise UpstreamError("protocol" if exc.kind == "stale" else exc.kind, exc.sent, exc.detail) from exc
        conn = await self._connect(target)
        try:
            return await self._exchange(target, conn, request, body)
        except UpstreamError as exc:
            if exc.kind == "stale":
                raise UpstreamError("protocol", True, exc.detail) from exc
            raise

    async def aclose(self) -> None:
        """Close every pooled connection."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _pooled(self, target: Target) -> _Connection | None:
        conns = self._idle.get(target)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.usable(now, self.keepalive_expiry_s):
                conn.reused = True
                return conn
            conn.close()
        return None

    async def _connect(self, target: Target) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(target.host, target.port, limit=1 << 20)
        except TimeoutError:
            raise UpstreamError(
                "connect_timeout", False, f"no connection to {target} within {self.connect_timeout_s} s"
            ) from None
        except OSError as exc:
            raise UpstreamError("connect", False, f"{target}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, target: Target, conn: _Connection, request: h11.Request, body: bytes) -> UpstreamResponse:
        """Write the request, read up to the response head; the body stays in the connection for the caller."""
        try:
            data = conn.h11.send(request) or b""
            if body:
                data += conn.h11.send(h11.Data(data=body)) or b""
            data += conn.h11.send(h11.EndOfMessage()) or b""
            conn.writer.write(data)  # one write: head and small bodies leave in one segment
            await conn.writer.drain()
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    await self._receive(conn)
                elif isinstance(event, h11.Response):
                    return UpstreamResponse(self, target, conn, event.status_code, list(event.headers))
                elif isinstance(event, h11.InformationalResponse):
                    continue  # 100 Continue and friends are hop-by-hop: the client gets the final response only
                else:
                    raise UpstreamError("protocol", True, f"unexpected {type(event).__name__} before the response head")
        except UpstreamError as exc:
            conn.close()
            if exc.kind == "eof" and conn.reused:
                raise UpstreamError("stale", True, exc.detail) from None
            if exc.kind == "eof":
                raise UpstreamError("protocol", True, exc.detail) from None
            raise
        except h11.ProtocolError as exc:
            conn.close()
            raise UpstreamError("protocol", True, f"{target}: {exc}") from None
        except (ConnectionError, OSError) as exc:
            conn.close()
            kind = "stale" if conn.reused else "protocol"
            raise UpstreamError(kind, True, f"{target}: {exc}") from None
        except BaseException:
            conn.close()  # cancelled half-way: the connection's state is unknown, never pool it
            raise

    async def _receive(self, conn: _Connection) -> None:
        """Feed the next bytes from the target into h11, within the idle timeout."""
        try:
            async with asyncio.timeout(self.idle_timeout_s):
                data = await conn.reader.read(65536)
        except TimeoutError:
            conn.close()
            raise UpstreamError("timeout", True, f"no data from the target within {self.idle_timeout_s} s") from None
        except (ConnectionError, OSError) as exc:
            conn.close()
            raise UpstreamError("eof", True, str(exc)) from None
        if not data and conn.h11.their_state is h11.SEND_RESPONSE:
            conn.close()
            raise UpstreamError("eof", True, "the target closed the connection without a response")
        try:
            conn.h11.receive_data(data)
        except h11.RemoteProtocolError as exc:
            conn.close()
            raise UpstreamError("protocol", True, str(exc)) from None

    def _release(self, target: Target, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                conn.close()
                return
            idle = self._idle.setdefault(target, [])
            if len(idle) < self.max_idle_per_target:
                conn.idle_since = time.monotonic()
                idle.append(conn)
                return
        conn.close()


def forwardable_headers(
    headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """``headers`` without hop-by-hop headers (including those the Connection header names) and ``drop``.

    Names come back lower-cased (ASGI and HTTP/2 expect that).
    """
    pairs = [(name.lower(), value) for name, value in headers]
    named = {
        token.strip().lower() for name, value in pairs if name == b"connection" for token in value.split(b",") if token.strip()
    }
    skip = HOP_BY_HOP_HEADERS | named | drop
    return [(name, value) for name, value in pairs if name not in skip]


def request_target(scope: Scope) -> bytes:
    """The request target to forward: the path as the client sent it (percent-escapes kept) and its query string."""
    target: bytes = scope.get("raw_path") or str(scope["path"]).encode("latin-1")
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    return target


class ClientDisconnectedError(Exception):
    """The client went away before sending its whole request."""


async def read_body(receive: Receive) -> bytes:
    """The whole ASGI request body (the stand-ins buffer it: WAF size rules and retries need it)."""
    first = await receive()
    if first["type"] != "http.request":
        raise ClientDisconnectedError
    if not first.get("more_body", False):
        return bytes(first.get("body", b""))
    chunks = [first.get("body", b"")]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnectedError
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_fixed(send: Send, status: int, content_type: str, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> int:
    """Answer with a complete fixed response; returns the body length (for access logs)."""
    headers = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return len(body)


async def relay_response(response: UpstreamResponse, send: Send) -> int:
    """Stream a target's response to the ASGI client; returns the number of body bytes relayed.

    A failure while streaming the body cannot change the status any more (it has been sent): the
    connection is cut, which is what a load balancer does too. The target connection is always released.
    """
    sent = 0
    try:
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": forwardable_headers(response.headers)}
        )
        while True:
            chunk, finished = await response.read_chunk()
            sent += len(chunk)
            # A body that arrived whole (the usual small JSON answer) goes out as one message.
            await send({"type": "http.response.body", "body": chunk, "more_body": not finished})
            if finished:
                break
    finally:
        await response.aclose()
    return sent


# --- serving ----------------------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it and stops without polling."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install no signal handlers: Ctrl-C belongs to the supervisor, not to each listener."""
        yield

    async def main_loop(self) -> None:
        """Wait for :meth:`request_exit` instead of uvicorn's 100 ms polling.

        uvicorn's ticks only refresh the Date/Server default headers (both off here) and enforce
        ``limit_max_requests`` (unused), so one tick at start is all that is needed.
        """
        await self.on_tick(0)
        await self._exit.wait()

    def request_exit(self) -> None:
        """Begin the graceful shutdown."""
        self.should_exit = True
        self._exit.set()


class AsgiListener:
    """An ASGI app served by uvicorn on 127.0.0.1 (``port=0``: a free port), with TLS if ``ssl_context`` is given.

    The socket is bound by :meth:`start` itself, so the port is known as soon as it returns.
    """

    def __init__(
        self,
        app: AsgiApp,
        *,
        port: int | None = 0,
        ssl_context: ssl.SSLContext | None = None,
        keep_alive_s: float = 60.0,
        graceful_shutdown_s: float = 2.0,
        name: str = "listener",
    ) -> None:
        self.app = app
        self.name = name
        self._requested_port = port or 0
        self._ssl_context = ssl_context
        self._keep_alive_s = keep_alive_s
        self._graceful_shutdown_s = graceful_shutdown_s
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:<port>``."""
        return f"{'https' if self._ssl_context else 'http'}://{LOCALHOST}:{self.port}"

    async def start(self) -> None:
        """Bind, start serving on the running loop and return once connections are accepted."""
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
        # without it every response whose head and body are written separately waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOCALHOST, self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        context = self._ssl_context
        config = uvicorn.Config(
            self.app,
            host=LOCALHOST,
            port=self.port,
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",  # bound methods are not detected as ASGI 3 callables
            log_config=None,  # never reconfigure the embedding process's logging
            access_log=False,  # the stand-ins write their own access logs
            proxy_headers=False,  # clients are on 127.0.0.1 too: X-Forwarded-For from them must not be trusted
            server_header=False,
            date_header=False,
            timeout_keep_alive=int(max(1, self._keep_alive_s)),
            timeout_graceful_shutdown=int(max(1, self._graceful_shutdown_s)),
            ssl_context_factory=(lambda _config, _default: context) if context is not None else None,
        )
        server = _EmbeddedServer(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name=f"serve:{self.name}")
        while not server.started:
            if task.done():
                sock.close()
                task.result()  # raises the startup error
                raise RuntimeError(f"{self.name}: the server stopped during startup")
            await asyncio.sleep(0.002)
        self._server, self._task = server, task

    async def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections, let running requests finish (bounded)."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.request_exit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._graceful_shutdown_s
        try:
            while not task.done():
                if not server.server_state.tasks or loop.time() > deadline:
                    # Requests are done (or out of time): what is left are idle keep-alive connections. uvicorn
                    # closes them politely, but a TLS close waits for the client's close_notify, which an idle
                    # client never sends, so stopping would take the whole graceful timeout. Abort them instead.
                    for connection in list(server.server_state.connections):
                        transport = getattr(connection, "transport", None)
                        if transport is not None:
                            transport.abort()
                await asyncio.wait({task}, timeout=0.02)
            task.result()
        finally:
            self._server = self._task = None


class BackgroundLoop:
    """An asyncio event loop running on its own daemon thread, for callers that are not async."""

    def __init__(self, name: str = "localplane-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        """Cancel what still runs, stop the loop and join the thread (idempotent)."""
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            await cancel_other_tasks()
            await self.loop.shutdown_asyncgens()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(cancel_all(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()


def run_sync(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], what: str, timeout: float = 30.0) -> T:
    """Run ``coro`` on ``loop`` from a synchronous caller.

    ``loop`` must be running on another thread; from inside the loop, await the async variant instead
    (blocking here would deadlock the loop).
    """
    if _running_loop() is loop:
        coro.close()
        raise RuntimeError(f"{what}: called on its own event loop; use the async variant (await ...) there")
    if not loop.is_running():
        coro.close()
        raise RuntimeError(f"{what}: the event loop passed in is not running; run it on a thread or use the async variant")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=timeout)


class LoopService:
    """Lifecycle shared by the stand-ins: run on a private background loop, or on an event loop passed in.

    Subclasses implement :meth:`astart` / :meth:`astop` (which set and clear ``self._loop``). Synchronous
    callers use :meth:`start` / :meth:`stop` (or ``with``); code already running on the loop awaits the
    async variants.
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._service_name = name
        self._given_loop = loop
        self._background: BackgroundLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def astart(self) -> None:
        """Start on the running loop."""
        raise NotImplementedError

    async def astop(self) -> None:
        """Stop on the running loop (idempotent)."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start serving; on a private background loop unless a loop was passed in."""
        if self._given_loop is not None:
            run_sync(self._given_loop, self.astart(), f"{self._service_name}.start")
            return self
        background = BackgroundLoop(self._service_name)
        try:
            background.run(self.astart())
        except BaseException:
            # A half-started service must not leave listeners or tasks behind.
            with contextlib.suppress(Exception):
                background.run(self.astop())
            background.close()
            raise
        self._background = background
        return self

    def stop(self) -> None:
        """Stop serving and release the ports (idempotent)."""
        if self._background is not None:
            background, self._background = self._background, None
            try:
                background.run(self.astop())
            finally:
                background.close()
        elif self._given_loop is not None and self._loop is not None:
            run_sync(self._given_loop, self.astop(), f"{self._service_name}.stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call_on_loop(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the service's loop (where its state lives), from any thread."""
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)
