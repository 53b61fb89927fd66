"""aws:kms -- customer managed keys and their aliases."""

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
    first_or_gone,
    given,
    none_when,
    read_by,
    tag_list,
)

# ScheduleKeyDeletion's waiting period bounds (days); the provider's default deletionWindowInDays is 30.
MIN_DELETION_WINDOW, MAX_DELETION_WINDOW, DEFAULT_DELETION_WINDOW = 7, 30, 30
_NOT_FOUND = "NotFoundException"

# --- aws:kms/key:Key -------------------------------------------------------------------------------------


def _key(aws: Aws, key_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeKey + GetKeyRotationStatus + GetKeyPolicy; a key pending deletion is gone (as for the provider)."""
    kms = aws.client("kms")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if meta.get("KeyState") == "PendingDeletion":
        raise GoneError(key_id)
    rotation = kms.get_key_rotation_status(KeyId=key_id)
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    return {
        "arn": meta["Arn"],
        "keyId": meta["KeyId"],
        "keyUsage": meta.get("KeyUsage"),
        "customerMasterKeySpec": meta.get("KeySpec"),
        "multiRegion": meta.get("MultiRegion"),
        "isEnabled": meta.get("Enabled"),
        "enableKeyRotation": rotation.get("KeyRotationEnabled"),
        "policy": policy,
    }


def create_key(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    return described(aws, req, key_id, _key)


read_key = read_by(_key, _NOT_FOUND)


@none_when(_NOT_FOUND)
def delete_key(aws: Aws, key_id: str, recorded: Mapping[str, Any]) -> None:
    """ScheduleKeyDeletion with the key's own ``deletionWindowInDays`` (7..30): the closest AWS comes to deleting a key."""
    kms = aws.client("kms")
    if kms.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState") == "PendingDeletion":
        return  # AWS refuses to schedule twice (KMSInvalidStateException); it is as deleted as it gets
    window = int(given(recorded, "deletionWindowInDays", DEFAULT_DELETION_WINDOW))
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=min(max(window, MIN_DELETION_WINDOW), MAX_DELETION_WINDOW))


# --- aws:kms/alias:Alias -------------------------------------------------------------------------------


def _alias(aws: Aws, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The alias as ListAliases of its target key shows it, with that key's ARN (DescribeKey)."""
    kms = aws.client("kms")
    target = kms.describe_key(KeyId=inputs["targetKeyId"])["KeyMetadata"]
    found = first_or_gone((a for a in kms.list_aliases(KeyId=target["KeyId"])["Aliases"] if a["AliasName"] == name), name)
    return {"name": name, "arn": found["AliasArn"], "targetKeyArn": target["Arn"]}


def create_alias(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:kms/alias:Alias -> CreateAlias, read back with ListAliases."""
    name = req.get("name") or f"alias/{req.physical_name('namePrefix')}"
    aws.client("kms").create_alias(AliasName=name, TargetKeyId=req.get("targetKeyId"))
    return described(aws, req, name, _alias)


read_alias = read_by(_alias, _NOT_FOUND)
delete_alias = delete_call("kms", "delete_alias", "AliasName", _NOT_FOUND)


RESOURCES = (
    ResourceHandler("aws:kms/key:Key", create_key, read_key, delete_key),
    ResourceHandler("aws:kms/alias:Alias", create_alias, read_alias, delete_alias),
)
