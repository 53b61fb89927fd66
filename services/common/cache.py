"""Redis (ElastiCache) client with IAM authentication, TLS and automatic reconnection.

The credential provider signs a fresh IAM token on every (re)connect. Commands that hit a connection error are retried
a couple of times with a short back-off (the connection is re-established, with a new token), then the error surfaces
and the request gets 503; ``health_check_interval`` pings connections that sat idle, so a server restart is noticed
before a command is sent on a dead socket.
"""

from __future__ import annotations

import ssl

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.auth import ElastiCacheIamCredentialProvider, ElastiCacheTokenSigner
from services.common.config import RedisConfig

__all__ = ["create_redis"]


def create_redis(config: RedisConfig, signer: ElastiCacheTokenSigner, *, client_name: str) -> redis.asyncio.Redis:
    """A lazily connecting client for ``config`` (no I/O until the first command)."""
    kwargs: dict[str, object] = {}
    if config.tls:
        # ElastiCache in-transit encryption uses publicly trusted certificates: verify against the default trust store
        # (SSL_CERT_FILE when set), with host-name checking.
        kwargs.update(
            ssl=True,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_min_version=ssl.TLSVersion.TLSv1_2,
        )
    return redis.asyncio.Redis(
        host=config.host,
        port=config.port,
        credential_provider=ElastiCacheIamCredentialProvider(signer),
        client_name=client_name,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        max_connections=50,
        **kwargs,  # type: ignore[arg-type]
    )
