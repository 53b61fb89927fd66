"""Request and response models shared by the services (the api validates, payment validates again: defence in depth)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "Event",
    "EventList",
    "EventReceipt",
    "Payment",
    "PaymentRequest",
    "event_id_for",
    "request_hash",
]

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{8,128}$"
"""8-128 visible ASCII characters (UUIDs, ULIDs, client-generated strings)."""

MerchantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
# ISO 4217 alphabetic code: three upper-case letters.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# A token from the card vault / PSP: the services never see card numbers.
PaymentMethodToken = Annotated[str, StringConstraints(pattern=r"^tok_[A-Za-z0-9_]{8,64}$")]
# Minor units (cents); the upper bound keeps amounts far inside bigint and catches unit mistakes.
AmountMinor = Annotated[StrictInt, Field(gt=0, le=99_999_999_999)]

_EVENT_NAMESPACE = uuid.UUID("6b1f4c1e-2f3a-5d6e-8a9b-0c1d2e3f4a5b")


class PaymentRequest(BaseModel):
    """``POST /api/payments`` (and payment's ``POST /internal/payments``) body."""

    model_config = ConfigDict(extra="forbid")

    amount_minor: AmountMinor
    currency: Currency
    merchant_id: MerchantId
    payment_method_token: PaymentMethodToken
    capture: StrictBool = False
    description: Annotated[str, StringConstraints(max_length=255)] | None = None


class Payment(BaseModel):
    """A payment as the services return it."""

    id: uuid.UUID
    merchant_id: str
    amount_minor: int
    currency: str
    status: Literal["authorized", "captured"]
    payment_method_token: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    captured_at: datetime | None


class Event(BaseModel):
    """A payment event sent to notification (``POST /internal/events``)."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    type: Annotated[str, StringConstraints(pattern=r"^payment\.[a-z_]{1,40}$")]
    payment_id: uuid.UUID
    occurred_at: AwareDatetime
    data: Annotated[dict[Annotated[str, StringConstraints(max_length=64)], str | int | bool | None], Field(max_length=32)] = {}


class EventReceipt(BaseModel):
    """Notification's answer to an event: accepted, and whether it had been recorded before."""

    event_id: uuid.UUID
    duplicate: bool


class EventList(BaseModel):
    """Events of one payment, oldest first."""

    events: list[Event]


def event_id_for(payment_id: uuid.UUID, event_type: str) -> uuid.UUID:
    """Deterministic event id, so a re-sent event (retry, idempotent replay) is recorded once."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{payment_id}:{event_type}")


def request_hash(request: PaymentRequest) -> str:
    """SHA-256 of the request's canonical JSON: the same logical request gives the same hash, whatever its formatting."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
