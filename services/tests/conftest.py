"""Fixtures: fake AWS credentials; one PostgreSQL and one Redis (the local data plane's servers) per session; a fresh,
migrated database per test module.

The servers trust local connections, so the services run their real IAM-token code paths (any token is accepted) over
plain TCP; TLS and token verification are exercised by the local data plane's own tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.config import load_migrate
from services.migrate.job import run as run_migrations
from services.tests.support import FAKE_AWS_CREDENTIALS, REDIS_ACCESS, REDIS_USER, migrate_env
from tools.localplane.postgres import LocalPostgres
from tools.localplane.redis import LocalRedis


@pytest.fixture(scope="session", autouse=True)
def fake_aws_credentials() -> Iterator[None]:
    """botocore signs tokens with fake static credentials; no real AWS configuration is ever read."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_ROLE_ARN",
        ):
            patch.delenv(name, raising=False)
        for name, value in FAKE_AWS_CREDENTIALS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A scratch directory the servers (which drop to uid 65534 when we are root) can reach."""
    path = Path(tempfile.mkdtemp(prefix="scalepay-services-"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(workdir: Path) -> Iterator[LocalPostgres]:
    """One PostgreSQL server for the session, on 127.0.0.1 (trust auth), with the ``rds_iam`` role RDS would have."""
    server = LocalPostgres(workdir / "postgres", tcp=True)
    try:
        server.start()
        server.execute("CREATE ROLE rds_iam")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[LocalRedis]:
    """One Redis (Valkey) server for the session; the payment user accepts any password (``nopass``), so any token."""
    server = LocalRedis(workdir / "redis")
    try:
        server.start()
        server.set_user(REDIS_USER, REDIS_ACCESS, "unused-because-nopass")
        yield server
    finally:
        server.stop()


def create_database(postgres: LocalPostgres, prefix: str) -> str:
    """A new empty database with a unique name."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    postgres.execute(f"CREATE DATABASE {name}")
    return name


@pytest.fixture(scope="module")
def migrated_database(postgres: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for the test module, migrated by the migrate job (roles, schemas, tables, grants)."""
    name = create_database(postgres, "t_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    run_migrations(load_migrate(migrate_env(postgres.port, name)))
    try:
        yield name
    finally:
        postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
