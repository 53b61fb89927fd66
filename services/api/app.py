"""The api service's HTTP app: ScalePayments' public REST API (ALB ``/api/*``).

* ``POST /api/payments`` (header ``Idempotency-Key``, 8-128 characters) -> 201 with the payment; a retry with the same
  key and body -> 201 with the same payment (``Idempotent-Replayed: true``); conflicts -> 409 (see payment);
* ``GET /api/payments/{id}`` -> 200 / 404;
* ``POST /api/payments/{id}/capture`` -> 200 / 404;
* ``GET /api/health`` -> 200 (liveness only).

Requests are validated here and forwarded to payment east-west; a ``payment.requested`` event goes to notification
after the answer (best effort, never fails the request). Payment's 4xx answers and its 503 (with ``Retry-After``) are
passed on; other upstream failures become 502, and an unreachable upstream 503.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.common.config import ApiConfig
from services.common.eastwest import EastWestClient, send_event
from services.common.schemas import IDEMPOTENCY_KEY_PATTERN, Event, Payment, PaymentRequest, event_id_for
from services.common.web import aclose_all, app_state, create_app, error_response

__all__ = ["create_api_app"]

log = logging.getLogger("services.api")

# Headers of payment's answer worth passing on to the client.
_PASSED_HEADERS = ("retry-after", "idempotent-replayed")


@dataclass
class ApiDependencies:
    """Upstream clients, created in the app's lifespan."""

    payment: EastWestClient
    notification: EastWestClient


def _deps(request: Request) -> ApiDependencies:
    return app_state(request, ApiDependencies)


def _relay(response: httpx.Response, expected: int) -> tuple[Payment | None, JSONResponse]:
    """Turn payment's answer into ours: (payment, response) when it is ``expected``, else (None, error passed on)."""
    headers = {name: response.headers[name] for name in _PASSED_HEADERS if name in response.headers}
    if response.status_code == expected:
        try:
            payment = Payment.model_validate(response.json())
        except (ValueError, ValidationError):
            return None, error_response(502, "bad_gateway", "the payment service returned an invalid answer")
        return payment, JSONResponse(payment.model_dump(mode="json"), status_code=expected, headers=headers)
    if 400 <= response.status_code < 500 or response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            # payment's error bodies carry no request data (see services.common.web); pass them on as they are.
            return None, JSONResponse(body, status_code=response.status_code, headers=headers)
    log.warning("unexpected answer from payment", extra={"status": response.status_code})
    return None, error_response(502, "bad_gateway", "the payment service failed")


async def send_requested_event(notification: EastWestClient, payment: Payment, occurred_at: datetime) -> None:
    """``payment.requested`` to notification; best effort (logged, never raised)."""
    event = Event(
        event_id=event_id_for(payment.id, "payment.requested"),
        type="payment.requested",
        payment_id=payment.id,
        occurred_at=occurred_at,
        data={"merchant_id": payment.merchant_id, "amount_minor": payment.amount_minor, "currency": payment.currency},
    )
    await send_event(notification, event, log)


router = APIRouter(prefix="/api")


@router.post("/payments", status_code=201, response_model=None)
async def create_payment(
    body: PaymentRequest,
    request: Request,
    background: BackgroundTasks,
    idempotency_key: Annotated[str, Header(pattern=IDEMPOTENCY_KEY_PATTERN)],
) -> JSONResponse:
    """Authorize a payment (and capture it when ``capture`` is true)."""
    received_at = datetime.now(UTC)
    deps = _deps(request)
    # Not retried on a timeout: the first attempt may be running; the client retries with its Idempotency-Key.
    response = await deps.payment.request(
        "POST",
        "/internal/payments",
        json=body.model_dump(mode="json"),
        headers={"idempotency-key": idempotency_key},
        idempotent=False,
    )
    payment, answer = _relay(response, 201)
    if payment is not None:
        background.add_task(send_requested_event, deps.notification, payment, received_at)
    return answer


@router.get("/payments/{payment_id}", response_model=None)
async def get_payment(payment_id: uuid.UUID, request: Request) -> JSONResponse:
    """One payment."""
    response = await _deps(request).payment.request("GET", f"/internal/payments/{payment_id}", idempotent=True)
    return _relay(response, 200)[1]


@router.post("/payments/{payment_id}/capture", response_model=None)
async def capture_payment(payment_id: uuid.UUID, request: Request) -> JSONResponse:
    """Capture an authorized payment (safe to retry: a captured payment is returned unchanged)."""
    response = await _deps(request).payment.request("POST", f"/internal/payments/{payment_id}/capture", idempotent=True)
    return _relay(response, 200)[1]


def create_api_app(config: ApiConfig) -> FastAPI:
    """The api app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps = ApiDependencies(
            payment=EastWestClient("payment", config.payment_url, caller="api"),
            notification=EastWestClient("notification", config.notification_url, caller="api"),
        )
        app.state.deps = deps
        try:
            yield
        finally:
            await aclose_all(deps.payment.aclose, deps.notification.aclose)

    app = create_app(config.service, title="scalepay-api", routers=[router], lifespan=lifespan)
    return app
