"""Constants and helpers shared by the local data plane tests (a plain module: 'conftest' names collide across dirs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.credentials import Credentials

from tools.localplane.iam_auth import CredentialRegistry

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CLUSTER_RESOURCE_ID = "cluster-LOCALPLANE0TEST0ID"
REPLICATION_GROUP_ID = "payments-cache"
DB_HOST = "payments.cluster-abc123.us-east-1.rds.amazonaws.com"

TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


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
