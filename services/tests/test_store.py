"""The payment store on a real PostgreSQL, as the payment role through the IAM-token pool: the ledger balances, state
changes are atomic, and the database itself refuses unbalanced, edited or backwards-moving records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import pytest
from psycopg_pool import AsyncConnectionPool

from services.common.auth import RdsTokenGenerator
from services.common.config import DatabaseConfig
from services.common.db import create_pool
from services.common.schemas import Payment, PaymentRequest, request_hash
from services.payment import store
from services.tests.support import PAYMENT_ROLE, REGION
from tools.localplane.postgres import LocalPostgres

T = TypeVar("T")


def with_pool(postgres: LocalPostgres, dbname: str, body: Callable[[AsyncConnectionPool[Any]], Awaitable[T]]) -> T:
    """Run ``body`` with the service's own pool (fresh IAM token per connection) as the payment role."""
    config = DatabaseConfig("127.0.0.1", postgres.port, dbname, PAYMENT_ROLE, "disable", Path("/unused"), REGION)

    async def main() -> T:
        pool = create_pool(
            config, RdsTokenGenerator(config.host, config.port, config.user, REGION), application_name="test-store"
        )
        await pool.open(wait=True, timeout=10)
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def create_one(postgres: LocalPostgres, dbname: str, request: PaymentRequest, key: str, digest: str) -> Payment:
    """``store.create_payment`` on a connection of its own; the payment it committed."""

    async def body(pool: AsyncConnectionPool[Any]) -> Payment:
        async with pool.connection() as conn:
            return await store.create_payment(conn, request, key, digest)

    return with_pool(postgres, dbname, body)


def insert_payment_and_transaction(conn: psycopg.Connection[Any], payment_id: uuid.UUID, transaction_id: uuid.UUID) -> None:
    """By hand on ``conn`` (no store): an authorized m_bad payment of 100 EUR and its authorization ledger transaction,
    with no entries yet (nothing committed)."""
    conn.execute(
        "INSERT INTO payment.payments (id, merchant_id, amount_minor, currency, status, payment_method_token,"
        " idempotency_key, request_hash) VALUES (%s, 'm_bad', 100, 'EUR', 'authorized', 'tok_bad0000001', %s, %s)",
        (payment_id, f"key-{payment_id}", "c" * 64),
    )
    conn.execute(
        "INSERT INTO payment.ledger_transactions (id, payment_id, kind) VALUES (%s, %s, 'authorization')",
        (transaction_id, payment_id),
    )


def new_request(**overrides: Any) -> tuple[PaymentRequest, str, str]:
    """(request, idempotency key, request hash) for a fresh payment."""
    request = PaymentRequest.model_validate(
        {"amount_minor": 2500, "currency": "EUR", "merchant_id": "m_store", "payment_method_token": "tok_store12345", **overrides}
    )
    return request, f"key-{uuid.uuid4()}", request_hash(request)


def ledger(postgres: LocalPostgres, dbname: str, payment_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """(kind, account, direction, amount, currency) of every ledger entry of a payment, in insertion order."""
    return postgres.query(
        "SELECT t.kind, e.account, e.direction, e.amount_minor, e.currency FROM payment.ledger_entries e"
        f" JOIN payment.ledger_transactions t ON t.id = e.transaction_id WHERE t.payment_id = '{payment_id}' ORDER BY e.id",
        dbname=dbname,
    )


def unbalanced_transactions(postgres: LocalPostgres, dbname: str) -> list[tuple[Any, ...]]:
    """Ledger transactions whose debits and credits differ (must always be empty)."""
    return postgres.query(
        "SELECT transaction_id FROM payment.ledger_entries GROUP BY transaction_id, currency"
        " HAVING sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0",
        dbname=dbname,
    )


def test_authorize_writes_the_payment_and_balanced_entries(postgres: LocalPostgres, migrated_database: str) -> None:
    """One authorization transaction, two entries, debits == credits; the row and the entries commit together."""
    payment = create_one(postgres, migrated_database, *new_request())
    assert payment.status == "authorized" and payment.amount_minor == 2500 and payment.captured_at is None
    assert ledger(postgres, migrated_database, payment.id) == [
        ("authorization", "authorizations_receivable", "debit", 2500, "EUR"),
        ("authorization", "merchant_pending:m_store", "credit", 2500, "EUR"),
    ]
    assert unbalanced_transactions(postgres, migrated_database) == []


def test_capture_adds_balanced_entries_once(postgres: LocalPostgres, migrated_database: str) -> None:
    """Capture writes four balanced entries and flips the status; capturing again changes nothing."""
    request, key, digest = new_request(amount_minor=999, currency="USD")

    async def body(pool: AsyncConnectionPool[Any]) -> tuple[Any, Any]:
        async with pool.connection() as conn:
            payment = await store.create_payment(conn, request, key, digest)
            first = await store.capture_payment(conn, payment.id)
            second = await store.capture_payment(conn, payment.id)
            return first, second

    first, second = with_pool(postgres, migrated_database, body)
    assert first is not None and second is not None
    (captured, changed), (again, changed_again) = first, second
    assert captured.status == "captured" and captured.captured_at is not None and changed
    assert again == captured and not changed_again
    entries = ledger(postgres, migrated_database, captured.id)
    assert [e for e in entries if e[0] == "capture"] == [
        ("capture", "settlement_receivable", "debit", 999, "USD"),
        ("capture", "authorizations_receivable", "credit", 999, "USD"),
        ("capture", "merchant_pending:m_store", "debit", 999, "USD"),
        ("capture", "merchant_payable:m_store", "credit", 999, "USD"),
    ]
    assert len(entries) == 6
    assert unbalanced_transactions(postgres, migrated_database) == []


def test_authorize_with_capture_is_one_transaction(postgres: LocalPostgres, migrated_database: str) -> None:
    """``capture: true`` authorizes and captures in the same database transaction (two ledger transactions)."""
    payment = create_one(postgres, migrated_database, *new_request(capture=True))
    assert payment.status == "captured"
    assert [e[0] for e in ledger(postgres, migrated_database, payment.id)] == ["authorization"] * 2 + ["capture"] * 4
    rows = postgres.query(
        f"SELECT xmin::text FROM payment.ledger_transactions WHERE payment_id = '{payment.id}'"
        f" UNION ALL SELECT xmin::text FROM payment.payments WHERE id = '{payment.id}'",
        dbname=migrated_database,
    )
    assert len({r[0] for r in rows}) == 1  # the same writing transaction id for the payment and both ledger rows


def test_the_database_refuses_an_unbalanced_transaction(postgres: LocalPostgres, migrated_database: str) -> None:
    """The deferred trigger fails the COMMIT when debits != credits, and the payment row goes with it."""
    payment_id, transaction_id = uuid.uuid4(), uuid.uuid4()
    conninfo = postgres.tcp_conninfo(user=PAYMENT_ROLE, dbname=migrated_database)
    with psycopg.connect(conninfo) as conn:
        insert_payment_and_transaction(conn, payment_id, transaction_id)
        conn.execute(
            "INSERT INTO payment.ledger_entries (transaction_id, account, direction, amount_minor, currency) VALUES"
            " (%s, 'authorizations_receivable', 'debit', 100, 'EUR'), (%s, 'merchant_pending:m_bad', 'credit', 99, 'EUR')",
            (transaction_id, transaction_id),
        )
        with pytest.raises(psycopg.errors.CheckViolation, match="is unbalanced in EUR: debits 100, credits 99"):
            conn.commit()
    assert postgres.query(f"SELECT count(*) FROM payment.payments WHERE id = '{payment_id}'", dbname=migrated_database) == [(0,)]
    assert postgres.query(
        f"SELECT count(*) FROM payment.ledger_transactions WHERE id = '{transaction_id}'", dbname=migrated_database
    ) == [(0,)]


def test_a_transaction_with_a_single_entry_or_none_is_refused(postgres: LocalPostgres, migrated_database: str) -> None:
    """A ledger transaction needs at least two entries, checked at commit even when it has none."""
    payment_id = uuid.uuid4()
    with psycopg.connect(postgres.tcp_conninfo(user=PAYMENT_ROLE, dbname=migrated_database)) as conn:
        insert_payment_and_transaction(conn, payment_id, uuid.uuid4())
        with pytest.raises(psycopg.errors.CheckViolation, match="has 0 entries; at least 2 are required"):
            conn.commit()


def test_a_failure_mid_way_leaves_nothing(postgres: LocalPostgres, migrated_database: str) -> None:
    """The payment row is inserted, then writing its ledger entries fails: neither the row nor any ledger row remains.
    Same for a capture: the status stays authorized and no capture entries exist."""
    request, key, digest = new_request(merchant_id="m_midway")
    authorized = create_one(postgres, migrated_database, *new_request(merchant_id="m_midway"))
    # Writing ledger entries now fails (after the payment INSERT / the ledger transaction INSERT succeeded).
    postgres.execute(f"REVOKE INSERT ON payment.ledger_entries FROM {PAYMENT_ROLE}", dbname=migrated_database)
    try:

        async def body(pool: AsyncConnectionPool[Any]) -> tuple[BaseException | None, BaseException | None]:
            errors: list[BaseException | None] = []
            for attempt in (
                lambda conn: store.create_payment(conn, request, key, digest),
                lambda conn: store.capture_payment(conn, authorized.id),
            ):
                try:
                    async with pool.connection() as conn:
                        await attempt(conn)
                    errors.append(None)
                except psycopg.errors.InsufficientPrivilege as exc:
                    errors.append(exc)
            return errors[0], errors[1]

        create_error, capture_error = with_pool(postgres, migrated_database, body)
    finally:
        postgres.execute(f"GRANT INSERT ON payment.ledger_entries TO {PAYMENT_ROLE}", dbname=migrated_database)
    assert create_error is not None and capture_error is not None
    assert postgres.query(f"SELECT count(*) FROM payment.payments WHERE idempotency_key = '{key}'", dbname=migrated_database) == [
        (0,)
    ]
    assert postgres.query(f"SELECT status FROM payment.payments WHERE id = '{authorized.id}'", dbname=migrated_database) == [
        ("authorized",)
    ]
    assert [e[0] for e in ledger(postgres, migrated_database, authorized.id)] == ["authorization", "authorization"]
    assert postgres.query(
        "SELECT count(*) FROM payment.ledger_transactions t"
        " LEFT JOIN payment.ledger_entries e ON e.transaction_id = t.id WHERE e.id IS NULL",
        dbname=migrated_database,
    ) == [(0,)]


def test_the_ledger_is_append_only_even_for_the_owner(postgres: LocalPostgres, migrated_database: str) -> None:
    """No UPDATE/DELETE/TRUNCATE of ledger rows: the role lacks the privilege, and triggers stop even a superuser."""
    for statement in (
        "UPDATE payment.ledger_entries SET amount_minor = amount_minor + 1",
        "DELETE FROM payment.ledger_entries",
        "DELETE FROM payment.ledger_transactions",
        "TRUNCATE payment.ledger_entries",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            postgres.execute(statement, dbname=migrated_database)


def test_payment_status_and_amount_cannot_be_rewritten(postgres: LocalPostgres, migrated_database: str) -> None:
    """captured -> authorized and amount changes are refused by the database, whoever asks."""
    payment = create_one(postgres, migrated_database, *new_request(capture=True))
    with psycopg.connect(postgres.tcp_conninfo(user=PAYMENT_ROLE, dbname=migrated_database), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="status cannot go from captured to authorized"):
            conn.execute("UPDATE payment.payments SET status = 'authorized', captured_at = NULL WHERE id = %s", (payment.id,))
        with pytest.raises(psycopg.errors.CheckViolation, match="immutable columns cannot change"):
            conn.execute("UPDATE payment.payments SET amount_minor = 1 WHERE id = %s", (payment.id,))


def test_idempotency_key_is_unique_per_merchant_in_the_database(postgres: LocalPostgres, migrated_database: str) -> None:
    """The durable backstop: a second create with the same (merchant, key) returns the first payment and its hash."""
    request, key, digest = new_request(merchant_id="m_backstop")
    other_merchant, _, other_digest = new_request(merchant_id="m_other")

    async def body(pool: AsyncConnectionPool[Any]) -> tuple[Payment, store.ExistingPaymentError, Payment]:
        async with pool.connection() as conn:
            first = await store.create_payment(conn, request, key, digest)
            try:
                await store.create_payment(conn, request.model_copy(update={"amount_minor": 1}), key, "d" * 64)
            except store.ExistingPaymentError as exc:
                existing = exc
            else:
                raise AssertionError("duplicate key accepted")
            same_key_other_merchant = await store.create_payment(conn, other_merchant, key, other_digest)
            return first, existing, same_key_other_merchant

    first, existing, other = with_pool(postgres, migrated_database, body)
    assert existing.payment == first and existing.request_hash == digest
    assert other.id != first.id
    assert postgres.query(f"SELECT count(*) FROM payment.payments WHERE idempotency_key = '{key}'", dbname=migrated_database) == [
        (2,)
    ]


def test_pool_recovers_after_a_database_restart(postgres: LocalPostgres, migrated_database: str) -> None:
    """While PostgreSQL is down a checkout fails fast (PoolTimeout, about 2 s); after the restart the same pool works."""

    async def body(pool: AsyncConnectionPool[Any]) -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        await asyncio.to_thread(postgres.stop)
        started = loop.time()
        try:
            with pytest.raises(Exception) as info:
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
            assert type(info.value).__name__ in ("PoolTimeout", "OperationalError")
            failed_after = loop.time() - started
        finally:
            await asyncio.to_thread(postgres.start)
        restarted = loop.time()
        while True:
            try:
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
                return failed_after, loop.time() - restarted
            except Exception:
                assert loop.time() - restarted < 20, "pool did not recover"

    failed_after, recovered_after = with_pool(postgres, migrated_database, body)
    assert failed_after < 3.0
    assert recovered_after < 15.0
