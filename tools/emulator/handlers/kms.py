"""KMS: customer managed keys and their aliases."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list


def key(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:kms/key:Key -> CreateKey (+ EnableKeyRotation), read back with DescribeKey."""
    kms = aws.client("kms")
    params = drop_none(
        {
            "Description": req.get("description"),
            "KeyUsage": req.get("keyUsage"),
            "KeySpec": req.get("customerMasterKeySpec"),
            "Policy": as_json(req.get("policy")) if req.get("policy") else None,
            "MultiRegion": req.get("multiRegion"),
            "BypassPolicyLockoutSafetyCheck": req.get("bypassPolicyLockoutSafetyCheck"),
            "Tags": tag_list(req.get("tags"), "TagKey", "TagValue"),
        }
    )
    key_id = kms.create_key(**params)["KeyMetadata"]["KeyId"]
    if req.get("enableKeyRotation"):
        kms.enable_key_rotation(**drop_none({"KeyId": key_id, "RotationPeriodInDays": req.get("rotationPeriodInDays")}))
    if req.get("isEnabled") is False:
        kms.disable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    rotation = kms.get_key_rotation_status(KeyId=key_id)
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    return key_id, state(
        req,
        arn=meta["Arn"],
        keyId=meta["KeyId"],
        keyUsage=meta.get("KeyUsage"),
        customerMasterKeySpec=meta.get("KeySpec"),
        multiRegion=meta.get("MultiRegion"),
        isEnabled=meta.get("Enabled"),
        enableKeyRotation=rotation.get("KeyRotationEnabled"),
        policy=policy,
    )


def alias(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:kms/alias:Alias -> CreateAlias, read back with ListAliases."""
    kms = aws.client("kms")
    name = req.get("name") or f"alias/{req.physical_name('namePrefix')}"
    kms.create_alias(AliasName=name, TargetKeyId=req.get("targetKeyId"))
    target = kms.describe_key(KeyId=req.get("targetKeyId"))["KeyMetadata"]
    found = [a for a in kms.list_aliases(KeyId=target["KeyId"])["Aliases"] if a["AliasName"] == name]
    if not found:
        raise RuntimeError(f"alias {name} not listed after CreateAlias")
    return name, state(req, name=name, arn=found[0]["AliasArn"], targetKeyArn=target["Arn"])


HANDLERS = {
    "aws:kms/key:Key": key,
    "aws:kms/alias:Alias": alias,
}
