"""RedisFront: the ElastiCache endpoint stand-in, exercised with redis-py as the services connect (TLS + IAM tokens)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from lp_support import ACCOUNT_ID, REGION, REPLICATION_GROUP_ID, AwsFixture, front_options, short_dir
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

from tools.localplane.iam_auth import generate_elasticache_token
from tools.localplane.pki import LocalCA, client_ssl_context
from tools.localplane.redis import LocalRedis
from tools.localplane.redis_front import RedisFront, RedisFrontConfig, RedisUser, encode_command
from tools.localplane.supervisor import Supervisor

USERS = [
    RedisUser("payments-app", "payments-app", "on ~payments:* +@all -@dangerous", "iam"),
    RedisUser("disabled-app", "disabled-app", "off ~* +@all", "iam"),
    RedisUser("legacy-app", "legacy-app", "on ~* +@all", "password"),
    RedisUser("reports-app", "reports-app", "on ~* +@read", "iam"),  # no elasticache:Connect in any role's policy
]


class IamTokenProvider(CredentialProvider):
    """What a service does: fresh role credentials, an ElastiCache IAM token per connection."""

    def __init__(self, aws: AwsFixture, role_arn: str, user: str, token: str | None = None) -> None:
        self.aws, self.role_arn, self.user, self.token = aws, role_arn, user, token

    def get_credentials(self) -> tuple[str, str]:
        if self.token is not None:
            return self.user, self.token
        creds = self.aws.assume(self.role_arn)
        return self.user, generate_elasticache_token(creds, REPLICATION_GROUP_ID, self.user, REGION)


@dataclass
class RedisStack:
    backend: LocalRedis
    front: RedisFront
    ca: LocalCA

    def client(self, provider: CredentialProvider | None, **extra: Any) -> redis.Redis:
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.front.port,
            "ssl": True,
            "ssl_ca_certs": str(self.ca.ca_path),
            "ssl_cert_reqs": "required",
            "credential_provider": provider,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
            "retry": Retry(NoBackoff(), 0),  # fail fast: redis-py retries auth errors with back-off by default
        }
        params.update(extra)
        return redis.Redis(**params)


@pytest.fixture(scope="module")
def redis_stack(aws: AwsFixture, local_ca: LocalCA) -> Iterator[RedisStack]:
    with short_dir() as base, Supervisor(name="redis-front-test") as supervisor:
        backend = LocalRedis(base / "redis", supervisor=supervisor)
        backend.start()
        config = RedisFrontConfig(
            replication_group_id=REPLICATION_GROUP_ID, port=None, region=REGION, account_id=ACCOUNT_ID, users=USERS
        )
        front = RedisFront(config, backend, **front_options(aws, local_ca, "master.payments-cache.local", supervisor))
        front.start()
        yield RedisStack(backend, front, local_ca)


def _raw_tls(stack: RedisStack, payload: bytes) -> bytes:
    ctx = client_ssl_context(stack.ca.ca_path)
    with (
        socket.create_connection(("127.0.0.1", stack.front.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(payload)
        return tls.recv(4096)


def test_front_listens_on_loopback_tls_only(redis_stack: RedisStack) -> None:
    assert redis_stack.front._server is not None
    assert {s.getsockname()[0] for s in redis_stack.front._server.sockets} == {"127.0.0.1"}
    with (
        redis.Redis(port=redis_stack.front.port, socket_timeout=2, retry=Retry(NoBackoff(), 0)) as plain,
        pytest.raises(redis.ConnectionError),
    ):
        plain.ping()
    # Mirrored users exist in Valkey with the access strings; non-IAM users are not mirrored.
    with redis_stack.backend.admin_client() as admin:
        users = {u.decode() if isinstance(u, bytes) else u for u in admin.acl_users()}
    assert users == {"default", "payments-app", "disabled-app", "reports-app"}


def test_allowed_user_within_access_string(redis_stack: RedisStack, aws: AwsFixture) -> None:
    for protocol in (2, 3):  # AUTH user token / HELLO 3 AUTH user token
        provider = IamTokenProvider(aws, aws.allowed_role_arn, "payments-app")
        with redis_stack.client(provider, protocol=protocol) as client:
            assert client.set("payments:order:1", "captured") is True
            assert client.get("payments:order:1") == b"captured"
            whoami = client.acl_whoami()
            assert (whoami.decode() if isinstance(whoami, bytes) else whoami) == "payments-app"
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set("ledger:1", "x")
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.flushall()


def test_hello_reply_is_relayed_from_valkey(redis_stack: RedisStack, aws: AwsFixture) -> None:
    _, token = IamTokenProvider(aws, aws.allowed_role_arn, "payments-app").get_credentials()
    hello = encode_command("HELLO", "3", "AUTH", "payments-app", token, "SETNAME", "payments-api")
    reply = _raw_tls(redis_stack, hello)
    # A RESP3 map from Valkey itself (server, version, proto 3, ...), not something the front made up.
    assert reply.startswith(b"%")
    assert b"valkey" in reply
    assert b"proto\r\n:3\r\n" in reply


def test_commands_before_auth_get_noauth(redis_stack: RedisStack) -> None:
    assert _raw_tls(redis_stack, b"*1\r\n$4\r\nPING\r\n") == b"-NOAUTH Authentication required.\r\n"
    assert _raw_tls(redis_stack, b"GET payments:order:1\r\n") == b"-NOAUTH Authentication required.\r\n"
    assert _raw_tls(redis_stack, b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n").startswith(b"-NOAUTH HELLO must be called")
    assert _raw_tls(redis_stack, b"AUTH payments-app not-a-token\r\n") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )


def test_bad_tokens_and_users_fail(redis_stack: RedisStack, aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    expired = generate_elasticache_token(
        creds, REPLICATION_GROUP_ID, "payments-app", REGION, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    )
    other_group = generate_elasticache_token(creds, "other-cache", "payments-app", REGION)
    good = generate_elasticache_token(creds, REPLICATION_GROUP_ID, "payments-app", REGION)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases = [
        IamTokenProvider(aws, aws.allowed_role_arn, "payments-app", expired),
        IamTokenProvider(aws, aws.allowed_role_arn, "payments-app", other_group),
        IamTokenProvider(aws, aws.allowed_role_arn, "payments-app", tampered),
        IamTokenProvider(aws, aws.denied_role_arn, "payments-app"),  # role without elasticache:Connect
        IamTokenProvider(aws, aws.allowed_role_arn, "reports-app"),  # user ARN not in the role's policy
        IamTokenProvider(aws, aws.allowed_role_arn, "legacy-app"),  # not an IAM user
        IamTokenProvider(aws, aws.allowed_role_arn, "nobody"),  # not a user of this group
        IamTokenProvider(aws, aws.allowed_role_arn, "disabled-app"),  # allowed by IAM, but 'off' in its access string
    ]
    for provider in cases:
        with (
            redis_stack.client(provider) as client,
            pytest.raises(redis.AuthenticationError, match="invalid username-password pair"),
        ):
            client.ping()
    with redis_stack.client(IamTokenProvider(aws, aws.allowed_role_arn, "payments-app", good)) as client:
        assert client.ping() is True


def _tls_version(stack: RedisStack, port: int, max_version: ssl.TLSVersion | None = None) -> str | None:
    ctx = client_ssl_context(stack.ca.ca_path)
    if max_version is not None:
        ctx.maximum_version = max_version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def test_min_tls_version(redis_stack: RedisStack, local_ca: LocalCA) -> None:
    assert _tls_version(redis_stack, redis_stack.front.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"  # default minimum
    cert, key = local_ca.issue_server_cert(["master.payments-cache.local"], ["127.0.0.1"])
    front = redis_stack.front
    config = RedisFrontConfig(**{**front.config.__dict__, "min_tls_version": "TLSv1.3"})
    strict = RedisFront(
        config, redis_stack.backend, cert_path=cert, key_path=key, registry=front.registry, policy=front.policy,
        supervisor=front.supervisor, name="redis-front-tls13",
    )  # fmt: skip
    strict.start()
    try:
        assert _tls_version(redis_stack, strict.port) == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            _tls_version(redis_stack, strict.port, ssl.TLSVersion.TLSv1_2)
    finally:
        strict.stop()


def test_backend_restart(redis_stack: RedisStack, aws: AwsFixture) -> None:
    provider = IamTokenProvider(aws, aws.allowed_role_arn, "payments-app")
    client = redis_stack.client(provider)
    try:
        assert client.set("payments:before", "1") is True
        redis_stack.backend.stop()
        with pytest.raises(redis.ConnectionError):
            client.get("payments:before")
        with redis_stack.client(provider) as down, pytest.raises(redis.exceptions.BusyLoadingError):
            down.ping()
        redis_stack.backend.start()
        with redis_stack.client(provider) as again:
            assert again.get("payments:before") is None  # persistence is off, like a replaced node
            assert again.set("payments:after", "2") is True
            with pytest.raises(redis.exceptions.NoPermissionError):
                again.set("ledger:1", "x")
        # A backend that lost its users some other way: the front re-mirrors them on the next login.
        with redis_stack.backend.admin_client() as admin:
            admin.execute_command("ACL", "DELUSER", "payments-app")
        with redis_stack.client(provider) as again:
            assert again.set("payments:after", "3") is True
    finally:
        client.close()
        if not redis_stack.backend.is_running():
            redis_stack.backend.start()
