"""Is the endpoint we were given a moto server we can deploy into? Unreachable or malformed: known in under two seconds.

A malformed URL, nothing listening, something that is not moto, and a moto started without the AWS
managed policies (the stack attaches AmazonRDSEnhancedMonitoringRole and AWS_ConfigRole) each fail with
one line that says which, and, where it helps, the exact command that starts a suitable emulator.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from tools.emulator.engine import DEFAULT_REGION, TEST_CREDENTIALS

#: A managed policy the stack attaches; moto only knows it when started with managed policies loaded.
PROBE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
#: Nothing listening, or no route: known within this, so an unreachable endpoint fails in under 2 s.
CONNECT_TIMEOUT_SECONDS = 1.0
#: A listening emulator busy with another deployment may take longer than that to answer: it is reachable.
ANSWER_TIMEOUT_SECONDS = 10.0


class EndpointError(RuntimeError):
    """The endpoint cannot take a deployment; the message is one line for the user."""


def start_command(port: int | None) -> str:
    """The command that starts an emulator the local deployment can use."""
    return f".venv/bin/python -m tools.emulator.server --port {port or 4566}"


def normalize(endpoint: str) -> str:
    """``http://127.0.0.1:5000/`` -> ``http://127.0.0.1:5000``; a malformed endpoint raises :class:`EndpointError`."""
    parts = urlsplit(endpoint.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise EndpointError(
            f"ENDPOINT {endpoint!r} is not an emulator URL: expected http://<host>:<port>, e.g. http://127.0.0.1:5000"
        )
    return f"{parts.scheme}://{parts.hostname}:{port}"


def check(endpoint: str) -> str:
    """The normalised endpoint if it is a moto server with AWS managed policies, else :class:`EndpointError`."""
    endpoint = normalize(endpoint)
    port = urlsplit(endpoint).port
    try:
        socket.create_connection((urlsplit(endpoint).hostname, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
        with urllib.request.urlopen(f"{endpoint}/moto-api/config", timeout=ANSWER_TIMEOUT_SECONDS) as response:
            json.load(response)
    except urllib.error.HTTPError as exc:
        raise EndpointError(
            f"{endpoint} answers (HTTP {exc.code}) but is not a moto server; start one with: {start_command(port)}"
        ) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EndpointError(f"no emulator answers at {endpoint} ({reason}); start one with: {start_command(port)}") from None
    except ValueError:
        raise EndpointError(f"{endpoint} answers but is not a moto server; start one with: {start_command(port)}") from None
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        config=botocore.config.Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=ANSWER_TIMEOUT_SECONDS, retries={"max_attempts": 1}
        ),
        **TEST_CREDENTIALS,
    )
    try:
        iam.get_policy(PolicyArn=PROBE_POLICY_ARN)
    except botocore.exceptions.ClientError:
        raise EndpointError(
            f"the emulator at {endpoint} has no AWS managed policies (the stack attaches them); restart it with "
            f"MOTO_IAM_LOAD_MANAGED_POLICIES=true, e.g.: {start_command(port)}"
        ) from None
    return endpoint
