"""Logging guardrails (PCI DSS 4.0 Req 3.5, 4.2 and 10): audit logs exist, are kept long enough,
are encrypted and cannot be read publicly, rewritten or fetched over plain HTTP; the audit buckets are
locked, CloudTrail can actually deliver to them, and every alarm reaches somebody.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, StackResource, StackRule, Violation, pci
from policy.rules.readers import as_int, as_list, as_map, by_type, find, is_customer_managed_key, is_true, statements

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
OBJECT_LOCK = (
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
)
LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
ACCESS_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
CONFIG_DELIVERY_CHANNEL = "aws:cfg/deliveryChannel:DeliveryChannel"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
ECS_CLUSTER = "aws:ecs/cluster:Cluster"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

#: Who writes audit logs to S3, and what a message calls them.
AUDIT_LOG_WRITERS: dict[str, str] = {TRAIL: "CloudTrail", CONFIG_DELIVERY_CHANNEL: "AWS Config"}
#: S3 Object Lock retention given in years counts 365 days a year.
DAYS_PER_YEAR = 365
CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"
#: Container Insights settings that make ECS write performance log events.
CONTAINER_INSIGHTS_ON: frozenset[str] = frozenset({"enabled", "enhanced"})

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


def _audit_buckets(resources: Sequence[StackResource]) -> Iterator[tuple[StackResource, str, Any, StackResource | None]]:
    """(writer, writer label, bucket reference, bucket or None) for every trail and Config delivery channel."""
    for writer in by_type(resources, *AUDIT_LOG_WRITERS):
        reference = writer.props.get("s3BucketName")
        yield writer, AUDIT_LOG_WRITERS[writer.type], reference, find(resources, reference, *BUCKETS)


def _retention_days(lock: StackResource) -> int | None:
    """The default retention of an Object Lock configuration in days (years count 365 days); None if unset."""
    for rule in as_list(lock.props.get("rule")):
        retention = as_map(as_map(rule).get("defaultRetention"))
        days, years = as_int(retention.get("days")), as_int(retention.get("years"))
        if days is not None:
            return days
        if years is not None:
            return years * DAYS_PER_YEAR
    return None


def _lock_problems(resources: Sequence[StackResource], bucket: StackResource, params: Params) -> list[str]:
    """What an audit log bucket lacks: Object Lock, enough default retention, a lifecycle, access logging."""
    problems = []
    if not is_true(bucket.props.get("objectLockEnabled")):
        problems.append("does not enable S3 Object Lock (objectLockEnabled is not true)")
    retentions = [days for lock in _for_bucket(resources, bucket, *OBJECT_LOCK) if (days := _retention_days(lock)) is not None]
    if not retentions:
        problems.append("has no default Object Lock retention (BucketObjectLockConfiguration)")
    elif max(retentions) < params.min_log_retention_days:
        problems.append(
            f"locks objects for {max(retentions)} days by default (BucketObjectLockConfiguration); "
            f"at least {params.min_log_retention_days} are required"
        )
    if not _for_bucket(resources, bucket, *LIFECYCLE):
        problems.append("has no lifecycle configuration (BucketLifecycleConfiguration)")
    if not _for_bucket(resources, bucket, *ACCESS_LOGGING):
        problems.append("has no server access logging (BucketLogging)")
    return problems


def audit_buckets_locked(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Buckets that receive CloudTrail or AWS Config logs are Object-Locked for the retention, expire and log access.

    Versioning alone lets anyone with s3:DeleteObjectVersion erase the audit trail; Object Lock makes
    every log object unchangeable for the retention PCI DSS 10.5.1 asks for.
    """
    violations = []
    writers_of: dict[str, list[str]] = {}
    buckets: dict[str, StackResource] = {}
    for writer, label, reference, bucket in _audit_buckets(resources):
        if bucket is None:
            violations.append(
                Violation(
                    writer.name,
                    pci(
                        "10.5.1",
                        f"{label} '{writer.name}' writes to bucket '{reference or '<none>'}' that is not part of this "
                        "stack; its Object Lock, retention, lifecycle and access logging cannot be checked",
                    ),
                    writer.urn,
                )
            )
            continue
        buckets.setdefault(bucket.name, bucket)
        if label not in writers_of.setdefault(bucket.name, []):
            writers_of[bucket.name].append(label)
    for name, bucket in buckets.items():
        what = " and ".join(writers_of[name])
        violations.extend(
            Violation(bucket.name, pci("10.5.1", f"{what} log bucket {problem}"), bucket.urn)
            for problem in _lock_problems(resources, bucket, params)
        )
    return violations


def _bucket_key_references(resources: Sequence[StackResource], bucket: StackResource) -> list[str]:
    """The KMS keys of the bucket's SSE-KMS default-encryption rules that have an S3 Bucket Key on."""
    rules = as_list(as_map(bucket.props.get("serverSideEncryptionConfiguration")).get("rule"))
    for config in _for_bucket(resources, bucket, *ENCRYPTION):
        rules += as_list(config.props.get("rules"))
    references = []
    for rule in rules:
        default = as_map(as_map(rule).get("applyServerSideEncryptionByDefault"))
        if str(default.get("sseAlgorithm") or "").startswith("aws:kms") and is_true(as_map(rule).get("bucketKeyEnabled")):
            references.append(str(default.get("kmsMasterKeyId") or ""))
    return references


def _kms_key(resources: Sequence[StackResource], reference: str) -> StackResource | None:
    """The stack's KMS key a reference names: by ARN or id, or through an alias (name or ARN)."""
    key = find(resources, reference, KMS_KEY) or next(
        (k for k in by_type(resources, KMS_KEY) if reference and k.props.get("keyId") == reference), None
    )
    if key is None:
        alias = find(resources, reference, KMS_ALIAS)
        target = alias.props.get("targetKeyId") if alias else None
        if isinstance(target, str) and target != reference:
            return _kms_key(resources, target)
    return key


def _allows_service(document: Any, service: str, action: str) -> bool:
    """True when a key policy has an Allow statement giving service principal ``service`` the ``action``."""
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal != "*" and service not in as_list(as_map(principal).get("Service")):
            continue
        # IAM action names are case-insensitive and may use wildcards (kms:*, kms:Decrypt*).
        if any(isinstance(a, str) and fnmatchcase(action.lower(), a.lower()) for a in as_list(statement.get("Action"))):
            return True
    return False


def cloudtrail_bucket_key_decrypt(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """A trail whose bucket encrypts with an S3 Bucket Key can use the key: its policy grants CloudTrail kms:Decrypt.

    With a Bucket Key, CloudTrail needs kms:Decrypt on the bucket's key (CloudTrail's "Configure AWS
    KMS key policies"); without it log delivery fails and the audit trail silently stops.
    """
    violations = []
    for trail in by_type(resources, TRAIL):
        bucket = find(resources, trail.props.get("s3BucketName"), *BUCKETS)
        if bucket is None:  # audit-buckets-locked reports a bucket outside the stack
            continue
        for reference in _bucket_key_references(resources, bucket):
            key = _kms_key(resources, reference)
            if key is None:
                problem = (
                    f" with KMS key '{reference or 'aws/s3'}' that is not part of this stack; "
                    f"its key policy must allow {CLOUDTRAIL_SERVICE} kms:Decrypt"
                )
            elif not _allows_service(key.props.get("policy"), CLOUDTRAIL_SERVICE, "kms:Decrypt"):
                problem = (
                    f", but the policy of KMS key '{key.name}' does not allow {CLOUDTRAIL_SERVICE} kms:Decrypt; "
                    "CloudTrail cannot deliver its log files"
                )
            else:
                continue
            violations.append(
                Violation(
                    trail.name,
                    pci("10.2.1", f"CloudTrail bucket '{bucket.name}' uses an S3 Bucket Key{problem}"),
                    trail.urn,
                )
            )
    return violations


def container_insights_log_group(cluster_name: str) -> str:
    """The log group Container Insights writes a cluster's performance events to (fixed by AWS)."""
    return f"/aws/ecs/containerinsights/{cluster_name}/performance"


def container_insights_logs_managed(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """A cluster with Container Insights has its performance log group in the stack, encrypted with a CMK.

    Otherwise Container Insights creates the group on the first metric: unencrypted, never expiring,
    and outside the stack.
    """
    violations = []
    groups = by_type(resources, LOG_GROUP)
    for cluster in by_type(resources, ECS_CLUSTER):
        settings = [as_map(x) for x in as_list(cluster.props.get("settings"))]
        if not any(
            x.get("name") == "containerInsights" and str(x.get("value") or "").lower() in CONTAINER_INSIGHTS_ON for x in settings
        ):
            continue
        expected = container_insights_log_group(str(cluster.props.get("name") or cluster.name))
        group = next((g for g in groups if g.props.get("name") == expected), None)
        if group is None:
            problem = (
                f"ECS cluster has Container Insights on but the stack does not create its log group '{expected}'; "
                "Container Insights would create it unencrypted and keep it forever"
            )
        elif not is_customer_managed_key(group.props.get("kmsKeyId")):
            problem = f"Container Insights log group '{expected}' is not encrypted with a customer-managed KMS key (kmsKeyId)"
        else:
            continue
        violations.append(Violation(cluster.name, pci("10.3.2", problem), cluster.urn))
    return violations


def alarm_topic_has_subscriber(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every SNS topic a metric alarm notifies has at least one subscription: an alarm nobody receives detects nothing."""
    alarms_of: dict[str, list[StackResource]] = {}
    topics: dict[str, tuple[str, str, set[str]]] = {}  # label -> (violation resource, urn, keys)
    for alarm in by_type(resources, METRIC_ALARM):
        for action in as_list(alarm.props.get("alarmActions")):
            topic = find(resources, action, TOPIC)
            if topic is not None:
                label, entry = topic.name, (topic.name, topic.urn, topic.keys())
            elif isinstance(action, str) and ":sns:" in action:
                label, entry = action, (alarm.name, alarm.urn, {action})
            else:  # an Auto Scaling, EC2 or Systems Manager action, not a notification
                continue
            topics.setdefault(label, entry)
            if alarm not in alarms_of.setdefault(label, []):
                alarms_of[label].append(alarm)
    subscribed = {s.props.get("topic") for s in by_type(resources, TOPIC_SUBSCRIPTION)}
    violations = []
    for label, (resource, urn, keys) in topics.items():
        if not keys & subscribed:
            violations.append(
                Violation(
                    resource,
                    pci(
                        "10.7.2",
                        f"SNS topic '{label}' is the alarm action of {len(alarms_of[label])} CloudWatch alarm(s) "
                        "but has no subscription (TopicSubscription); nobody receives the alarms",
                    ),
                    urn,
                )
            )
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
    StackRule(
        "audit-buckets-locked",
        "logging",
        "10.5.1",
        "CloudTrail and AWS Config buckets have Object Lock for the log retention, a lifecycle and access logging.",
        tuple(AUDIT_LOG_WRITERS),
        audit_buckets_locked,
        ("min_log_retention_days",),
    ),
    StackRule(
        "cloudtrail-bucket-key-decrypt",
        "logging",
        "10.2.1",
        "A trail's bucket with an S3 Bucket Key uses a KMS key whose policy lets CloudTrail decrypt.",
        (TRAIL,),
        cloudtrail_bucket_key_decrypt,
    ),
    StackRule(
        "container-insights-logs-managed",
        "logging",
        "10.3.2",
        "ECS clusters with Container Insights have their performance log group in the stack, KMS-encrypted.",
        (ECS_CLUSTER,),
        container_insights_logs_managed,
    ),
    StackRule(
        "alarm-topic-has-subscriber",
        "logging",
        "10.7.2",
        "Every SNS topic that CloudWatch alarms notify has at least one subscription.",
        (METRIC_ALARM,),
        alarm_topic_has_subscriber,
    ),
)
