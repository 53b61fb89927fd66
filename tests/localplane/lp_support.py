"""Constants and helpers shared by the local data plane tests (a plain module: 'conftest' names collide across dirs)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from lib import iam_policies
from tools.localplane.iam_auth import CredentialRegistry, PolicyChecker
from tools.localplane.pki import LocalCA
from tools.localplane.supervisor import Supervisor

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CLUSTER_RESOURCE_ID = "cluster-LOCALPLANE0TEST0ID"
REPLICATION_GROUP_ID = "payments-cache"
DB_HOST = "payments.cluster-abc123.us-east-1.rds.amazonaws.com"


def policy_document(*statements: dict[str, Any]) -> str:
    """An IAM policy document (JSON) granting ``statements``, in the stack's own policy document shape."""
    return json.dumps(iam_policies.policy_document(*statements))


TRUST_POLICY = policy_document(
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
)


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A short, fresh directory the servers' unprivileged uid can reach (pytest's tmp_path is under a 0700 root dir),
    removed on exit.

    Short also because a unix socket path must fit in 107 bytes.
    """
    with tempfile.TemporaryDirectory(prefix="lp-", ignore_cleanup_errors=True) as name:
        path = Path(name)
        os.chmod(path, 0o711)
        yield path


@dataclass
class AwsFixture:
    """moto endpoint, clients and the roles the token tests use."""

    endpoint: str
    iam: Any
    sts: Any
    allowed_role_arn: str  # may connect as db user 'app_user' and cache user 'payments-app'
    denied_role_arn: str  # has a role but no data-plane permissions
    registry: CredentialRegistry = field(default_factory=CredentialRegistry)

    def assume(self, role_arn: str) -> Credentials:
        """Assume a role in moto and register the credentials, as the container-credentials endpoint does."""
        creds = self.sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
        self.registry.register(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], role_arn, ACCOUNT_ID, creds["Expiration"]
        )
        return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    def rds_client(self, credentials: Credentials) -> Any:
        """An RDS client signing with ``credentials`` (only used to generate auth tokens: no API call is made)."""
        return boto3.client(
            "rds",
            region_name=REGION,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        )


def front_options(aws: AwsFixture, ca: LocalCA, host: str, supervisor: Supervisor) -> dict[str, Any]:
    """The arguments a data-store front (PgFront, RedisFront) takes besides its config and backend: a certificate
    for ``host`` (and 127.0.0.1) from ``ca``, IAM tokens checked against moto's roles, and ``supervisor``."""
    cert, key = ca.issue_server_cert([host], ["127.0.0.1"])
    return {
        "cert_path": cert,
        "key_path": key,
        "registry": aws.registry,
        "policy": PolicyChecker(aws.iam),
        "supervisor": supervisor,
    }
