"""Stand-in for how AWS checks IAM auth tokens for RDS (``rds-db:connect``) and ElastiCache (``elasticache:Connect``).

Both tokens are SigV4 *presigned* ``GET`` URLs without their scheme:

* RDS: ``<host>:<port>/?Action=connect&DBUser=<user>&X-Amz-...`` signed for service ``rds-db`` (what
  ``boto3.client("rds").generate_db_auth_token`` returns);
* ElastiCache: ``<replication group id>/?Action=connect&User=<user id>&X-Amz-...`` signed for service ``elasticache``.

Verification recomputes the signature from the public SigV4 algorithm with the secret key of the signing credentials,
looked up in a :class:`CredentialRegistry` that the local container-credentials endpoint fills with every credential it
hands out (AWS looks the key up in IAM/STS instead). Authorization is a separate step: :class:`PolicyChecker` reads the
role's identity policies from the emulator's IAM and evaluates Allow/Deny for the action and resource ARN.

Differences from AWS (kept deliberately small, all fail-closed):

* only credentials in the registry are known (the emulator's own static keys are not, unless registered);
* tokens must be valid for at most 900 seconds (X-Amz-Expires <= 900), as the SDKs generate them;
* policy evaluation covers the role's inline and attached managed policies only: no permissions boundaries, SCPs,
  session policies or resource policies; ``Condition`` blocks are not evaluated (an Allow with a Condition never
  matches, a Deny with a Condition always does), nor are policy variables (``${...}`` matches literally);
* ElastiCache serverless tokens (``ResourceType=ServerlessCache``) are not accepted: the stand-in is a replication group.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

__all__ = [
    "CredentialRegistry",
    "PolicyChecker",
    "Principal",
    "RegisteredCredential",
    "TokenError",
    "elasticache_resource_arns",
    "generate_elasticache_token",
    "rds_dbuser_arn",
    "verify_elasticache_token",
    "verify_rds_token",
]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES = 900
CLOCK_SKEW = dt.timedelta(minutes=5)
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_AUTH_PARAMS = frozenset(
    {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
)


class TokenError(Exception):
    """An IAM auth token was rejected; the message says why (for logs: clients get only a generic failure)."""


@dataclass(frozen=True)
class RegisteredCredential:
    """A credential the local plane handed out, with the role it belongs to."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    role_arn: str
    account_id: str
    expiration: dt.datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who a verified token was signed by, and for which user."""

    access_key_id: str
    role_arn: str
    account_id: str
    user: str
    signed_at: dt.datetime


class CredentialRegistry:
    """Access key id -> (secret, session token, role ARN, account id): the keys the local plane knows. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, RegisteredCredential] = {}

    def register(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        role_arn: str,
        account_id: str,
        expiration: dt.datetime | None = None,
    ) -> RegisteredCredential:
        """Record a credential (replacing one with the same key id); expired entries are dropped on the way."""
        entry = RegisteredCredential(access_key_id, secret_access_key, session_token, role_arn, account_id, expiration)
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            # Keep expired entries a little while: a token signed just before expiry is still checked against them
            # (and then rejected with a precise reason rather than "unknown key").
            stale = [
                k for k, v in self._by_key.items() if v.expiration is not None and v.expiration < now - dt.timedelta(hours=1)
            ]
            for key in stale:
                del self._by_key[key]
            self._by_key[access_key_id] = entry
        return entry

    def unregister(self, access_key_id: str) -> None:
        """Forget a credential (tokens signed with it fail from now on)."""
        with self._lock:
            self._by_key.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> RegisteredCredential | None:
        """The credential for ``access_key_id``, if registered."""
        with self._lock:
            return self._by_key.get(access_key_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)


class SigningCredentials(Protocol):
    """What :func:`generate_elasticache_token` needs (botocore ``Credentials``/``ReadOnlyCredentials`` fit)."""

    @property
    def access_key(self) -> str:
        """The access key id."""
        ...

    @property
    def secret_key(self) -> str:
        """The secret access key."""
        ...

    @property
    def token(self) -> str | None:
        """The session token, if temporary credentials."""
        ...


# -- SigV4 ----------------------------------------------------------------------------------------------------------


def _uri_encode(value: str) -> str:
    """SigV4 URI encoding: everything but the RFC 3986 unreserved characters is percent-encoded."""
    return quote(value, safe="-_.~")


def _canonical_query(params: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_host(hostname: str, port: int | None) -> str:
    # As the SDKs build the Host header: lower-case host, port only when it is not the scheme's default.
    return hostname.lower() if port in (None, 80, 443) else f"{hostname.lower()}:{port}"


def _signing_key(secret: str, datestamp: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), datestamp.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(secret: str, amz_date: str, region: str, service: str, host: str, params: Iterable[tuple[str, str]]) -> str:
    canonical_request = "\n".join(["GET", "/", _canonical_query(params), f"host:{host}\n", "host", _EMPTY_SHA256])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def presign_get(
    credentials: SigningCredentials,
    *,
    host: str,
    port: int | None,
    params: Mapping[str, str],
    service: str,
    region: str,
    expires: int = MAX_EXPIRES,
    now: dt.datetime | None = None,
) -> str:
    """A SigV4 presigned ``GET https://host[:port]/?params`` URL, returned without the scheme (the token format)."""
    now = now or dt.datetime.now(dt.UTC)
    amz_date = now.astimezone(dt.UTC).strftime(_AMZ_DATE_FORMAT)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    query: list[tuple[str, str]] = list(params.items())
    query += [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if credentials.token:
        query.append(("X-Amz-Security-Token", credentials.token))
    signature = _signature(credentials.secret_key, amz_date, region, service, _canonical_host(host, port), query)
    netloc = host if port is None else f"{host}:{port}"
    # Operation parameters first, then the auth parameters, as the SDKs lay them out.
    return f"{netloc}/?" + "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in query) + f"&X-Amz-Signature={signature}"


@dataclass(frozen=True)
class _ParsedToken:
    hostname: str
    port: int | None
    params: dict[str, str]


def _parse_token(token: str) -> _ParsedToken:
    if not token or "://" in token or any(c.isspace() for c in token):
        raise TokenError("not a presigned URL without scheme")
    netloc, slash, rest = token.partition("/")
    if not slash or not rest.startswith("?"):
        raise TokenError("path must be '/' followed by a query string")
    hostname, colon, port_text = netloc.rpartition(":")
    if not colon:
        hostname, port = netloc, None
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise TokenError("bad port")
    if not hostname:
        raise TokenError("no host")
    params: dict[str, str] = {}
    for pair in rest[1:].split("&"):
        key, eq, value = pair.partition("=")
        if not eq:
            raise TokenError(f"malformed query parameter {key!r}")
        key, value = unquote(key, errors="strict"), unquote(value, errors="strict")
        if key in params:
            raise TokenError(f"repeated query parameter {key!r}")
        params[key] = value
    return _ParsedToken(hostname, port, params)


def _verify_presigned(
    parsed: _ParsedToken,
    *,
    service: str,
    region: str,
    operation_params: frozenset[str],
    registry: CredentialRegistry,
    now: dt.datetime,
) -> tuple[RegisteredCredential, dt.datetime]:
    """Check a parsed presigned URL's SigV4 fields, freshness, credential and signature; returns (credential, date)."""
    params = parsed.params
    unknown = set(params) - _AUTH_PARAMS - operation_params - {"X-Amz-Security-Token"}
    if unknown:
        raise TokenError(f"unexpected query parameters {sorted(unknown)}")
    missing = _AUTH_PARAMS - set(params)
    if missing:
        raise TokenError(f"missing query parameters {sorted(missing)}")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise TokenError("unsupported signing algorithm")
    if params["X-Amz-SignedHeaders"] != "host":
        raise TokenError("signed headers must be exactly 'host'")
    amz_date = params["X-Amz-Date"]
    try:
        signed_at = dt.datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise TokenError("bad X-Amz-Date") from None
    expires_text = params["X-Amz-Expires"]
    if not expires_text.isdigit() or not 1 <= int(expires_text) <= MAX_EXPIRES:
        raise TokenError(f"X-Amz-Expires must be 1..{MAX_EXPIRES}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if signed_at > now + CLOCK_SKEW:
        raise TokenError("token is from the future")
    if now > signed_at + dt.timedelta(seconds=int(expires_text)):
        raise TokenError("token expired")
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise TokenError("malformed credential scope")
    access_key_id, datestamp, scope_region, scope_service, _ = scope
    if datestamp != amz_date[:8]:
        raise TokenError("credential scope date does not match X-Amz-Date")
    if scope_region != region:
        raise TokenError(f"signed for region {scope_region!r}, expected {region!r}")
    if scope_service != service:
        raise TokenError(f"signed for service {scope_service!r}, expected {service!r}")
    credential = registry.lookup(access_key_id)
    if credential is None:
        raise TokenError("unknown access key")
    if credential.expiration is not None and now >= credential.expiration:
        raise TokenError("signing credentials expired")
    given_token = params.get("X-Amz-Security-Token")
    if (given_token is None) != (credential.session_token is None) or (
        given_token is not None
        and credential.session_token is not None
        and not hmac.compare_digest(given_token.encode(), credential.session_token.encode())
    ):
        raise TokenError("session token does not match the access key")
    signature = params["X-Amz-Signature"]
    if not _SIGNATURE_RE.fullmatch(signature):
        raise TokenError("malformed signature")
    signed_params = [(k, v) for k, v in params.items() if k != "X-Amz-Signature"]
    host = _canonical_host(parsed.hostname, parsed.port)
    expected = _signature(credential.secret_access_key, amz_date, region, service, host, signed_params)
    if not hmac.compare_digest(expected, signature):
        raise TokenError("signature does not match")
    return credential, signed_at


@dataclass(frozen=True)
class _ConnectToken:
    """A kind of presigned ``Action=connect`` token: the service it is signed for and the query parameter naming the user."""

    service: str
    user_param: str


_RDS_TOKEN = _ConnectToken("rds-db", "DBUser")
_ELASTICACHE_TOKEN = _ConnectToken("elasticache", "User")


def _verify_connect_token(
    token: str,
    kind: _ConnectToken,
    *,
    user: str,
    host: str,
    port: int | None,
    region: str,
    registry: CredentialRegistry,
    now: dt.datetime | None,
) -> Principal:
    """Verify a presigned ``Action=connect`` token of ``kind`` for ``user`` at ``host`` and ``port`` (None: the
    token names no port); raises TokenError if invalid."""
    service, user_param = kind.service, kind.user_param
    parsed = _parse_token(token)
    if parsed.params.get("Action") != "connect":
        raise TokenError("Action must be 'connect'")
    if parsed.params.get(user_param) != user:
        raise TokenError(f"{user_param} does not match the login user")
    if parsed.hostname.lower() != host.lower() or parsed.port != port:
        if port is None:
            raise TokenError(f"token is for {parsed.hostname}, not {host}")
        raise TokenError(f"token is for {parsed.hostname}:{parsed.port}, not {host}:{port}")
    credential, signed_at = _verify_presigned(
        parsed,
        service=service,
        region=region,
        operation_params=frozenset({"Action", user_param}),
        registry=registry,
        now=now or dt.datetime.now(dt.UTC),
    )
    return Principal(credential.access_key_id, credential.role_arn, credential.account_id, user, signed_at)


def verify_rds_token(
    token: str,
    *,
    expected_host: str,
    expected_port: int,
    db_user: str,
    region: str,
    registry: CredentialRegistry,
    now: dt.datetime | None = None,
) -> Principal:
    """Verify an RDS IAM auth token for ``db_user`` at ``expected_host:expected_port``; raises TokenError if invalid.

    This checks authentication only; whether the role may connect is :meth:`PolicyChecker.allows` with
    :func:`rds_dbuser_arn`.
    """
    return _verify_connect_token(
        token, _RDS_TOKEN, user=db_user, host=expected_host, port=expected_port, region=region, registry=registry, now=now
    )


def token_endpoint(token: str) -> tuple[str, int | None]:
    """The (host, port) a presigned token was made for, without verifying anything (to pick the expected endpoint)."""
    parsed = _parse_token(token)
    return parsed.hostname, parsed.port


def generate_elasticache_token(
    credentials: SigningCredentials, cache_name: str, user_id: str, region: str, *, now: dt.datetime | None = None
) -> str:
    """An ElastiCache IAM auth token: presigned ``GET http://<cache_name>/?Action=connect&User=<user_id>``, 900 s."""
    return presign_get(
        credentials,
        host=cache_name,
        port=None,
        params={"Action": "connect", _ELASTICACHE_TOKEN.user_param: user_id},
        service=_ELASTICACHE_TOKEN.service,
        region=region,
        expires=MAX_EXPIRES,
        now=now,
    )


def verify_elasticache_token(
    token: str,
    *,
    cache_name: str,
    user_id: str,
    region: str,
    registry: CredentialRegistry,
    now: dt.datetime | None = None,
) -> Principal:
    """Verify an ElastiCache IAM auth token for ``user_id`` and replication group ``cache_name``; raises TokenError."""
    return _verify_connect_token(
        token, _ELASTICACHE_TOKEN, user=user_id, host=cache_name, port=None, region=region, registry=registry, now=now
    )


def rds_dbuser_arn(region: str, account_id: str, cluster_resource_id: str, db_user: str) -> str:
    """The resource ARN ``rds-db:connect`` is authorised on."""
    return f"arn:aws:rds-db:{region}:{account_id}:dbuser:{cluster_resource_id}/{db_user}"


def elasticache_resource_arns(region: str, account_id: str, replication_group_id: str, user_id: str) -> tuple[str, str]:
    """The replication group and user ARNs that ``elasticache:Connect`` must both be allowed on."""
    prefix = f"arn:aws:elasticache:{region}:{account_id}"
    return f"{prefix}:replicationgroup:{replication_group_id}", f"{prefix}:user:{user_id}"


# -- policy evaluation ----------------------------------------------------------------------------------------------


def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _matches_any(patterns: list[str], value: str, *, ignore_case: bool) -> bool:
    return any(_wildcard(p, ignore_case=ignore_case).fullmatch(value) for p in patterns)


def _element_matches(statement: Mapping[str, Any], element: str, value: str, *, ignore_case: bool) -> bool:
    """Whether the statement's ``element`` (``Action``, ``Resource``) covers ``value``, or its ``Not<element>``
    leaves it out; False when the statement has neither."""
    if element in statement:
        return _matches_any(_as_list(statement[element]), value, ignore_case=ignore_case)
    if f"Not{element}" in statement:
        return not _matches_any(_as_list(statement[f"Not{element}"]), value, ignore_case=ignore_case)
    return False


def _statement_matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether the statement's action and resource elements cover (action, resource)."""
    # Action names are case-insensitive in IAM, resource ARNs are not.
    action_ok = _element_matches(statement, "Action", action, ignore_case=True)
    return action_ok and _element_matches(statement, "Resource", resource, ignore_case=False)


def evaluate(statements: Iterable[Mapping[str, Any]], action: str, resource: str) -> bool:
    """IAM identity-policy evaluation: an explicit Deny wins, else any Allow, else implicit deny."""
    allowed = False
    for statement in statements:
        effect = statement.get("Effect")
        if not _statement_matches(statement, action, resource):
            continue
        if effect == "Deny":
            # Conditions are not evaluated; a conditional Deny is taken to apply (fail closed).
            return False
        if effect == "Allow" and "Condition" not in statement:
            # A conditional Allow is taken NOT to apply: we cannot evaluate the condition, and must not silently allow.
            allowed = True
    return allowed


def _document(raw: Any) -> dict[str, Any]:
    """A policy document as returned by boto3 (already decoded) or as raw, possibly URL-encoded, JSON."""
    if isinstance(raw, Mapping):
        return dict(raw)
    text = str(raw)
    if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
        text = unquote(text)
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("policy document is not a JSON object")
    return parsed


def role_name_from_arn(role_arn: str) -> str:
    """The role name from a role ARN (``...:role/path/name``) or an assumed-role ARN (``...:assumed-role/name/s``)."""
    resource = role_arn.split(":", 5)[-1]
    if resource.startswith("role/"):
        return resource.rsplit("/", 1)[-1]
    if resource.startswith("assumed-role/"):
        return resource.split("/")[1]
    raise ValueError(f"not a role ARN: {role_arn}")


class PolicyChecker:
    """Answers "may this role do action on resource?" from the role's policies in the emulator's IAM. Thread-safe.

    Statements are cached per role for ``cache_seconds`` so a burst of logins does not hammer the emulator, while a
    policy change still takes effect within seconds.
    """

    def __init__(self, iam_client: Any, *, cache_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._iam = iam_client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def statements(self, role_arn: str) -> list[dict[str, Any]]:
        """Every statement of the role's inline and attached managed policies (cached)."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(role_arn)
            if cached is not None and now - cached[0] < self._cache_seconds:
                return cached[1]
        statements = self._load(role_arn)
        with self._lock:
            self._cache[role_arn] = (now, statements)
        return statements

    def _load(self, role_arn: str) -> list[dict[str, Any]]:
        name = role_name_from_arn(role_arn)
        documents: list[dict[str, Any]] = []
        try:
            for page in self._iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy_name in page["PolicyNames"]:
                    response = self._iam.get_role_policy(RoleName=name, PolicyName=policy_name)
                    documents.append(_document(response["PolicyDocument"]))
            for page in self._iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for attached in page["AttachedPolicies"]:
                    policy = self._iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                    version = self._iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
                    documents.append(_document(version["PolicyVersion"]["Document"]))
        except self._iam.exceptions.NoSuchEntityException:
            return []  # the role is gone: nothing is allowed
        statements: list[dict[str, Any]] = []
        for document in documents:
            body = document.get("Statement", [])
            statements.extend([body] if isinstance(body, dict) else list(body))
        return statements

    def invalidate(self, role_arn: str | None = None) -> None:
        """Drop cached statements for one role (or all)."""
        with self._lock:
            if role_arn is None:
                self._cache.clear()
            else:
                self._cache.pop(role_arn, None)

    def allows(self, role_arn: str, action: str, resource_arn: str) -> bool:
        """True iff the role's policies allow ``action`` on ``resource_arn`` (explicit Deny wins)."""
        return evaluate(self.statements(role_arn), action, resource_arn)

    def allows_rds_connect(
        self, principal: Principal, *, region: str, account_id: str, cluster_resource_id: str, db_user: str
    ) -> bool:
        """RDS: ``rds-db:connect`` on ``arn:aws:rds-db:<region>:<account>:dbuser:<cluster resource id>/<db user>``."""
        return self.allows(principal.role_arn, "rds-db:connect", rds_dbuser_arn(region, account_id, cluster_resource_id, db_user))

    def allows_elasticache_connect(
        self, principal: Principal, *, region: str, account_id: str, replication_group_id: str, user_id: str
    ) -> bool:
        """ElastiCache: ``elasticache:Connect`` on both the replication group ARN and the user ARN."""
        group_arn, user_arn = elasticache_resource_arns(region, account_id, replication_group_id, user_id)
        return self.allows(principal.role_arn, "elasticache:Connect", group_arn) and self.allows(
            principal.role_arn, "elasticache:Connect", user_arn
        )
