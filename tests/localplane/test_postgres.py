"""LocalPostgres: a real PostgreSQL 17 server on a unix socket, unprivileged, restartable with its data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from tools.localplane.postgres import LocalPostgres
from tools.localplane.supervisor import Supervisor, port_is_free


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_start_write_stop_restart_keeps_data(plane_dir: Path, supervisor: Supervisor) -> None:
    pg = LocalPostgres(plane_dir / "pg", tcp=True, supervisor=supervisor)
    try:
        pg.start()
        assert pg.is_running()
        pg.execute("CREATE TABLE payments (id int PRIMARY KEY, amount numeric); INSERT INTO payments VALUES (1, 12.50)")
        assert pg.query("SELECT id, amount::text FROM payments") == [(1, "12.50")]
        with psycopg.connect(pg.tcp_conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM payments").fetchone() == (1,)

        pg.stop()
        assert not pg.is_running()
        assert port_is_free(pg.port)
        assert not pg.socket_path.exists()
        pg.stop()  # idempotent

        pg.start()
        assert pg.query("SELECT id, amount::text FROM payments") == [(1, "12.50")]
        pg.restart()
        assert pg.query("SELECT count(*) FROM payments") == [(1,)]
    finally:
        pg.stop()
    assert port_is_free(pg.port)


def test_server_settings_and_layout(plane_dir: Path) -> None:
    with LocalPostgres(plane_dir / "pg") as pg:
        settings = dict(
            pg.query(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_connections', 'listen_addresses', 'server_encoding', 'ssl', "
                "'unix_socket_directories', 'fsync', 'port')"
            )
        )
        assert settings == {
            "max_connections": "200",
            "listen_addresses": "",
            "server_encoding": "UTF8",
            "ssl": "off",
            "unix_socket_directories": str(pg.socket_dir),
            "fsync": "off",
            "port": str(pg.port),
        }
        assert pg.query("SELECT datcollate, datctype FROM pg_database WHERE datname = 'postgres'") == [("C", "C")]
        # No TCP listener without tcp=True.
        assert port_is_free(pg.port)
        with pytest.raises(RuntimeError):
            pg.tcp_conninfo()
        for directory in (pg.base_dir, pg.data_dir, pg.socket_dir):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert (pg.base_dir / "server.log").stat().st_size > 0
        hba = [line for line in (pg.data_dir / "pg_hba.conf").read_text().splitlines() if not line.startswith("#")]
        assert hba == ["local all all trust"]
        assert pg.pid is not None
        if os.geteuid() == 0:
            # PostgreSQL refuses root: the server runs as 'nobody' and owns its directories.
            assert _uid_of(pg.pid) == 65534
            assert pg.data_dir.stat().st_uid == 65534
            assert pg.socket_dir.stat().st_uid == 65534
        else:
            assert _uid_of(pg.pid) == os.geteuid()
    assert not pg.is_running()


def test_conninfo_for_other_users_and_databases(plane_dir: Path) -> None:
    with LocalPostgres(plane_dir / "pg") as pg:
        pg.execute("CREATE ROLE app LOGIN")
        pg.execute("CREATE DATABASE ledger OWNER app")
        with psycopg.connect(pg.conninfo(user="app", dbname="ledger")) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("app", "ledger")
        pg.execute("CREATE TABLE t (x int)", dbname="ledger")
        assert pg.query("SELECT count(*) FROM t", dbname="ledger") == [(0,)]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root drops to an unprivileged uid")
def test_unreachable_base_dir_is_refused_clearly(plane_dir: Path) -> None:
    hidden = plane_dir / "private"
    hidden.mkdir(mode=0o700)
    pg = LocalPostgres(hidden / "pg")
    with pytest.raises(PermissionError, match="not searchable by uid 65534"):
        pg.start()
    assert not pg.is_running()
