"""Integration fixtures: the deployed stacks' outputs and boto3 clients for each environment.

The tests read ``cfn-outputs/<env>/flat-outputs.json`` (written by ``make deploy`` or
``make outputs``) and inspect the deployed resources with boto3 only. They do not know whether
the endpoint is AWS or the local emulator. After a local deployment nothing needs setting: the
deployment wrote ``cfn-outputs/aws-config`` with one profile per environment (``scalepay-<env>``:
the emulator endpoint and that environment's role), and the tests use it. On AWS, with no such
file, each environment uses the default credentials, or the role ``SCALEPAY_<ENV>_ROLE_ARN`` names
(an operator sets them, or tests one environment at a time).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration import report

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS_DIR = ROOT / "cfn-outputs"
ENVS = ("dev", "staging", "prod")

LIVE_TRAFFIC = os.environ.get("SCALEPAY_LIVE_TRAFFIC") == "1"
LOCAL_PROFILES = OUTPUTS_DIR / "aws-config"


def pytest_configure(config: pytest.Config) -> None:
    if LOCAL_PROFILES.exists():
        # Written by the local deployment: point boto3 at its profiles unless the caller chose others.
        os.environ.setdefault("AWS_CONFIG_FILE", str(LOCAL_PROFILES))
        os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(OUTPUTS_DIR / "aws-credentials"))
    config.addinivalue_line("markers", "live_aws: needs live traffic on real AWS (latency, throughput, failover timing)")
    # Each scenario's result beside its business context, by category (tests/integration/report.py). Installed
    # here, not with pytest_plugins, which pytest refuses in a conftest below the rootdir when `pytest tests`
    # collects this directory late.
    report.install(config, Path(__file__).parent)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("live_aws") and not LIVE_TRAFFIC:
            item.add_marker(pytest.mark.skip(reason="needs live traffic on real AWS; set SCALEPAY_LIVE_TRAFFIC=1 there"))


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@pytest.fixture(scope="session")
def all_outputs() -> dict[str, dict[str, Any]]:
    """Outputs of every deployed environment, by environment name."""
    found = {
        env: _load(OUTPUTS_DIR / env / "flat-outputs.json") for env in ENVS if (OUTPUTS_DIR / env / "flat-outputs.json").exists()
    }
    if not found:
        pytest.fail(f"no outputs under {OUTPUTS_DIR}: run `make deploy ENV=all` or `make outputs STACK=...` first")
    return found


@pytest.fixture(scope="session")
def outputs() -> dict[str, Any]:
    """Outputs of the primary deployed stack (cfn-outputs/flat-outputs.json)."""
    path = OUTPUTS_DIR / "flat-outputs.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: deploy first")
    return _load(path)


class AwsClients:
    """boto3 clients for one environment's account (assuming its role when one is configured)."""

    def __init__(self, env: str, region: str) -> None:
        self.env = env
        self.region = region
        role = os.environ.get(f"SCALEPAY_{env.upper()}_ROLE_ARN")
        if LOCAL_PROFILES.exists() and not role:
            # The profiles of the local deployment (cfn-outputs/aws-config, see pytest_configure).
            self.session = boto3.session.Session(profile_name=f"scalepay-{env}")
        elif role:
            creds = boto3.client("sts", region_name=region).assume_role(RoleArn=role, RoleSessionName=f"integration-{env}")[
                "Credentials"
            ]
            self.session = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
            )
        else:
            self.session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)  # type: ignore[call-overload]
        return self._clients[service]


@pytest.fixture(scope="session")
def clients_for(all_outputs: dict[str, dict[str, Any]]) -> Callable[[str], AwsClients]:
    """Factory: AwsClients for a deployed environment."""
    cache: dict[str, AwsClients] = {}

    def get(env: str) -> AwsClients:
        if env not in all_outputs:
            pytest.fail(f"environment {env} is not deployed (no cfn-outputs/{env}/flat-outputs.json)")
        if env not in cache:
            cache[env] = AwsClients(env, all_outputs[env]["region"])
        return cache[env]

    return get


@dataclass(frozen=True)
class Deployed:
    """One deployed environment: its name, its stack outputs and boto3 clients for its account."""

    env: str
    outputs: dict[str, Any]
    aws: AwsClients


def _deployed(env: str, all_outputs: dict[str, dict[str, Any]], clients_for: Callable[[str], AwsClients]) -> Deployed:
    """``env`` as deployed; the test fails (never skips) when the environment has no outputs."""
    if env not in all_outputs:
        pytest.fail(f"environment {env} is not deployed")
    return Deployed(env, all_outputs[env], clients_for(env))


@pytest.fixture(scope="session", params=ENVS)
def deployed(
    request: pytest.FixtureRequest, all_outputs: dict[str, dict[str, Any]], clients_for: Callable[[str], AwsClients]
) -> Deployed:
    """Each deployed environment in turn."""
    return _deployed(str(request.param), all_outputs, clients_for)


@pytest.fixture(scope="session", params=("staging", "prod"))
def ha_deployed(
    request: pytest.FixtureRequest, all_outputs: dict[str, dict[str, Any]], clients_for: Callable[[str], AwsClients]
) -> Deployed:
    """The highly available environments (Multi-AZ data tier, WAF, account security) in turn."""
    return _deployed(str(request.param), all_outputs, clients_for)
