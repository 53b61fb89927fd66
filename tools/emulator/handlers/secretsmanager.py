"""Secrets Manager: secrets and their versions."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list


def secret(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:secretsmanager/secret:Secret -> CreateSecret (+ PutResourcePolicy), read back with DescribeSecret."""
    sm = aws.client("secretsmanager")
    name = req.physical_name("name", 512)
    arn = sm.create_secret(
        **drop_none(
            {
                "Name": name,
                "Description": req.get("description"),
                "KmsKeyId": req.get("kmsKeyId"),
                "Tags": tag_list(req.get("tags")) or None,
                "AddReplicaRegions": [
                    drop_none({"Region": r["region"], "KmsKeyId": r.get("kmsKeyId")}) for r in req.get("replicas", [])
                ]
                or None,
            }
        )
    )["ARN"]
    if req.get("policy"):
        sm.put_resource_policy(SecretId=arn, ResourcePolicy=as_json(req.get("policy")))
    found = sm.describe_secret(SecretId=arn)
    return arn, state(req, arn=found["ARN"], name=found["Name"], kmsKeyId=found.get("KmsKeyId", req.get("kmsKeyId")))


def secret_version(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:secretsmanager/secretVersion:SecretVersion -> PutSecretValue, read back with DescribeSecret."""
    sm = aws.client("secretsmanager")
    secret_id = req.get("secretId")
    put = sm.put_secret_value(
        **drop_none(
            {
                "SecretId": secret_id,
                "SecretString": req.get("secretString"),
                "SecretBinary": req.get("secretBinary"),
                "VersionStages": list(req.get("versionStages", [])) or None,
            }
        )
    )
    version_id = put["VersionId"]
    found = sm.describe_secret(SecretId=secret_id)
    stages = found.get("VersionIdsToStages", {}).get(version_id, put.get("VersionStages", []))
    return f"{found['ARN']}|{version_id}", state(req, arn=found["ARN"], versionId=version_id, versionStages=stages)


HANDLERS = {
    "aws:secretsmanager/secret:Secret": secret,
    "aws:secretsmanager/secretVersion:SecretVersion": secret_version,
}
