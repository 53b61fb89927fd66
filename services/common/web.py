"""HTTP plumbing shared by the services: the request middleware, error responses, the app factory and the server.

:class:`RequestMiddleware` wraps every request, outermost, and enforces what the services promise regardless of route:

* a request id on every response (``X-Request-Id``: the caller's when well-formed, else a new one), propagated to
  east-west calls and added to every log line;
* bodies larger than ``MAX_REQUEST_BODY_BYTES`` are refused with 413 before anything parses them;
* no card data: a PAN-like value anywhere in the path, the query, the ``Idempotency-Key`` header or the body (any
  field, key or value, at any depth) is refused with 422, without echoing it;
* one JSON access line per request: method, path *template* (never the raw path), status, milliseconds;
* an unexpected exception becomes a 500 with the request id, logged with its traceback (masked).

Dependency outages (PostgreSQL, Redis, an upstream service, AWS credentials) map to 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

import botocore.exceptions
import psycopg
import psycopg.errors
import psycopg_pool
import redis.exceptions
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.config import ServiceConfig
from services.common.errors import ApiError, DependencyUnavailableError
from services.common.logs import emf_block, request_id_var
from services.common.pan import contains_pan, find_pan_field

__all__ = [
    "RETRY_AFTER_SECONDS",
    "ApiError",
    "DependencyUnavailableError",
    "RequestMiddleware",
    "app_state",
    "create_app",
    "error_response",
    "serve",
]

RETRY_AFTER_SECONDS = 2
"""What a 503 asks the caller to wait: about one pool reconnect attempt."""

BODY_READ_TIMEOUT_SECONDS = 10.0
"""A client trickling its body slower than this gets 408 instead of holding a worker."""

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,128}")
# Headers the services read (only these are scanned for card data: scanning e.g. trace headers, which are random hex,
# would reject a small fraction of legitimate requests).
_SCANNED_HEADERS = (b"idempotency-key",)

T = TypeVar("T")

access_log = logging.getLogger("access")
log = logging.getLogger("services.web")


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The services' error body: ``{"error", "message", "request_id", ...extra}``."""
    body: dict[str, Any] = {"error": code, "message": message, **extra}
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


def _unavailable(dependency: str) -> JSONResponse:
    return error_response(
        503,
        "dependency_unavailable",
        f"{dependency} is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        dependency=dependency,
    )


# Exception type -> dependency name, for the 503 mapping. ReadOnlySqlTransaction: an Aurora failover in progress (the
# writer endpoint briefly points at the old writer, now a reader).
_DEPENDENCY_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (psycopg_pool.PoolTimeout, "database"),
    (psycopg.OperationalError, "database"),
    (psycopg.errors.ReadOnlySqlTransaction, "database"),
    (redis.exceptions.ConnectionError, "cache"),
    (redis.exceptions.TimeoutError, "cache"),
    (redis.exceptions.BusyLoadingError, "cache"),
    (redis.exceptions.AuthenticationError, "cache"),
    (botocore.exceptions.BotoCoreError, "aws-credentials"),
)


def install_error_handlers(app: FastAPI) -> None:
    """Map validation errors, HTTP errors, :class:`ApiError` and dependency outages to JSON error responses."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's default handler echoes the offending input back; never echo what a client sent.
        errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
        return error_response(422, "validation_error", "the request is invalid", errors=errors)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    async def on_dependency_unavailable(request: Request, exc: Exception) -> JSONResponse:
        dependency = exc.dependency if isinstance(exc, DependencyUnavailableError) else _dependency_of(exc)
        log.warning("dependency unavailable", extra={"dependency": dependency, "error": type(exc).__name__, "detail": str(exc)})
        return _unavailable(dependency)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DependencyUnavailableError, on_dependency_unavailable)
    for exc_type, _ in _DEPENDENCY_ERRORS:
        app.add_exception_handler(exc_type, on_dependency_unavailable)


def _dependency_of(exc: BaseException) -> str:
    for exc_type, name in _DEPENDENCY_ERRORS:
        if isinstance(exc, exc_type):
            return name
    return "unknown"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _is_normalised(raw_path: str) -> bool:
    # "/payment/../internal/payments" must not reach an internal route through a public ALB prefix.
    segments = raw_path.split("/")[1:]
    return raw_path.startswith("/") and all(s not in (".", "..") for s in segments) and "//" not in raw_path


class RequestMiddleware:
    """Request id, body-size limit, card-data rejection, access log and last-resort 500 (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: ServiceConfig, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.config = config
        self.max_body = config.max_request_body_bytes
        self.routes = routes  # to name the route of a request refused before routing (413, 422 card data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) and not contains_pan(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        state: dict[str, Any] = {"status": 500, "started": False, "finished": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Latency ends when the response is out, not after background tasks (event delivery) have run.
                state["finished"] = time.perf_counter()
            await send(message)

        try:
            rejection = self._check_target(scope)
            body = b""
            if rejection is None:
                body, rejection = await self._read_body(scope, receive)
            if rejection is None:
                rejection = self._check_body(body)
            if rejection is not None:
                await rejection(scope, receive, send_with_id)
            else:
                await self.app(scope, _replay(body, receive), send_with_id)
        except Exception:
            log.exception("unhandled error")
            if not state["started"]:
                await error_response(500, "internal_error", "internal error")(scope, receive, send_with_id)
        finally:
            finished = state["finished"] or time.perf_counter()
            self._log_access(scope, state["status"], (finished - started) * 1000)
            request_id_var.reset(token)

    def _check_target(self, scope: Scope) -> JSONResponse | None:
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if not _is_normalised(unquote(raw_path)):
            return error_response(400, "bad_path", "the request path must be normalised (no '.', '..' or empty segments)")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        if contains_pan(unquote(raw_path)) or contains_pan(unquote_plus(query)):
            return _card_data_rejection("url")
        for name in _SCANNED_HEADERS:
            value = _header(scope, name)
            if value is not None and contains_pan(value):
                return _card_data_rejection(f"header {name.decode()}")
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, JSONResponse | None]:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return b"", _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        return b"", _too_large(self.max_body)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return b"", error_response(408, "request_timeout", "the request body was not received in time")
        return b"".join(chunks), None

    def _check_body(self, body: bytes) -> JSONResponse | None:
        if not body:
            return None
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
            field = find_pan_field(parsed)
        except RecursionError:
            # "[[[[...]]]]" within the size limit: refuse it here rather than crash in a parser further in.
            return error_response(422, "validation_error", "the request body is nested too deeply")
        except ValueError:
            # Not JSON (FastAPI will reject it): still refuse card data in it rather than let any of it near a log.
            return _card_data_rejection("body") if contains_pan(text) else None
        return _card_data_rejection(field) if field is not None else None

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", "<unmatched>"))
        partial = None
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return str(getattr(candidate, "path", "<unmatched>"))
            if match is Match.PARTIAL and partial is None:
                partial = str(getattr(candidate, "path", "<unmatched>"))
        return partial or "<unmatched>"

    def _log_access(self, scope: Scope, status: int, ms: float) -> None:
        template = self._template(scope)
        method = scope.get("method", "")
        access_log.info(
            "request",
            extra={
                "method": method,
                "path": template,
                "status": status,
                "ms": round(ms, 2),
                # Embedded metric format: CloudWatch turns these fields into metrics in METRICS_NAMESPACE.
                "emf": emf_block(
                    self.config.metrics_namespace,
                    {"Service": self.config.service, "Route": f"{method} {template}"},
                    {"Latency": "Milliseconds", "Requests": "Count", "Errors5xx": "Count"},
                ),
                "Service": self.config.service,
                "Route": f"{method} {template}",
                "Latency": round(ms, 2),
                "Requests": 1,
                "Errors5xx": 1 if status >= 500 else 0,
            },
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields the already-read body once, then defers to the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _too_large(limit: int) -> JSONResponse:
    return error_response(413, "request_too_large", f"the request body exceeds {limit} bytes", max_bytes=limit)


def _card_data_rejection(where: str) -> JSONResponse:
    # Name where it was found (a JSON path, "url", a header) so the client can fix it; never the value itself.
    return error_response(
        422,
        "card_data_rejected",
        "a field looks like a card number; card data is not accepted here, send a payment_method_token instead",
        field=where,
    )


def create_app(
    config: ServiceConfig,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """A FastAPI app with ``routers``, the error handlers, the liveness route and :class:`RequestMiddleware` installed.

    The health route only says the process serves requests: it deliberately does not check the database or the cache,
    so a dependency outage does not make the orchestrator replace every task (outages show as 503 per request).
    """
    # No interactive docs or OpenAPI document: nothing here is meant for browsing, and it is less surface.
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install_error_handlers(app)

    async def health() -> dict[str, str]:
        return {"status": "ok", "service": config.service}

    app.add_api_route(config.health_check_path, health, methods=["GET"], name="health")
    routes: list[BaseRoute] = list(app.router.routes)
    for router in routers:
        app.include_router(router)
        routes.extend(router.routes)  # the routers' own routes carry their full path templates
    app.add_middleware(RequestMiddleware, config=config, routes=tuple(routes))
    return app


def app_state(request: Request, kind: type[T], name: str = "deps") -> T:
    """``request.app.state.<name>`` as the app's lifespan set it (what the endpoints use), checked to be a ``kind``."""
    value = getattr(request.app.state, name)
    assert isinstance(value, kind)
    return value


def serve(app: FastAPI, config: ServiceConfig) -> None:
    """Run ``app`` with uvicorn on BIND_ADDRESS:PORT until SIGTERM/SIGINT (graceful shutdown)."""
    uvicorn.run(
        app,
        host=config.bind_address,
        port=config.port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # RequestMiddleware writes the access line (path template, no query string)
        server_header=False,
        # Longer than the ALB's 60 s idle timeout, so the ALB (not us) closes idle keep-alive connections: otherwise a
        # request can race our close and get a 502.
        timeout_keep_alive=65,
        # ECS sends SIGTERM, then SIGKILL after stopTimeout (30 s by default): finish in-flight requests before that.
        timeout_graceful_shutdown=20,
        proxy_headers=False,
    )


async def aclose_all(*closers: Callable[[], Any]) -> None:
    """Await every closer even if one fails (used at shutdown)."""
    for close in closers:
        try:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.warning("error while closing a resource", exc_info=True)
