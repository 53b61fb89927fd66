"""Shared fixtures for the local data plane tests: short base directories, a supervisor, a CA, moto with IAM roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from lp_support import (
    ACCOUNT_ID,
    CLUSTER_RESOURCE_ID,
    REGION,
    REPLICATION_GROUP_ID,
    TRUST_POLICY,
    AwsFixture,
    policy_document,
    short_dir,
)
from moto.server import ThreadedMotoServer

from tools.localplane.pki import LocalCA
from tools.localplane.supervisor import Supervisor, free_port


@pytest.fixture
def plane_dir() -> Iterator[Path]:
    """A :func:`lp_support.short_dir` for one test: the servers' unprivileged uid can reach it, unlike pytest's tmp_path."""
    with short_dir() as path:
        yield path


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    """A supervisor that stops everything it started when the test ends, pass or fail."""
    sup = Supervisor(name="test")
    try:
        yield sup
    finally:
        sup.close()


@pytest.fixture(scope="session")
def aws() -> Iterator[AwsFixture]:
    """An in-process moto server on a free 127.0.0.1 port with two IAM roles, stopped at the end of the session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        common = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
        iam = boto3.client("iam", **common)
        sts = boto3.client("sts", **common)
        allowed = iam.create_role(RoleName="payments-api-task", AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
        denied = iam.create_role(RoleName="reporting-task", AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="payments-api-task",
            PolicyName="data-plane",
            PolicyDocument=policy_document(
                {
                    "Effect": "Allow",
                    "Action": "rds-db:connect",
                    "Resource": f"arn:aws:rds-db:{REGION}:{ACCOUNT_ID}:dbuser:{CLUSTER_RESOURCE_ID}/app_user",
                },
                {
                    "Effect": "Allow",
                    "Action": "elasticache:Connect",
                    "Resource": [
                        f"arn:aws:elasticache:{REGION}:{ACCOUNT_ID}:replicationgroup:{REPLICATION_GROUP_ID}",
                        f"arn:aws:elasticache:{REGION}:{ACCOUNT_ID}:user:payments-app",
                        f"arn:aws:elasticache:{REGION}:{ACCOUNT_ID}:user:disabled-app",
                    ],
                },
            ),
        )
        yield AwsFixture(endpoint, iam, sts, allowed, denied)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """One CA for the session (certificates are cheap; the CA is shared)."""
    return LocalCA.create(tmp_path_factory.mktemp("ca"))
