"""The configuration contract: every environment variable the services and the migrate job read, declared once.

Each :class:`Variable` below is one row of the contract (name, what is allowed, who reads it, where the value comes
from). The ECS task definitions must declare exactly :func:`required_variables` for a service, of which
:func:`secret_variables` as ECS ``secrets``; the runtime (Fargate, the local task runner) provides
:func:`runtime_variables`. Nothing else is read from the environment by the services' own code (botocore reads the
``AWS_*`` credential variables itself).

A missing or malformed value raises :class:`ConfigError`, whose message is the single line the process prints before
exiting with status 2 (see :func:`exit_on_config_error`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ALL_TARGETS",
    "SERVICES",
    "VARIABLES",
    "ApiConfig",
    "ConfigError",
    "DatabaseConfig",
    "MigrateConfig",
    "NotificationConfig",
    "PaymentConfig",
    "RedisConfig",
    "ServiceConfig",
    "Variable",
    "contract_table",
    "exit_on_config_error",
    "load_api",
    "load_migrate",
    "load_notification",
    "load_payment",
    "required_variables",
    "runtime_variables",
    "secret_variables",
]

T = TypeVar("T", covariant=True)

SERVICES: tuple[str, ...] = ("api", "payment", "notification")
"""The long-running services (each is an ECS service behind the ALB)."""

MIGRATE = "migrate"
ALL_TARGETS: tuple[str, ...] = (*SERVICES, MIGRATE)
"""Everything that reads this contract: the three services and the one-off migrate task."""

DB_SERVICES: tuple[str, ...] = ("payment", "notification")
"""Services that own a database schema (and get a role from the migrate job)."""

Source = Literal["task", "secret", "runtime"]

EXIT_CONFIG_ERROR = 2


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; ``str()`` is the one-line message for the operator."""

    def __init__(self, variable: str, value: str | None, allowed: str, *, secret: bool = False) -> None:
        self.variable = variable
        self.value = value
        self.allowed = allowed
        if value is None:
            shown = f"{variable} is not set"
        elif secret:
            # Never echo a secret, not even a wrong one: its length is enough to spot an empty or truncated value.
            shown = f"{variable} is invalid (value redacted, {len(value)} characters)"
        else:
            shown = f"{variable}={value!r} is invalid"
        super().__init__(f"configuration error: {shown}; allowed: {allowed}")


@dataclass(frozen=True)
class Variable(Generic[T]):
    """One environment variable of the contract: its parser, what is allowed, who reads it and who sets it."""

    name: str
    parse: Callable[[str], T]
    allowed: str
    used_by: frozenset[str]
    source: Source = "task"
    default: str | None = None
    example: str = ""

    def read(self, environ: Mapping[str, str]) -> T:
        """The parsed value from ``environ`` (or the default); :class:`ConfigError` when missing or invalid."""
        raw = environ.get(self.name)
        if raw is None:
            if self.default is None:
                raise ConfigError(self.name, None, self.allowed)
            raw = self.default
        try:
            return self.parse(raw)
        except ValueError:
            raise ConfigError(self.name, raw, self.allowed, secret=self.source == "secret") from None


# -- parsers (each raises ValueError on a bad value; the message shown to the operator is the Variable's `allowed`) --


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not re.fullmatch(r"[0-9]+", raw):
            raise ValueError(raw)
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _pattern(regex: str) -> Callable[[str], str]:
    compiled = re.compile(regex)

    def parse(raw: str) -> str:
        if not compiled.fullmatch(raw):
            raise ValueError(raw)
        return raw

    return parse


def _bool(raw: str) -> bool:
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise ValueError(raw)


def _ip_address(raw: str) -> str:
    ipaddress.ip_address(raw)  # raises ValueError
    return raw


def _base_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(raw)
    if parts.port is not None and not 1 <= parts.port <= 65535:  # .port itself raises ValueError when out of range
        raise ValueError(raw)
    return raw.rstrip("/")


def _absolute_path(raw: str) -> Path:
    if not raw.startswith("/"):
        raise ValueError(raw)
    return Path(raw)


def _non_empty(raw: str) -> str:
    if not raw:
        raise ValueError(raw)
    return raw


_IDENTIFIER = r"[a-z_][a-z0-9_]{0,62}"


def _service_users(raw: str) -> Mapping[str, str]:
    users: dict[str, str] = {}
    for item in raw.split(","):
        service, sep, role = item.partition("=")
        if not sep or service not in DB_SERVICES or service in users or not re.fullmatch(_IDENTIFIER, role):
            raise ValueError(raw)
        users[service] = role
    if set(users) != set(DB_SERVICES) or len(set(users.values())) != len(users):
        raise ValueError(raw)
    return users


# -- the contract ----------------------------------------------------------------------------------------------------

_ALL_SERVICES = frozenset(SERVICES)
_DB_READERS = frozenset({"payment", "notification"})
_DB_SERVERS = frozenset({"payment", "notification", MIGRATE})
_REDIS_READERS = frozenset({"payment"})
_MIGRATE_ONLY = frozenset({MIGRATE})
_HOST_NAME = _pattern(r"[A-Za-z0-9.\-]{1,253}")  # DB_HOST and REDIS_HOST: an endpoint's host name

SERVICE_NAME = Variable("SERVICE_NAME", _one_of(*SERVICES), "api, payment or notification", _ALL_SERVICES, example="payment")
ENVIRONMENT = Variable("ENVIRONMENT", _one_of("dev", "staging", "prod"), "dev, staging or prod", _ALL_SERVICES, example="prod")
PORT = Variable("PORT", _int_range(1024, 65535), "integer 1024-65535 (the container port)", _ALL_SERVICES, example="8080")
HEALTH_CHECK_PATH = Variable(
    "HEALTH_CHECK_PATH",
    _pattern(r"/(api|payment|notification)/health"),
    "/<SERVICE_NAME>/health",
    _ALL_SERVICES,
    example="/payment/health",
)
MAX_REQUEST_BODY_BYTES = Variable(
    "MAX_REQUEST_BODY_BYTES", _int_range(1, 10 * 1024 * 1024), "integer 1-10485760", _ALL_SERVICES, example="65536"
)
METRICS_NAMESPACE = Variable(
    "METRICS_NAMESPACE",
    _pattern(r"[A-Za-z0-9.\-_/#:]{1,255}"),
    "CloudWatch namespace: 1-255 of [A-Za-z0-9.-_/#:]",
    _ALL_SERVICES,
    example="ScalePayments/prod/payment",
)
PAYMENT_URL = Variable(
    "PAYMENT_URL", _base_url, "http(s)://host[:port] without a path", frozenset({"api"}), example="http://payment:8080"
)
NOTIFICATION_URL = Variable(
    "NOTIFICATION_URL",
    _base_url,
    "http(s)://host[:port] without a path",
    frozenset({"api", "payment"}),
    example="http://notification:8080",
)
DB_HOST = Variable("DB_HOST", _HOST_NAME, "a host name or IPv4 address", _DB_SERVERS, example="<cluster endpoint>")
DB_PORT = Variable("DB_PORT", _int_range(1, 65535), "integer 1-65535", _DB_SERVERS, example="5432")
DB_NAME = Variable("DB_NAME", _pattern(_IDENTIFIER), "a PostgreSQL identifier [a-z_][a-z0-9_]*", _DB_SERVERS, example="scalepay")
DB_USER = Variable(
    "DB_USER", _pattern(_IDENTIFIER), "a PostgreSQL role name [a-z_][a-z0-9_]*", _DB_READERS, example="scalepay_payment"
)
DB_AUTH = Variable("DB_AUTH", _one_of("iam"), "iam (RDS IAM database authentication)", _DB_READERS, example="iam")
DB_SSL_MODE = Variable(
    "DB_SSL_MODE",
    _one_of("disable", "require", "verify-ca", "verify-full"),
    "disable, require, verify-ca or verify-full (verify-full outside dev)",
    _DB_SERVERS,
    example="verify-full",
)
DB_SSL_ROOT_CERT = Variable(
    "DB_SSL_ROOT_CERT",
    _absolute_path,
    "absolute path of a readable CA bundle (checked with verify-ca/verify-full)",
    _DB_SERVERS,
    example="/etc/ssl/certs/rds-global-bundle.pem",
)
REDIS_HOST = Variable("REDIS_HOST", _HOST_NAME, "a host name or IPv4 address", _REDIS_READERS, example="<primary endpoint>")
REDIS_PORT = Variable("REDIS_PORT", _int_range(1, 65535), "integer 1-65535", _REDIS_READERS, example="6379")
REDIS_TLS = Variable("REDIS_TLS", _bool, "true or false (true outside dev)", _REDIS_READERS, example="true")
REDIS_USER = Variable(
    "REDIS_USER",
    _pattern(r"[A-Za-z0-9_\-]{1,40}"),
    "an ElastiCache user name [A-Za-z0-9_-]{1,40}",
    _REDIS_READERS,
    example="scalepay-payment",
)
REDIS_AUTH = Variable("REDIS_AUTH", _one_of("iam"), "iam (ElastiCache IAM authentication)", _REDIS_READERS, example="iam")
REDIS_CACHE_NAME = Variable(
    "REDIS_CACHE_NAME",
    _pattern(r"[a-z][a-z0-9\-]{0,39}"),
    "the replication group id: [a-z][a-z0-9-]{0,39}",
    _REDIS_READERS,
    example="scalepay-redis-prod",
)
DB_SERVICE_USERS = Variable(
    "DB_SERVICE_USERS",
    _service_users,
    "payment=<role>,notification=<role> (distinct PostgreSQL role names)",
    _MIGRATE_ONLY,
    example="payment=scalepay_payment,notification=scalepay_notification",
)
DB_MASTER_USERNAME = Variable(
    "DB_MASTER_USERNAME",
    _pattern(_IDENTIFIER),
    "the master role name",
    _MIGRATE_ONLY,
    source="secret",
    example="<from the RDS secret>",
)
DB_MASTER_PASSWORD = Variable(
    "DB_MASTER_PASSWORD",
    _non_empty,
    "a non-empty password",
    _MIGRATE_ONLY,
    source="secret",
    example="<from the RDS secret>",
)
AWS_REGION = Variable(
    "AWS_REGION",
    _pattern(r"[a-z]{2}(-[a-z]+)+-[0-9]"),
    "an AWS region such as eu-west-1",
    _DB_READERS,
    source="runtime",
    example="set by Fargate",
)
BIND_ADDRESS = Variable(
    "BIND_ADDRESS",
    _ip_address,
    "an IP address",
    _ALL_SERVICES,
    source="runtime",
    default="0.0.0.0",
    example="0.0.0.0 (local runner: 127.0.0.1)",
)

VARIABLES: tuple[Variable[object], ...] = (
    SERVICE_NAME,
    ENVIRONMENT,
    PORT,
    HEALTH_CHECK_PATH,
    MAX_REQUEST_BODY_BYTES,
    METRICS_NAMESPACE,
    PAYMENT_URL,
    NOTIFICATION_URL,
    DB_HOST,
    DB_PORT,
    DB_NAME,
    DB_USER,
    DB_AUTH,
    DB_SSL_MODE,
    DB_SSL_ROOT_CERT,
    REDIS_HOST,
    REDIS_PORT,
    REDIS_TLS,
    REDIS_USER,
    REDIS_AUTH,
    REDIS_CACHE_NAME,
    DB_SERVICE_USERS,
    DB_MASTER_USERNAME,
    DB_MASTER_PASSWORD,
    AWS_REGION,
    BIND_ADDRESS,
)
"""The whole contract, in the order the README table lists it."""


def _check_target(target: str) -> None:
    if target not in ALL_TARGETS:
        raise ValueError(f"unknown service {target!r}; expected one of {', '.join(ALL_TARGETS)}")


def required_variables(service: str) -> frozenset[str]:
    """Names the ECS task definition of ``service`` (api, payment, notification or migrate) must declare.

    Includes the secrets (declared under ``secrets``); excludes what the runtime sets (``AWS_REGION``,
    ``BIND_ADDRESS``).
    """
    _check_target(service)
    return frozenset(v.name for v in VARIABLES if service in v.used_by and v.source != "runtime")


def secret_variables(service: str) -> frozenset[str]:
    """Names that must come as ECS ``secrets`` (resolved from Secrets Manager), never as plain ``environment``."""
    _check_target(service)
    return frozenset(v.name for v in VARIABLES if service in v.used_by and v.source == "secret")


def runtime_variables(service: str) -> frozenset[str]:
    """Names the runtime provides (not the task definition): ``AWS_REGION`` on Fargate, optionally ``BIND_ADDRESS``."""
    _check_target(service)
    return frozenset(v.name for v in VARIABLES if service in v.used_by and v.source == "runtime")


def contract_table() -> str:
    """The contract as a Markdown table (the README embeds exactly this; a test keeps the two in sync)."""
    header = (
        "| variable | api | payment | notification | migrate | source | allowed | example |\n|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for v in VARIABLES:
        marks = " | ".join("x" if target in v.used_by else "" for target in ALL_TARGETS)
        allowed = v.allowed.replace("|", "\\|")
        rows.append(f"| `{v.name}` | {marks} | {v.source} | {allowed} | {v.example} |")
    return "\n".join([header, *rows])


# -- typed configuration per service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceConfig:
    """What every HTTP service reads."""

    service: str
    environment: str
    port: int
    health_check_path: str
    max_request_body_bytes: int
    metrics_namespace: str
    bind_address: str


@dataclass(frozen=True)
class DatabaseConfig:
    """How a service reaches Aurora PostgreSQL with IAM authentication over TLS."""

    host: str
    port: int
    name: str
    user: str
    ssl_mode: str
    ssl_root_cert: Path
    region: str


@dataclass(frozen=True)
class RedisConfig:
    """How the payment service reaches ElastiCache with IAM authentication (over TLS unless ``tls`` is false)."""

    host: str
    port: int
    tls: bool
    user: str
    cache_name: str
    region: str


@dataclass(frozen=True)
class ApiConfig:
    """The api service: public REST in front of payment and notification."""

    service: ServiceConfig
    payment_url: str
    notification_url: str


@dataclass(frozen=True)
class PaymentConfig:
    """The payment service: PostgreSQL ledger, Redis idempotency keys, events to notification."""

    service: ServiceConfig
    database: DatabaseConfig
    redis: RedisConfig
    notification_url: str


@dataclass(frozen=True)
class NotificationConfig:
    """The notification service: records payment events in PostgreSQL."""

    service: ServiceConfig
    database: DatabaseConfig


@dataclass(frozen=True)
class MigrateConfig:
    """The one-off migrate task: master credentials, the service roles to create, TLS settings."""

    host: str
    port: int
    name: str
    ssl_mode: str
    ssl_root_cert: Path
    service_users: Mapping[str, str]
    master_username: str
    master_password: str


def _service(expected: str, environ: Mapping[str, str]) -> ServiceConfig:
    name = SERVICE_NAME.read(environ)
    if name != expected:
        # The image decides which service runs; a task definition pointing the payment image at SERVICE_NAME=api is a
        # deployment mistake worth stopping on.
        raise ConfigError(SERVICE_NAME.name, name, f"{expected} (this is the {expected} service)")
    path = HEALTH_CHECK_PATH.read(environ)
    if path != f"/{expected}/health":
        raise ConfigError(HEALTH_CHECK_PATH.name, path, f"/{expected}/health")
    return ServiceConfig(
        service=name,
        environment=ENVIRONMENT.read(environ),
        port=PORT.read(environ),
        health_check_path=path,
        max_request_body_bytes=MAX_REQUEST_BODY_BYTES.read(environ),
        metrics_namespace=METRICS_NAMESPACE.read(environ),
        bind_address=BIND_ADDRESS.read(environ),
    )


def _ssl(environment: str | None, environ: Mapping[str, str]) -> tuple[str, Path]:
    mode = DB_SSL_MODE.read(environ)
    if environment in ("staging", "prod") and mode != "verify-full":
        # Card-data environments: TLS with host-name verification against the RDS CA, nothing weaker.
        raise ConfigError(DB_SSL_MODE.name, mode, f"verify-full when ENVIRONMENT={environment}")
    root_cert = DB_SSL_ROOT_CERT.read(environ)
    if mode in ("verify-ca", "verify-full") and not (root_cert.is_file() and os.access(root_cert, os.R_OK)):
        raise ConfigError(DB_SSL_ROOT_CERT.name, str(root_cert), f"a readable file (needed by DB_SSL_MODE={mode})")
    return mode, root_cert


def _database(environment: str, environ: Mapping[str, str]) -> DatabaseConfig:
    DB_AUTH.read(environ)  # only "iam" exists: validated so that a task definition asking for anything else stops here
    ssl_mode, root_cert = _ssl(environment, environ)
    return DatabaseConfig(
        host=DB_HOST.read(environ),
        port=DB_PORT.read(environ),
        name=DB_NAME.read(environ),
        user=DB_USER.read(environ),
        ssl_mode=ssl_mode,
        ssl_root_cert=root_cert,
        region=AWS_REGION.read(environ),
    )


def _redis(environment: str, environ: Mapping[str, str]) -> RedisConfig:
    REDIS_AUTH.read(environ)
    tls = REDIS_TLS.read(environ)
    if environment in ("staging", "prod") and not tls:
        raise ConfigError(REDIS_TLS.name, "false", f"true when ENVIRONMENT={environment}")
    return RedisConfig(
        host=REDIS_HOST.read(environ),
        port=REDIS_PORT.read(environ),
        tls=tls,
        user=REDIS_USER.read(environ),
        cache_name=REDIS_CACHE_NAME.read(environ),
        region=AWS_REGION.read(environ),
    )


def load_api(environ: Mapping[str, str]) -> ApiConfig:
    """The api service's configuration from ``environ``; :class:`ConfigError` on the first bad variable."""
    return ApiConfig(
        service=_service("api", environ),
        payment_url=PAYMENT_URL.read(environ),
        notification_url=NOTIFICATION_URL.read(environ),
    )


def load_payment(environ: Mapping[str, str]) -> PaymentConfig:
    """The payment service's configuration from ``environ``; :class:`ConfigError` on the first bad variable."""
    service = _service("payment", environ)
    return PaymentConfig(
        service=service,
        database=_database(service.environment, environ),
        redis=_redis(service.environment, environ),
        notification_url=NOTIFICATION_URL.read(environ),
    )


def load_notification(environ: Mapping[str, str]) -> NotificationConfig:
    """The notification service's configuration from ``environ``; :class:`ConfigError` on the first bad variable."""
    service = _service("notification", environ)
    return NotificationConfig(service=service, database=_database(service.environment, environ))


def load_migrate(environ: Mapping[str, str]) -> MigrateConfig:
    """The migrate job's configuration from ``environ``; :class:`ConfigError` on the first bad variable.

    The job has no ENVIRONMENT, so DB_SSL_MODE is not tightened here; the task definition sets verify-full.
    """
    ssl_mode, root_cert = _ssl(None, environ)
    return MigrateConfig(
        host=DB_HOST.read(environ),
        port=DB_PORT.read(environ),
        name=DB_NAME.read(environ),
        ssl_mode=ssl_mode,
        ssl_root_cert=root_cert,
        service_users=DB_SERVICE_USERS.read(environ),
        master_username=DB_MASTER_USERNAME.read(environ),
        master_password=DB_MASTER_PASSWORD.read(environ),
    )


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a :class:`ConfigError` into its one-line message on stderr and exit status 2 (no traceback)."""
    try:
        yield
    except ConfigError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


if __name__ == "__main__":
    # `python -m services.common.config` prints the contract table (pasted into services/README.md).
    print(contract_table())
