"""The migrate job against a real PostgreSQL: roles, schemas, ordered migrations, least-privilege grants, idempotence."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest

from services.common.config import MigrateConfig, load_migrate
from services.migrate.job import MigrationError, run
from services.tests.conftest import create_database
from services.tests.support import REPO_ROOT, SERVICES_DIR, migrate_env, process_env
from tools.localplane.postgres import LocalPostgres

SUFFIX = uuid.uuid4().hex[:6]
# Role names of this module only (roles are cluster-wide): the first run really creates them.
PAYMENT_ROLE = f"mig_payment_{SUFFIX}"
NOTIFICATION_ROLE = f"mig_notification_{SUFFIX}"


def config_for(postgres: LocalPostgres, dbname: str, payment_role: str = PAYMENT_ROLE) -> MigrateConfig:
    """The job's configuration, as the migrate task definition would give it."""
    env = migrate_env(postgres.port, dbname)
    env["DB_SERVICE_USERS"] = f"payment={payment_role},notification={NOTIFICATION_ROLE}"
    return load_migrate(env)


@pytest.fixture(scope="module")
def database(postgres: LocalPostgres) -> Iterator[str]:
    """An empty database for this module."""
    name = create_database(postgres, "t_migrate")
    try:
        yield name
    finally:
        postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def first_run(postgres: LocalPostgres, database: str) -> dict[str, Any]:
    """The first run of the job (shared by the tests below) and the catalog right after it."""
    report = run(config_for(postgres, database))
    return {"report": report, "catalog": catalog(postgres, database)}


def catalog(postgres: LocalPostgres, dbname: str) -> dict[str, Any]:
    """Everything the job manages, as the catalog shows it (object ids included, to catch drop/re-create)."""
    roles = (PAYMENT_ROLE, NOTIFICATION_ROLE)
    queries = {
        "roles": "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,"
        f" rolpassword IS NULL FROM pg_authid WHERE rolname IN {roles} ORDER BY 1",
        "members": "SELECT r.rolname, g.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
        f" JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname IN {roles} ORDER BY 1, 2",
        "schemas": "SELECT oid, nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace"
        " WHERE nspname IN ('payment', 'notification', 'public') ORDER BY 2",
        "relations": "SELECT c.oid, n.nspname, c.relname, c.relkind, c.relacl::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('payment', 'notification') ORDER BY 2, 3",
        "triggers": "SELECT oid, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 2",
        "database": f"SELECT datacl::text FROM pg_database WHERE datname = '{dbname}'",
        "payment_migrations": "SELECT version, name, checksum, applied_at FROM payment.schema_migrations ORDER BY 1",
        "notification_migrations": "SELECT version, name, checksum, applied_at FROM notification.schema_migrations ORDER BY 1",
    }
    return {key: postgres.query(sql, dbname=dbname) for key, sql in queries.items()}


def as_role(postgres: LocalPostgres, role: str, dbname: str) -> psycopg.Connection[Any]:
    """A connection as a service role (trust auth over TCP stands in for the IAM token)."""
    return psycopg.connect(postgres.tcp_conninfo(user=role, dbname=dbname), autocommit=True)


def test_first_run_creates_roles_schemas_and_applies_migrations_in_order(
    first_run: dict[str, Any], postgres: LocalPostgres, database: str
) -> None:
    """Both roles (LOGIN, no password, in rds_iam), both schemas, both migrations recorded with their checksums."""
    report = first_run["report"]
    assert report.roles_created == [PAYMENT_ROLE, NOTIFICATION_ROLE]
    assert report.memberships_granted == [f"{PAYMENT_ROLE} in rds_iam", f"{NOTIFICATION_ROLE} in rds_iam"]
    assert report.schemas_created == ["payment", "notification"]
    assert report.migrations_applied == ["payment/0001_payments_and_ledger", "notification/0001_events"]
    assert report.pgaudit == "unavailable"  # the local server has no pgaudit; Aurora does
    cat = first_run["catalog"]
    for row in cat["roles"]:
        name, superuser, createrole, createdb, login, replication, bypassrls, no_password = row
        assert (superuser, createrole, createdb, replication, bypassrls) == (False, False, False, False, False), name
        assert login and no_password, name
    assert [tuple(r) for r in cat["members"]] == [(NOTIFICATION_ROLE, "rds_iam"), (PAYMENT_ROLE, "rds_iam")]
    sql_file = SERVICES_DIR / "payment" / "migrations" / "0001_payments_and_ledger.sql"
    assert [(v, n, c) for v, n, c, _ in cat["payment_migrations"]] == [
        (1, "payments_and_ledger", hashlib.sha256(sql_file.read_bytes()).hexdigest())
    ]
    assert [(v, n) for v, n, _, _ in cat["notification_migrations"]] == [(1, "events")]


def test_the_pgaudit_object_audit_role_exists(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """The cluster parameter group sets pgaudit.role = rds_pgaudit; the job creates that role (no login)."""
    rows = postgres.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'rds_pgaudit'", dbname=database)
    assert rows == [(False,)]


def test_second_run_changes_nothing(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """Idempotent: the report is empty and the catalog (oids, ACLs, migration rows and their times) is identical."""
    report = run(config_for(postgres, database))
    assert not report.changed
    assert report.migrations_applied == [] and report.privileges_changed == [] and report.roles_created == []
    assert catalog(postgres, database) == first_run["catalog"]


def test_each_role_reaches_only_its_own_schema(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """payment cannot read notification's schema and vice versa; neither can create objects anywhere."""
    with as_role(postgres, PAYMENT_ROLE, database) as conn:
        conn.execute("SELECT count(*) FROM payment.payments")
        conn.execute("SELECT count(*) FROM payment.ledger_entries")
        for statement in (
            "SELECT count(*) FROM notification.events",
            "CREATE TABLE public.intruder (id int)",
            "CREATE TABLE payment.intruder (id int)",
            "DELETE FROM payment.payments",
            "UPDATE payment.ledger_entries SET amount_minor = 1",
            "DELETE FROM payment.ledger_entries",
            "TRUNCATE payment.ledger_entries",
            "SELECT count(*) FROM payment.schema_migrations",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with as_role(postgres, NOTIFICATION_ROLE, database) as conn:
        conn.execute("SELECT count(*) FROM notification.events")
        for statement in (
            "SELECT count(*) FROM payment.payments",
            "SELECT count(*) FROM payment.ledger_entries",
            "CREATE TABLE public.intruder (id int)",
            "UPDATE notification.events SET data = '{}'",
            "DELETE FROM notification.events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_privilege_drift_is_reverted(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """Grants added by hand (cross-schema access, CREATE on public) are revoked by the next run."""
    postgres.execute(
        f"GRANT USAGE ON SCHEMA notification TO {PAYMENT_ROLE}; GRANT SELECT, DELETE ON notification.events TO {PAYMENT_ROLE};"
        f" GRANT DELETE ON payment.payments TO {PAYMENT_ROLE}; GRANT CREATE ON SCHEMA public TO PUBLIC;",
        dbname=database,
    )
    report = run(config_for(postgres, database))
    assert sorted(report.privileges_changed) == sorted(
        [
            f"revoke USAGE on schema notification from {PAYMENT_ROLE}",
            f"revoke all on notification.events from {PAYMENT_ROLE}",
            f"revoke DELETE on payment.payments from {PAYMENT_ROLE}",
            "revoke CREATE on schema public from PUBLIC",
        ]
    )
    with as_role(postgres, PAYMENT_ROLE, database) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM notification.events")
    assert catalog(postgres, database) == first_run["catalog"]


def test_a_privileged_existing_role_is_refused(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """A pre-existing role with SUPERUSER (or CREATEROLE...) is never used as a service role."""
    evil = f"mig_evil_{SUFFIX}"
    postgres.execute(f"CREATE ROLE {evil} LOGIN SUPERUSER CREATEROLE")
    try:
        with pytest.raises(MigrationError, match=f"role {evil} exists with SUPER, CREATEROLE; refusing it"):
            run(config_for(postgres, database, payment_role=evil))
    finally:
        postgres.execute(f"DROP ROLE {evil}")


def copy_migrations(root: Path) -> Path:
    """The services' migration directories copied under ``root`` (an alternative services root for the job)."""
    for service in ("payment", "notification"):
        shutil.copytree(SERVICES_DIR / service / "migrations", root / service / "migrations")
    return root


def test_new_migrations_apply_once_and_edited_ones_stop_the_job(
    first_run: dict[str, Any], postgres: LocalPostgres, database: str, tmp_path: Path
) -> None:
    """A new NNNN file is applied (once) after the others; editing an applied file is refused."""
    root = copy_migrations(tmp_path)
    (root / "notification" / "migrations" / "0002_delivery_attempts.sql").write_text(
        "ALTER TABLE notification.events ADD COLUMN delivery_attempts integer NOT NULL DEFAULT 0;\n"
    )
    report = run(config_for(postgres, database), root=root)
    assert report.migrations_applied == ["notification/0002_delivery_attempts"]
    assert not run(config_for(postgres, database), root=root).changed
    assert postgres.query("SELECT version FROM notification.schema_migrations ORDER BY 1", dbname=database) == [(1,), (2,)]

    edited = root / "payment" / "migrations" / "0001_payments_and_ledger.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="payment/0001_payments_and_ledger was changed after it was applied"):
        run(config_for(postgres, database), root=root)
    # The image without 0002 must not silently run against a newer database either.
    with pytest.raises(MigrationError, match=r"the database has migrations this image does not know: \[2\]"):
        run(config_for(postgres, database))
    postgres.execute(
        "ALTER TABLE notification.events DROP COLUMN delivery_attempts;"
        " DELETE FROM notification.schema_migrations WHERE version = 2",
        dbname=database,
    )


def test_badly_named_migration_is_refused(tmp_path: Path, postgres: LocalPostgres, database: str) -> None:
    """Files must be NNNN_name.sql (the order is the number)."""
    root = copy_migrations(tmp_path)
    (root / "payment" / "migrations" / "2_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"must be named NNNN_name\.sql"):
        run(config_for(postgres, database), root=root)


def test_module_entry_point_exit_status(first_run: dict[str, Any], postgres: LocalPostgres, database: str) -> None:
    """``python -m services.migrate``: 0 and JSON log lines on success; 1 and one stderr line (no traceback) on failure."""
    env = {**process_env(), **migrate_env(postgres.port, database)}
    env["DB_SERVICE_USERS"] = f"payment={PAYMENT_ROLE},notification={NOTIFICATION_ROLE}"
    ok = subprocess.run(
        [sys.executable, "-m", "services.migrate"], env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(line) for line in ok.stdout.splitlines()]
    summary = lines[-1]
    assert summary["message"] == "migrations complete" and summary["changed"] is False
    assert "trust-auth-ignores-this" not in ok.stdout + ok.stderr

    failing = {**env, "DB_NAME": "no_such_database"}
    bad = subprocess.run(
        [sys.executable, "-m", "services.migrate"], env=failing, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("migrate failed: ") and "no_such_database" in line
