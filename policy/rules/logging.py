"""Logging guardrails (PCI DSS 4.0 Req 3.5, 4.2 and 10): audit logs exist, are kept long enough,
are encrypted and cannot be read publicly, rewritten or fetched over plain HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.base import (
    DEFAULT_PARAMS,
    Params,
    ResourceRule,
    Rule,
    StackResource,
    StackRule,
    Violation,
    as_int,
    as_list,
    as_map,
    by_type,
    is_customer_managed_key,
    is_true,
    pci,
    statements,
)

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
TRAIL = "aws:cloudtrail/trail:Trail"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")

PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
#: SSE-S3 is allowed: ALB access logs can only be delivered to SSE-S3 buckets.
SSE_ALGORITHMS: frozenset[str] = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def log_group_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """CloudWatch log groups are encrypted with a customer-managed KMS key."""
    if not is_customer_managed_key(props.get("kmsKeyId")):
        return [pci("3.5.1", "log group is not encrypted with a customer-managed KMS key (kmsKeyId)")]
    return []


def log_group_retention(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Log groups keep events for at least the environment's minimum (0 or unset means forever)."""
    days = as_int(props.get("retentionInDays")) or 0
    if 0 < days < params.min_log_retention_days:
        return [
            pci(
                "10.5.1",
                f"log group keeps events for {days} days (retentionInDays); "
                f"at least {params.min_log_retention_days} are required",
            )
        ]
    return []


def vpc_flow_logs(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every VPC records all its traffic in flow logs."""
    violations = []
    flow_logs = by_type(resources, FLOW_LOG)
    for vpc in by_type(resources, VPC):
        own = [f for f in flow_logs if f.props.get("vpcId") in vpc.keys()]
        if not own:
            violations.append(Violation(vpc.name, pci("10.2.1", "VPC has no flow log"), vpc.urn))
        elif not any(str(f.props.get("trafficType", "")).upper() == "ALL" for f in own):
            violations.append(
                Violation(vpc.name, pci("10.2.1", "VPC flow logs do not record ALL traffic (trafficType)"), vpc.urn)
            )
    return violations


def cloudtrail_log_file_validation(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """CloudTrail signs its log files so tampering is detectable, and encrypts them with a CMK."""
    messages = []
    if not is_true(props.get("enableLogFileValidation")):
        messages.append(pci("10.3.4", "CloudTrail log file validation is off (enableLogFileValidation is not true)"))
    if not is_customer_managed_key(props.get("kmsKeyId")):
        messages.append(pci("10.3.4", "CloudTrail logs are not encrypted with a customer-managed KMS key (kmsKeyId)"))
    return messages


def _for_bucket(resources: Sequence[StackResource], bucket: StackResource, *types: str) -> list[StackResource]:
    """The sub-resources (public access block, policy, encryption, versioning) of ``bucket``."""
    keys = bucket.keys()
    return [r for r in by_type(resources, *types) if r.props.get("bucket") in keys]


def s3_public_access_blocked(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every bucket has a public access block with all four settings on."""
    violations = []
    for bucket in by_type(resources, *BUCKETS):
        blocks = _for_bucket(resources, bucket, PUBLIC_ACCESS_BLOCK)
        if not blocks:
            violations.append(Violation(bucket.name, pci("10.3.1", "bucket has no public access block"), bucket.urn))
            continue
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not all(is_true(b.props.get(flag)) for b in blocks)]
        if off:
            violations.append(
                Violation(bucket.name, pci("10.3.1", f"bucket public access block leaves {', '.join(off)} off"), bucket.urn)
            )
    return violations


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    actions = as_list(statement.get("Action"))
    if not ("s3:*" in actions or "*" in actions):
        return False
    condition = as_map(as_map(statement.get("Condition")).get("Bool"))
    return str(condition.get("aws:SecureTransport", "")).lower() == "false"


def s3_tls_only(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every bucket policy denies requests that do not use TLS (aws:SecureTransport false)."""
    violations = []
    for bucket in by_type(resources, *BUCKETS):
        policies = _for_bucket(resources, bucket, BUCKET_POLICY)
        if not any(_denies_plain_http(s) for p in policies for s in statements(p.props.get("policy"))):
            violations.append(
                Violation(
                    bucket.name,
                    pci("4.2.1", "bucket policy does not deny s3:* when aws:SecureTransport is false"),
                    bucket.urn,
                )
            )
    return violations


def _algorithms(rules: Any) -> set[str]:
    found = set()
    for rule in as_list(rules):
        default = as_map(as_map(rule).get("applyServerSideEncryptionByDefault"))
        if default.get("sseAlgorithm"):
            found.add(str(default["sseAlgorithm"]))
    return found


def s3_encrypted(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every bucket has default server-side encryption."""
    violations = []
    for bucket in by_type(resources, *BUCKETS):
        algorithms = _algorithms(as_map(bucket.props.get("serverSideEncryptionConfiguration")).get("rule"))
        for config in _for_bucket(resources, bucket, *ENCRYPTION):
            algorithms |= _algorithms(config.props.get("rules"))
        if not algorithms & SSE_ALGORITHMS:
            violations.append(
                Violation(bucket.name, pci("10.3.2", "bucket has no default server-side encryption configuration"), bucket.urn)
            )
    return violations


def s3_versioned(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every bucket keeps object versions, so a log cannot be silently overwritten."""
    violations = []
    for bucket in by_type(resources, *BUCKETS):
        enabled = is_true(as_map(bucket.props.get("versioning")).get("enabled")) or any(
            as_map(v.props.get("versioningConfiguration")).get("status") == "Enabled"
            for v in _for_bucket(resources, bucket, *VERSIONING)
        )
        if not enabled:
            violations.append(Violation(bucket.name, pci("10.3.3", "bucket versioning is not enabled"), bucket.urn))
    return violations


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "log-group-encrypted-with-cmk",
        "logging",
        "3.5.1",
        "CloudWatch log groups are encrypted with a customer-managed KMS key.",
        (LOG_GROUP,),
        log_group_encrypted_with_cmk,
    ),
    ResourceRule(
        "log-group-retention",
        "logging",
        "10.5.1",
        "CloudWatch log groups keep events for the minimum retention.",
        (LOG_GROUP,),
        log_group_retention,
        ("min_log_retention_days",),
    ),
    StackRule("vpc-flow-logs", "logging", "10.2.1", "VPCs record all traffic in flow logs.", (VPC,), vpc_flow_logs),
    ResourceRule(
        "cloudtrail-log-file-validation",
        "logging",
        "10.3.4",
        "CloudTrail validates and encrypts its log files.",
        (TRAIL,),
        cloudtrail_log_file_validation,
    ),
    StackRule(
        "s3-public-access-blocked",
        "logging",
        "10.3.1",
        "S3 (log) buckets block all public access.",
        BUCKETS,
        s3_public_access_blocked,
    ),
    StackRule("s3-tls-only", "logging", "4.2.1", "S3 (log) bucket policies deny plain HTTP.", BUCKETS, s3_tls_only),
    StackRule("s3-encrypted", "logging", "10.3.2", "S3 (log) buckets have default encryption.", BUCKETS, s3_encrypted),
    StackRule("s3-versioned", "logging", "10.3.3", "S3 (log) buckets keep object versions.", BUCKETS, s3_versioned),
)
