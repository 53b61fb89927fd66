"""PgFront: the Aurora endpoint stand-in, exercised with psycopg exactly as the services connect."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lp_support import ACCOUNT_ID, CLUSTER_RESOURCE_ID, DB_HOST, REGION, AwsFixture, front_options, short_dir
from psycopg.conninfo import make_conninfo

from tools.localplane.iam_auth import presign_get
from tools.localplane.pg_front import PgFront, PgFrontConfig
from tools.localplane.pki import LocalCA, client_ssl_context
from tools.localplane.postgres import LocalPostgres
from tools.localplane.supervisor import Supervisor

MASTER = "payments_admin"


@dataclass
class PgStack:
    backend: LocalPostgres
    front: PgFront
    ca: LocalCA
    secret: dict[str, str]  # the "Secrets Manager" value the front reads per login

    def conninfo(self, user: str, password: str, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "host": DB_HOST,  # verified against the certificate and sent as SNI
            "hostaddr": "127.0.0.1",  # ...while actually connecting to the local front
            "port": self.front.port,
            "user": user,
            "password": password,
            "dbname": "payments",
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca.ca_path),
            "connect_timeout": 5,
        }
        params.update(extra)
        return params


@pytest.fixture(scope="module")
def pg_stack(aws: AwsFixture, local_ca: LocalCA) -> Iterator[PgStack]:
    secret = {"password": "initial-master-secret"}
    with short_dir() as base, Supervisor(name="pg-front-test") as supervisor:
        backend = LocalPostgres(base / "pg", supervisor=supervisor)
        backend.start()
        config = PgFrontConfig(
            host_names=[DB_HOST],
            port=None,
            force_ssl=True,
            min_tls_version="TLSv1.2",
            master_user=MASTER,
            master_password=lambda: secret["password"],
            region=REGION,
            account_id=ACCOUNT_ID,
            cluster_resource_id=CLUSTER_RESOURCE_ID,
            advertised_port=5432,
        )
        front = PgFront(config, backend, **front_options(aws, local_ca, DB_HOST, supervisor))
        front.start()  # creates rds_iam
        backend.execute(f"CREATE ROLE {MASTER} LOGIN CREATEDB CREATEROLE")
        backend.execute(f"CREATE DATABASE payments OWNER {MASTER}")
        backend.execute("CREATE ROLE app_user LOGIN; GRANT rds_iam TO app_user; GRANT ALL ON DATABASE payments TO app_user")
        backend.execute("CREATE ROLE reporting LOGIN; GRANT rds_iam TO reporting")
        backend.execute("CREATE ROLE legacy LOGIN PASSWORD 'legacy'")
        yield PgStack(backend, front, local_ca, secret)


def _token(
    aws: AwsFixture, role_arn: str, user: str, host: str = DB_HOST, port: int | None = None, front: PgFront | None = None
) -> str:
    creds = aws.assume(role_arn)
    return aws.rds_client(creds).generate_db_auth_token(host, port or (front.port if front else 5432), user, REGION)


def _tls_probe(port: int, ca: LocalCA, max_version: ssl.TLSVersion | None = None) -> str | None:
    """SSLRequest then a TLS handshake with Python's ssl; returns the negotiated protocol version."""
    ctx = client_ssl_context(ca.ca_path)
    if max_version is not None:
        ctx.maximum_version = max_version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(struct.pack("!II", 8, 80877103))
        assert raw.recv(1) == b"S"
        with ctx.wrap_socket(raw, server_hostname=DB_HOST) as tls:
            return tls.version()


def test_front_listens_on_loopback_only(pg_stack: PgStack) -> None:
    assert pg_stack.front._server is not None
    addresses = {sock.getsockname()[0] for sock in pg_stack.front._server.sockets}
    assert addresses == {"127.0.0.1"}
    assert pg_stack.backend.query("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'rds_iam'") == [("rds_iam", False)]


def test_gssenc_declined_and_plaintext_injection_refused(pg_stack: PgStack) -> None:
    with socket.create_connection(("127.0.0.1", pg_stack.front.port), timeout=5) as raw:
        raw.sendall(struct.pack("!II", 8, 80877104))  # GSSENCRequest
        assert raw.recv(1) == b"N"
        raw.sendall(struct.pack("!II", 8, 80877103))  # then SSLRequest, as libpq does
        assert raw.recv(1) == b"S"
    with socket.create_connection(("127.0.0.1", pg_stack.front.port), timeout=5) as raw:
        # Bytes smuggled after the SSLRequest, ahead of the handshake (CVE-2021-23214 class): connection dropped.
        raw.sendall(struct.pack("!II", 8, 80877103) + b"Q\x00\x00\x00\x0dSELECT 1\x00")
        assert raw.recv(1) == b""


def test_plaintext_refused_when_force_ssl(pg_stack: PgStack) -> None:
    with pytest.raises(
        psycopg.OperationalError,
        match=r'no pg_hba.conf entry for host "127.0.0.1", user "payments_admin", database "payments", no encryption',
    ):
        psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"], sslmode="disable"))


def test_master_password_over_verified_tls_and_rotation(pg_stack: PgStack) -> None:
    with psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"])) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (MASTER, "payments")
        assert conn.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "payments_admin"'):
        psycopg.connect(**pg_stack.conninfo(MASTER, "wrong"))
    old = pg_stack.secret["password"]
    pg_stack.secret["password"] = "rotated-master-secret"
    try:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**pg_stack.conninfo(MASTER, old))
        with psycopg.connect(**pg_stack.conninfo(MASTER, "rotated-master-secret")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pg_stack.secret["password"] = old


def test_the_master_user_administers_rds_iam_without_becoming_an_iam_user(pg_stack: PgStack) -> None:
    # How the local platform sets up the master user, as RDS does: it may GRANT rds_iam (the migrate job does), but an
    # admin-only grant (INHERIT FALSE, SET FALSE) is no membership, so the master still logs in with its password.
    pg_stack.backend.execute(f"GRANT rds_iam TO {MASTER} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE")
    try:
        with psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"]), autocommit=True) as conn:
            conn.execute("CREATE ROLE granted_by_master LOGIN")
            conn.execute("GRANT rds_iam TO granted_by_master")
        with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "granted_by_master"'):
            psycopg.connect(**pg_stack.conninfo("granted_by_master", "not-a-token"))
    finally:
        pg_stack.backend.execute(f"DROP ROLE IF EXISTS granted_by_master; REVOKE rds_iam FROM {MASTER}")


def test_iam_users_are_refused_when_the_cluster_has_iam_auth_off(pg_stack: PgStack, aws: AwsFixture) -> None:
    token = _token(aws, aws.allowed_role_arn, "app_user", front=pg_stack.front)
    pg_stack.front.config.iam_enabled = False
    try:
        with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "app_user"'):
            psycopg.connect(**pg_stack.conninfo("app_user", token))
    finally:
        pg_stack.front.config.iam_enabled = True
    with psycopg.connect(**pg_stack.conninfo("app_user", token)) as conn:  # the same token, IAM auth on again
        assert conn.execute("SELECT current_user").fetchone() == ("app_user",)


def test_certificate_checks(pg_stack: PgStack, tmp_path: Path) -> None:
    other_ca = LocalCA.create(tmp_path / "other")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"], sslrootcert=str(other_ca.ca_path)))
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"], host="evil.example.com"))
    # Connecting by IP works too: the certificate carries 127.0.0.1 as an IP SAN.
    with psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"], host="127.0.0.1")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_iam_token_for_allowed_role(pg_stack: PgStack, aws: AwsFixture) -> None:
    for host, port in ((DB_HOST, pg_stack.front.port), (DB_HOST, 5432), ("127.0.0.1", pg_stack.front.port)):
        token = _token(aws, aws.allowed_role_arn, "app_user", host, port)
        with psycopg.connect(**pg_stack.conninfo("app_user", token)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("app_user",)
            assert conn.pgconn.ssl_in_use


def test_iam_user_cannot_use_a_password(pg_stack: PgStack) -> None:
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "app_user"'):
        psycopg.connect(**pg_stack.conninfo("app_user", pg_stack.secret["password"]))


def test_iam_token_for_role_without_policy_fails(pg_stack: PgStack, aws: AwsFixture) -> None:
    token = _token(aws, aws.denied_role_arn, "reporting", front=pg_stack.front)
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "reporting"'):
        psycopg.connect(**pg_stack.conninfo("reporting", token))
    # The allowed role is scoped to app_user: its token for another IAM user is refused too.
    token = _token(aws, aws.allowed_role_arn, "reporting", front=pg_stack.front)
    with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "reporting"'):
        psycopg.connect(**pg_stack.conninfo("reporting", token))


def test_expired_tampered_wrong_user_and_wrong_endpoint_tokens_fail(pg_stack: PgStack, aws: AwsFixture) -> None:
    creds = aws.assume(aws.allowed_role_arn)
    port = pg_stack.front.port
    expired = presign_get(
        creds,
        host=DB_HOST,
        port=port,
        params={"Action": "connect", "DBUser": "app_user"},
        service="rds-db",
        region=REGION,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16),
    )
    good = aws.rds_client(creds).generate_db_auth_token(DB_HOST, port, "app_user", REGION)
    tampered = good[:-2] + ("00" if not good.endswith("00") else "11")
    wrong_user = aws.rds_client(creds).generate_db_auth_token(DB_HOST, port, "admin", REGION)
    wrong_host = aws.rds_client(creds).generate_db_auth_token("other.cluster.rds.amazonaws.com", port, "app_user", REGION)
    wrong_port = aws.rds_client(creds).generate_db_auth_token(DB_HOST, port + 1, "app_user", REGION)
    for token in (expired, tampered, wrong_user, wrong_host, wrong_port, "not-a-token"):
        with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "app_user"'):
            psycopg.connect(**pg_stack.conninfo("app_user", token))
    with psycopg.connect(**pg_stack.conninfo("app_user", good)) as conn:  # the untampered one still works
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_other_users_and_the_local_superuser_are_refused(pg_stack: PgStack) -> None:
    for user, password in (("legacy", "legacy"), ("postgres", "postgres"), ("nobody_at_all", "x")):
        with pytest.raises(psycopg.OperationalError, match=f'password authentication failed for user "{user}"'):
            psycopg.connect(**pg_stack.conninfo(user, password))


def test_min_tls_version_enforced(pg_stack: PgStack, aws: AwsFixture, local_ca: LocalCA) -> None:
    cert, key = local_ca.issue_server_cert([DB_HOST], ["127.0.0.1"])
    config = PgFrontConfig(**{**pg_stack.front.config.__dict__, "min_tls_version": "TLSv1.3", "port": None})
    front = PgFront(
        config, pg_stack.backend, cert_path=cert, key_path=key, registry=aws.registry,
        policy=pg_stack.front.policy, supervisor=pg_stack.front.supervisor, name="pg-front-tls13",
    )  # fmt: skip
    front.start()
    try:
        common = {"port": front.port, "dbname": "payments"}
        with pytest.raises(psycopg.OperationalError, match=r"(?i)protocol version|handshake|ssl"):
            psycopg.connect(
                **pg_stack.conninfo(MASTER, pg_stack.secret["password"], ssl_max_protocol_version="TLSv1.2", **common)
            )
        with psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"], **common)) as conn:
            assert conn.pgconn.ssl_in_use
        assert _tls_probe(front.port, local_ca) == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            _tls_probe(front.port, local_ca, ssl.TLSVersion.TLSv1_2)
        # The default front (TLS 1.2 minimum) accepts a TLS 1.2-only client.
        assert _tls_probe(pg_stack.front.port, local_ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    finally:
        front.stop()


_LEGACY_CANCEL_CLIENT = """
import sys, threading, time, psycopg
conn = psycopg.connect(sys.argv[1])
threading.Timer(0.3, conn.cancel).start()
started = time.monotonic()
try:
    conn.execute("SELECT pg_sleep(20)")
except psycopg.errors.QueryCanceled:
    print("canceled after %.1fs" % (time.monotonic() - started))
"""


def test_plaintext_allowed_without_force_ssl(pg_stack: PgStack, local_ca: LocalCA) -> None:
    cert, key = local_ca.issue_server_cert([DB_HOST], ["127.0.0.1"])
    config = PgFrontConfig(**{**pg_stack.front.config.__dict__, "force_ssl": False, "port": None})
    front = PgFront(
        config, pg_stack.backend, cert_path=cert, key_path=key, registry=pg_stack.front.registry,
        policy=pg_stack.front.policy, supervisor=pg_stack.front.supervisor, name="pg-front-no-force-ssl",
    )  # fmt: skip
    front.start()
    try:
        params = pg_stack.conninfo(MASTER, pg_stack.secret["password"], port=front.port)
        with psycopg.connect(**{**params, "sslmode": "disable"}) as conn:
            assert not conn.pgconn.ssl_in_use
        with psycopg.connect(**params) as conn:  # TLS still offered (rds.force_ssl=0 allows both)
            assert conn.pgconn.ssl_in_use
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**{**params, "sslmode": "disable", "password": "wrong"})
    finally:
        front.stop()


def test_cancel_request_is_forwarded(pg_stack: PgStack) -> None:
    params = pg_stack.conninfo(MASTER, pg_stack.secret["password"])
    with psycopg.connect(**params) as conn:
        # libpq 17's cancel connection, negotiated like the session (TLS here).
        timer = threading.Timer(0.3, conn.cancel_safe)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):  # pg_sleep(20) cut short: the cancel reached the server
            conn.execute("SELECT pg_sleep(20)")
        timer.join()
    # The legacy PQcancel (plaintext CancelRequest) holds the GIL while it waits for the server, which would deadlock
    # against this process's in-process front: run that client in a subprocess, as services are.
    result = subprocess.run(
        [sys.executable, "-c", _LEGACY_CANCEL_CLIENT, make_conninfo(**params)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("canceled after 0.")


def test_backend_restart(pg_stack: PgStack, aws: AwsFixture) -> None:
    conn = psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"]), autocommit=True)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        pg_stack.backend.stop()
        # The existing session is closed with the backend...
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        # ...and a login while it is down gets "starting up", not a hang or a crash of the front.
        with pytest.raises(psycopg.OperationalError, match="the database system is starting up"):
            psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"]))
        pg_stack.backend.start()
        with psycopg.connect(**pg_stack.conninfo(MASTER, pg_stack.secret["password"])) as again:
            assert again.execute("SELECT 1").fetchone() == (1,)
        token = _token(aws, aws.allowed_role_arn, "app_user", front=pg_stack.front)
        with psycopg.connect(**pg_stack.conninfo("app_user", token)) as again:
            assert again.execute("SELECT current_user").fetchone() == ("app_user",)
    finally:
        conn.close()
        if not pg_stack.backend.is_running():
            pg_stack.backend.start()
