"""The local front door: an HTTPS reverse proxy that behaves like the environment's Application Load Balancer.

What the ALB does, for what was deployed (see :mod:`tools.localplane.alb_config` for reading it back from the
emulator):

* an HTTPS listener (TLS 1.2+ or 1.3+ per the listener's security policy, the listener's certificate) that
  matches path-pattern rules in priority order and forwards to the next healthy target of the rule's target
  group, answering the listener's fixed response (404 JSON) when nothing matches;
* an HTTP listener whose only action is a 301 redirect to the HTTPS listener;
* target groups with active health checks (:class:`~tools.localplane.upstreams.UpstreamPool`), membership
  polled from a ``target_source`` (registrations in the emulator) every second;
* WAF, evaluated before routing on both listeners: per-client-IP rate limits over a sliding window and
  request-body size limits per path prefix, blocking with 403;
* an access log, one JSON object per request (like ALB access logs, without bodies or credentials).

Everything listens on 127.0.0.1, on free ports unless ports are configured.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from tools.localplane.upstreams import (
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
    send_fixed,
)

LOG = logging.getLogger("localplane.frontdoor")

#: ``target_source(target_group_arn)`` -> the targets registered in that group right now.
TargetSource = Callable[[str], Iterable[Target]]

TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

#: Client headers the load balancer sets itself; a client must not be able to forge them for the target.
_OVERWRITTEN = frozenset({b"x-forwarded-proto", b"x-forwarded-port", b"content-length"})

_JSON = "application/json"


# --- configuration ------------------------------------------------------------------------------------------


@dataclass
class Rule:
    """A listener rule: forward requests whose path matches one of ``path_patterns`` to a target group.

    ALB path-pattern semantics: case-sensitive, ``*`` matches any sequence of characters including ``/``,
    ``?`` exactly one character, the pattern must match the whole path (not the query string). The
    lowest ``priority`` number is evaluated first.
    """

    priority: int
    path_patterns: list[str]
    target_group_arn: str


@dataclass
class FixedResponse:
    """A ``fixed-response`` action."""

    status: int = 404
    content_type: str = _JSON
    body: str = '{"error":"not found"}'


@dataclass
class RedirectConfig:
    """The HTTP listener's ``redirect`` action (ALB ``#{...}`` placeholders are honoured).

    ``port`` is the deployed port (443); locally, a redirect to HTTPS goes to the local HTTPS port.
    """

    protocol: str = "HTTPS"
    port: str = "443"
    status: int = 301
    host: str = "#{host}"
    path: str = "/#{path}"
    query: str = "#{query}"


@dataclass
class TargetGroupConfig:
    """A target group: name, health check (None = no active checks), traffic port and protocol."""

    name: str
    health: HealthCheck | None = field(default_factory=HealthCheck)
    port: int = 8080
    protocol: str = "HTTP"
    deregistration_delay_s: float = 30.0


@dataclass
class RateRule:
    """WAF rate-based rule: more than ``limit`` requests from one client IP within ``window_s`` -> ``action``."""

    name: str
    priority: int
    limit: int
    window_s: float = 300.0
    action: str = "block"


@dataclass
class BodySizeRule:
    """WAF size constraint: a request body larger than ``max_bytes`` -> ``action``.

    Only for request paths starting with ``path_prefix`` (the ``UriPath`` byte match, after lower-casing
    the path if ``lowercase_path``), or for every path when it is None.
    """

    name: str
    priority: int
    max_bytes: int
    path_prefix: str | None = None
    action: str = "block"
    lowercase_path: bool = False


@dataclass
class NotEmulatedRule:
    """A web ACL rule the front door cannot evaluate (managed rule groups, unsupported statements)."""

    name: str
    priority: int
    reason: str


@dataclass
class WafConfig:
    """The emulated part of the web ACL associated with the load balancer."""

    rate_rules: list[RateRule] = field(default_factory=list)
    body_size_rules: list[BodySizeRule] = field(default_factory=list)
    not_emulated: list[NotEmulatedRule] = field(default_factory=list)
    default_action: str = "allow"
    name: str = ""
    arn: str = ""


@dataclass
class FrontDoorConfig:
    """Everything the front door serves; JSON-serialisable (:meth:`to_json` / :meth:`from_json`).

    ``https_port``/``http_port``: local ports, 0 or None for a free one. ``min_tls_version`` is
    ``TLSv1.2`` or ``TLSv1.3``; ``ciphers`` an OpenSSL cipher string for TLS 1.2 (None: OpenSSL's defaults).
    ``redirect`` None means no HTTP listener.
    """

    cert_path: str
    key_path: str
    https_port: int | None = None
    http_port: int | None = None
    min_tls_version: str = "TLSv1.2"
    ciphers: str | None = None
    ssl_policy: str | None = None
    rules: list[Rule] = field(default_factory=list)
    default_response: FixedResponse = field(default_factory=FixedResponse)
    target_groups: dict[str, TargetGroupConfig] = field(default_factory=dict)
    redirect: RedirectConfig | None = field(default_factory=RedirectConfig)
    waf: WafConfig | None = None
    idle_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    access_log_path: str | None = None
    load_balancer_arn: str = ""
    name: str = "frontdoor"
    not_emulated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A plain-JSON form of the configuration."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The configuration as JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontDoorConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["rules"] = [Rule(**r) for r in data.get("rules", [])]
        values["default_response"] = FixedResponse(**data.get("default_response", {}))
        values["target_groups"] = {
            arn: TargetGroupConfig(**{**tg, "health": HealthCheck(**tg["health"]) if tg.get("health") else None})
            for arn, tg in data.get("target_groups", {}).items()
        }
        values["redirect"] = RedirectConfig(**data["redirect"]) if data.get("redirect") else None
        waf = data.get("waf")
        values["waf"] = (
            WafConfig(
                **{
                    **waf,
                    "rate_rules": [RateRule(**r) for r in waf.get("rate_rules", [])],
                    "body_size_rules": [BodySizeRule(**r) for r in waf.get("body_size_rules", [])],
                    "not_emulated": [NotEmulatedRule(**r) for r in waf.get("not_emulated", [])],
                }
            )
            if waf
            else None
        )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> FrontDoorConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def with_health_check_interval(self, interval_s: float, timeout_s: float | None = None) -> FrontDoorConfig:
        """A copy whose target groups check every ``interval_s`` (e.g. 1 s locally instead of the deployed 30 s)."""
        groups = {
            arn: dataclasses.replace(
                tg,
                health=dataclasses.replace(
                    tg.health,
                    interval_s=interval_s,
                    timeout_s=timeout_s if timeout_s is not None else min(tg.health.timeout_s, interval_s),
                )
                if tg.health
                else None,
            )
            for arn, tg in self.target_groups.items()
        }
        return dataclasses.replace(self, target_groups=groups)

    def not_emulated_summary(self) -> list[str]:
        """Human-readable lines for everything deployed that the front door does not emulate."""
        lines = list(self.not_emulated)
        if self.waf is not None:
            lines += [f"WAF rule {r.name!r} (priority {r.priority}): {r.reason}" for r in self.waf.not_emulated]
        return lines


def compile_path_pattern(pattern: str) -> re.Pattern[str]:
    """ALB path pattern -> regular expression matching the whole path (``*`` any run, ``?`` one character)."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def server_ssl_context(
    cert_path: str, key_path: str, min_tls_version: str = "TLSv1.2", ciphers: str | None = None
) -> ssl.SSLContext:
    """Server-side TLS context: the listener's certificate, the policy's minimum version and TLS 1.2 ciphers."""
    try:
        minimum = TLS_VERSIONS[min_tls_version]
    except KeyError:
        raise ValueError(f"unsupported minimum TLS version {min_tls_version!r}; expected one of {sorted(TLS_VERSIONS)}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum
    context.load_cert_chain(cert_path, key_path)
    if ciphers:
        context.set_ciphers(ciphers)  # governs TLS 1.2 and below; TLS 1.3 suites are fixed by OpenSSL
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["http/1.1"])
    return context


# --- WAF ------------------------------------------------------------------------------------------------------


class _RateWindow:
    """Sliding-window request counts per client IP for one rate-based rule.

    Each IP keeps the timestamps of its last ``limit`` requests (a bounded deque): the current request is
    over the limit when ``limit`` requests already fall inside the window. Memory stays O(limit) per IP
    however hard a client floods, and blocked requests count too (a flooding client stays blocked).
    """

    def __init__(self, rule: RateRule) -> None:
        self.rule = rule
        self._seen: dict[str, collections.deque[float]] = {}
        self._next_prune = 0.0

    def matches(self, client_ip: str, _path: str, _body_len: int, now: float) -> bool:
        """Count this request; True if the client is over the limit (this request included)."""
        seen = self._seen.get(client_ip)
        if seen is None:
            seen = self._seen[client_ip] = collections.deque(maxlen=self.rule.limit)
        over = len(seen) == self.rule.limit and seen[0] > now - self.rule.window_s
        seen.append(now)
        if now >= self._next_prune:
            self._prune(now)
        return over

    def _prune(self, now: float) -> None:
        # Forget clients that have been quiet for a whole window, so the table does not grow without bound.
        horizon = now - self.rule.window_s
        for ip in [ip for ip, seen in self._seen.items() if seen[-1] <= horizon]:
            del self._seen[ip]
        self._next_prune = now + min(60.0, self.rule.window_s)


class Waf:
    """Evaluates the emulated web ACL rules in priority order; the first terminating action wins."""

    def __init__(self, config: WafConfig) -> None:
        self.config = config
        checks: list[tuple[int, str, str, Callable[[str, str, int, float], bool]]] = []
        for rate in config.rate_rules:
            checks.append((rate.priority, rate.name, rate.action, _RateWindow(rate).matches))
        for size in config.body_size_rules:
            checks.append((size.priority, size.name, size.action, _size_check(size)))
        self._checks = sorted(checks, key=lambda c: c[0])

    def evaluate(self, client_ip: str, path: str, body_len: int, now: float | None = None) -> tuple[str, str | None, list[str]]:
        """``(action, rule, counted)``: ``allow``/``block`` and the deciding rule (None: default action)."""
        now = time.monotonic() if now is None else now
        counted: list[str] = []
        for _priority, name, action, matches in self._checks:
            if matches(client_ip, path, body_len, now):
                if action == "count":
                    counted.append(name)  # COUNT only records the match; evaluation continues
                    continue
                return action, name, counted
        return self.config.default_action, None, counted


def _size_check(rule: BodySizeRule) -> Callable[[str, str, int, float], bool]:
    prefix = rule.path_prefix

    def matches(_ip: str, path: str, body_len: int, _now: float) -> bool:
        if body_len <= rule.max_bytes:
            return False
        if prefix is None:
            return True
        return (path.lower() if rule.lowercase_path else path).startswith(prefix)

    return matches


# --- the proxy --------------------------------------------------------------------------------------------------


@dataclass
class _Route:
    priority: int
    patterns: list[re.Pattern[str]]
    target_group_arn: str


class FrontDoor(LoopService):
    """The ALB stand-in: HTTPS + redirecting HTTP listeners on 127.0.0.1 serving a :class:`FrontDoorConfig`.

    Run it on its own thread (``start()``/``stop()``, also a context manager) or on an event loop the
    caller runs: pass ``loop=`` and call ``start()``/``stop()`` from another thread, or ``await astart()``
    / ``await astop()`` on that loop. ``target_source(target_group_arn)`` is called every
    ``poll_interval_s`` (in a worker thread: it may block, e.g. on boto3) to pick up registrations.
    """

    def __init__(
        self,
        config: FrontDoorConfig,
        target_source: TargetSource,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        poll_interval_s: float = 1.0,
    ) -> None:
        super().__init__(f"frontdoor-{config.name}", loop)
        self.config = config
        self.target_source = target_source
        self.poll_interval_s = poll_interval_s
        self.pools: dict[str, UpstreamPool] = {
            arn: UpstreamPool(tg.name, tg.health, deregistration_delay_s=tg.deregistration_delay_s)
            for arn, tg in config.target_groups.items()
        }
        unknown = {r.target_group_arn for r in config.rules} - set(self.pools)
        if unknown:
            raise ValueError(f"rules forward to target groups that are not configured: {sorted(unknown)}")
        self._routes = [
            _Route(r.priority, [compile_path_pattern(p) for p in r.path_patterns], r.target_group_arn)
            for r in sorted(config.rules, key=lambda r: r.priority)
        ]
        self._waf = Waf(config.waf) if config.waf is not None else None
        self._default_body = config.default_response.body.encode()
        self._forwarder: HttpForwarder | None = None
        self._https: AsgiListener | None = None
        self._http: AsgiListener | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._access_log: IO[str] | None = None
        self._port_header = b""
        # Counters for tests and the benchmark; only updated on the loop.
        self._per_target: collections.Counter[str] = collections.Counter()
        self._per_group: collections.Counter[str] = collections.Counter()
        self._blocked: collections.Counter[str] = collections.Counter()
        self._counted: collections.Counter[str] = collections.Counter()
        self._status: collections.Counter[int] = collections.Counter()
        self._requests = 0

    # --- addresses ------------------------------------------------------------------------------------------

    @property
    def https_port(self) -> int:
        """The local port of the HTTPS listener (0 before start)."""
        return self._https.port if self._https else 0

    @property
    def http_port(self) -> int:
        """The local port of the HTTP (redirect) listener (0 before start or without one)."""
        return self._http.port if self._http else 0

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://{LOCALHOST}:{self.https_port}"

    @property
    def http_url(self) -> str | None:
        """``http://127.0.0.1:<port>``, None without an HTTP listener."""
        return f"http://{LOCALHOST}:{self.http_port}" if self._http else None

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def astart(self) -> None:
        """Start on the running loop: pools and health checks, first target poll, then the listeners."""
        config = self.config
        context = server_ssl_context(config.cert_path, config.key_path, config.min_tls_version, config.ciphers)
        self._loop = asyncio.get_running_loop()
        self._forwarder = HttpForwarder(connect_timeout_s=config.connect_timeout_s, idle_timeout_s=config.idle_timeout_s)
        for pool in self.pools.values():
            await pool.start()
        # Registered targets are known (and being checked) before the first request can arrive.
        await self._poll_once()
        if config.access_log_path:
            os.makedirs(os.path.dirname(os.path.abspath(config.access_log_path)), exist_ok=True)
            self._access_log = open(config.access_log_path, "a", buffering=1, encoding="utf-8")
        self._https = AsgiListener(
            self._https_app,
            port=config.https_port,
            ssl_context=context,
            keep_alive_s=config.idle_timeout_s,
            name=f"{config.name}-https",
        )
        await self._https.start()
        self._port_header = str(self._https.port).encode()
        if config.redirect is not None:
            self._http = AsgiListener(
                self._http_app, port=config.http_port, keep_alive_s=config.idle_timeout_s, name=f"{config.name}-http"
            )
            await self._http.start()
        self._poll_task = self._loop.create_task(self._poll_forever(), name=f"poll:{config.name}")
        LOG.info("%s: serving %s (redirect from %s)", config.name, self.https_url, self.http_url)

    async def astop(self) -> None:
        """Stop on the running loop (idempotent)."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        listeners = [listener for listener in (self._https, self._http) if listener is not None]
        await asyncio.gather(*(listener.stop() for listener in listeners), return_exceptions=True)
        for pool in self.pools.values():
            await pool.stop()
        if self._forwarder is not None:
            await self._forwarder.aclose()
            self._forwarder = None
        if self._access_log is not None:
            self._access_log.close()
            self._access_log = None
        self._loop = None

    # --- membership ------------------------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        assert self._loop is not None
        arns = list(self.pools)
        results = await self._loop.run_in_executor(None, _read_targets, self.target_source, arns)
        for arn, targets in results.items():
            if isinstance(targets, Exception):
                # Keep the last known membership: an emulator hiccup must not deregister every task.
                LOG.warning("%s: reading targets of %s failed: %s", self.config.name, arn, targets)
            else:
                self.pools[arn].set_targets(targets)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self._poll_once()
            except Exception:  # the poller must survive anything a target source does
                LOG.exception("%s: target poll failed", self.config.name)

    # --- introspection ----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests``, ``per_target`` (``host:port``), ``per_target_group`` (name), WAF ``blocked``
        and ``counted`` per rule, and ``status`` (code -> count)."""

        def collect() -> dict[str, Any]:
            return {
                "requests": self._requests,
                "per_target": dict(self._per_target),
                "per_target_group": dict(self._per_group),
                "blocked": dict(self._blocked),
                "counted": dict(self._counted),
                "status": dict(self._status),
            }

        return self.call_on_loop(collect)

    # --- request handling -------------------------------------------------------------------------------------

    def route(self, path: str) -> str | None:
        """The target group ARN of the first rule (by priority) whose patterns match ``path``, or None."""
        for route in self._routes:
            for pattern in route.patterns:
                if pattern.fullmatch(path):
                    return route.target_group_arn
        return None

    def _waf_verdict(self, client_ip: str, path: str, body_len: int) -> str | None:
        """The name of the rule that blocks this request, or None if it may pass."""
        if self._waf is None:
            return None
        action, rule, counted = self._waf.evaluate(client_ip, path, body_len)
        for name in counted:
            self._counted[name] += 1
        if action == "block":
            name = rule or "default-action"
            self._blocked[name] += 1
            return name
        return None

    async def _read_admitted(
        self, receive: Receive, send: Send, record: dict[str, Any], started: float, client_ip: str, path: str
    ) -> bytes | None:
        """The request body once the WAF lets the request pass; None when the request is already finished: the
        client left first (460) or the WAF blocked it (403)."""
        try:
            body = await read_body(receive)
        except ClientDisconnectedError:
            self._finish(record, 460, started)  # ALB's code for "client closed the connection first"
            return None
        blocked = self._waf_verdict(client_ip, path, len(body))
        if blocked is not None:
            record["waf_rule"] = blocked
            record["response_bytes"] = await send_fixed(send, 403, _JSON, b'{"error":"forbidden"}')
            self._finish(record, 403, started)
            return None
        return body

    async def _http_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP listener: WAF, then the redirect to the HTTPS listener (same path and query)."""
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        client_ip, client = _client(scope)
        path = _raw_path(scope)
        record: dict[str, Any] = {"type": "http", "client": client, "method": scope["method"], "path": path}
        if await self._read_admitted(receive, send, record, started, client_ip, path) is None:
            return
        redirect = self.config.redirect
        assert redirect is not None
        location = self._location(redirect, scope, path)
        await send_fixed(send, redirect.status, "text/html", b"", [(b"location", location.encode("latin-1"))])
        self._finish(record, redirect.status, started)

    def _location(self, redirect: RedirectConfig, scope: Scope, path: str) -> str:
        """The redirect target with ALB's ``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}``, ``#{query}``."""
        host = _host(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        protocol = redirect.protocol.upper()
        if protocol == "HTTPS":
            # The deployed redirect names port 443; locally the HTTPS listener is on its own port.
            scheme, port = "https", str(self.https_port)
        else:
            scheme, port = "http", redirect.port.replace("#{port}", str(self.http_port))
        values = {"#{protocol}": scheme, "#{host}": host, "#{port}": port, "#{path}": path.lstrip("/"), "#{query}": query}

        def fill(template: str) -> str:
            for key, value in values.items():
                template = template.replace(key, value)
            return template

        new_path = fill(redirect.path) or "/"
        new_query = fill(redirect.query)
        return f"{scheme}://{fill(redirect.host)}:{port}{new_path}" + (f"?{new_query}" if new_query else "")

    async def _https_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTPS listener: WAF, rules by priority, forward to a healthy target or the default action."""
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        client_ip, client = _client(scope)
        method: str = scope["method"]
        path = _raw_path(scope)
        record: dict[str, Any] = {"type": "https", "client": client, "method": method, "path": path}
        body = await self._read_admitted(receive, send, record, started, client_ip, path)
        if body is None:
            return

        arn = self.route(path)
        if arn is None:
            fixed = self.config.default_response
            record["response_bytes"] = await send_fixed(send, fixed.status, fixed.content_type, self._default_body)
            self._finish(record, fixed.status, started)
            return
        pool = self.pools[arn]
        record["target_group"] = pool.name
        self._per_group[pool.name] += 1
        lease = pool.acquire()
        if lease is None:
            record["response_bytes"] = await send_fixed(send, 503, _JSON, b'{"error":"service unavailable"}')
            self._finish(record, 503, started)
            return

        target = lease.target
        record["target"] = str(target)
        self._per_target[str(target)] += 1
        headers, trace_id = self._upstream_headers(scope, client_ip)
        record["trace_id"] = trace_id
        raw_target = request_target(scope)
        assert self._forwarder is not None
        try:
            response = await self._forwarder.send(target, method, raw_target, headers, body)
        except UpstreamError as exc:
            lease.release(failed=True)
            status = 504 if exc.kind in ("timeout", "connect_timeout") else 502
            record["error"] = exc.kind
            message = b'{"error":"gateway timeout"}' if status == 504 else b'{"error":"bad gateway"}'
            record["response_bytes"] = await send_fixed(send, status, _JSON, message)
            self._finish(record, status, started)
            return
        record["target_status"] = response.status_code
        failed = False
        try:
            record["response_bytes"] = await relay_response(response, send)
        except UpstreamError as exc:
            # The status already went out: returning without finishing makes uvicorn cut the client connection,
            # which is what the ALB does too. The access log says what happened.
            failed = True
            record["error"] = f"response body: {exc.kind}"
            LOG.warning("%s: %s %s: target %s failed mid-response: %s", self.config.name, method, path, target, exc)
        finally:
            lease.release(failed=failed)
            self._finish(record, response.status_code, started)

    def _upstream_headers(self, scope: Scope, client_ip: str) -> tuple[list[tuple[bytes, bytes]], str]:
        """Client headers minus hop-by-hop ones, plus X-Forwarded-For/Proto/Port and X-Amzn-Trace-Id."""
        headers = forwardable_headers(scope["headers"], _OVERWRITTEN)
        forwarded_for: list[bytes] = []
        trace = b""
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"x-amzn-trace-id":
                trace = value
            else:
                kept.append((name, value))
        # ALB's default "append" mode: the client's own X-Forwarded-For stays, the connection's address is added.
        forwarded_for.append(client_ip.encode())
        if not trace:
            trace = f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}".encode()
        kept += [
            (b"x-forwarded-for", b", ".join(forwarded_for)),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-port", self._port_header),
            (b"x-amzn-trace-id", trace),
        ]
        return kept, trace.decode("latin-1")

    def _finish(self, record: dict[str, Any], status: int, started: float) -> None:
        """Count the request and write its access-log line (never bodies, Authorization or Cookie)."""
        self._requests += 1
        self._status[status] += 1
        if self._access_log is not None:
            record["status"] = status
            record["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
            record["time"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            record.setdefault("target", "-")
            self._access_log.write(json.dumps(record, separators=(",", ":")) + "\n")


def _read_targets(source: TargetSource, arns: list[str]) -> dict[str, list[Target] | Exception]:
    """Call the (possibly blocking) target source for every group, in a worker thread."""
    results: dict[str, list[Target] | Exception] = {}
    for arn in arns:
        try:
            results[arn] = list(source(arn))
        except Exception as exc:  # reported by the caller, per group
            results[arn] = exc
    return results


def _client(scope: Scope) -> tuple[str, str]:
    """``(ip, "ip:port")`` of the connection."""
    client = scope.get("client")
    if not client:
        return "-", "-"
    return str(client[0]), f"{client[0]}:{client[1]}"


def _raw_path(scope: Scope) -> str:
    """The path as the client sent it (percent-escapes kept): what rules and WAF match and the target receives."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else str(scope["path"])


def _host(scope: Scope) -> str:
    """The Host header's host name (no port), or 127.0.0.1."""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            if host.startswith("["):
                return host.split("]", 1)[0] + "]"
            return host.rsplit(":", 1)[0] if ":" in host else host
    return LOCALHOST
