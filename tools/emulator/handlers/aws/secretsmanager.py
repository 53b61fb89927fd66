"""aws:secretsmanager -- secrets and their versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import (
    GoneError,
    as_json,
    delete_call,
    described,
    drop_none,
    none_when,
    read_by,
    state,
    tag_list,
)

_NOT_FOUND = "ResourceNotFoundException"


def _describe(aws: Aws, secret_id: str) -> dict[str, Any]:
    """DescribeSecret; a secret scheduled for deletion is gone, as for the provider."""
    found: dict[str, Any] = aws.client("secretsmanager").describe_secret(SecretId=secret_id)
    if found.get("DeletedDate"):
        raise GoneError(secret_id)
    return found


# --- aws:secretsmanager/secret:Secret --------------------------------------------------------------------


def _secret(aws: Aws, arn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeSecret; gone once it is deleted or scheduled for deletion."""
    found = _describe(aws, arn)
    return {"arn": found["ARN"], "name": found["Name"], "kmsKeyId": found.get("KmsKeyId", inputs.get("kmsKeyId"))}


def create_secret(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    return described(aws, req, arn, _secret)


read_secret = read_by(_secret, _NOT_FOUND)
# ForceDeleteWithoutRecovery, so that a copy can be created again under the same name. (The provider would
# schedule the deletion for ``recoveryWindowInDays``, keeping the name taken for that long; locally the next
# deployment must be able to reuse it at once.)
delete_secret = delete_call("secretsmanager", "delete_secret", "SecretId", _NOT_FOUND, ForceDeleteWithoutRecovery=True)


# --- aws:secretsmanager/secretVersion:SecretVersion ------------------------------------------------------


def _version(aws: Aws, version: str, _inputs: Mapping[str, Any], put_stages: list[str] | None = None) -> dict[str, Any]:
    """DescribeSecret's versions (the id is ``<secret>|<version id>``); gone with its secret.

    ``put_stages`` (PutSecretValue's answer) stand in for the stages of a version DescribeSecret does not list yet.
    """
    secret_id, version_id = version.split("|", 1)
    found = _describe(aws, secret_id)
    stages = found.get("VersionIdsToStages", {}).get(version_id, put_stages)
    if stages is None:
        raise GoneError(f"{secret_id} has no version {version_id}")
    return {"arn": found["ARN"], "versionId": version_id, "versionStages": stages}


def create_secret_version(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:secretsmanager/secretVersion:SecretVersion -> PutSecretValue, read back with DescribeSecret."""
    secret_id = req.get("secretId")
    put = aws.client("secretsmanager").put_secret_value(
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
    computed = _version(aws, f"{secret_id}|{version_id}", req.inputs, put.get("VersionStages", []))
    # The id names the secret by its ARN, whichever way the input named it.
    return f"{computed['arn']}|{version_id}", state(req, **computed)


read_secret_version = read_by(_version, _NOT_FOUND)


@none_when(_NOT_FOUND)
def delete_secret_version(aws: Aws, version: str, recorded: Mapping[str, Any]) -> None:
    """Remove the version's staging labels but AWSCURRENT (UpdateSecretVersionStage), as the provider does.

    A version has no delete call: without labels AWS drops it; the current one ends with its secret.
    """
    secret_arn, version_id = version.split("|", 1)
    sm = aws.client("secretsmanager")
    for stage in _version(aws, version, recorded)["versionStages"]:
        if stage != "AWSCURRENT":
            sm.update_secret_version_stage(SecretId=secret_arn, VersionStage=stage, RemoveFromVersionId=version_id)


RESOURCES = (
    ResourceHandler("aws:secretsmanager/secret:Secret", create_secret, read_secret, delete_secret),
    ResourceHandler(
        "aws:secretsmanager/secretVersion:SecretVersion", create_secret_version, read_secret_version, delete_secret_version
    ),
)
