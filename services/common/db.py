"""PostgreSQL connection pool with RDS IAM authentication, TLS and bounded, self-healing reconnects.

Every new connection gets a fresh IAM token as its password (psycopg_pool calls the ``kwargs`` callable per
connection). Broken connections are found by a check at checkout and replaced; while the database is down, requests
wait at most ``timeout`` seconds for a connection and then fail with ``PoolTimeout`` (answered 503 with Retry-After),
and the pool keeps reconnecting in the background with exponential back-off. After ``reconnect_timeout`` the pool gives
up on a slot and the next request starts a fresh attempt at once, which bounds the back-off: once the database is back,
the service recovers within a few seconds without a restart.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from services.common.auth import RdsTokenGenerator
from services.common.config import DatabaseConfig

__all__ = ["create_pool"]

log = logging.getLogger("services.db")

# Per-session limits so that no request can hang on the database (a lock wait, a runaway query, a forgotten
# transaction): the request fails and the connection goes back to the pool.
_SESSION_SETTINGS = (
    "SET statement_timeout = '5s'",
    "SET lock_timeout = '2s'",
    "SET idle_in_transaction_session_timeout = '10s'",
)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    for statement in _SESSION_SETTINGS:
        await conn.execute(statement)
    await conn.commit()


async def _reconnect_failed(pool: AsyncConnectionPool[Any]) -> None:
    log.warning("database reconnection attempts exhausted; the next request retries", extra={"pool": pool.name})


def create_pool(
    config: DatabaseConfig,
    tokens: RdsTokenGenerator,
    *,
    application_name: str,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 2.0,
    connect_timeout: int = 2,
    reconnect_timeout: float = 10.0,
) -> AsyncConnectionPool[Any]:
    """An unopened pool for ``config`` (call ``await pool.open()``; it does not wait for the database)."""
    params: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "dbname": config.name,
        "user": config.user,
        "sslmode": config.ssl_mode,
        "application_name": application_name,
        "connect_timeout": connect_timeout,
        # Notice a dead peer (a failed-over writer, a dropped NAT mapping) within about a minute on idle connections.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if config.ssl_mode != "disable":
        params["sslrootcert"] = str(config.ssl_root_cert)
    conninfo = make_conninfo(**params)

    async def connection_kwargs() -> dict[str, Any]:
        # A token per connection: tokens live 15 minutes, connections much longer (authentication is only at connect).
        return {"password": await tokens.token_async()}

    return AsyncConnectionPool(
        conninfo,
        kwargs=connection_kwargs,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=timeout,
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=reconnect_timeout,
        reconnect_failed=_reconnect_failed,
        max_lifetime=30 * 60.0,
        name=application_name,
    )
