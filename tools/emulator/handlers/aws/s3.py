"""aws:s3 -- buckets and their policy, public access block, ownership, encryption, versioning, lifecycle,
access logging and object lock.

Every bucket sub-resource has the bucket name as its id, like the provider's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import (
    GoneError,
    api_params,
    as_json,
    delete_call,
    described,
    drop_none,
    given,
    none_when,
    read_by,
    tag_list,
)

# Route 53 hosted zone ids of the S3 website endpoints; published constants the provider also hardcodes.
S3_HOSTED_ZONES = {
    "us-east-1": "Z3AQBSTGFYJSTF",
    "us-east-2": "Z2O1EMRO9K5GLX",
    "us-west-2": "Z3BJ6K6RIION7M",
    "eu-west-1": "Z1BKCTXD74EZPE",
}
# DeleteObjects takes at most this many keys per request.
_DELETE_BATCH = 1000
_NO_BUCKET = "NoSuchBucket"

# --- aws:s3/bucket:Bucket --------------------------------------------------------------------------------


def _bucket(aws: Aws, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketLocation."""
    region = aws.client("s3").get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
    return {
        "bucket": name,
        "arn": f"arn:{aws.partition}:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
        "bucketRegion": region,
        "region": region,
        "hostedZoneId": S3_HOSTED_ZONES.get(region),
        "forceDestroy": bool(inputs.get("forceDestroy", False)),
    }


def create_bucket(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucket:Bucket -> CreateBucket (+ PutBucketTagging), read back with GetBucketLocation."""
    s3 = aws.client("s3")
    name = req.physical_name("bucket", 63).lower()
    params: dict[str, Any] = {"Bucket": name}
    if aws.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    if req.get("objectLockEnabled"):
        params["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**params)
    if req.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(req.get("tags"))})
    return described(aws, req, name, _bucket)


read_bucket = read_by(_bucket, _NO_BUCKET)


@none_when(_NO_BUCKET)
def delete_bucket(aws: Aws, name: str, recorded: Mapping[str, Any]) -> None:
    """Delete every object version and delete marker (the program's buckets are versioned), then DeleteBucket.

    AWS refuses to delete a bucket that holds anything; the provider empties it only with
    ``forceDestroy``. Here deleting is the decision, so the bucket is always emptied first.
    """
    s3 = aws.client("s3")
    bypass = {"BypassGovernanceRetention": True} if given(recorded, "objectLockEnabled", False) else {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        versions = [
            {"Key": v["Key"], "VersionId": v["VersionId"]} for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(versions), _DELETE_BATCH):
            result = s3.delete_objects(
                Bucket=name, Delete={"Objects": versions[start : start + _DELETE_BATCH], "Quiet": True}, **bypass
            )
            if result.get("Errors"):
                raise RuntimeError(f"DeleteObjects on {name}: {result['Errors'][:3]}")
    s3.delete_bucket(Bucket=name)


# --- aws:s3/bucketPolicy:BucketPolicy --------------------------------------------------------------------


def _bucket_policy(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketPolicy."""
    return {"policy": aws.client("s3").get_bucket_policy(Bucket=name)["Policy"]}


def create_bucket_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketPolicy:BucketPolicy -> PutBucketPolicy, read back with GetBucketPolicy."""
    name = req.get("bucket")
    aws.client("s3").put_bucket_policy(Bucket=name, Policy=as_json(req.get("policy")))
    return described(aws, req, name, _bucket_policy)


read_bucket_policy = read_by(_bucket_policy, _NO_BUCKET, "NoSuchBucketPolicy")
delete_bucket_policy = delete_call("s3", "delete_bucket_policy", "Bucket", _NO_BUCKET, "NoSuchBucketPolicy")


# --- aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock ----------------------------------------------


def _public_access_block(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetPublicAccessBlock."""
    found = aws.client("s3").get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    return {
        "blockPublicAcls": found["BlockPublicAcls"],
        "blockPublicPolicy": found["BlockPublicPolicy"],
        "ignorePublicAcls": found["IgnorePublicAcls"],
        "restrictPublicBuckets": found["RestrictPublicBuckets"],
    }


def create_public_access_block(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock -> PutPublicAccessBlock."""
    name = req.get("bucket")
    aws.client("s3").put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(req.get("blockPublicAcls", False)),
            "BlockPublicPolicy": bool(req.get("blockPublicPolicy", False)),
            "IgnorePublicAcls": bool(req.get("ignorePublicAcls", False)),
            "RestrictPublicBuckets": bool(req.get("restrictPublicBuckets", False)),
        },
    )
    return described(aws, req, name, _public_access_block)


read_public_access_block = read_by(_public_access_block, _NO_BUCKET, "NoSuchPublicAccessBlockConfiguration")
delete_public_access_block = delete_call(
    "s3", "delete_public_access_block", "Bucket", _NO_BUCKET, "NoSuchPublicAccessBlockConfiguration"
)


# --- aws:s3/bucketOwnershipControls:BucketOwnershipControls ----------------------------------------------


def _ownership_controls(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketOwnershipControls."""
    found = aws.client("s3").get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"][0]
    return {"rule": {"objectOwnership": found["ObjectOwnership"]}}


def create_ownership_controls(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketOwnershipControls:BucketOwnershipControls -> PutBucketOwnershipControls."""
    name = req.get("bucket")
    rule = req.get("rule") or {}
    aws.client("s3").put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": rule.get("objectOwnership")}]}
    )
    return described(aws, req, name, _ownership_controls)


read_ownership_controls = read_by(_ownership_controls, _NO_BUCKET, "OwnershipControlsNotFoundError")
delete_ownership_controls = delete_call(
    "s3", "delete_bucket_ownership_controls", "Bucket", _NO_BUCKET, "OwnershipControlsNotFoundError"
)


# --- aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration --------------


def _encryption(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketEncryption."""
    found = aws.client("s3").get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    return {
        "rules": [
            drop_none(
                {
                    "applyServerSideEncryptionByDefault": drop_none(
                        {
                            "sseAlgorithm": r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
                            "kmsMasterKeyId": r["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID"),
                        }
                    ),
                    "bucketKeyEnabled": r.get("BucketKeyEnabled"),
                }
            )
            for r in found
        ]
    }


def create_encryption(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketServerSideEncryptionConfiguration -> PutBucketEncryption, read back with GetBucketEncryption."""
    name = req.get("bucket")
    rules = []
    for rule in req.get("rules", []):
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        rules.append(
            drop_none(
                {
                    "ApplyServerSideEncryptionByDefault": drop_none(
                        {"SSEAlgorithm": default.get("sseAlgorithm"), "KMSMasterKeyID": default.get("kmsMasterKeyId")}
                    ),
                    "BucketKeyEnabled": rule.get("bucketKeyEnabled"),
                }
            )
        )
    aws.client("s3").put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    return described(aws, req, name, _encryption)


read_encryption = read_by(_encryption, _NO_BUCKET, "ServerSideEncryptionConfigurationNotFoundError")
# AWS falls back to its default SSE-S3 encryption.
delete_encryption = delete_call(
    "s3", "delete_bucket_encryption", "Bucket", _NO_BUCKET, "ServerSideEncryptionConfigurationNotFoundError"
)


# --- aws:s3/bucketVersioning:BucketVersioning ------------------------------------------------------------


def _versioning(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketVersioning (versioning exists as long as its bucket; deleting it suspends it)."""
    found = aws.client("s3").get_bucket_versioning(Bucket=name)
    return {"versioningConfiguration": drop_none({"status": found.get("Status"), "mfaDelete": found.get("MFADelete")})}


def create_versioning(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketVersioning:BucketVersioning -> PutBucketVersioning, read back with GetBucketVersioning."""
    name = req.get("bucket")
    config = req.get("versioningConfiguration") or {}
    aws.client("s3").put_bucket_versioning(
        Bucket=name,
        VersioningConfiguration=drop_none({"Status": config.get("status"), "MFADelete": config.get("mfaDelete")}),
    )
    return described(aws, req, name, _versioning)


read_versioning = read_by(_versioning, _NO_BUCKET)


@none_when(_NO_BUCKET)
def delete_versioning(aws: Aws, name: str, _recorded: Mapping[str, Any]) -> None:
    """PutBucketVersioning Suspended, as the provider does: versioning, once enabled, can only be suspended."""
    s3 = aws.client("s3")
    if s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})


# --- aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration ------------------------------------


def _filter(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """A lifecycle rule ``filter`` block -> the API's Filter (empty prefix = whole bucket)."""
    if not raw:
        return {"Prefix": ""}
    if raw.get("and"):
        conj = raw["and"]
        return {
            "And": drop_none(
                {
                    **api_params(conj, "prefix", "objectSizeGreaterThan", "objectSizeLessThan"),
                    "Tags": tag_list(conj.get("tags")) or None,
                }
            )
        }
    if raw.get("tag"):
        return {"Tag": {"Key": raw["tag"]["key"], "Value": raw["tag"]["value"]}}
    out = drop_none(
        {
            **api_params(raw, "prefix", "objectSizeGreaterThan", "objectSizeLessThan"),
        }
    )
    return out or {"Prefix": ""}


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    expiration = rule.get("expiration") or {}
    noncurrent = rule.get("noncurrentVersionExpiration") or {}
    abort = rule.get("abortIncompleteMultipartUpload") or {}
    return drop_none(
        {
            "ID": rule.get("id"),
            "Status": rule.get("status", "Enabled"),
            "Filter": _filter(rule.get("filter")),
            "Expiration": drop_none(
                {
                    **api_params(expiration, "days", "date", "expiredObjectDeleteMarker"),
                }
            )
            or None,
            "Transitions": [
                drop_none({"Days": t.get("days"), "Date": t.get("date"), "StorageClass": t["storageClass"]})
                for t in rule.get("transitions", [])
            ]
            or None,
            "NoncurrentVersionExpiration": drop_none(
                {
                    "NoncurrentDays": noncurrent.get("noncurrentDays"),
                    "NewerNoncurrentVersions": noncurrent.get("newerNoncurrentVersions"),
                }
            )
            or None,
            "NoncurrentVersionTransitions": [
                drop_none({"NoncurrentDays": t.get("noncurrentDays"), "StorageClass": t["storageClass"]})
                for t in rule.get("noncurrentVersionTransitions", [])
            ]
            or None,
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort["daysAfterInitiation"]} if abort else None,
        }
    )


def _lifecycle(aws: Aws, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketLifecycleConfiguration."""
    found = aws.client("s3").get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    by_id = {r.get("ID"): r for r in found}
    return {
        "rules": [{**r, "status": by_id.get(r.get("id"), {}).get("Status", r.get("status"))} for r in inputs.get("rules") or []]
    }


def create_lifecycle(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketLifecycleConfiguration -> PutBucketLifecycleConfiguration, read back with its Get."""
    name = req.get("bucket")
    aws.client("s3").put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in req.get("rules", [])]}
    )
    return described(aws, req, name, _lifecycle)


read_lifecycle = read_by(_lifecycle, _NO_BUCKET, "NoSuchLifecycleConfiguration")
delete_lifecycle = delete_call("s3", "delete_bucket_lifecycle", "Bucket", _NO_BUCKET, "NoSuchLifecycleConfiguration")


# --- aws:s3/bucketLogging:BucketLogging -----------------------------------------------------------------


def _logging(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetBucketLogging; gone when logging is off."""
    found = aws.client("s3").get_bucket_logging(Bucket=name).get("LoggingEnabled")
    if not found:
        raise GoneError(f"{name} has no access logging")
    return {"targetBucket": found.get("TargetBucket"), "targetPrefix": found.get("TargetPrefix", "")}


def create_logging(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketLogging:BucketLogging -> PutBucketLogging, read back with GetBucketLogging."""
    name = req.get("bucket")
    key_format = req.get("targetObjectKeyFormat") or {}
    partitioned = key_format.get("partitionedPrefix")
    moto_fixes.put_bucket_logging(
        aws,
        name,
        {
            "LoggingEnabled": drop_none(
                {
                    "TargetBucket": req.get("targetBucket"),
                    "TargetPrefix": req.get("targetPrefix", ""),
                    "TargetObjectKeyFormat": (
                        {"PartitionedPrefix": drop_none({"PartitionDateSource": partitioned.get("partitionDateSource")})}
                        if partitioned is not None
                        else {"SimplePrefix": {}}
                    )
                    if key_format
                    else None,
                }
            )
        },
    )
    return described(aws, req, name, _logging)


read_logging = read_by(_logging, _NO_BUCKET)
# PutBucketLogging with an empty status (logging off): the API has no delete call for it.
delete_logging = delete_call("s3", "put_bucket_logging", "Bucket", _NO_BUCKET, BucketLoggingStatus={})


# --- aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration ----------------------------------


def _object_lock(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetObjectLockConfiguration (object lock, once on, stays on; deleting this removes the default retention)."""
    found = aws.client("s3").get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    retention = (found.get("Rule") or {}).get("DefaultRetention")
    return {
        "objectLockEnabled": found.get("ObjectLockEnabled"),
        "rule": {
            "defaultRetention": drop_none(
                {"mode": retention.get("Mode"), "days": retention.get("Days"), "years": retention.get("Years")}
            )
        }
        if retention
        else None,
    }


def create_object_lock(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketObjectLockConfiguration -> PutObjectLockConfiguration, read back with its Get."""
    name = req.get("bucket")
    retention = (req.get("rule") or {}).get("defaultRetention") or {}
    aws.client("s3").put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration=drop_none(
            {
                "ObjectLockEnabled": req.get("objectLockEnabled", "Enabled"),
                "Rule": {
                    "DefaultRetention": drop_none(
                        {"Mode": retention.get("mode"), "Days": retention.get("days"), "Years": retention.get("years")}
                    )
                }
                if retention
                else None,
            }
        ),
    )
    return described(aws, req, name, _object_lock)


read_object_lock = read_by(_object_lock, _NO_BUCKET, "ObjectLockConfigurationNotFoundError")
# PutObjectLockConfiguration without a rule, as the provider does: object lock cannot be switched off.
delete_object_lock = delete_call(
    "s3",
    "put_object_lock_configuration",
    "Bucket",
    _NO_BUCKET,
    "ObjectLockConfigurationNotFoundError",
    ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"},
)


RESOURCES = (
    ResourceHandler("aws:s3/bucket:Bucket", create_bucket, read_bucket, delete_bucket),
    ResourceHandler("aws:s3/bucketPolicy:BucketPolicy", create_bucket_policy, read_bucket_policy, delete_bucket_policy),
    ResourceHandler(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        create_public_access_block,
        read_public_access_block,
        delete_public_access_block,
    ),
    ResourceHandler(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        create_ownership_controls,
        read_ownership_controls,
        delete_ownership_controls,
    ),
    ResourceHandler(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        create_encryption,
        read_encryption,
        delete_encryption,
    ),
    ResourceHandler("aws:s3/bucketVersioning:BucketVersioning", create_versioning, read_versioning, delete_versioning),
    ResourceHandler(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", create_lifecycle, read_lifecycle, delete_lifecycle
    ),
    ResourceHandler("aws:s3/bucketLogging:BucketLogging", create_logging, read_logging, delete_logging),
    ResourceHandler(
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        create_object_lock,
        read_object_lock,
        delete_object_lock,
    ),
)
