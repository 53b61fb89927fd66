"""IAM authentication tokens for Aurora PostgreSQL and ElastiCache (no static credentials anywhere).

Both tokens are SigV4 presigned URLs (valid 15 minutes) signed with the task role's credentials, which botocore's default
chain reads from the ECS container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_*``) and refreshes by itself.
A token is only checked when a connection authenticates, so each new connection gets a fresh one and long-lived
connections are unaffected by expiry.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import botocore.session
from botocore.credentials import Credentials
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceId
from botocore.signers import RequestSigner
from redis.credentials import CredentialProvider

__all__ = ["TOKEN_LIFETIME_SECONDS", "ElastiCacheIamCredentialProvider", "ElastiCacheTokenSigner", "RdsTokenGenerator"]

TOKEN_LIFETIME_SECONDS = 900
"""Both services accept tokens for at most 15 minutes."""


class RdsTokenGenerator:
    """RDS IAM database auth tokens for one host, port and database user."""

    def __init__(self, host: str, port: int, user: str, region: str, session: botocore.session.Session | None = None) -> None:
        self.host = host
        self.port = port
        self.user = user
        # Creating a client is slow (service model loading): once per process, then only signing per connection.
        self._client: Any = (session or botocore.session.get_session()).create_client("rds", region_name=region)

    def token(self) -> str:
        """A fresh token: ``host:port/?Action=connect&DBUser=...&X-Amz-...`` (the password for one new connection)."""
        return str(self._client.generate_db_auth_token(DBHostname=self.host, Port=self.port, DBUsername=self.user))

    async def token_async(self) -> str:
        """:meth:`token` off the event loop (a credential refresh may call the container credentials endpoint)."""
        return await asyncio.to_thread(self.token)


class ElastiCacheTokenSigner:
    """ElastiCache IAM auth tokens: a presigned ``GET http://<cache name>/?Action=connect&User=<user>`` without scheme.

    The replication group id (not the endpoint) is the host that is signed; the token is then used as the password of
    ``user`` on AUTH/HELLO. Credentials are resolved lazily so that a task whose credentials are not yet available
    fails per connection (and recovers), not at import time.
    """

    def __init__(self, cache_name: str, user: str, region: str, session: botocore.session.Session | None = None) -> None:
        self.cache_name = cache_name
        self.user = user
        self.region = region
        self._session = session or botocore.session.get_session()
        self._credentials: Credentials | None = None

    def _signer(self) -> RequestSigner:
        if self._credentials is None:
            # RefreshableCredentials from the container provider refresh themselves before expiry; keep the object.
            self._credentials = self._session.get_credentials()
        return RequestSigner(
            ServiceId("elasticache"),
            self.region,
            "elasticache",
            "v4",
            self._credentials,
            self._session.get_component("event_emitter") or HierarchicalEmitter(),
        )

    def token(self) -> str:
        """A fresh token (valid :data:`TOKEN_LIFETIME_SECONDS`)."""
        query = urlencode({"Action": "connect", "User": self.user})
        request = {
            "method": "GET",
            "url": f"http://{self.cache_name}/?{query}",
            "body": {},
            "headers": {},
            "context": {},
        }
        url = self._signer().generate_presigned_url(
            request, operation_name="connect", expires_in=TOKEN_LIFETIME_SECONDS, region_name=self.region
        )
        return str(url).removeprefix("http://")


class ElastiCacheIamCredentialProvider(CredentialProvider):
    """redis-py credential provider: ``(REDIS_USER, fresh token)`` on every (re)connect."""

    def __init__(self, signer: ElastiCacheTokenSigner) -> None:
        self._signer = signer

    def get_credentials(self) -> tuple[str, str]:
        """Credentials for a synchronous client."""
        return self._signer.user, self._signer.token()

    async def get_credentials_async(self) -> tuple[str, str]:
        """Credentials for the asyncio client, signed off the event loop."""
        token = await asyncio.to_thread(self._signer.token)
        return self._signer.user, token
