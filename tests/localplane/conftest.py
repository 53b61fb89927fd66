"""Shared fixtures for the local data plane tests: short base directories, a supervisor, a CA, moto with IAM roles."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from lp_support import ACCOUNT_ID, CLUSTER_RESOURCE_ID, REGION, REPLICATION_GROUP_ID, TRUST_POLICY, AwsFixture
from moto.server import ThreadedMotoServer

from tools.localplane.pki import LocalCA
from tools.localplane.supervisor import Supervisor, free_port


@pytest.fixture
def plane_dir() -> Iterator[Path]:
    """A short, fresh directory the servers' unprivileged uid can reach (pytest's tmp_path is under a 0700 root dir).

    Short also because a unix socket path must fit in 107 bytes.
    """
    path = Path(tempfile.mkdtemp(prefix="lp-"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
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
                    ],
                }
            ),
        )
        yield AwsFixture(endpoint, iam, sts, allowed, denied)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """One CA for the session (certificates are cheap; the CA is shared)."""
    return LocalCA.create(tmp_path_factory.mktemp("ca"))
