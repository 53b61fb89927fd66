"""Idempotency keys in Redis: ``payments:idem:<merchant_id>:<key>``.

State machine per key (the pure part is :func:`decide`)::

    (absent) --SET NX, short TTL--> in_flight(hash, owner) --commit--> completed(hash, payment_id), 24 h TTL
                                          |--failure--> (absent)          (the owner releases it)

A request that finds the key:

* with a different request hash -> :class:`Mismatch` (409: the key was reused for another request);
* ``in_flight`` with the same hash -> :class:`InFlight` (409 with Retry-After: the first request is still running);
* ``completed`` with the same hash -> :class:`Replay` (the same payment is returned).

Only GET, SET (NX/EX), DEL and TTL are used, so the ElastiCache user needs nothing beyond ``+@read +@write
+@connection`` on ``~payments:*`` (no scripts, no MULTI). That is safe because PostgreSQL, not Redis, is the source of
truth: the ``UNIQUE (merchant_id, idempotency_key)`` constraint makes a second payment for a key impossible, so

* completing writes the committed payment unconditionally (whoever completes a key, it is with the one payment the
  database holds for it);
* releasing deletes the key only if it still holds this request's in-flight value (a lost race merely loses the 409
  hint for a concurrent retry, which then meets the database constraint).

Redis is the fast path that answers retries and concurrent duplicates without touching the database; after a Redis
restart or eviction the database backstop answers them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio

__all__ = [
    "COMPLETED_TTL_SECONDS",
    "IN_FLIGHT_TTL_SECONDS",
    "Decision",
    "IdempotencyStore",
    "InFlight",
    "Mismatch",
    "Proceed",
    "Record",
    "Replay",
    "State",
    "decide",
    "redis_key",
]

IN_FLIGHT_TTL_SECONDS = 30
"""Longer than any request can take (DB statement timeout 5 s, checkout 2 s); a crashed owner frees the key after it."""

COMPLETED_TTL_SECONDS = 24 * 3600
"""How long a retry is answered from Redis; afterwards the database backstop answers it."""


class State(StrEnum):
    """Where a key's first request is."""

    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Record:
    """The value stored under a key (JSON)."""

    state: State
    request_hash: str
    owner: str | None = None
    payment_id: str | None = None

    def dumps(self) -> str:
        """Compact JSON, with keys in a fixed order (release compares the stored value byte for byte)."""
        data = {"state": self.state.value, "request_hash": self.request_hash, "owner": self.owner, "payment_id": self.payment_id}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | bytes) -> Record:
        """Parse a stored value (ValueError when it is not one of ours)."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("idempotency record is not an object")
        return cls(State(data["state"]), str(data["request_hash"]), data.get("owner"), data.get("payment_id"))


@dataclass(frozen=True)
class Proceed:
    """This request owns the key: process it, then :meth:`IdempotencyStore.complete` or ``release``."""

    key: str
    lock_value: str


@dataclass(frozen=True)
class Replay:
    """The key's request already completed with the same body: return ``payment_id``."""

    payment_id: uuid.UUID


@dataclass(frozen=True)
class Mismatch:
    """The key was used before for a different request body."""


@dataclass(frozen=True)
class InFlight:
    """The key's first request is still being processed."""


Decision = Proceed | Replay | Mismatch | InFlight


def decide(existing: Record, request_hash: str) -> Replay | Mismatch | InFlight:
    """What a request with ``request_hash`` must do when its key already holds ``existing``."""
    if existing.request_hash != request_hash:
        return Mismatch()
    if existing.state is State.COMPLETED and existing.payment_id:
        return Replay(uuid.UUID(existing.payment_id))
    return InFlight()


def redis_key(merchant_id: str, idempotency_key: str) -> str:
    """``payments:idem:<merchant_id>:<key>`` (merchant ids contain no ``:``, so the key is unambiguous)."""
    return f"payments:idem:{merchant_id}:{idempotency_key}"


class IdempotencyStore:
    """The Redis side of the state machine."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        in_flight_ttl: int = IN_FLIGHT_TTL_SECONDS,
        completed_ttl: int = COMPLETED_TTL_SECONDS,
    ) -> None:
        self._redis = client
        self._in_flight_ttl = in_flight_ttl
        self._completed_ttl = completed_ttl

    async def begin(self, merchant_id: str, idempotency_key: str, request_hash: str) -> Decision:
        """Claim the key for this request, or say what to do instead."""
        key = redis_key(merchant_id, idempotency_key)
        lock = Record(State.IN_FLIGHT, request_hash, owner=uuid.uuid4().hex).dumps()
        for _ in range(3):  # the key may expire between SET NX and GET
            if await self._redis.set(key, lock, nx=True, ex=self._in_flight_ttl):
                return Proceed(key, lock)
            raw = await self._redis.get(key)
            if raw is None:
                continue
            if (raw.decode() if isinstance(raw, bytes) else raw) == lock:
                # Our own SET went through but its reply was lost (the client retried after a connection error).
                return Proceed(key, lock)
            try:
                existing = Record.loads(raw)
            except (ValueError, KeyError):
                return InFlight()  # not ours to interpret; expires with its TTL
            return decide(existing, request_hash)
        return InFlight()

    async def complete(self, proceed: Proceed, request_hash: str, payment_id: uuid.UUID) -> None:
        """Record the committed payment for retries (for a day)."""
        done = Record(State.COMPLETED, request_hash, payment_id=str(payment_id)).dumps()
        await self._redis.set(proceed.key, done, ex=self._completed_ttl)

    async def release(self, proceed: Proceed) -> bool:
        """Forget the key after a failure (nothing committed) so the client can retry with it; only if still ours."""
        current = await self._redis.get(proceed.key)
        if current is None or (current.decode() if isinstance(current, bytes) else current) != proceed.lock_value:
            return False
        await self._redis.delete(proceed.key)
        return True

    async def get(self, merchant_id: str, idempotency_key: str) -> Record | None:
        """The current record of a key (for inspection and tests)."""
        raw = await self._redis.get(redis_key(merchant_id, idempotency_key))
        return None if raw is None else Record.loads(raw)
