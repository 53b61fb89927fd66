"""Clients for a running local platform (``make deploy``, ``make run`` or ``make integration``).

The platform writes ``cfn-outputs/<env>/local-platform.json`` while it runs: the front door's port and the name in
its certificate, the local addresses of the data store endpoints, the local CA, and its control endpoint
(``tools/localplane/control.py``). :class:`RunningStack` wraps them: HTTPS through the front door as a client
on the internet would send it (TLS verified against the listener certificate, SNI and Host the certificate's
name), the database as an operator logs in (the master secret from Secrets Manager, TLS verified against the
endpoint's CA), and the control actions that inject failures.
"""

from __future__ import annotations

import json
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.integration.conftest import OUTPUTS_DIR, AwsClients


def platform_file(env: str) -> Path:
    """Where the running platform describes ``env``."""
    return OUTPUTS_DIR / env / "local-platform.json"


@dataclass
class RunningStack:
    """One environment of the running platform."""

    env: str
    outputs: dict[str, Any]
    aws: AwsClients
    detail: dict[str, Any]

    # --- the front door --------------------------------------------------------------------------------------

    @property
    def door(self) -> dict[str, Any]:
        """The (first) front door: https/http URLs, certificate, host name."""
        doors: list[dict[str, Any]] = self.detail["frontDoors"]
        return doors[0]

    def request(self, method: str, path: str, *, json_body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """One HTTPS request through the front door, verified against the listener certificate."""
        context = ssl.create_default_context(cafile=self.door["certificate"])
        host = self.door["host"]
        with httpx.Client(verify=context, timeout=10.0) as client:
            return client.request(
                method,
                f"{self.door['https']}{path}",
                json=json_body,
                headers={"Host": host, **(headers or {})},
                extensions={"sni_hostname": host},
            )

    def create_payment(self, key: str | None = None, **fields: Any) -> httpx.Response:
        """``POST /api/payments`` with a card token (never a card number) and an idempotency key."""
        body = {"amount_minor": 2500, "currency": "EUR", "merchant_id": "merchant_it", "payment_method_token": "tok_it_visa_0001"}
        body.update(fields)
        return self.request("POST", "/api/payments", json_body=body, headers={"Idempotency-Key": key or f"it-{uuid.uuid4()}"})

    # --- the data stores -------------------------------------------------------------------------------------

    def local_address(self, endpoint: str, port: int) -> tuple[str, int]:
        """Where an endpoint of the stack outputs runs on this machine."""
        host, _, local_port = self.detail["dataStores"][f"{endpoint}:{port}"].partition(":")
        return host, int(local_port)

    def database(self) -> psycopg.Connection[Any]:
        """A connection to the Aurora writer as the master user, with the password from the RDS-managed secret."""
        secret = json.loads(self.aws("secretsmanager").get_secret_value(SecretId=self.outputs["auroraSecretArn"])["SecretString"])
        host, port = self.local_address(self.outputs["auroraWriterEndpoint"], int(self.outputs["auroraPort"]))
        return psycopg.connect(
            host=host,
            port=port,
            dbname=self.outputs["auroraDatabaseName"],
            user=secret["username"],
            password=secret["password"],
            sslmode="verify-full",
            sslrootcert=self.detail["caFile"],
            connect_timeout=5,
            autocommit=True,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one query as the master user."""
        with self.database() as conn:
            return conn.execute(sql.encode(), params).fetchall()

    # --- the control endpoint --------------------------------------------------------------------------------

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the platform's control endpoint (status and failure injection)."""
        control = self.detail["control"]
        response = httpx.request(
            method, f"{control['url']}{path}", json=body, headers={"Authorization": f"Bearer {control['token']}"}, timeout=90
        )
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def status(self) -> dict[str, Any]:
        """This stack's part of the platform's status."""
        stacks: dict[str, Any] = self.control("GET", "/status")["stacks"]
        return dict(stacks[self.env])

    def action(self, kind: str, name: str, verb: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /stacks/<env>/<kind>/<name>/<verb>``."""
        return self.control("POST", f"/stacks/{self.env}/{kind}/{name}/{verb}", body or {})

    def service_name(self, service: str) -> str:
        """The ECS service name of ``api``/``payment``/``notification``."""
        return str(self.outputs["serviceNames"][service])

    def task_pids(self) -> dict[str, list[int]]:
        """Pid of every running task, by ECS service."""
        return {name: sorted(t["pid"] for t in svc["tasks"]) for name, svc in self.status()["services"].items()}
