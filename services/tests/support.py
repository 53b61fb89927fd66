"""Test helpers: environments built from the configuration contract, and service processes that always get stopped."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from services.common.config import required_variables
from services.common.logs import configure_logging

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO_ROOT / "services"

REGION = "eu-west-1"
FAKE_AWS_CREDENTIALS = {
    # botocore signs with these; the local backends trust every connection, so any signature is accepted.
    "AWS_ACCESS_KEY_ID": "AKIASERVICESTEST0001",
    "AWS_SECRET_ACCESS_KEY": "services-test-secret-key",
    "AWS_SESSION_TOKEN": "services-test-session-token",
    # Never read a developer's ~/.aws or an instance metadata endpoint.
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
PAYMENT_ROLE = "scalepay_payment"
NOTIFICATION_ROLE = "scalepay_notification"
SERVICE_USERS = f"payment={PAYMENT_ROLE},notification={NOTIFICATION_ROLE}"
REDIS_USER = "scalepay-payment"
# The payment user's ElastiCache access string as the infrastructure declares it (lib/service_access.py), plus nopass.
REDIS_ACCESS = "nopass ~payments:* -@all +@read +@write +@connection -@dangerous"
MAX_BODY = 4096


@contextmanager
def captured_logging(service: str) -> Iterator[io.StringIO]:
    """Root logging configured as in ``service`` (environment dev), into a buffer; the previous handlers and level are
    restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(service, "dev", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_healthcheck(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m services.common.healthcheck`` as the container's HEALTHCHECK runs it, with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "services.common.healthcheck"], env=env, capture_output=True, text=True, timeout=10
    )


def process_env() -> dict[str, str]:
    """What every child process gets besides the contract: PATH, the import path, fake AWS credentials."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "LC_ALL": "C.UTF-8",
        **FAKE_AWS_CREDENTIALS,
    }


def contract_env(service: str, values: Mapping[str, str]) -> dict[str, str]:
    """Exactly the variables the task definition of ``service`` declares, taken from ``values`` (KeyError if missing)."""
    return {name: values[name] for name in sorted(required_variables(service))}


def migrate_env(pg_port: int, dbname: str) -> dict[str, str]:
    """The migrate task's environment against the local server (master user = the trusted superuser)."""
    values = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg_port),
        "DB_NAME": dbname,
        "DB_SSL_MODE": "disable",
        "DB_SSL_ROOT_CERT": "/etc/ssl/certs/rds-global-bundle.pem",
        "DB_SERVICE_USERS": SERVICE_USERS,
        "DB_MASTER_USERNAME": "postgres",
        "DB_MASTER_PASSWORD": "trust-auth-ignores-this",
    }
    return contract_env("migrate", values)


def service_values(
    service: str, port: int, *, pg_port: int = 0, dbname: str = "", redis_port: int = 0, urls: Mapping[str, str] = {}
) -> dict[str, str]:
    """Contract values for one service in the test set-up (plain TCP, no TLS: the backends trust local clients)."""
    return {
        "SERVICE_NAME": service,
        "ENVIRONMENT": "dev",
        "PORT": str(port),
        "HEALTH_CHECK_PATH": f"/{service}/health",
        "MAX_REQUEST_BODY_BYTES": str(MAX_BODY),
        "METRICS_NAMESPACE": f"ScalePayments/{service}",
        "PAYMENT_URL": urls.get("payment", ""),
        "NOTIFICATION_URL": urls.get("notification", ""),
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg_port),
        "DB_NAME": dbname,
        "DB_USER": {"payment": PAYMENT_ROLE, "notification": NOTIFICATION_ROLE}.get(service, ""),
        "DB_AUTH": "iam",
        "DB_SSL_MODE": "disable",
        "DB_SSL_ROOT_CERT": "/etc/ssl/certs/rds-global-bundle.pem",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "REDIS_TLS": "false",
        "REDIS_USER": REDIS_USER,
        "REDIS_AUTH": "iam",
        "REDIS_CACHE_NAME": "scalepay-redis-test",
    }


class ServiceProcess:
    """``python -m services.<name>`` as a child process, its stdout+stderr in a log file."""

    def __init__(self, name: str, env: Mapping[str, str], log_path: Path, *, module: str | None = None) -> None:
        self.name = name
        self.env = dict(env)
        self.log_path = log_path
        self.module = module or f"services.{name}"
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def port(self) -> int:
        """The service's PORT."""
        return int(self.env["PORT"])

    @property
    def url(self) -> str:
        """Base URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The child's pid (to prove it was not restarted)."""
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        """Start the process (returns at once; see :meth:`wait_healthy`)."""
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Poll the health endpoint until it answers 200."""
        deadline = time.monotonic() + timeout
        path = self.env.get("HEALTH_CHECK_PATH", f"/{self.name}/health")
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy after {timeout}s:\n{self.log_text()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it does not exit in ``timeout`` seconds; the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.returncode = self.popen.returncode
        return self.returncode

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """Every log line parsed as JSON (AssertionError on a line that is not a JSON object)."""
        records = []
        for line in self.log_text().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{self.name} wrote a non-JSON line: {line[:200]!r}") from None
            assert isinstance(record, dict), line
            records.append(record)
        return records


@contextmanager
def running(processes: Sequence[ServiceProcess], timeout: float = 30.0) -> Iterator[Sequence[ServiceProcess]]:
    """Start ``processes`` together, wait until all are healthy, and stop every one of them on exit (even on failure)."""
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_healthy(timeout)
        yield processes
    finally:
        for process in processes:
            process.stop()


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate()`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
