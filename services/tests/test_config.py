"""The configuration contract: exact variable sets per service, typed values, and one-line errors (exit status 2)."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.common.config import (
    SERVICES,
    ConfigError,
    contract_table,
    load_api,
    load_migrate,
    load_notification,
    load_payment,
    required_variables,
    runtime_variables,
    secret_variables,
)
from services.tests.support import REPO_ROOT, contract_env, migrate_env, process_env, service_values

_COMMON = {"SERVICE_NAME", "ENVIRONMENT", "PORT", "HEALTH_CHECK_PATH", "MAX_REQUEST_BODY_BYTES", "METRICS_NAMESPACE"}
_DB = {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_AUTH", "DB_SSL_MODE", "DB_SSL_ROOT_CERT"}
_REDIS = {"REDIS_HOST", "REDIS_PORT", "REDIS_TLS", "REDIS_USER", "REDIS_AUTH", "REDIS_CACHE_NAME"}

LOADERS = {"api": load_api, "payment": load_payment, "notification": load_notification, "migrate": load_migrate}


def full_env(service: str) -> dict[str, str]:
    """A valid environment for ``service``: the task definition's variables plus what the runtime sets."""
    if service == "migrate":
        return migrate_env(5432, "scalepay")
    urls = {"payment": "http://payment:8080", "notification": "http://notification:8080"}
    values = service_values(service, 8080, pg_port=5432, dbname="scalepay", redis_port=6379, urls=urls)
    return {**contract_env(service, values), "AWS_REGION": "eu-west-1"}


def test_required_variables_per_service_are_exactly_the_contract() -> None:
    """What each task definition must declare, name by name."""
    assert required_variables("api") == _COMMON | {"PAYMENT_URL", "NOTIFICATION_URL"}
    assert required_variables("payment") == _COMMON | _DB | _REDIS | {"NOTIFICATION_URL"}
    assert required_variables("notification") == _COMMON | _DB
    assert required_variables("migrate") == {
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_SSL_MODE",
        "DB_SSL_ROOT_CERT",
        "DB_SERVICE_USERS",
        "DB_MASTER_USERNAME",
        "DB_MASTER_PASSWORD",
    }


def test_only_the_master_credentials_are_secrets() -> None:
    """Only migrate's two master-credential variables come from Secrets Manager; services have no static secrets."""
    assert secret_variables("migrate") == {"DB_MASTER_USERNAME", "DB_MASTER_PASSWORD"}
    for service in SERVICES:
        assert secret_variables(service) == frozenset()
    assert runtime_variables("payment") == {"AWS_REGION", "BIND_ADDRESS"}
    assert runtime_variables("api") == {"BIND_ADDRESS"}
    assert runtime_variables("migrate") == frozenset()
    with pytest.raises(ValueError, match="unknown service"):
        required_variables("worker")


def test_valid_environment_loads_typed_values() -> None:
    """A complete payment environment parses into typed values; BIND_ADDRESS defaults to 0.0.0.0 in a container."""
    config = load_payment(full_env("payment"))
    assert config.service.port == 8080
    assert config.service.bind_address == "0.0.0.0"
    assert config.service.max_request_body_bytes == 4096
    assert config.database.port == 5432 and config.database.user == "scalepay_payment"
    assert config.database.region == "eu-west-1"
    assert config.redis.tls is False and config.redis.port == 6379 and config.redis.cache_name == "scalepay-redis-test"
    assert config.notification_url == "http://notification:8080"
    migrate = load_migrate(full_env("migrate"))
    assert dict(migrate.service_users) == {"payment": "scalepay_payment", "notification": "scalepay_notification"}
    assert load_api({**full_env("api"), "BIND_ADDRESS": "127.0.0.1"}).service.bind_address == "127.0.0.1"


@pytest.mark.parametrize("service", ["api", "payment", "notification", "migrate"])
def test_every_required_variable_missing_is_named(service: str) -> None:
    """Removing any one declared variable stops loading with a message naming it."""
    env = full_env(service)
    for name in sorted(required_variables(service) | ({"AWS_REGION"} if service in ("payment", "notification") else set())):
        broken = {k: v for k, v in env.items() if k != name}
        with pytest.raises(ConfigError) as info:
            LOADERS[service](broken)
        assert info.value.variable == name
        assert str(info.value).startswith(f"configuration error: {name} is not set; allowed: ")
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("service", "name", "value", "allowed_fragment"),
    [
        ("api", "PORT", "80a", "integer 1024-65535"),
        ("api", "PORT", "80", "integer 1024-65535"),
        ("api", "ENVIRONMENT", "qa", "dev, staging or prod"),
        ("api", "SERVICE_NAME", "payment", "api (this is the api service)"),
        ("api", "HEALTH_CHECK_PATH", "/health", "/<SERVICE_NAME>/health"),
        ("api", "HEALTH_CHECK_PATH", "/payment/health", "allowed: /api/health"),
        ("api", "PAYMENT_URL", "payment:8080", "http(s)://host[:port]"),
        ("api", "PAYMENT_URL", "http://payment:8080/v1", "without a path"),
        ("api", "MAX_REQUEST_BODY_BYTES", "0", "integer 1-10485760"),
        ("api", "BIND_ADDRESS", "localhost", "an IP address"),
        ("payment", "DB_PORT", "70000", "integer 1-65535"),
        ("payment", "DB_AUTH", "password", "iam"),
        ("payment", "REDIS_AUTH", "token", "iam"),
        ("payment", "REDIS_TLS", "yes", "true or false"),
        ("payment", "DB_SSL_MODE", "prefer", "disable, require, verify-ca or verify-full"),
        ("payment", "DB_USER", "Payment-User", "PostgreSQL role name"),
        ("payment", "REDIS_CACHE_NAME", "Scalepay_Redis", "replication group id"),
        ("payment", "DB_SSL_ROOT_CERT", "relative/ca.pem", "absolute path"),
        ("migrate", "DB_SERVICE_USERS", "payment=scalepay_payment", "payment=<role>,notification=<role>"),
        ("migrate", "DB_SERVICE_USERS", "payment=a,notification=a", "distinct"),
        ("migrate", "DB_SERVICE_USERS", "payment=a,api=b", "payment=<role>,notification=<role>"),
    ],
)
def test_malformed_value_names_variable_value_and_what_is_allowed(
    service: str, name: str, value: str, allowed_fragment: str
) -> None:
    """One line: the variable, its value, what is allowed."""
    with pytest.raises(ConfigError) as info:
        LOADERS[service]({**full_env(service), name: value})
    message = str(info.value)
    assert message.startswith(f"configuration error: {name}={value!r} is invalid; allowed: ")
    assert allowed_fragment in message


def test_card_data_environments_require_verified_tls() -> None:
    """staging and prod refuse anything weaker than verify-full to PostgreSQL and plain TCP to Redis."""
    for environment in ("staging", "prod"):
        env = {**full_env("payment"), "ENVIRONMENT": environment}
        with pytest.raises(
            ConfigError, match=rf"DB_SSL_MODE='disable' is invalid; allowed: verify-full when ENVIRONMENT={environment}"
        ):
            load_payment(env)
    cert = Path(__file__)  # any readable file stands in for the CA bundle
    env = {**full_env("payment"), "ENVIRONMENT": "prod", "DB_SSL_MODE": "verify-full", "DB_SSL_ROOT_CERT": str(cert)}
    with pytest.raises(ConfigError, match=r"REDIS_TLS='false' is invalid; allowed: true when ENVIRONMENT=prod"):
        load_payment(env)
    config = load_payment({**env, "REDIS_TLS": "true"})
    assert config.database.ssl_mode == "verify-full" and config.redis.tls is True


def test_verify_modes_need_the_ca_bundle_to_exist() -> None:
    """verify-full with a CA bundle path that does not exist stops at start, not at the first connection."""
    env = {**full_env("notification"), "DB_SSL_MODE": "verify-full", "DB_SSL_ROOT_CERT": "/nonexistent/rds-global-bundle.pem"}
    with pytest.raises(
        ConfigError, match=r"DB_SSL_ROOT_CERT='/nonexistent/rds-global-bundle.pem' is invalid; allowed: a readable file"
    ):
        load_notification(env)


def test_secret_values_are_never_echoed() -> None:
    """A bad secret is reported by name and length only."""
    with pytest.raises(ConfigError) as info:
        load_migrate({**full_env("migrate"), "DB_MASTER_PASSWORD": ""})
    assert str(info.value) == (
        "configuration error: DB_MASTER_PASSWORD is invalid (value redacted, 0 characters); allowed: a non-empty password"
    )
    with pytest.raises(ConfigError) as info:
        load_migrate({**full_env("migrate"), "DB_MASTER_USERNAME": "Pa55-word!"})
    assert "Pa55-word!" not in str(info.value) and "10 characters" in str(info.value)


@pytest.fixture(scope="module")
def bad_config_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Each entry point started once with a malformed variable (all four at the same time, to keep the suite fast)."""

    def start(module: str) -> subprocess.CompletedProcess[str]:
        env = {**process_env(), **full_env(module)}
        env["DB_PORT" if module != "api" else "PORT"] = "not-a-port"
        command = [sys.executable, "-m", f"services.{module}"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)

    modules = ["api", "payment", "notification", "migrate"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(modules, pool.map(start, modules), strict=True))


@pytest.mark.parametrize("module", ["api", "payment", "notification", "migrate"])
def test_process_exits_2_with_one_line_and_no_traceback(
    module: str, bad_config_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """``python -m services.<name>`` with a bad variable: exit status 2, exactly one line on stderr, nothing started."""
    result = bad_config_runs[module]
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"configuration error: (DB_PORT|PORT)='not-a-port' is invalid; allowed: integer .*", lines[0])
    assert result.stdout == ""


def test_readme_documents_the_contract_as_declared() -> None:
    """services/README.md embeds the table generated from the declarations (``python -m services.common.config``)."""
    readme = (REPO_ROOT / "services" / "README.md").read_text()
    assert contract_table() in readme
