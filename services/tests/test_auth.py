"""IAM auth tokens: RDS (``rds-db``) and ElastiCache (``elasticache``) SigV4 presigned URLs, checked independently."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

import botocore.auth
import botocore.exceptions
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from services.common.auth import ElastiCacheIamCredentialProvider, ElastiCacheTokenSigner, RdsTokenGenerator

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//session+token="
REGION = "eu-west-1"
NOW = dt.datetime(2026, 3, 4, 5, 6, 7)


@pytest.fixture
def session() -> botocore.session.Session:
    """A botocore session with fixed task-role-like credentials (temporary: with a session token)."""
    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    return session


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """botocore's signing clock (a dependency, not the code under test) stopped at :data:`NOW`."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW)
    return NOW


def parse_token(token: str) -> tuple[str, str, dict[str, str], str]:
    """(host[:port], path, query parameters, raw query) of a token (a presigned URL without its scheme)."""
    assert "://" not in token
    parts = urlsplit("//" + token)
    params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    return parts.netloc, parts.path, params, parts.query


def parse_connect_token(token: str, service: str) -> tuple[str, dict[str, str], str]:
    """(host[:port], query parameters, raw query) of a token, after checking what every connect token for ``service``
    signed at :data:`NOW` with the session's credentials carries: ``/?Action=connect``, ``service``'s scope, 900 s,
    signed over the host header only, the session token."""
    host, path, params, query = parse_token(token)
    assert path == "/"
    assert params["Action"] == "connect"
    expected = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{ACCESS_KEY}/20260304/{REGION}/{service}/aws4_request",
        "X-Amz-Date": "20260304T050607Z",
        "X-Amz-Expires": "900",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Security-Token": SESSION_TOKEN,
    }
    assert {name: params.get(name) for name in expected} == expected
    return host, params, query


def sigv4_signature(host: str, params: dict[str, str], service: str, secret_key: str) -> str:
    """SigV4 query-string signature computed from the specification with hashlib/hmac only (no botocore)."""
    unsigned = {k: v for k, v in params.items() if k != "X-Amz-Signature"}
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(unsigned.items()))
    canonical_request = "\n".join(["GET", "/", canonical_query, f"host:{host}", "", "host", hashlib.sha256(b"").hexdigest()])
    amz_date = params["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], REGION, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_rds_token_is_a_presigned_connect_for_the_db_user(session: botocore.session.Session, fixed_clock: dt.datetime) -> None:
    """``host:port/?Action=connect&DBUser=...``, rds-db scope, 900 s, signed over the host header only."""
    token = RdsTokenGenerator(
        "scalepay-prod.cluster-abc.eu-west-1.rds.amazonaws.com", 5432, "scalepay_payment", REGION, session=session
    ).token()
    host, params, _ = parse_connect_token(token, "rds-db")
    assert host == "scalepay-prod.cluster-abc.eu-west-1.rds.amazonaws.com:5432"
    assert params["DBUser"] == "scalepay_payment"
    assert params["X-Amz-Signature"] == sigv4_signature(host, params, "rds-db", SECRET_KEY)


def test_elasticache_token_matches_an_independent_sigv4_query_auth(
    session: botocore.session.Session, fixed_clock: dt.datetime
) -> None:
    """``<cache name>/?Action=connect&User=<user>``: scheme stripped, elasticache scope, 900 s, same signature as
    botocore's SigV4QueryAuth and as the specification computed by hand, for the same time and credentials."""
    token = ElastiCacheTokenSigner("scalepay-redis-prod", "scalepay-payment", REGION, session=session).token()
    host, params, query = parse_connect_token(token, "elasticache")
    assert host == "scalepay-redis-prod"
    assert params["User"] == "scalepay-payment"

    reference = AWSRequest(method="GET", url="http://scalepay-redis-prod/?Action=connect&User=scalepay-payment")
    botocore.auth.SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "elasticache", REGION, expires=900).add_auth(
        reference
    )
    expected = dict(parse_qsl(urlsplit(reference.url).query))
    assert params == expected
    assert params["X-Amz-Signature"] == sigv4_signature(host, params, "elasticache", SECRET_KEY)
    assert query.startswith("Action=connect&User=scalepay-payment&X-Amz-Algorithm=")


def test_a_different_user_or_time_changes_the_signature(
    session: botocore.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens are bound to the user and expire: a token for another user or minute is a different token."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW)
    first = ElastiCacheTokenSigner("c", "u1", REGION, session=session).token()
    other_user = ElastiCacheTokenSigner("c", "u2", REGION, session=session).token()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW + dt.timedelta(minutes=1))
    later = ElastiCacheTokenSigner("c", "u1", REGION, session=session).token()
    signatures = {parse_token(t)[2]["X-Amz-Signature"] for t in (first, other_user, later)}
    assert len(signatures) == 3


def test_credential_provider_signs_a_fresh_token_per_connection(
    session: botocore.session.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py asks the provider on every (re)connect: each answer is (REDIS_USER, a token signed at that moment)."""
    provider = ElastiCacheIamCredentialProvider(
        ElastiCacheTokenSigner("scalepay-redis", "scalepay-payment", REGION, session=session)
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW)
    user, first = asyncio.run(provider.get_credentials_async())
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: NOW + dt.timedelta(minutes=14))
    user_again, second = provider.get_credentials()
    assert user == user_again == "scalepay-payment"
    assert parse_token(first)[2]["X-Amz-Date"] == "20260304T050607Z"
    assert parse_token(second)[2]["X-Amz-Date"] == "20260304T052007Z"


def test_missing_credentials_fail_per_token_not_at_start() -> None:
    """Without credentials the signer can be built (the service starts); signing raises, so the connection gets 503."""
    empty = botocore.session.Session()
    empty.set_config_variable("credentials_file", "/dev/null")
    empty.set_config_variable("config_file", "/dev/null")
    signer = ElastiCacheTokenSigner("c", "u", REGION, session=empty)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        with pytest.raises(botocore.exceptions.NoCredentialsError):
            signer.token()
