"""The east-west stand-in for ECS Service Connect.

On AWS every task of a Service Connect namespace gets an Envoy sidecar; a client alias such as
``payment:8080`` resolves to it, and Envoy load-balances over the healthy tasks of the ``payment`` service,
retrying requests whose connection to a task failed. Locally each alias is a :class:`ServiceConnectProxy`: a
plain-HTTP proxy on a free 127.0.0.1 port forwarding round-robin to the healthy targets of an
:class:`~tools.localplane.upstreams.UpstreamPool` that the local task runner keeps up to date
(:meth:`ServiceConnectProxy.set_targets` as tasks start and stop). :class:`ServiceConnectMesh` holds the proxies
of one namespace and gives the task runner the ``{alias: "http://127.0.0.1:<port>"}`` map it needs to rewrite
client URLs.

Answers follow Envoy's: 503 when the service has no healthy task ("no healthy upstream") or every attempt
failed to connect, 504 when the per-request timeout (15 s, Service Connect's default) passes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import urllib.parse
from collections.abc import Iterable
from typing import Any

from tools.localplane.upstreams import (
    IDEMPOTENT_METHODS,
    LOCALHOST,
    AsgiListener,
    ClientDisconnectedError,
    HealthCheck,
    HttpForwarder,
    LoopService,
    Receive,
    Scope,
    Send,
    Target,
    UpstreamError,
    UpstreamPool,
    forwardable_headers,
    read_body,
    relay_response,
    request_target,
    run_sync,
    send_fixed,
)

LOG = logging.getLogger("localplane.service_connect")

_JSON = "application/json"
_DROP = frozenset({b"content-length"})  # recomputed from the buffered body


class ServiceConnectProxy(LoopService):
    """One client alias (e.g. ``payment:8080``): HTTP on 127.0.0.1, balanced over the service's healthy tasks.

    ``health`` None: tasks are in rotation as soon as they are registered (ECS only registers RUNNING tasks);
    otherwise they must pass ``healthy_threshold`` checks first, like behind the ALB.

    Retries (``max_retries`` further attempts, each on a target not tried yet for this request): a request
    whose connection could not be established is retried whatever its method (the target never saw it);
    a request whose connection broke after it was sent is retried only if its method is idempotent.
    Timeouts are not retried (Envoy's default retry policy does not either).
    """

    def __init__(
        self,
        alias_name: str,
        health: HealthCheck | None = None,
        *,
        port: int | None = 0,
        loop: asyncio.AbstractEventLoop | None = None,
        max_retries: int = 2,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 15.0,
    ) -> None:
        super().__init__(f"service-connect-{alias_name}", loop)
        self.alias_name = alias_name
        self.max_retries = max_retries
        self._requested_port = port or 0
        self._connect_timeout_s = connect_timeout_s
        self._request_timeout_s = request_timeout_s
        self.pool = UpstreamPool(alias_name, health, deregistration_delay_s=request_timeout_s, user_agent="Envoy/HC")
        self._listener: AsgiListener | None = None
        self._forwarder: HttpForwarder | None = None
        self._per_target: collections.Counter[str] = collections.Counter()
        self._status: collections.Counter[int] = collections.Counter()
        self._retries = 0
        self._requests = 0

    @property
    def port(self) -> int:
        """The local port (0 before start)."""
        return self._listener.port if self._listener else 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: what the alias resolves to locally."""
        return f"http://{LOCALHOST}:{self.port}"

    def set_targets(self, targets: Iterable[Target]) -> None:
        """The service's running tasks (call whenever one starts or stops; from any thread)."""
        self.pool.set_targets(targets)

    async def astart(self) -> None:
        """Start on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._forwarder = HttpForwarder(connect_timeout_s=self._connect_timeout_s, idle_timeout_s=self._request_timeout_s)
        await self.pool.start()
        self._listener = AsgiListener(self._app, port=self._requested_port, name=self._service_name)
        await self._listener.start()
        LOG.info("service connect %s -> %s", self.alias_name, self.url)

    async def astop(self) -> None:
        """Stop on the running loop (idempotent)."""
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await self.pool.stop()
        if self._forwarder is not None:
            await self._forwarder.aclose()
            self._forwarder = None
        self._loop = None

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests``, ``per_target`` (``host:port`` -> attempts), ``retries``, ``status``."""
        return self.call_on_loop(
            lambda: {
                "requests": self._requests,
                "per_target": dict(self._per_target),
                "retries": self._retries,
                "status": dict(self._status),
            }
        )

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self._requests += 1
        try:
            body = await read_body(receive)
        except ClientDisconnectedError:
            return
        status = await self._forward(scope, body, send)
        self._status[status] += 1

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> int:
        method: str = scope["method"]
        raw_target = request_target(scope)
        headers = forwardable_headers(scope["headers"], _DROP)
        if not any(name == b"x-request-id" for name, _ in headers):
            headers.append((b"x-request-id", os.urandom(16).hex().encode()))
        assert self._forwarder is not None
        tried: set[Target] = set()
        while True:
            lease = self.pool.acquire(exclude=tried)
            if lease is None:
                reason = b"upstream connect error" if tried else b"no healthy upstream"
                await send_fixed(send, 503, _JSON, b'{"error":"%s"}' % reason)
                return 503
            tried.add(lease.target)
            self._per_target[str(lease.target)] += 1
            try:
                response = await self._forwarder.send(lease.target, method, raw_target, headers, body)
            except UpstreamError as exc:
                lease.release(failed=True)
                LOG.info("%s: %s %s on %s failed: %s", self.alias_name, method, scope["path"], lease.target, exc)
                if exc.kind == "timeout":
                    await send_fixed(send, 504, _JSON, b'{"error":"upstream request timeout"}')
                    return 504
                retryable = not exc.sent or method in IDEMPOTENT_METHODS
                if retryable and len(tried) <= self.max_retries:
                    self._retries += 1
                    continue
                await send_fixed(send, 503, _JSON, b'{"error":"upstream connect error or disconnect/reset before headers"}')
                return 503
            failed = False
            try:
                await relay_response(response, send)
            except UpstreamError as exc:
                # Too late for a retry or another status: uvicorn cuts the client connection when we return.
                failed = True
                LOG.warning("%s: %s on %s failed mid-response: %s", self.alias_name, method, lease.target, exc)
            finally:
                lease.release(failed=failed)
            return response.status_code


class ServiceConnectMesh(LoopService):
    """The Service Connect proxies of one namespace, on one event loop.

    ``add()`` an alias per service (before or after ``start()``), keep each proxy's targets current with
    :meth:`set_targets`, and hand :meth:`endpoints` (or :meth:`rewrite`) to whatever starts the tasks.
    """

    def __init__(self, namespace: str, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(f"service-connect-mesh-{namespace}", loop)
        self.namespace = namespace
        self.proxies: dict[str, ServiceConnectProxy] = {}

    def add(
        self, alias_name: str, health: HealthCheck | None = None, *, port: int | None = 0, max_retries: int = 2
    ) -> ServiceConnectProxy:
        """Create (and, if the mesh runs, start) the proxy for ``alias_name`` (``name`` or ``name:port``)."""
        proxy = self._new_proxy(alias_name, health, port, max_retries)
        if self._loop is not None:
            if self._background is not None:
                self._background.run(proxy.astart())
            else:
                run_sync(self._loop, proxy.astart(), "ServiceConnectMesh.add")
        return proxy

    async def aadd(
        self, alias_name: str, health: HealthCheck | None = None, *, port: int | None = 0, max_retries: int = 2
    ) -> ServiceConnectProxy:
        """:meth:`add` for code running on the mesh's loop."""
        proxy = self._new_proxy(alias_name, health, port, max_retries)
        if self._loop is not None:
            await proxy.astart()
        return proxy

    def _new_proxy(self, alias_name: str, health: HealthCheck | None, port: int | None, max_retries: int) -> ServiceConnectProxy:
        """Create and record the (not yet started) proxy of a new alias; ValueError if the alias exists."""
        if alias_name in self.proxies:
            raise ValueError(f"{self.namespace}: alias {alias_name!r} already exists")
        proxy = ServiceConnectProxy(alias_name, health, port=port, max_retries=max_retries)
        self.proxies[alias_name] = proxy
        return proxy

    def set_targets(self, alias_name: str, targets: Iterable[Target]) -> None:
        """The running tasks behind ``alias_name``."""
        self.proxies[alias_name].set_targets(targets)

    def endpoints(self) -> dict[str, str]:
        """``{alias: "http://127.0.0.1:<port>"}`` for every started proxy."""
        return {alias: proxy.url for alias, proxy in self.proxies.items() if proxy.port}

    def rewrite(self, url: str) -> str:
        """``http://payment:8080/v1/x`` -> ``http://127.0.0.1:<port>/v1/x`` when ``payment:8080`` (or ``payment``)
        is an alias; other URLs unchanged."""
        parts = urllib.parse.urlsplit(url)
        for key in (parts.netloc, parts.hostname or ""):
            proxy = self.proxies.get(key)
            if proxy is not None and proxy.port:
                return urllib.parse.urlunsplit(parts._replace(scheme="http", netloc=f"{LOCALHOST}:{proxy.port}"))
        return url

    async def astart(self) -> None:
        """Start every proxy on the running loop."""
        self._loop = asyncio.get_running_loop()
        for proxy in self.proxies.values():
            await proxy.astart()

    async def astop(self) -> None:
        """Stop every proxy (idempotent)."""
        await asyncio.gather(*(proxy.astop() for proxy in self.proxies.values()), return_exceptions=True)
        self._loop = None
