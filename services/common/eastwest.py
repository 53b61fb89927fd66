"""East-west HTTP calls between services (through ECS Service Connect aliases such as ``http://payment:8080``).

Short timeouts (connect 1 s, 5 s in total for a call including its retries) so that a slow dependency turns into a
quick 503 instead of piling up requests. Retries are limited to what is safe: a failed *connect* is always retried
(nothing reached the server), while a timeout, a dropped connection or a 502/503/504 is retried only for calls the
caller marks idempotent (reads, capture, event delivery with its event id), and never when the upstream's 503 carries
``Retry-After`` (its own dependency is down: the answer is passed on).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx

from services.common.errors import DependencyUnavailableError
from services.common.logs import request_id_var
from services.common.schemas import Event

__all__ = ["EastWestClient", "UpstreamUnavailableError", "send_event"]

log = logging.getLogger("services.eastwest")

CONNECT_TIMEOUT_SECONDS = 1.0
TOTAL_TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 3
_RETRYABLE_STATUS = frozenset({502, 503, 504})


class UpstreamUnavailableError(DependencyUnavailableError):
    """The upstream service could not be reached, or kept failing, within the call's time budget (answered 503)."""

    def __init__(self, upstream: str, reason: str) -> None:
        super().__init__(upstream, reason)
        self.upstream = upstream


class EastWestClient:
    """A pooled client for one upstream service (base URL from the configuration contract)."""

    def __init__(self, name: str, base_url: str, *, caller: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(TOTAL_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
            headers={"user-agent": f"scalepay-{caller}"},
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call with the retry policy above; :class:`UpstreamUnavailableError` when it cannot get an answer.

        A 502/503/504 from an idempotent call that is still failing after the last attempt is returned as is, so the
        caller can pass the upstream's 503 and its ``Retry-After`` on.
        """
        deadline = time.monotonic() + TOTAL_TIMEOUT_SECONDS
        sent_headers = dict(headers or {})
        request_id = request_id_var.get()
        if request_id:
            sent_headers["x-request-id"] = request_id
        last_error = "no attempt made"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    response = await self._client.request(method, path, json=json, params=params, headers=sent_headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the upstream: always safe to try again.
                last_error = f"connect failed ({type(exc).__name__})"
            except (httpx.TimeoutException, TimeoutError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                last_error = f"{type(exc).__name__}"
                if not idempotent:
                    # The request may have been processed: let the client retry with its idempotency key.
                    raise UpstreamUnavailableError(self.name, last_error) from exc
            else:
                # A 503 with Retry-After is the upstream saying its own dependency is down: retrying within our 5 s
                # budget would only multiply the load on it, so the answer (and its Retry-After) is passed on at once.
                retryable = response.status_code in _RETRYABLE_STATUS and "retry-after" not in response.headers
                if not (idempotent and retryable and attempt < MAX_ATTEMPTS):
                    return response
                last_error = f"HTTP {response.status_code}"
            log.info("retrying east-west call", extra={"upstream": self.name, "attempt": attempt, "reason": last_error})
            # Full jitter on 100 ms, 200 ms: spreads retries of many tasks hitting a restarting upstream.
            await asyncio.sleep(min(random.uniform(0, 0.1 * 2 ** (attempt - 1)), max(0.0, deadline - time.monotonic())))
        raise UpstreamUnavailableError(self.name, last_error)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()


async def send_event(notification: EastWestClient, event: Event, logger: logging.Logger, **context: str) -> None:
    """POST ``event`` to notification's ``/internal/events``; best effort: a refusal or a failure is logged on ``logger``
    (with ``event_type`` and ``context``), never raised (the caller's own work is done whatever happens here)."""
    fields: dict[str, object] = {"event_type": event.type, **context}
    try:
        # Idempotent: notification records an event once per event id, so a retried delivery stores nothing twice.
        response = await notification.request("POST", "/internal/events", json=event.model_dump(mode="json"), idempotent=True)
        if response.status_code >= 300:
            logger.warning("event not accepted", extra={**fields, "status": response.status_code})
    except Exception as exc:
        logger.warning("event delivery failed", extra={**fields, "error": type(exc).__name__})
