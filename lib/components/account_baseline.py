"""Account security: GuardDuty, AWS Config with PCI DSS rules, CloudTrail (staging and prod).

The GuardDuty detector and the AWS Config recorder and delivery channel exist once per account
and region. ``manage_account_singletons`` decides whether this stack owns them (and the trail that
goes with them) or relies on the account's existing ones, so that a second stack in the same
account (an ephemeral ``-pr123`` copy, say) can be deployed next to the first.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.components.base import (
    Component,
    Context,
    GuardedArgs,
    child_opts,
    encrypted_log_group,
    guarded_opts,
)
from lib.components.buckets import KMS_PER_OBJECT, KMS_WITH_BUCKET_KEY, S3_MANAGED, PrivateBucket, expire_after, private_bucket
from lib.config import AccountSecuritySettings
from lib.iam_policies import log_stream_arn, policy_document, policy_statement, service_assume_role_policy
from lib.naming import NameKind
from lib.resource_policies import (
    CLOUDTRAIL_SERVICE,
    CONFIG_SERVICE,
    cloudtrail_bucket_policy,
    cloudtrail_trail_arn,
    config_bucket_policy,
    s3_bucket_arn,
    server_access_logs_bucket_policy,
)

COMPONENT = "account-security"

#: GuardDuty protection plans beyond the foundational sources: RDS Protection (Aurora login
#: anomalies) and S3 Protection (data-event anomalies on the log and delivery buckets).
GUARDDUTY_FEATURES: tuple[str, ...] = ("RDS_LOGIN_EVENTS", "S3_DATA_EVENTS")

#: The AWS managed policy Config's recorder role needs to read resource configurations.
CONFIG_MANAGED_POLICY = "policy/service-role/AWS_ConfigRole"

#: Audit logs stay in S3 Standard for the three months PCI DSS 10.5.1 wants "immediately available",
#: then move to Glacier Instant Retrieval (still read in milliseconds) until they expire.
AUDIT_ARCHIVE_AFTER_DAYS = 90

#: CloudTrail Insights: anomalies in the rate of API calls and of API errors (a compromised credential
#: enumerating, a runaway deploy).
CLOUDTRAIL_INSIGHT_TYPES: tuple[str, ...] = ("ApiCallRateInsight", "ApiErrorRateInsight")

#: Key prefix of each audit bucket's server access logs inside the access-log bucket.
ACCESS_LOG_PREFIX = "s3-access/"


def _bucket_name(ctx: Context, component: str, account_id: str) -> str:
    return ctx.namer.bucket(component, account_id)


def object_lock_mode(protect: bool) -> str:
    """COMPLIANCE where the environment is protected (nobody, root included, can shorten or lift it);
    GOVERNANCE elsewhere, so that an unprotected copy can still be torn down (with the bypass permission)."""
    return "COMPLIANCE" if protect else "GOVERNANCE"


@dataclass(frozen=True)
class ManagedRule:
    """An AWS Config managed rule and the PCI DSS v4.0 requirement it gives evidence for."""

    identifier: str
    pci_requirement: str
    description: str

    @property
    def slug(self) -> str:
        """The rule's identifier as a name component, e.g. ``rds-storage-encrypted``."""
        return self.identifier.lower().replace("_", "-")


#: Managed rules for the controls this stack implements (source owner AWS, default parameters).
#: Settings that legitimately differ per environment (deletion protection: off in staging) are left
#: out so that a finding always means drift, never a deliberate choice.
MANAGED_RULES: tuple[ManagedRule, ...] = (
    ManagedRule("RDS_STORAGE_ENCRYPTED", "3.5.1", "Aurora storage is encrypted at rest"),
    ManagedRule("RDS_INSTANCE_PUBLIC_ACCESS_CHECK", "1.4.4", "No database instance is publicly accessible"),
    ManagedRule("ELASTICACHE_REPL_GRP_ENCRYPTED_AT_REST", "3.5.1", "Redis replication groups are encrypted at rest"),
    ManagedRule("ELASTICACHE_REPL_GRP_ENCRYPTED_IN_TRANSIT", "4.2.1", "Redis replication groups use TLS"),
    ManagedRule("S3_BUCKET_SSL_REQUESTS_ONLY", "4.2.1", "S3 buckets refuse requests without TLS"),
    ManagedRule("S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED", "1.4.4", "S3 buckets block public access"),
    ManagedRule("ALB_HTTP_TO_HTTPS_REDIRECTION_CHECK", "4.2.1", "ALB HTTP listeners only redirect to HTTPS"),
    ManagedRule("ALB_WAF_ENABLED", "6.4.2", "A WAF web ACL protects the ALB"),
    ManagedRule("VPC_FLOW_LOGS_ENABLED", "10.2.1", "VPC flow logs are enabled"),
    ManagedRule("VPC_DEFAULT_SECURITY_GROUP_CLOSED", "1.3.1", "Default security groups allow no traffic"),
    ManagedRule("CLOUDWATCH_LOG_GROUP_ENCRYPTED", "10.3.2", "CloudWatch log groups are encrypted with KMS"),
    ManagedRule("CMK_BACKING_KEY_ROTATION_ENABLED", "3.7.4", "Customer-managed KMS keys rotate"),
    ManagedRule("CLOUD_TRAIL_ENABLED", "10.2.1", "CloudTrail is enabled"),
    ManagedRule("CLOUD_TRAIL_ENCRYPTION_ENABLED", "10.3.2", "CloudTrail log files are encrypted with KMS"),
    ManagedRule("CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", "10.3.4", "CloudTrail log file integrity validation is on"),
    ManagedRule("IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS", "7.2.1", "No customer policy grants *:*"),
    ManagedRule("GUARDDUTY_ENABLED_CENTRALIZED", "11.5.1", "GuardDuty threat detection is enabled"),
)


# --- IAM documents of the two service roles (pure, tested without mocks) ---------------------


def config_assume_role_policy(account_id: str) -> dict[str, Any]:
    """Trust policy of the Config recorder role: the Config service, on behalf of this account only."""
    # Confused-deputy guard documented for Config's role ("Permissions for the IAM role").
    return service_assume_role_policy("ConfigAssumeRole", CONFIG_SERVICE, {"StringEquals": {"aws:SourceAccount": account_id}})


def config_delivery_role_policy(bucket: str, account_id: str, audit_key_arn: str, partition: str = "aws") -> dict[str, Any]:
    """Inline policy of the Config recorder role: deliver to the stack's bucket, encrypted with the audit key.

    Config delivers with the recorder's role when the bucket is in the same account, so the role
    (not only the bucket policy) must allow the write and the SSE-KMS data key.
    """
    bucket_arn = s3_bucket_arn(bucket, partition)
    return policy_document(
        policy_statement("CheckDeliveryBucket", ["s3:GetBucketAcl", "s3:ListBucket"], resource=bucket_arn),
        policy_statement(
            "DeliverSnapshots",
            ["s3:PutObject"],
            resource=f"{bucket_arn}/AWSLogs/{account_id}/Config/*",
            condition={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        ),
        policy_statement("EncryptWithAuditKey", ["kms:Decrypt", "kms:GenerateDataKey"], resource=audit_key_arn),
    )


def cloudtrail_assume_role_policy() -> dict[str, Any]:
    """Trust policy of the role CloudTrail uses to write to CloudWatch Logs.

    No source condition: CloudTrail documents this trust without one, and only accepts a role of
    the trail's own account; the role can do nothing but write to one log group.
    """
    return service_assume_role_policy("CloudTrailAssumeRole", CLOUDTRAIL_SERVICE)


def cloudtrail_logs_role_policy(log_group_arn: str) -> dict[str, Any]:
    """Inline policy of CloudTrail's role: create streams and put events in exactly one log group."""
    if not log_group_arn.startswith("arn:"):
        raise ValueError(f"log_group_arn must be the log group's ARN, got {log_group_arn!r}")
    streams = log_stream_arn(log_group_arn)
    return policy_document(policy_statement("WriteTrailEvents", ["logs:CreateLogStream", "logs:PutLogEvents"], resource=streams))


def cloudtrail_log_group_name(ctx: Context) -> str:
    """``/aws/cloudtrail/scalepay-cloudtrail-<env>[-<suffix>]``."""
    return f"/aws/cloudtrail/{ctx.name('cloudtrail')}"


@dataclass(frozen=True, kw_only=True)
class AccountBaselineArgs(GuardedArgs):
    """Inputs of :class:`AccountBaseline`."""

    settings: AccountSecuritySettings
    account_id: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]


class AccountBaseline(Component):
    """GuardDuty detector, Config recorder + delivery channel + rules, CloudTrail trail.

    With ``manage_account_singletons`` false the stack creates none of the per-account
    singletons and reports the account's existing detector and recorder instead. The Config rules
    are created either way: they are per stack (named after it), need only some recorder in the
    account, and give each stack its own compliance evidence.
    """

    guardduty_detector_id: pulumi.Output[str]
    config_recorder_name: pulumi.Output[str]
    cloudtrail_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AccountBaselineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:account:AccountBaseline", name, None, opts)
        self._args = args
        ctx = args.context
        self._account_id = pulumi.Output.from_input(args.account_id)
        self._partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition

        recorder: aws.cfg.Recorder | None = None
        if args.settings.manage_account_singletons:
            self._access_logs = self._access_log_bucket()
            detector = self._guardduty()
            recorder = self._config_recorder()
            trail = self._cloudtrail()
            self.guardduty_detector_id = detector.id
            self.config_recorder_name = recorder.name
            self.cloudtrail_arn = trail.arn
        else:
            existing = aws.guardduty.get_detector_output(opts=pulumi.InvokeOutputOptions(parent=self))
            self.guardduty_detector_id = existing.id
            self.config_recorder_name = pulumi.Output.from_input(args.settings.existing_config_recorder_name)
            self.cloudtrail_arn = None

        for rule in MANAGED_RULES:
            aws.cfg.Rule(
                rule.slug,
                name=ctx.name(rule.slug),
                description=f"PCI DSS {rule.pci_requirement}: {rule.description}",
                source=aws.cfg.RuleSourceArgs(owner="AWS", source_identifier=rule.identifier),
                tags=ctx.tags(COMPONENT),
                # A rule cannot be created before a recorder exists (NoAvailableConfigurationRecorder).
                opts=child_opts(self, pulumi.ResourceOptions(depends_on=[recorder] if recorder else [])),
            )

        self.finish()

    # --- GuardDuty -------------------------------------------------------------------------------

    def _guardduty(self) -> aws.guardduty.Detector:
        """The account's detector, publishing findings every 15 minutes, with RDS and S3 protection."""
        ctx = self._args.context
        detector = aws.guardduty.Detector(
            "guardduty",
            enable=True,
            # The default (six hours) is too slow to act on an active intrusion (PCI DSS 11.5.1).
            finding_publishing_frequency="FIFTEEN_MINUTES",
            tags=ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        for feature in GUARDDUTY_FEATURES:
            aws.guardduty.DetectorFeature(
                f"guardduty-{feature.lower().replace('_', '-')}",
                detector_id=detector.id,
                name=feature,
                status="ENABLED",
                opts=child_opts(self),
            )
        return detector

    # --- buckets ---------------------------------------------------------------------------------

    def _access_log_bucket(self) -> PrivateBucket:
        """The bucket that receives the audit buckets' S3 server access logs (who read or wrote an audit log).

        S3 server access logging only delivers to SSE-S3 buckets; the bucket is otherwise as private as
        the audit buckets, keeps the logs as long as they do, and only S3's logging service may write to it.
        """
        args = self._args
        ctx = args.context
        logs = private_bucket(
            self,
            "audit-access-logs-bucket",
            bucket_name=self._account_id.apply(lambda account: ctx.namer.bucket("audit-access", account)),
            tags=ctx.tags(COMPONENT),
            encryption=S3_MANAGED,
            force_destroy=not args.protection.protect,
            bucket_opts=guarded_opts(self, args.protection),
        )
        lifecycle = expire_after(
            self,
            "audit-access-logs",
            logs.bucket,
            days=args.log_retention_days,
            archive_after_days=AUDIT_ARCHIVE_AFTER_DAYS,
            depends_on=[logs.versioning],
        )
        # The audit buckets' names are known from the account id alone (they are created after this bucket).
        sources = [
            self._account_id.apply(functools.partial(_bucket_name, ctx, component)) for component in ("config", "cloudtrail")
        ]
        policy = aws.s3.BucketPolicy(
            "audit-access-logs-policy",
            bucket=logs.bucket.id,
            policy=pulumi.Output.all(logs.bucket.bucket, self._account_id, self._partition, *sources).apply(
                lambda v: json.dumps(
                    server_access_logs_bucket_policy(
                        v[0], v[1], [s3_bucket_arn(name, v[2]) for name in v[3:]], ACCESS_LOG_PREFIX, v[2]
                    )
                )
            ),
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[*logs.settings, lifecycle])),
        )
        return PrivateBucket(logs.bucket, logs.versioning, [*logs.settings, lifecycle, policy])

    def _audit_bucket(self, component: str, encryption: str) -> tuple[aws.s3.Bucket, list[pulumi.Resource]]:
        """A private, versioned, SSE-KMS (audit key), Object-Locked bucket with ACLs disabled.

        Object Lock keeps every log object unchangeable for the environment's log retention (PCI DSS
        10.3.2, 10.5.1); a lifecycle rule archives and then expires it when that retention ends; server
        access logging records who touched it. The settings resources are returned so the bucket policy can
        wait for them (S3 answers concurrent configuration calls on one bucket with OperationAborted).
        """
        args = self._args
        ctx = args.context
        audit = private_bucket(
            self,
            f"{component}-bucket",
            # Only the name string is computed in apply: the account id makes it globally unique.
            bucket_name=self._account_id.apply(lambda account: ctx.namer.bucket(component, account)),
            tags=ctx.tags(COMPONENT),
            encryption=encryption,
            kms_key_arn=args.audit_key_arn,
            # Unprotected (dev, ephemeral copies): destroyable with its objects; governance-mode locks allow it.
            force_destroy=not args.protection.protect,
            object_lock=True,
            bucket_opts=guarded_opts(self, args.protection),
        )
        lock = aws.s3.BucketObjectLockConfiguration(
            f"{component}-object-lock",
            bucket=audit.bucket.id,
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=object_lock_mode(args.protection.protect), days=args.log_retention_days
                )
            ),
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[audit.versioning])),
        )
        lifecycle = expire_after(
            self,
            component,
            audit.bucket,
            days=args.log_retention_days,
            archive_after_days=AUDIT_ARCHIVE_AFTER_DAYS,
            depends_on=[audit.versioning, lock],
        )
        access_logging = aws.s3.BucketLogging(
            f"{component}-access-logging",
            bucket=audit.bucket.id,
            target_bucket=self._access_logs.bucket.bucket,
            target_prefix=f"{ACCESS_LOG_PREFIX}{component}/",
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[*self._access_logs.settings, lifecycle])),
        )
        return audit.bucket, [*audit.settings, lock, lifecycle, access_logging]

    # --- AWS Config ------------------------------------------------------------------------------

    def _config_recorder(self) -> aws.cfg.Recorder:
        """Recorder (all resource types, global ones included), delivery channel to its bucket, recording on."""
        args = self._args
        ctx = args.context
        role_name = ctx.name("config-recorder", NameKind.IAM_ROLE)
        role = aws.iam.Role(
            "config-recorder-role",
            name=role_name,
            description="AWS Config recorder: reads resource configurations, delivers to the config bucket",
            assume_role_policy=self._account_id.apply(lambda account: json.dumps(config_assume_role_policy(account))),
            tags=ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        managed_policy = aws.iam.RolePolicyAttachment(
            "config-recorder-managed-policy",
            role=role.name,
            policy_arn=self._partition.apply(lambda partition: f"arn:{partition}:iam::aws:{CONFIG_MANAGED_POLICY}"),
            opts=child_opts(self),
        )
        # Config delivers a few objects a day: the S3 Bucket Key saves KMS requests and needs no extra grant.
        bucket, settings = self._audit_bucket("config", KMS_WITH_BUCKET_KEY)
        bucket_policy = aws.s3.BucketPolicy(
            "config-bucket-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.bucket, self._account_id, self._partition).apply(
                lambda v: json.dumps(config_bucket_policy(v[0], v[1], v[2]))
            ),
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=settings)),
        )
        delivery_policy = aws.iam.RolePolicy(
            "config-recorder-delivery",
            name="deliver-to-config-bucket",
            role=role.id,
            policy=pulumi.Output.all(bucket.bucket, self._account_id, args.audit_key_arn, self._partition).apply(
                lambda v: json.dumps(config_delivery_role_policy(v[0], v[1], v[2], v[3]))
            ),
            opts=child_opts(self),
        )
        recorder = aws.cfg.Recorder(
            "config-recorder",
            name=ctx.name("config-recorder"),
            role_arn=role.arn,
            recording_group=aws.cfg.RecorderRecordingGroupArgs(all_supported=True, include_global_resource_types=True),
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[managed_policy])),
        )
        delivery_channel = aws.cfg.DeliveryChannel(
            "config-delivery-channel",
            name=ctx.name("config-delivery"),
            s3_bucket_name=bucket.bucket,
            s3_kms_key_arn=args.audit_key_arn,
            snapshot_delivery_properties=aws.cfg.DeliveryChannelSnapshotDeliveryPropertiesArgs(
                delivery_frequency="TwentyFour_Hours"
            ),
            # AWS refuses a delivery channel before the recorder exists, and checks the bucket's permissions
            # when the channel is created.
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[recorder, bucket_policy, delivery_policy])),
        )
        aws.cfg.RecorderStatus(
            "config-recorder-status",
            name=recorder.name,
            is_enabled=True,
            # Recording can only start once there is somewhere to deliver to.
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[delivery_channel])),
        )
        return recorder

    # --- CloudTrail ------------------------------------------------------------------------------

    def _cloudtrail(self) -> aws.cloudtrail.Trail:
        """Multi-region trail with log file validation, KMS-encrypted, to S3 and to CloudWatch Logs."""
        args = self._args
        ctx = args.context
        trail_name = ctx.name("cloudtrail")
        region = ctx.region
        # The bucket policy names the trail's ARN (aws:SourceArn) and must exist before the trail does.
        trail_arn = pulumi.Output.all(self._account_id, self._partition).apply(
            lambda v: cloudtrail_trail_arn(trail_name, v[0], region, v[1])
        )

        # No S3 Bucket Key here: with one, CloudTrail would need kms:Decrypt on the audit key to create or
        # update the trail ("Configure AWS KMS key policies for CloudTrail"). Without it the key policy
        # grants CloudTrail only GenerateDataKey* and DescribeKey, and the KMS cost of CloudTrail's few
        # objects per region every five minutes is negligible.
        bucket, settings = self._audit_bucket("cloudtrail", KMS_PER_OBJECT)
        bucket_policy = aws.s3.BucketPolicy(
            "cloudtrail-bucket-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.bucket, self._account_id, trail_arn, self._partition).apply(
                lambda v: json.dumps(cloudtrail_bucket_policy(v[0], v[1], v[2], v[3]))
            ),
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=settings)),
        )

        # Audit events are searchable in CloudWatch Logs for log_retention_days (>= 365 in prod, PCI DSS 10.5.1).
        log_group = encrypted_log_group(
            "cloudtrail-logs", cloudtrail_log_group_name(ctx), args, ctx.tags(COMPONENT), guarded_opts(self, args.protection)
        )
        role = aws.iam.Role(
            "cloudtrail-logs-role",
            name=ctx.name("cloudtrail-logs", NameKind.IAM_ROLE),
            description="CloudTrail: writes the trail's events to its CloudWatch Logs group",
            assume_role_policy=json.dumps(cloudtrail_assume_role_policy()),
            tags=ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        role_policy = aws.iam.RolePolicy(
            "cloudtrail-logs-write",
            name="write-trail-log-group",
            role=role.id,
            policy=log_group.arn.apply(lambda arn: json.dumps(cloudtrail_logs_role_policy(arn))),
            opts=child_opts(self),
        )
        return aws.cloudtrail.Trail(
            "cloudtrail",
            name=trail_name,
            s3_bucket_name=bucket.bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            insight_selectors=[aws.cloudtrail.TrailInsightSelectorArgs(insight_type=t) for t in CLOUDTRAIL_INSIGHT_TYPES]
            if args.settings.cloudtrail_insights
            else None,
            kms_key_id=args.audit_key_arn,
            cloud_watch_logs_group_arn=log_group.arn.apply(log_stream_arn),
            cloud_watch_logs_role_arn=role.arn,
            tags=ctx.tags(COMPONENT),
            # CloudTrail validates bucket and log-group access when the trail is created.
            opts=guarded_opts(self, args.protection, depends_on=[bucket_policy, role_policy]),
        )
