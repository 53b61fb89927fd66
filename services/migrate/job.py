"""The database migration job: service roles, schemas, SQL migrations and grants, idempotently.

Run once per deployment as a one-off ECS task (``python -m services.migrate``), logged in as the RDS master user:

1. takes a session advisory lock, so two concurrent runs serialise;
2. ``CREATE EXTENSION IF NOT EXISTS pgaudit`` where the server offers it (Aurora does; otherwise logged and skipped);
3. for each ``service=role`` of ``DB_SERVICE_USERS``: a ``LOGIN`` role without a password (refusing an existing role
   with SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS), member of ``rds_iam`` so it logs in with IAM tokens
   only;
4. for each service: its schema (owned by the master user, nothing for PUBLIC), then its migrations
   ``services/<service>/migrations/NNNN_*.sql`` in order, each in its own transaction together with its row in
   ``<schema>.schema_migrations`` (version, name, SHA-256); an applied migration whose file changed stops the job;
5. privileges converge to :data:`PRIVILEGES`: each role gets USAGE on its own schema and exactly the declared table
   privileges; no role keeps any privilege on another service's schema; nobody may CREATE in ``public``;
6. verifies the result from the catalog (role attributes, schema access) and fails if anything is off.

Each step compares with the catalog first and only changes what differs, so a second run changes nothing.
Exit status 0 on success; otherwise 1 with one line on stderr saying why (2 for a configuration error).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from services.common.config import DB_SERVICES, MigrateConfig

__all__ = ["PRIVILEGES", "Migration", "MigrationError", "Report", "connect", "discover_migrations", "run"]

log = logging.getLogger("services.migrate")

SERVICES_ROOT = Path(__file__).resolve().parent.parent
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x5CA1E_0001  # pg_advisory_lock key shared by every run of this job

PRIVILEGES: Mapping[str, Mapping[str, frozenset[str]]] = {
    # Payments are updated (status), the ledger only ever appended to.
    "payment": {
        "payments": frozenset({"SELECT", "INSERT", "UPDATE"}),
        "ledger_transactions": frozenset({"SELECT", "INSERT"}),
        "ledger_entries": frozenset({"SELECT", "INSERT"}),
    },
    "notification": {
        "events": frozenset({"SELECT", "INSERT"}),
    },
}
"""Table privileges per service role, in the service's own schema (every other table: none)."""

_FORBIDDEN_ROLE_ATTRIBUTES = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")


class MigrationError(RuntimeError):
    """The job cannot (or must not) continue; the message is the one-line reason printed on failure."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of a service."""

    service: str
    version: int
    name: str
    path: Path
    sql: str
    checksum: str


@dataclass
class Report:
    """What a run did (all empty/zero on a second run)."""

    roles_created: list[str] = field(default_factory=list)
    memberships_granted: list[str] = field(default_factory=list)
    schemas_created: list[str] = field(default_factory=list)
    migrations_applied: list[str] = field(default_factory=list)
    privileges_changed: list[str] = field(default_factory=list)
    pgaudit: str = "unknown"

    @property
    def changed(self) -> bool:
        """True if the run modified the database."""
        return (
            bool(
                self.roles_created
                or self.memberships_granted
                or self.schemas_created
                or self.migrations_applied
                or self.privileges_changed
            )
            or self.pgaudit == "created"
        )


def discover_migrations(service: str, root: Path = SERVICES_ROOT) -> list[Migration]:
    """The service's migrations in version order (MigrationError on a badly named file or a duplicate version)."""
    directory = root / service / "migrations"
    migrations: list[Migration] = []
    seen: set[int] = set()
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files must be named NNNN_name.sql")
        version = int(match.group(1))
        if version in seen:
            raise MigrationError(f"{service}: two migrations with version {version:04d}")
        seen.add(version)
        text = path.read_text(encoding="utf-8")
        migrations.append(Migration(service, version, match.group(2), path, text, hashlib.sha256(text.encode()).hexdigest()))
    return sorted(migrations, key=lambda m: m.version)


def connect(config: MigrateConfig, *, attempts: int = 4) -> psycopg.Connection[Any]:
    """Connect as the master user over TLS, retrying briefly while the cluster is still coming up."""
    params: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "dbname": config.name,
        "user": config.master_username,
        "password": config.master_password,
        "sslmode": config.ssl_mode,
        "connect_timeout": 10,
        "application_name": "scalepay-migrate",
        "autocommit": True,
    }
    if config.ssl_mode != "disable":
        params["sslrootcert"] = str(config.ssl_root_cert)
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            return psycopg.connect(**params)
        except psycopg.OperationalError as exc:
            # The server answered and refused (wrong password, unknown database): that will not fix itself, fail at
            # once. Still starting up or unreachable: try again. (Connection errors carry no SQLSTATE, only text.)
            message = str(exc)
            refused = "FATAL:" in message and "the database system is" not in message
            if attempt == attempts or refused:
                raise
            log.warning("database not reachable yet; retrying", extra={"attempt": attempt, "error": type(exc).__name__})
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _one(conn: psycopg.Connection[Any], query: sql.Composed | str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


#: The role the cluster parameter group names as ``pgaudit.role`` (object audit logging); RDS does not create it.
PGAUDIT_ROLE = "rds_pgaudit"


def _ensure_pgaudit(conn: psycopg.Connection[Any], report: Report) -> None:
    if not _one(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (PGAUDIT_ROLE,)):
        # NOLOGIN: it only carries the grants pgaudit's object audit follows, nobody logs in as it.
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(PGAUDIT_ROLE)))
    if _one(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pgaudit'"):
        report.pgaudit = "present"
        return
    if not _one(conn, "SELECT 1 FROM pg_available_extensions WHERE name = 'pgaudit'"):
        report.pgaudit = "unavailable"
        log.warning("pgaudit is not available on this server; skipping (Aurora PostgreSQL provides it)")
        return
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgaudit")
        report.pgaudit = "created"
    except psycopg.Error as exc:
        # Typically "pgaudit must be loaded via shared_preload_libraries": a parameter-group problem for the
        # infrastructure, not a reason to leave the services without their schema. Logged as an error to alert on.
        report.pgaudit = "failed"
        log.error("pgaudit is available but could not be created", extra={"reason": str(exc).splitlines()[0]})


def _ensure_role(conn: psycopg.Connection[Any], role: str, report: Report) -> None:
    attributes = conn.execute(
        f"SELECT {', '.join(_FORBIDDEN_ROLE_ATTRIBUTES)}, rolcanlogin FROM pg_roles WHERE rolname = %s",
        (role,),
    ).fetchone()
    if attributes is None:
        conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(_ident(role)))
        report.roles_created.append(role)
    else:
        granted = [name for name, value in zip(_FORBIDDEN_ROLE_ATTRIBUTES, attributes, strict=False) if value]
        if granted:
            raise MigrationError(
                f"role {role} exists with {', '.join(a.removeprefix('rol').upper() for a in granted)}; refusing it"
            )
        if not attributes[-1]:
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(_ident(role)))
            report.privileges_changed.append(f"{role}: LOGIN")
    if not _one(conn, "SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'"):
        raise MigrationError("role rds_iam does not exist (RDS creates it; a local server needs it created first)")
    if not _one(conn, "SELECT pg_has_role(%s, 'rds_iam', 'MEMBER')", (role,)):
        conn.execute(sql.SQL("GRANT rds_iam TO {}").format(_ident(role)))
        report.memberships_granted.append(f"{role} in rds_iam")


def _ensure_schema(conn: psycopg.Connection[Any], schema: str, report: Report) -> None:
    if not _one(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(_ident(schema)))
        report.schemas_created.append(schema)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(_ident(schema))
    )


def _apply_migrations(conn: psycopg.Connection[Any], schema: str, migrations: Sequence[Migration], report: Report) -> None:
    applied = {
        version: (name, checksum)
        for version, name, checksum in conn.execute(
            sql.SQL("SELECT version, name, checksum FROM {}.schema_migrations").format(_ident(schema))
        ).fetchall()
    }
    for migration in migrations:
        label = f"{schema}/{migration.version:04d}_{migration.name}"
        if migration.version in applied:
            if applied[migration.version][1] != migration.checksum:
                raise MigrationError(f"{label} was changed after it was applied; add a new migration instead")
            continue
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)").format(_ident(schema)),
                (migration.version, migration.name, migration.checksum),
            )
        report.migrations_applied.append(label)
        log.info("migration applied", extra={"migration": label})
    unknown = sorted(set(applied) - {m.version for m in migrations})
    if unknown:
        raise MigrationError(f"{schema}: the database has migrations this image does not know: {unknown}")


def _table_privileges(conn: psycopg.Connection[Any], schema: str, table: str, role: str) -> set[str]:
    rows = conn.execute(
        "SELECT a.privilege_type FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " aclexplode(c.relacl) a WHERE n.nspname = %s AND c.relname = %s AND a.grantee = %s::regrole",
        (schema, table, role),
    ).fetchall()
    return {r[0] for r in rows}


def _schema_privileges(conn: psycopg.Connection[Any], schema: str, grantee: str | None) -> set[str]:
    # grantee None = PUBLIC (oid 0 in the ACL)
    rows = conn.execute(
        "SELECT a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a"
        " WHERE n.nspname = %s AND a.grantee = coalesce(%s::regrole::oid, 0)",
        (schema, grantee),
    ).fetchall()
    return {r[0] for r in rows}


def _converge_privileges(conn: psycopg.Connection[Any], service_users: Mapping[str, str], report: Report) -> None:
    for service, role in service_users.items():
        schema = service
        for other_service, other_role in service_users.items():
            current = _schema_privileges(conn, schema, other_role)
            wanted = {"USAGE"} if other_role == role else set()
            for privilege in sorted(current - wanted):
                conn.execute(
                    sql.SQL("REVOKE {} ON SCHEMA {} FROM {}").format(sql.SQL(privilege), _ident(schema), _ident(other_role))
                )
                report.privileges_changed.append(f"revoke {privilege} on schema {schema} from {other_role}")
            for privilege in sorted(wanted - current):
                conn.execute(
                    sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(sql.SQL(privilege), _ident(schema), _ident(other_role))
                )
                report.privileges_changed.append(f"grant {privilege} on schema {schema} to {other_role}")
            if other_service != service:
                # Nothing on another service's tables either (defence in depth behind the schema USAGE check).
                for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall():
                    if _table_privileges(conn, schema, table, other_role):
                        conn.execute(
                            sql.SQL("REVOKE ALL ON {}.{} FROM {}").format(_ident(schema), _ident(table), _ident(other_role))
                        )
                        report.privileges_changed.append(f"revoke all on {schema}.{table} from {other_role}")
        for privilege in sorted(_schema_privileges(conn, schema, None)):
            conn.execute(sql.SQL("REVOKE {} ON SCHEMA {} FROM PUBLIC").format(sql.SQL(privilege), _ident(schema)))
            report.privileges_changed.append(f"revoke {privilege} on schema {schema} from PUBLIC")
        declared = PRIVILEGES.get(service, {})
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()]
        for table in sorted(tables):
            current = _table_privileges(conn, schema, table, role)
            wanted = set(declared.get(table, frozenset()))
            target = sql.SQL("{}.{}").format(_ident(schema), _ident(table))
            for privilege in sorted(current - wanted):
                conn.execute(sql.SQL("REVOKE {} ON {} FROM {}").format(sql.SQL(privilege), target, _ident(role)))
                report.privileges_changed.append(f"revoke {privilege} on {schema}.{table} from {role}")
            if wanted - current:
                privileges = sql.SQL(", ").join(sql.SQL(p) for p in sorted(wanted - current))
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(privileges, target, _ident(role)))
                report.privileges_changed.append(f"grant {', '.join(sorted(wanted - current))} on {schema}.{table} to {role}")
        missing = sorted(set(declared) - set(tables))
        if missing:
            raise MigrationError(f"{schema}: PRIVILEGES names tables the migrations do not create: {missing}")
        dbname = _one(conn, "SELECT current_database()")
        if not _one(conn, "SELECT has_database_privilege(%s, current_database(), 'CONNECT')", (role,)):
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_ident(dbname), _ident(role)))
            report.privileges_changed.append(f"grant CONNECT on database {dbname} to {role}")
    # PostgreSQL < 15 lets everyone create objects in public (CVE-2018-1058 class of problems); 15+ already does not.
    if "CREATE" in _schema_privileges(conn, "public", None):
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        report.privileges_changed.append("revoke CREATE on schema public from PUBLIC")
    for role in service_users.values():
        if "CREATE" in _schema_privileges(conn, "public", role):
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(_ident(role)))
            report.privileges_changed.append(f"revoke CREATE on schema public from {role}")


def _verify(conn: psycopg.Connection[Any], service_users: Mapping[str, str]) -> None:
    for service, role in service_users.items():
        row = conn.execute(
            f"SELECT {', '.join(_FORBIDDEN_ROLE_ATTRIBUTES)} FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        if row is None or any(row):
            raise MigrationError(f"verification failed: role {role} is missing or has forbidden attributes")
        for other in service_users:
            usage = _one(conn, "SELECT has_schema_privilege(%s, %s, 'USAGE')", (role, other))
            if usage != (other == service):
                raise MigrationError(f"verification failed: role {role} USAGE on schema {other} is {usage}")
            if _one(conn, "SELECT has_schema_privilege(%s, %s, 'CREATE')", (role, other)):
                raise MigrationError(f"verification failed: role {role} can CREATE in schema {other}")
        if _one(conn, "SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)):
            raise MigrationError(f"verification failed: role {role} can CREATE in schema public")


def run(config: MigrateConfig, *, root: Path = SERVICES_ROOT) -> Report:
    """Run the whole job; :class:`MigrationError` or :class:`psycopg.Error` on failure."""
    unknown = set(config.service_users) - set(DB_SERVICES)
    if unknown:
        raise MigrationError(f"no migrations for services {sorted(unknown)}")
    plan = {service: discover_migrations(service, root) for service in config.service_users}
    report = Report()
    with connect(config) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("SET statement_timeout = '60s'")
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("SET statement_timeout = '5min'")
            _ensure_pgaudit(conn, report)
            for role in config.service_users.values():
                _ensure_role(conn, role, report)
            for service in config.service_users:
                _ensure_schema(conn, service, report)
                _apply_migrations(conn, service, plan[service], report)
            _converge_privileges(conn, config.service_users, report)
            _verify(conn, config.service_users)
        finally:
            # Closing the session releases the lock anyway; unlocking explicitly must not mask the original error.
            try:
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            except psycopg.Error:
                pass
    return report
