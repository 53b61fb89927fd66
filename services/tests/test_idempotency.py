"""Idempotency keys: the pure state machine, then the same machine on a real Redis (key format, TTLs, ownership)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis.asyncio
import redis.exceptions

from services.payment.idempotency import (
    COMPLETED_TTL_SECONDS,
    IN_FLIGHT_TTL_SECONDS,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Proceed,
    Record,
    Replay,
    State,
    decide,
    redis_key,
)
from services.tests.support import REDIS_USER
from tools.localplane.redis import LocalRedis

T = TypeVar("T")
HASH_A = "a" * 64
HASH_B = "b" * 64
PAYMENT = uuid.UUID("5f0c8a46-9a8b-4f43-9f0e-2f6c3c0f4b11")


def test_decide() -> None:
    """same hash + completed -> replay; same hash + in flight -> in flight; different hash -> mismatch (either state)."""
    assert decide(Record(State.COMPLETED, HASH_A, payment_id=str(PAYMENT)), HASH_A) == Replay(PAYMENT)
    assert decide(Record(State.IN_FLIGHT, HASH_A, owner="o"), HASH_A) == InFlight()
    assert decide(Record(State.IN_FLIGHT, HASH_A, owner="o"), HASH_B) == Mismatch()
    assert decide(Record(State.COMPLETED, HASH_A, payment_id=str(PAYMENT)), HASH_B) == Mismatch()


def test_key_format_and_record_round_trip() -> None:
    """``payments:idem:<merchant_id>:<key>``; records survive JSON."""
    assert redis_key("m_1", "key-0001") == "payments:idem:m_1:key-0001"
    record = Record(State.COMPLETED, HASH_A, payment_id=str(PAYMENT))
    assert Record.loads(record.dumps()) == record


def run_with(server: LocalRedis, body: Callable[[IdempotencyStore, redis.asyncio.Redis], Awaitable[T]]) -> T:
    """Run ``body`` with a store on the test Redis (as the payment user), closing the client afterwards."""

    async def main() -> T:
        client = redis.asyncio.Redis(host="127.0.0.1", port=server.port, username=REDIS_USER, password="any-token")
        try:
            return await body(IdempotencyStore(client), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


async def claim(store: IdempotencyStore, merchant: str, key: str) -> Proceed:
    """Begin ``key`` with :data:`HASH_A`, which must make this request its owner."""
    decision = await store.begin(merchant, key, HASH_A)
    assert isinstance(decision, Proceed)
    return decision


@pytest.fixture
def merchant() -> str:
    """A merchant id of its own per test, so keys never collide between tests."""
    return f"m_{uuid.uuid4().hex[:10]}"


def test_first_request_claims_the_key_with_a_short_ttl(redis_server: LocalRedis, merchant: str) -> None:
    """SET NX: the first request proceeds; the key is in flight, with the in-flight TTL."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        decision = await claim(store, merchant, "key-00000001")
        assert decision.key == f"payments:idem:{merchant}:key-00000001"
        assert (await store.get(merchant, "key-00000001")) == Record.loads(decision.lock_value)
        assert 0 < await client.ttl(decision.key) <= IN_FLIGHT_TTL_SECONDS
        assert await store.begin(merchant, "key-00000001", HASH_A) == InFlight()
        assert await store.begin(merchant, "key-00000001", HASH_B) == Mismatch()

    run_with(redis_server, body)


def test_completed_key_replays_for_a_day(redis_server: LocalRedis, merchant: str) -> None:
    """After completion: same body -> the same payment; other body -> mismatch; TTL about 24 h."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        decision = await claim(store, merchant, "key-00000002")
        await store.complete(decision, HASH_A, PAYMENT)
        assert await store.begin(merchant, "key-00000002", HASH_A) == Replay(PAYMENT)
        assert await store.begin(merchant, "key-00000002", HASH_B) == Mismatch()
        assert COMPLETED_TTL_SECONDS - 60 < await client.ttl(decision.key) <= COMPLETED_TTL_SECONDS

    run_with(redis_server, body)


def test_release_frees_the_key_for_a_retry(redis_server: LocalRedis, merchant: str) -> None:
    """A failed first attempt releases the key, so the client's retry is processed."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        first = await claim(store, merchant, "key-00000003")
        assert await store.release(first)
        assert await client.exists(first.key) == 0
        await claim(store, merchant, "key-00000003")

    run_with(redis_server, body)


def test_an_expired_owner_cannot_release_the_next_request(redis_server: LocalRedis, merchant: str) -> None:
    """Release deletes only this request's own in-flight value: a stale owner leaves the next request's claim alone."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        stale = await claim(store, merchant, "key-00000004")
        await client.delete(stale.key)  # the in-flight TTL ran out
        current = await claim(store, merchant, "key-00000004")
        assert current.lock_value != stale.lock_value
        assert not await store.release(stale)
        assert (await store.get(merchant, "key-00000004")) == Record.loads(current.lock_value)

    run_with(redis_server, body)


def test_only_read_write_connection_commands_are_needed(redis_server: LocalRedis, merchant: str) -> None:
    """The store works under the infrastructure's ACL (-@all +@read +@write +@connection): scripts are refused there."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        decision = await claim(store, merchant, "key-00000006")
        await store.complete(decision, HASH_A, PAYMENT)
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.eval("return 1", 0)
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.set("not-payments:x", "1")

    run_with(redis_server, body)


def test_in_flight_key_expires_by_itself(redis_server: LocalRedis, merchant: str) -> None:
    """A request that died while holding the key does not block the key forever."""

    async def body(store: IdempotencyStore, client: redis.asyncio.Redis) -> None:
        short = IdempotencyStore(client, in_flight_ttl=1)
        await claim(short, merchant, "key-00000005")
        await asyncio.sleep(1.2)
        await claim(short, merchant, "key-00000005")

    run_with(redis_server, body)
