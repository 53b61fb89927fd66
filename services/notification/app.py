"""The notification service's HTTP app.

Internal (east-west) endpoints:

* ``POST /internal/events`` -> 202 ``{"event_id", "duplicate"}``: the event is recorded once per ``event_id``; sending
  it again is accepted (``duplicate: true``) and stores nothing;
* ``GET /internal/events?payment_id=...`` -> 200 ``{"events": [...]}`` oldest first.

Public (ALB ``/notification/*``): ``GET /notification/health`` only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.common.auth import RdsTokenGenerator
from services.common.config import NotificationConfig
from services.common.db import create_pool
from services.common.schemas import Event, EventList, EventReceipt
from services.common.web import aclose_all, app_state, create_app

__all__ = ["create_notification_app"]

router = APIRouter()


def _pool(request: Request) -> AsyncConnectionPool[Any]:
    return app_state(request, AsyncConnectionPool, "pool")


@router.post("/internal/events", status_code=202)
async def record_event(event: Event, request: Request) -> EventReceipt:
    """Record one event (idempotent on ``event_id``)."""
    async with _pool(request).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO notification.events (event_id, event_type, payment_id, occurred_at, data)"
            " VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (event.event_id, event.type, event.payment_id, event.occurred_at, json.dumps(event.data)),
        )
        inserted = await cur.fetchone()
    return EventReceipt(event_id=event.event_id, duplicate=inserted is None)


@router.get("/internal/events")
async def list_events(payment_id: uuid.UUID, request: Request) -> EventList:
    """The events of one payment, oldest first."""
    async with _pool(request).connection() as conn:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT event_id, event_type AS type, payment_id, occurred_at, data FROM notification.events"
                " WHERE payment_id = %s ORDER BY occurred_at, received_at LIMIT 1000",
                (payment_id,),
            )
            rows = await cur.fetchall()
    return EventList(events=[Event.model_validate(row) for row in rows])


def create_notification_app(config: NotificationConfig, *, pool_options: dict[str, Any] | None = None) -> FastAPI:
    """The notification app; the pool is opened in its lifespan without waiting for the database."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = config.database
        pool = create_pool(
            db,
            RdsTokenGenerator(db.host, db.port, db.user, db.region),
            application_name="scalepay-notification",
            **(pool_options or {}),
        )
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await aclose_all(pool.close)

    app = create_app(config.service, title="scalepay-notification", routers=[router], lifespan=lifespan)
    return app
