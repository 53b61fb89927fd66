"""Stand-in for the ElastiCache for Redis OSS 7 primary endpoint: TLS and IAM authentication in front of LocalRedis.

ElastiCache in-transit encryption is TLS from the first byte, and IAM-enabled users authenticate with a SigV4 token as
their password. This asyncio server on 127.0.0.1 terminates TLS (the local Valkey has none) and:

* accepts, before authentication, only ``AUTH [user] <token>``, ``HELLO <proto> AUTH <user> <token> [SETNAME name]``
  (RESP arrays or inline commands) and ``QUIT``; anything else gets ``-NOAUTH Authentication required.``;
* checks the token (:func:`verify_elasticache_token` for the replication group and the user's id) and that the signing
  role is allowed ``elasticache:Connect`` on both the replication group and the user ARN; the user must be one of the
  configured ElastiCache users with authentication type ``iam``; failures get
  ``-WRONGPASS invalid username-password pair or user is disabled.``;
* mirrors every IAM user into Valkey with a random local password (``ACL SETUSER ... <access string>``), so Valkey's
  own ACLs enforce the access string (``off`` users cannot log in, commands/keys outside it get ``NOPERM``), then
  authenticates the backend connection as that user (``HELLO`` is forwarded with the local password and its reply
  relayed), answers ``+OK`` to ``AUTH`` and pipes bytes both ways.

Differences from ElastiCache: password (non-IAM) users are not supported; a re-``AUTH`` on an established connection
reaches Valkey with the IAM token as password and fails (reconnect instead; ElastiCache would accept it, and would also
disconnect IAM connections after 12 hours, which this stand-in does not); no cluster mode, replicas or reader endpoint;
a login while the backend is down gets ``-LOADING`` and the connection is closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from tools.localplane.auth_front import AuthFront
from tools.localplane.iam_auth import TokenError, verify_elasticache_token
from tools.localplane.redis import LocalRedis

__all__ = ["RedisFront", "RedisFrontConfig", "RedisUser", "encode_command", "read_resp"]

log = logging.getLogger(__name__)

NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
LOADING = b"-LOADING Redis is loading the dataset in memory\r\n"
HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> "
    b"<pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
)
# Before authentication nothing legitimate is large: an IAM token is ~1-2 KB.
MAX_PREAUTH_BULK = 64 * 1024
MAX_PREAUTH_ARGS = 16
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class RedisUser:
    """An ElastiCache user as the emulator holds it."""

    user_id: str
    user_name: str
    access_string: str
    auth_type: str  # "iam", "password" or "no-password" (ElastiCache's Authentication.Type, lower-cased)


@dataclass
class RedisFrontConfig:
    """The replication group's endpoint as declared in the stack."""

    replication_group_id: str
    port: int | None
    region: str
    account_id: str
    users: list[RedisUser]
    min_tls_version: str = "TLSv1.2"
    auth_timeout: float = 30.0


class RespError(ValueError):
    """Malformed or oversized RESP input."""


async def read_resp(
    reader: asyncio.StreamReader,
    *,
    max_bulk: int = 512 * 1024 * 1024,
    max_elements: int = 2**31,
    inline: bool = False,
) -> tuple[bytes, Any]:
    """Read one RESP2/RESP3 value; returns (its raw bytes, parsed value). Errors parse to ``Exception`` instances.

    ``max_bulk``/``max_elements`` bound what an unauthenticated client can make us buffer. With ``inline=True`` a line
    not starting with a RESP type byte is an inline command (split on whitespace).
    """
    line = await reader.readuntil(b"\r\n")
    if len(line) > MAX_LINE:
        raise RespError("line too long")
    kind, payload = line[:1], line[1:-2]
    if kind in (b"+", b":", b",", b"#", b"(", b"_"):
        return line, payload
    if kind == b"-":
        return line, Exception(payload.decode(errors="replace"))
    if kind in (b"$", b"=", b"!"):
        size = int(payload)
        if size < 0:
            return line, None
        if size > max_bulk:
            raise RespError("bulk string too long")
        data = await reader.readexactly(size + 2)
        return line + data, data[:-2]
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(payload)
        if count < 0:
            return line, None
        if kind in (b"%", b"|"):
            count *= 2
        if count > max_elements:
            raise RespError("too many elements")
        raw, items = [line], []
        for _ in range(count):
            item_raw, item = await read_resp(reader, max_bulk=max_bulk, max_elements=max_elements)
            raw.append(item_raw)
            items.append(item)
        return b"".join(raw), items
    if inline:
        return line, line.split()
    raise RespError(f"unexpected RESP type {kind!r}")


def encode_command(*args: str | bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


@dataclass
class _Login:
    """An authentication attempt parsed from AUTH or HELLO."""

    user: str
    token: str
    hello: list[bytes] | None  # the HELLO arguments other than AUTH (protocol version, SETNAME name)


def _parse_login(args: list[bytes]) -> _Login | bytes:
    """A login from an AUTH/HELLO command, or the error reply to send."""
    name = args[0].upper()
    if name == b"AUTH":
        if len(args) == 2:
            return _Login("default", args[1].decode(errors="replace"), None)
        if len(args) == 3:
            return _Login(args[1].decode(errors="replace"), args[2].decode(errors="replace"), None)
        return b"-ERR wrong number of arguments for 'auth' command\r\n"
    # HELLO [protover [AUTH username password] [SETNAME clientname]]
    if len(args) < 2:
        return HELLO_NOAUTH
    if args[1] not in (b"2", b"3"):
        return b"-NOPROTO unsupported protocol version\r\n"
    hello: list[bytes] = [args[1]]
    login: tuple[str, str] | None = None
    i = 2
    while i < len(args):
        option = args[i].upper()
        if option == b"AUTH" and i + 2 < len(args):
            login = (args[i + 1].decode(errors="replace"), args[i + 2].decode(errors="replace"))
            i += 3
        elif option == b"SETNAME" and i + 1 < len(args):
            hello += [b"SETNAME", args[i + 1]]
            i += 2
        else:
            return b"-ERR Syntax error in HELLO option '" + args[i] + b"'\r\n"
    if login is None:
        return HELLO_NOAUTH
    return _Login(login[0], login[1], hello)


class RedisFront(AuthFront[RedisFrontConfig, LocalRedis]):
    """The ElastiCache primary endpoint stand-in for one replication group; runs on the supervisor's event loop."""

    _default_name = "redis-front"
    _tls_on_connect = True  # ElastiCache in-transit encryption: TLS from the first byte
    # RESP lines are read with readuntil(), which raises LimitOverrunError on an over-long line.
    _connection_ended = (*AuthFront._connection_ended, asyncio.LimitOverrunError)
    _log = log

    # Derived from the config once, on first use (start() at the latest).
    @functools.cached_property
    def _users(self) -> dict[str, RedisUser]:
        return {u.user_name: u for u in self.config.users}

    @functools.cached_property
    def _local_passwords(self) -> dict[str, str]:
        # Random per-front passwords for the mirrored users: only the front ever authenticates as them.
        return {u.user_name: secrets.token_urlsafe(32) for u in self._mirrored_users()}

    def _mirrored_users(self) -> list[RedisUser]:
        # Only IAM users can log in through the front; 'default' stays the admin (ElastiCache's default user is
        # managed separately, and the backend's default user carries the admin password).
        return [u for u in self.config.users if u.auth_type.lower() == "iam" and u.user_name != "default"]

    def mirror_users(self) -> None:
        """Create/refresh every IAM user in the backend with its access string and local password (blocking)."""
        for user in self._mirrored_users():
            self.backend.set_user(user.user_name, user.access_string, self._local_passwords[user.user_name])

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def _prepare_backend(self) -> None:
        """Mirror the users into the backend before the first login."""
        self.mirror_users()

    # -- connections -------------------------------------------------------------------------------------------------

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Answer commands until a successful AUTH/HELLO AUTH; returns the authenticated backend connection."""
        while True:
            _, parsed = await read_resp(reader, max_bulk=MAX_PREAUTH_BULK, max_elements=MAX_PREAUTH_ARGS, inline=True)
            args = parsed if isinstance(parsed, list) else []
            if not args or not all(isinstance(a, bytes) for a in args):
                if not args:
                    continue  # an empty inline line is ignored, as by Redis
                raise RespError("commands must be arrays of bulk strings")
            command = args[0].upper()
            if command == b"QUIT":
                writer.write(b"+OK\r\n")
                await writer.drain()
                return None
            if command not in (b"AUTH", b"HELLO"):
                writer.write(NOAUTH)
                await writer.drain()
                continue
            login = _parse_login(args)
            if isinstance(login, bytes):
                writer.write(login)
                await writer.drain()
                continue
            if not await asyncio.to_thread(self._authorised, login.user, login.token):
                writer.write(WRONGPASS)
                await writer.drain()
                continue
            try:
                backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", self.backend.port)
            except OSError as exc:
                log.warning("%s: backend unavailable for login of %s: %s", self.name, login.user, exc)
                writer.write(LOADING)
                await writer.drain()
                return None
            try:
                reply = await self._backend_auth(backend_reader, backend_writer, login)
            except (OSError, asyncio.IncompleteReadError) as exc:
                log.warning("%s: backend dropped the login of %s: %s", self.name, login.user, exc)
                backend_writer.close()
                writer.write(LOADING)
                await writer.drain()
                return None
            if reply.startswith(b"-"):
                # Valkey refused (e.g. the access string has 'off'): the client stays unauthenticated.
                backend_writer.close()
                writer.write(reply)
                await writer.drain()
                continue
            writer.write(b"+OK\r\n" if login.hello is None else reply)
            await writer.drain()
            return backend_reader, backend_writer

    async def _backend_auth(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, login: _Login) -> bytes:
        """Authenticate the backend connection as the user; re-mirror users once if the backend forgot them."""
        for attempt in range(2):
            password = self._local_passwords[login.user]
            if login.hello is None:
                writer.write(encode_command("AUTH", login.user, password))
            else:
                writer.write(encode_command("HELLO", login.hello[0], "AUTH", login.user, password, *login.hello[1:]))
            await writer.drain()
            raw, _ = await read_resp(reader)
            if not raw.startswith(b"-WRONGPASS") or attempt:
                return raw
            # A backend restarted behind our back comes up without the mirrored users.
            await asyncio.to_thread(self.mirror_users)
        raise AssertionError("unreachable")

    def _authorised(self, user_name: str, token: str) -> bool:
        """Token valid for this user and replication group, user IAM-enabled, role allowed to connect (blocking)."""
        user = self._users.get(user_name)
        if user is None or user.auth_type.lower() != "iam" or user_name not in self._local_passwords:
            log.warning("%s: %s is not an IAM-enabled user of %s", self.name, user_name, self.config.replication_group_id)
            return False
        try:
            principal = verify_elasticache_token(
                token,
                cache_name=self.config.replication_group_id,
                user_id=user.user_id,
                region=self.config.region,
                registry=self.registry,
                now=dt.datetime.now(dt.UTC),
            )
        except TokenError as exc:
            log.warning("%s: IAM authentication failed for %s: %s", self.name, user_name, exc)
            return False
        if not self.policy.allows_elasticache_connect(
            principal,
            region=self.config.region,
            account_id=self.config.account_id,
            replication_group_id=self.config.replication_group_id,
            user_id=user.user_id,
        ):
            log.warning("%s: %s may not elasticache:Connect as %s", self.name, principal.role_arn, user.user_id)
            return False
        return True
