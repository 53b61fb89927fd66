"""PostgreSQL access for payments and the ledger (schema ``payment``).

Each state change is one database transaction: the payment row and its balanced ledger entries commit together or not
at all (the deferred balance trigger runs at COMMIT, so an unbalanced transaction rolls everything back).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from services.common.schemas import Payment, PaymentRequest
from services.payment.ledger import Entry, authorization_entries, capture_entries, check_balanced

__all__ = ["ExistingPaymentError", "capture_payment", "create_payment", "find_by_idempotency_key", "get_payment"]

_COLUMNS = (
    "id, merchant_id, amount_minor, currency, status, payment_method_token, description, created_at, updated_at, captured_at"
)


class ExistingPaymentError(Exception):
    """The (merchant, idempotency key) pair already has a payment (found by the database backstop)."""

    def __init__(self, payment: Payment, request_hash: str) -> None:
        super().__init__(str(payment.id))
        self.payment = payment
        self.request_hash = request_hash


def _payment(row: dict[str, Any]) -> Payment:
    return Payment.model_validate({k: v for k, v in row.items() if k != "request_hash"})


async def get_payment(conn: AsyncConnection[Any], payment_id: uuid.UUID) -> Payment | None:
    """The payment with ``payment_id``, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM payment.payments WHERE id = %s", (payment_id,))
        row = await cur.fetchone()
    await conn.commit()
    return _payment(row) if row else None


async def find_by_idempotency_key(conn: AsyncConnection[Any], merchant_id: str, key: str) -> tuple[Payment, str] | None:
    """(payment, request hash) created with this merchant's idempotency key, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS}, request_hash FROM payment.payments WHERE merchant_id = %s AND idempotency_key = %s",
            (merchant_id, key),
        )
        row = await cur.fetchone()
    await conn.commit()
    return (_payment(row), str(row["request_hash"])) if row else None


async def _write_ledger(conn: AsyncConnection[Any], payment_id: uuid.UUID, kind: str, entries: Sequence[Entry]) -> None:
    check_balanced(entries)  # fail fast in the app; the database checks again at commit
    transaction_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO payment.ledger_transactions (id, payment_id, kind) VALUES (%s, %s, %s)", (transaction_id, payment_id, kind)
    )
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO payment.ledger_entries (transaction_id, account, direction, amount_minor, currency)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(transaction_id, e.account, e.direction.value, e.amount_minor, e.currency) for e in entries],
        )


async def create_payment(conn: AsyncConnection[Any], request: PaymentRequest, idempotency_key: str, request_hash: str) -> Payment:
    """Authorize (and, with ``capture``, capture) a new payment with its ledger entries, in one transaction.

    Raises :class:`ExistingPaymentError` when the idempotency key already has a payment in the database.
    """
    payment_id = uuid.uuid4()
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            # ON CONFLICT: two requests with the same key racing after Redis lost it; the loser reads the winner below.
            await cur.execute(
                "INSERT INTO payment.payments (id, merchant_id, amount_minor, currency, status, payment_method_token,"
                " description, idempotency_key, request_hash) VALUES (%s, %s, %s, %s, 'authorized', %s, %s, %s, %s)"
                f" ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
                (
                    payment_id,
                    request.merchant_id,
                    request.amount_minor,
                    request.currency,
                    request.payment_method_token,
                    request.description,
                    idempotency_key,
                    request_hash,
                ),
            )
            row = await cur.fetchone()
        if row is None:
            existing = await _find_in_transaction(conn, request.merchant_id, idempotency_key)
            raise ExistingPaymentError(*existing)
        await _write_ledger(
            conn, payment_id, "authorization", authorization_entries(request.merchant_id, request.amount_minor, request.currency)
        )
        payment = _payment(row)
        if request.capture:
            payment = await _capture_locked(conn, payment)
    return payment


async def _find_in_transaction(conn: AsyncConnection[Any], merchant_id: str, key: str) -> tuple[Payment, str]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS}, request_hash FROM payment.payments WHERE merchant_id = %s AND idempotency_key = %s",
            (merchant_id, key),
        )
        row = await cur.fetchone()
    if row is None:  # the conflicting row was rolled back in between: let the client retry
        raise RuntimeError("idempotency conflict with a payment that no longer exists")
    return _payment(row), str(row["request_hash"])


async def _capture_locked(conn: AsyncConnection[Any], payment: Payment) -> Payment:
    await _write_ledger(conn, payment.id, "capture", capture_entries(payment.merchant_id, payment.amount_minor, payment.currency))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE payment.payments SET status = 'captured', captured_at = now(), updated_at = now()"
            f" WHERE id = %s AND status = 'authorized' RETURNING {_COLUMNS}",
            (payment.id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError(f"payment {payment.id} changed while being captured")
    return _payment(row)


async def capture_payment(conn: AsyncConnection[Any], payment_id: uuid.UUID) -> tuple[Payment, bool] | None:
    """Capture an authorized payment: (payment, True); already captured: (payment, False); unknown: None."""
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            # FOR UPDATE: two concurrent captures of one payment serialise here; the second sees 'captured'.
            await cur.execute(f"SELECT {_COLUMNS} FROM payment.payments WHERE id = %s FOR UPDATE", (payment_id,))
            row = await cur.fetchone()
        if row is None:
            return None
        payment = _payment(row)
        if payment.status == "captured":
            return payment, False
        return await _capture_locked(conn, payment), True
