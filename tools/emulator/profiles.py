"""AWS CLI / boto3 profiles for a local deployment: one per environment, each assuming that environment's role.

``make deploy`` writes ``cfn-outputs/aws-config`` and ``cfn-outputs/aws-credentials``. With

    export AWS_CONFIG_FILE=$PWD/cfn-outputs/aws-config AWS_SHARED_CREDENTIALS_FILE=$PWD/cfn-outputs/aws-credentials

``aws --profile scalepay-prod rds describe-db-clusters`` and ``boto3.Session(profile_name="scalepay-prod")``
reach the prod stack's account in the emulator: the profile names the emulator endpoint (``endpoint_url``,
read by aws-cli v2 and boto3; aws-cli v1 ignores it, so with v1 pass ``--endpoint-url`` on each command)
and assumes the environment's deployer role with the emulator's test credentials as the source.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from pathlib import Path

from tools.emulator.engine import TEST_CREDENTIALS

SOURCE_PROFILE = "scalepay-emulator"
DEPLOYER_ROLE = "scalepay-deployer"


def profile_name(env: str) -> str:
    """``scalepay-<env>``."""
    return f"scalepay-{env}"


def role_arn(account_id: str) -> str:
    """The role the deployment assumed in an emulated account (moto maps the session to that account)."""
    return f"arn:aws:iam::{account_id}:role/{DEPLOYER_ROLE}"


def write(root: Path, endpoint: str, region: str, accounts: Mapping[str, str]) -> tuple[Path, Path]:
    """Write (or update) the config and credentials files for ``accounts`` (env -> account id)."""
    root.mkdir(parents=True, exist_ok=True)
    config_path, credentials_path = root / "aws-config", root / "aws-credentials"
    config = configparser.ConfigParser()
    if config_path.exists():
        config.read(config_path)
    source = f"profile {SOURCE_PROFILE}"
    config[source] = {"region": region, "endpoint_url": endpoint}
    for env, account in sorted(accounts.items()):
        config[f"profile {profile_name(env)}"] = {
            "role_arn": role_arn(account),
            "source_profile": SOURCE_PROFILE,
            "role_session_name": f"local-{env}",
            "region": region,
            "endpoint_url": endpoint,
        }
    with config_path.open("w", encoding="utf-8") as handle:
        config.write(handle)
    credentials = configparser.ConfigParser()
    credentials[SOURCE_PROFILE] = {
        "aws_access_key_id": TEST_CREDENTIALS["aws_access_key_id"],
        "aws_secret_access_key": TEST_CREDENTIALS["aws_secret_access_key"],
    }
    with credentials_path.open("w", encoding="utf-8") as handle:
        credentials.write(handle)
    return config_path, credentials_path


def usage(root: Path, envs: list[str]) -> str:
    """The lines the deploy summary prints to use the profiles."""
    first = envs[-1] if envs else "dev"
    return "\n".join(
        [
            "Talk to what you deployed (aws-cli v2 or boto3; with aws-cli v1 add --endpoint-url to each command):",
            f"  export AWS_CONFIG_FILE={root.resolve()}/aws-config AWS_SHARED_CREDENTIALS_FILE={root.resolve()}/aws-credentials",
            f"  aws --profile {profile_name(first)} rds describe-db-clusters",
            f"  python -c \"import boto3; print(boto3.Session(profile_name='{profile_name(first)}')"
            ".client('ecs').list_clusters())\"",
            f"  profiles: {', '.join(profile_name(e) for e in envs)}",
        ]
    )
