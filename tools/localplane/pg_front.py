"""Stand-in for the Aurora PostgreSQL cluster endpoint: TLS and RDS-style authentication in front of LocalPostgres.

An asyncio TCP server on 127.0.0.1 speaks the PostgreSQL wire protocol up to authentication, then pipes bytes to the
backend over its unix socket:

* ``SSLRequest`` is answered ``S`` and TLS is negotiated with a certificate from the local CA (minimum version from the
  config, like ``ssl_min_protocol_version``); ``GSSENCRequest`` is answered ``N``; a ``CancelRequest`` is forwarded to
  the backend (the BackendKeyData clients hold is the backend's own, relayed unchanged);
* with ``force_ssl`` (the cluster parameter ``rds.force_ssl=1``) a startup without TLS gets RDS's pg_hba FATAL
  (SQLSTATE 28000) and is closed;
* the client is asked for a cleartext password (what RDS does for IAM tokens; only ever sent over TLS when
  ``force_ssl``): members of the ``rds_iam`` role must present a valid RDS IAM token for themselves and this endpoint,
  whose role is allowed ``rds-db:connect`` on ``dbuser:<cluster resource id>/<user>``; the master user must present
  the *current* master secret (read per login, so a rotation applies at once); everyone else is refused (28P01);
* the backend connection is then opened with the client's own StartupMessage (the backend trusts its socket) and the
  backend's AuthenticationOk/ParameterStatus/BackendKeyData/ReadyForQuery flow to the client unchanged.

Differences from RDS/Aurora: passwords of ordinary (non-IAM, non-master) database users are not supported; no direct
TLS negotiation (PostgreSQL 17 ``sslnegotiation=direct``); no reader endpoint; the backend's local superuser is never
reachable through the front; a login while the backend is down gets FATAL 57P03 rather than waiting for a failover.
The front runs in-process: a psycopg client in the *same* process must cancel with ``conn.cancel_safe()``, because the
legacy ``conn.cancel()`` holds the GIL while it waits for the front's reply (services run in their own processes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from tools.localplane._aio import close_stream
from tools.localplane.auth_front import AuthFront
from tools.localplane.iam_auth import TokenError, token_endpoint, verify_rds_token
from tools.localplane.postgres import LocalPostgres

__all__ = ["PgFront", "PgFrontConfig", "error_response"]

log = logging.getLogger(__name__)

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_MAJOR_3 = 3
MAX_STARTUP_LENGTH = 10_000
RDS_IAM_ROLE = "rds_iam"

_MEMBERSHIP_SQL = b"""
WITH RECURSIVE memberships(roleid) AS (
    SELECT m.roleid FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
    WHERE u.rolname = %s AND (m.inherit_option OR m.set_option)
    UNION
    SELECT m.roleid FROM pg_auth_members m JOIN memberships ms ON m.member = ms.roleid
    WHERE m.inherit_option OR m.set_option
)
SELECT EXISTS (SELECT 1 FROM memberships ms JOIN pg_roles r ON r.oid = ms.roleid WHERE r.rolname = 'rds_iam')
"""
# Explicit membership walk rather than pg_has_role(): pg_has_role() is true for superusers on every role, which would
# wrongly turn a superuser master user into an IAM-only user. A grant WITH ADMIN OPTION, INHERIT FALSE, SET FALSE
# only lets its holder administer rds_iam (how the master user may GRANT rds_iam, as on RDS): it is no membership.


@dataclass
class PgFrontConfig:
    """How the cluster endpoint is declared in the stack (host names, port, parameters, master user, IAM scope)."""

    host_names: list[str]
    port: int | None
    force_ssl: bool
    min_tls_version: str
    master_user: str
    master_password: Callable[[], str]
    region: str
    account_id: str
    cluster_resource_id: str
    # The port clients were told (the stack's 5432) when it differs from the local listener; tokens may name either.
    advertised_port: int | None = None
    # Like PostgreSQL's authentication_timeout: a client must finish logging in within this many seconds.
    auth_timeout: float = 60.0
    max_password_length: int = 16_384
    extra_token_hosts: list[str] = field(default_factory=list)
    # The cluster's IAMDatabaseAuthenticationEnabled: without it RDS refuses every rds_iam member.
    iam_enabled: bool = True


class _BackendDownError(Exception):
    """The backend is not accepting connections (stopped or restarting)."""


def error_response(code: str, message: str, severity: str = "FATAL") -> bytes:
    """An ErrorResponse message ('E') with severity, SQLSTATE and message fields."""
    body = b"".join(
        tag + value.encode() + b"\0" for tag, value in ((b"S", severity), (b"V", severity), (b"C", code), (b"M", message))
    )
    body += b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def _auth_request(kind: int) -> bytes:
    return b"R" + struct.pack("!II", 8, kind)


def _parse_startup_params(body: bytes) -> dict[str, str]:
    """Key/value pairs of a StartupMessage body (after the protocol version), NUL-separated, ending with a NUL."""
    parts = body.split(b"\0")
    if len(parts) < 2 or parts[-1] != b"" or parts[-2] != b"":
        raise ValueError("malformed startup packet")
    items = parts[:-2]
    if len(items) % 2:
        raise ValueError("malformed startup packet")
    return {items[i].decode(): items[i + 1].decode() for i in range(0, len(items), 2)}


class PgFront(AuthFront[PgFrontConfig, LocalPostgres]):
    """The Aurora endpoint stand-in for one cluster; runs on the supervisor's event loop."""

    _default_name = "pg-front"
    _log = log

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def _prepare_backend(self) -> None:
        """Create the ``rds_iam`` role if the backend is running (RDS provides it)."""
        if self.backend.is_running():
            self.ensure_rds_iam_role()

    def ensure_rds_iam_role(self) -> None:
        """Create the ``rds_iam`` role in the backend if it is missing (RDS provides it)."""
        self.backend.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN "
            "CREATE ROLE rds_iam NOLOGIN; END IF; END $$"
        )

    # -- connections -------------------------------------------------------------------------------------------------

    async def _read_startup(self, reader: asyncio.StreamReader) -> bytes:
        (length,) = struct.unpack("!I", await reader.readexactly(4))
        if not 8 <= length <= MAX_STARTUP_LENGTH:
            raise ValueError(f"invalid startup packet length {length}")
        return await reader.readexactly(length - 4)

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Negotiate TLS, authenticate, open the backend connection; None when the client was turned away."""
        tls = False
        while True:
            body = await self._read_startup(reader)
            (code,) = struct.unpack("!I", body[:4])
            if code == SSL_REQUEST and not tls:
                # Bytes already buffered after the SSLRequest would be plaintext injected ahead of the handshake
                # (CVE-2021-23214): refuse rather than treat them as part of the encrypted stream.
                if getattr(reader, "_buffer", b""):
                    raise ValueError("data received before the TLS handshake")
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._ssl)
                tls = True
                continue
            if code == GSSENC_REQUEST and not tls:
                writer.write(b"N")
                await writer.drain()
                continue
            if code == CANCEL_REQUEST:
                await self._forward_cancel(body)
                return None
            if code >> 16 != PROTOCOL_MAJOR_3:
                writer.write(error_response("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}"))
                await writer.drain()
                return None
            break
        startup = struct.pack("!I", len(body) + 4) + body
        params = _parse_startup_params(body[4:])
        user = params.get("user", "")
        database = params.get("database") or user
        if not user:
            writer.write(error_response("28000", "no PostgreSQL user name specified in startup packet"))
            await writer.drain()
            return None
        if self.config.force_ssl and not tls:
            peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
            writer.write(
                error_response(
                    "28000", f'no pg_hba.conf entry for host "{peer[0]}", user "{user}", database "{database}", no encryption'
                )
            )
            await writer.drain()
            return None

        writer.write(_auth_request(3))  # AuthenticationCleartextPassword
        await writer.drain()
        kind = await reader.readexactly(1)
        (length,) = struct.unpack("!I", await reader.readexactly(4))
        if kind != b"p" or not 5 <= length <= self.config.max_password_length + 5:
            raise ValueError("expected a password message")
        password = (await reader.readexactly(length - 4)).rstrip(b"\0").decode(errors="replace")

        try:
            failure = await asyncio.to_thread(self._authenticate, user, password)
            if failure is None:
                backend_reader, backend_writer = await asyncio.open_unix_connection(str(self.backend.socket_path))
                backend_writer.write(startup)
                await backend_writer.drain()
                return backend_reader, backend_writer
        except (_BackendDownError, OSError) as exc:
            log.warning("%s: backend unavailable for login of %s: %s", self.name, user, exc)
            failure = ("57P03", "the database system is starting up")
        writer.write(error_response(*failure))
        await writer.drain()
        return None

    def _authenticate(self, user: str, password: str) -> tuple[str, str] | None:
        """Decide a login (blocking: runs in a worker thread); None if allowed, else (SQLSTATE, message)."""
        if not self.backend.is_running():
            raise _BackendDownError("backend stopped")
        try:
            with psycopg.connect(self.backend.conninfo(), autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(_MEMBERSHIP_SQL, (user,)).fetchone()
        except psycopg.OperationalError as exc:
            raise _BackendDownError(str(exc)) from exc
        if row is not None and row[0]:
            if not self.config.iam_enabled:
                log.warning("%s: %s is an IAM user, but IAM database authentication is off on the cluster", self.name, user)
                return "28P01", f'PAM authentication failed for user "{user}"'
            try:
                self._verify_iam(user, password)
            except TokenError as exc:
                log.warning("%s: IAM authentication failed for %s: %s", self.name, user, exc)
                return "28P01", f'PAM authentication failed for user "{user}"'
            return None
        if user == self.config.master_user:
            expected = self.config.master_password()
            if hmac.compare_digest(password.encode(), expected.encode()):
                return None
            log.warning("%s: wrong master password", self.name)
        else:
            log.warning("%s: %s is neither the master user nor a member of rds_iam", self.name, user)
        return "28P01", f'password authentication failed for user "{user}"'

    def _verify_iam(self, user: str, token: str) -> None:
        host, port = token_endpoint(token)
        hosts = {h.lower() for h in [*self.config.host_names, *self.config.extra_token_hosts, "127.0.0.1"]}
        ports = {self.port} | ({self.config.advertised_port} if self.config.advertised_port else set())
        if host.lower() not in hosts or port not in ports:
            raise TokenError(f"token is for {host}:{port}, which is not this endpoint")
        assert port is not None
        principal = verify_rds_token(
            token,
            expected_host=host,
            expected_port=port,
            db_user=user,
            region=self.config.region,
            registry=self.registry,
            now=dt.datetime.now(dt.UTC),
        )
        if not self.policy.allows_rds_connect(
            principal,
            region=self.config.region,
            account_id=self.config.account_id,
            cluster_resource_id=self.config.cluster_resource_id,
            db_user=user,
        ):
            raise TokenError(f"{principal.role_arn} is not allowed rds-db:connect as {user}")

    async def _forward_cancel(self, body: bytes) -> None:
        """Pass a CancelRequest to the backend (it carries the backend's own pid and secret key)."""
        try:
            _, backend_writer = await asyncio.open_unix_connection(str(self.backend.socket_path))
        except OSError:
            return
        try:
            backend_writer.write(struct.pack("!I", len(body) + 4) + body)
            await backend_writer.drain()
        finally:
            await close_stream(backend_writer)
