"""The payment service's HTTP app.

Internal (east-west, through Service Connect) endpoints:

* ``POST /internal/payments`` (header ``Idempotency-Key``): authorize (and optionally capture) -> 201 with the payment;
  a retry with the same key and body -> 201 with the same payment and ``Idempotent-Replayed: true``; the same key with
  another body -> 409 ``idempotency_key_reused``; while the first request is still running -> 409
  ``request_in_progress`` with ``Retry-After``;
* ``GET /internal/payments/{id}`` -> 200 / 404;
* ``POST /internal/payments/{id}/capture`` -> 200 (capturing a captured payment returns it unchanged) / 404.

Public (ALB ``/payment/*``): ``GET /payment/health`` only. Events (``payment.authorized``, ``payment.captured``) go to
notification after the commit, as background tasks: best effort, a failure is logged and never fails the request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import redis.asyncio
from fastapi import APIRouter, BackgroundTasks, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from services.common.auth import ElastiCacheTokenSigner, RdsTokenGenerator
from services.common.cache import create_redis
from services.common.config import PaymentConfig
from services.common.db import create_pool
from services.common.eastwest import EastWestClient, send_event
from services.common.errors import ApiError
from services.common.schemas import IDEMPOTENCY_KEY_PATTERN, Event, Payment, PaymentRequest, event_id_for, request_hash
from services.common.web import aclose_all, app_state, create_app
from services.payment import store
from services.payment.idempotency import IdempotencyStore, InFlight, Mismatch, Proceed, Replay

__all__ = ["PaymentDependencies", "create_payment_app"]

log = logging.getLogger("services.payment")


@dataclass
class PaymentDependencies:
    """What the endpoints use; created in the app's lifespan."""

    pool: AsyncConnectionPool[Any]
    redis: redis.asyncio.Redis
    idempotency: IdempotencyStore
    notification: EastWestClient


def _deps(request: Request) -> PaymentDependencies:
    return app_state(request, PaymentDependencies)


def _created(payment: Payment, *, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(payment.model_dump(mode="json"), status_code=201, headers=headers)


async def publish_events(notification: EastWestClient, payment: Payment, event_types: list[str]) -> None:
    """Send ``event_types`` for ``payment`` to notification; best effort (logged, never raised)."""
    for event_type in event_types:
        event = Event(
            event_id=event_id_for(payment.id, event_type),
            type=event_type,
            payment_id=payment.id,
            occurred_at=datetime.now(UTC),
            data={
                "merchant_id": payment.merchant_id,
                "amount_minor": payment.amount_minor,
                "currency": payment.currency,
                "status": payment.status,
            },
        )
        # Best effort: the payment is committed whatever happens here.
        await send_event(notification, event, log, payment_id=str(payment.id))


router = APIRouter()


@router.post("/internal/payments", status_code=201, response_model=None)
async def authorize(
    body: PaymentRequest,
    request: Request,
    background: BackgroundTasks,
    idempotency_key: Annotated[str, Header(pattern=IDEMPOTENCY_KEY_PATTERN)],
) -> JSONResponse:
    """Create a payment (authorize, optionally capture), exactly once per (merchant, Idempotency-Key)."""
    deps = _deps(request)
    digest = request_hash(body)
    decision = await deps.idempotency.begin(body.merchant_id, idempotency_key, digest)
    if isinstance(decision, Mismatch):
        raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was already used for a different request")
    if isinstance(decision, InFlight):
        raise ApiError(
            409,
            "request_in_progress",
            "a request with this Idempotency-Key is still being processed; retry later",
            headers={"Retry-After": "1"},
        )
    if isinstance(decision, Replay):
        async with deps.pool.connection() as conn:
            payment = await store.get_payment(conn, decision.payment_id)
        if payment is None:
            raise RuntimeError("idempotency record points to a payment that does not exist")
        return _created(payment, replayed=True)
    assert isinstance(decision, Proceed)
    try:
        async with deps.pool.connection() as conn:
            payment = await store.create_payment(conn, body, idempotency_key, digest)
    except store.ExistingPaymentError as existing:
        # Redis had lost the key; the database remembered it.
        if existing.request_hash != digest:
            await deps.idempotency.release(decision)
            raise ApiError(
                409, "idempotency_key_reused", "this Idempotency-Key was already used for a different request"
            ) from None
        await deps.idempotency.complete(decision, digest, existing.payment.id)
        return _created(existing.payment, replayed=True)
    except BaseException:
        # Nothing was committed: free the key so the client's retry is processed (best effort; it expires anyway).
        try:
            await deps.idempotency.release(decision)
        except Exception:
            log.warning("could not release idempotency key after a failure", exc_info=False)
        raise
    try:
        await deps.idempotency.complete(decision, digest, payment.id)
    except Exception:
        # Committed already: answer 201. A retry finds the in-flight key until it expires, then the database backstop.
        log.warning("could not record idempotency outcome", extra={"payment_id": str(payment.id)})
    events = ["payment.authorized", "payment.captured"] if payment.status == "captured" else ["payment.authorized"]
    background.add_task(publish_events, deps.notification, payment, events)
    return _created(payment, replayed=False)


@router.get("/internal/payments/{payment_id}")
async def read_payment(payment_id: uuid.UUID, request: Request) -> Payment:
    """One payment."""
    async with _deps(request).pool.connection() as conn:
        payment = await store.get_payment(conn, payment_id)
    if payment is None:
        raise ApiError(404, "payment_not_found", "no such payment")
    return payment


@router.post("/internal/payments/{payment_id}/capture")
async def capture(payment_id: uuid.UUID, request: Request, background: BackgroundTasks) -> Payment:
    """Capture an authorized payment (idempotent: capturing a captured payment returns it unchanged)."""
    deps = _deps(request)
    async with deps.pool.connection() as conn:
        result = await store.capture_payment(conn, payment_id)
    if result is None:
        raise ApiError(404, "payment_not_found", "no such payment")
    payment, changed = result
    if changed:
        background.add_task(publish_events, deps.notification, payment, ["payment.captured"])
    return payment


def create_payment_app(config: PaymentConfig, *, pool_options: dict[str, Any] | None = None) -> FastAPI:
    """The payment app; connections are made in its lifespan (the app starts even when the database is down)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tokens = RdsTokenGenerator(config.database.host, config.database.port, config.database.user, config.database.region)
        pool = create_pool(config.database, tokens, application_name="scalepay-payment", **(pool_options or {}))
        await pool.open(wait=False)
        cache = create_redis(
            config.redis,
            ElastiCacheTokenSigner(config.redis.cache_name, config.redis.user, config.redis.region),
            client_name="scalepay-payment",
        )
        notification = EastWestClient("notification", config.notification_url, caller="payment")
        app.state.deps = PaymentDependencies(pool, cache, IdempotencyStore(cache), notification)
        try:
            yield
        finally:
            await aclose_all(notification.aclose, cache.aclose, pool.close)

    app = create_app(config.service, title="scalepay-payment", routers=[router], lifespan=lifespan)
    return app
