"""S3: buckets and their policy, public access block, ownership, encryption, versioning, lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list

# Route 53 hosted zone ids of the S3 website endpoints; published constants the provider also hardcodes.
S3_HOSTED_ZONES = {
    "us-east-1": "Z3AQBSTGFYJSTF",
    "us-east-2": "Z2O1EMRO9K5GLX",
    "us-west-2": "Z3BJ6K6RIION7M",
    "eu-west-1": "Z1BKCTXD74EZPE",
}


def bucket(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
    return name, state(
        req,
        bucket=name,
        arn=f"arn:{aws.partition}:s3:::{name}",
        bucketDomainName=f"{name}.s3.amazonaws.com",
        bucketRegionalDomainName=f"{name}.s3.{region}.amazonaws.com",
        bucketRegion=region,
        region=region,
        hostedZoneId=S3_HOSTED_ZONES.get(region),
        forceDestroy=bool(req.get("forceDestroy", False)),
    )


def bucket_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketPolicy:BucketPolicy -> PutBucketPolicy, read back with GetBucketPolicy."""
    s3 = aws.client("s3")
    name = req.get("bucket")
    s3.put_bucket_policy(Bucket=name, Policy=as_json(req.get("policy")))
    return name, state(req, policy=s3.get_bucket_policy(Bucket=name)["Policy"])


def public_access_block(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock -> PutPublicAccessBlock."""
    s3 = aws.client("s3")
    name = req.get("bucket")
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(req.get("blockPublicAcls", False)),
            "BlockPublicPolicy": bool(req.get("blockPublicPolicy", False)),
            "IgnorePublicAcls": bool(req.get("ignorePublicAcls", False)),
            "RestrictPublicBuckets": bool(req.get("restrictPublicBuckets", False)),
        },
    )
    found = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    return name, state(
        req,
        blockPublicAcls=found["BlockPublicAcls"],
        blockPublicPolicy=found["BlockPublicPolicy"],
        ignorePublicAcls=found["IgnorePublicAcls"],
        restrictPublicBuckets=found["RestrictPublicBuckets"],
    )


def ownership_controls(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketOwnershipControls:BucketOwnershipControls -> PutBucketOwnershipControls."""
    s3 = aws.client("s3")
    name = req.get("bucket")
    rule = req.get("rule") or {}
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": rule.get("objectOwnership")}]})
    found = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"][0]
    return name, state(req, rule={"objectOwnership": found["ObjectOwnership"]})


def encryption(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketServerSideEncryptionConfiguration -> PutBucketEncryption, read back with GetBucketEncryption."""
    s3 = aws.client("s3")
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
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    found = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    return name, state(
        req,
        rules=[
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
        ],
    )


def versioning(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketVersioning:BucketVersioning -> PutBucketVersioning, read back with GetBucketVersioning."""
    s3 = aws.client("s3")
    name = req.get("bucket")
    config = req.get("versioningConfiguration") or {}
    s3.put_bucket_versioning(
        Bucket=name,
        VersioningConfiguration=drop_none({"Status": config.get("status"), "MFADelete": config.get("mfaDelete")}),
    )
    found = s3.get_bucket_versioning(Bucket=name)
    return name, state(
        req,
        versioningConfiguration=drop_none({"status": found.get("Status"), "mfaDelete": found.get("MFADelete")}),
    )


def _filter(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """A lifecycle rule ``filter`` block -> the API's Filter (empty prefix = whole bucket)."""
    if not raw:
        return {"Prefix": ""}
    if raw.get("and"):
        conj = raw["and"]
        return {
            "And": drop_none(
                {
                    "Prefix": conj.get("prefix"),
                    "Tags": tag_list(conj.get("tags")) or None,
                    "ObjectSizeGreaterThan": conj.get("objectSizeGreaterThan"),
                    "ObjectSizeLessThan": conj.get("objectSizeLessThan"),
                }
            )
        }
    if raw.get("tag"):
        return {"Tag": {"Key": raw["tag"]["key"], "Value": raw["tag"]["value"]}}
    out = drop_none(
        {
            "Prefix": raw.get("prefix"),
            "ObjectSizeGreaterThan": raw.get("objectSizeGreaterThan"),
            "ObjectSizeLessThan": raw.get("objectSizeLessThan"),
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
                    "Days": expiration.get("days"),
                    "Date": expiration.get("date"),
                    "ExpiredObjectDeleteMarker": expiration.get("expiredObjectDeleteMarker"),
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


def lifecycle(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:s3/bucketLifecycleConfiguration -> PutBucketLifecycleConfiguration, read back with its Get."""
    s3 = aws.client("s3")
    name = req.get("bucket")
    s3.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in req.get("rules", [])]}
    )
    found = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    by_id = {r.get("ID"): r for r in found}
    rules = [{**r, "status": by_id.get(r.get("id"), {}).get("Status", r.get("status"))} for r in req.get("rules", [])]
    return name, state(req, rules=rules)


HANDLERS = {
    "aws:s3/bucket:Bucket": bucket,
    "aws:s3/bucketPolicy:BucketPolicy": bucket_policy,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": public_access_block,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ownership_controls,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": encryption,
    "aws:s3/bucketVersioning:BucketVersioning": versioning,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": lifecycle,
}
