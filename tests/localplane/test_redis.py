"""LocalRedis: a real Valkey server on 127.0.0.1, admin password, ACL users, persistence off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tools.localplane.redis import LocalRedis
from tools.localplane.supervisor import Supervisor, port_is_free


def connect(port: int, **kwargs: object) -> redis.Redis:
    # redis-py retries AuthenticationError (a ConnectionError) with back-off by default: fail fast instead.
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0), **kwargs)  # type: ignore[arg-type]


def test_start_write_read_stop_restart(plane_dir: Path, supervisor: Supervisor) -> None:
    server = LocalRedis(plane_dir / "redis", supervisor=supervisor)
    try:
        server.start()
        assert server.is_running()
        with server.admin_client() as admin:
            admin.set("payment:1", "captured")
            assert admin.get("payment:1") == b"captured"
        server.stop()
        assert not server.is_running()
        assert port_is_free(server.port)
        server.stop()  # idempotent
        server.start()
        with server.admin_client() as admin:
            # Persistence is off: a restart is a fresh, empty node.
            assert admin.get("payment:1") is None
            assert admin.dbsize() == 0
    finally:
        server.stop()
    assert port_is_free(server.port)


def test_admin_password_required_and_config(plane_dir: Path) -> None:
    with LocalRedis(plane_dir / "redis") as server:
        with connect(server.port) as anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        with connect(server.port, password="wrong") as wrong, pytest.raises(redis.AuthenticationError):
            wrong.ping()
        with server.admin_client() as admin:
            config = {key: admin.config_get(key)[key] for key in ("bind", "save", "appendonly", "protected-mode", "port")}
            assert config == {
                "bind": "127.0.0.1",
                "save": "",
                "appendonly": "no",
                "protected-mode": "yes",
                "port": str(server.port),
            }
        assert len(server.admin_password) >= 32
        assert oct(server.config_path.stat().st_mode & 0o777) == "0o600"
        assert server.admin_password not in Path(f"/proc/{server._proc.pid}/cmdline").read_text()  # type: ignore[union-attr]
        if os.geteuid() == 0:
            assert Path(f"/proc/{server._proc.pid}").stat().st_uid == 65534  # type: ignore[union-attr]


def test_acl_users_enforced_and_survive_restart(plane_dir: Path) -> None:
    with LocalRedis(plane_dir / "redis") as server:
        server.set_user("payments-svc", "on ~payments:* +@all -@dangerous", "pw-1")
        server.set_user("disabled-svc", "off ~* +@all", "pw-2")
        with connect(server.port, username="payments-svc", password="pw-1") as client:
            assert client.set("payments:42", "ok") is True
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set("ledger:42", "no")
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.flushall()
        with connect(server.port, username="disabled-svc", password="pw-2") as client, pytest.raises(redis.AuthenticationError):
            client.ping()
        with pytest.raises(ValueError):
            server.set_user("default", "on ~* +@all", "x")

        server.restart()
        with connect(server.port, username="payments-svc", password="pw-1") as client:
            assert client.set("payments:43", "ok") is True
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.get("ledger:1")
