"""The private, versioned, encrypted S3 bucket every log destination in the stack uses."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lib.components.base import child_opts

#: SSE-KMS with an S3 Bucket Key (one data-key request per bucket and period, not per object).
KMS_WITH_BUCKET_KEY = "kms-bucket-key"
#: SSE-KMS without a Bucket Key (every object gets its own data key from KMS).
KMS_PER_OBJECT = "kms"
#: SSE-S3 (AES256), for writers that cannot use SSE-KMS (ALB access logs, S3 server access logs).
S3_MANAGED = "s3"


@dataclass(frozen=True)
class PrivateBucket:
    """A bucket and the settings resources a later bucket policy must wait for.

    S3 answers concurrent configuration calls on one bucket with OperationAborted, so the
    policy (and anything else configured later) should depend on ``settings``.
    """

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    settings: list[pulumi.Resource]


def private_bucket(
    parent: pulumi.Resource,
    prefix: str,
    *,
    bucket_name: pulumi.Input[str],
    tags: dict[str, str],
    encryption: str,
    kms_key_arn: pulumi.Input[str] | None = None,
    force_destroy: bool,
    object_lock: bool = False,
    bucket_opts: pulumi.ResourceOptions,
) -> PrivateBucket:
    """Create bucket ``prefix`` with public access blocked, ACLs disabled, versioning and encryption.

    ``encryption`` is :data:`KMS_WITH_BUCKET_KEY`, :data:`KMS_PER_OBJECT` (both need ``kms_key_arn``) or
    :data:`S3_MANAGED`. ``force_destroy`` lets an unprotected environment tear the bucket down with its
    objects (governance-locked ones included); ``object_lock`` enables S3 Object Lock, which can only be
    switched on when the bucket is created.
    """
    if encryption != S3_MANAGED and kms_key_arn is None:
        raise ValueError(f"{prefix}: {encryption} encryption needs a KMS key")
    bucket = aws.s3.Bucket(
        prefix,
        bucket=bucket_name,
        force_destroy=force_destroy,
        object_lock_enabled=True if object_lock else None,
        tags=tags,
        opts=bucket_opts,
    )
    by_default = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256")
        if encryption == S3_MANAGED
        else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
        )
    )
    encryption_configuration = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{prefix}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=by_default,
                bucket_key_enabled={S3_MANAGED: None, KMS_PER_OBJECT: False, KMS_WITH_BUCKET_KEY: True}[encryption],
            )
        ],
        opts=child_opts(parent),
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{prefix}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child_opts(parent),
    )
    # ACLs disabled: every delivered object belongs to the bucket owner, whoever writes it.
    ownership = aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child_opts(parent),
    )
    # Versioning keeps every overwritten or deleted log object recoverable (PCI DSS 10.3.3).
    versioning = aws.s3.BucketVersioning(
        f"{prefix}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child_opts(parent),
    )
    return PrivateBucket(bucket, versioning, [encryption_configuration, public_access, ownership, versioning])


def expire_after(
    parent: pulumi.Resource,
    prefix: str,
    bucket: aws.s3.Bucket,
    *,
    days: int,
    archive_after_days: int | None,
    depends_on: list[pulumi.Resource],
) -> aws.s3.BucketLifecycleConfiguration:
    """Lifecycle: objects (and their noncurrent versions) expire after ``days``; optionally archived before.

    ``archive_after_days`` moves objects to Glacier Instant Retrieval once the period in which they must be
    "immediately available" (PCI DSS 10.5.1: three months) is over; they stay readable in milliseconds.
    """
    transitions = (
        [aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=archive_after_days, storage_class="GLACIER_IR")]
        if archive_after_days is not None and archive_after_days < days
        else None
    )
    return aws.s3.BucketLifecycleConfiguration(
        f"{prefix}-lifecycle",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="retain-then-expire",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                transitions=transitions,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                # Versioning keeps overwritten/deleted objects as noncurrent versions: expire those too.
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=days
                ),
                abort_incomplete_multipart_upload=(
                    aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=7)
                ),
            )
        ],
        # S3 recommends configuring versioning before lifecycle rules that act on noncurrent versions.
        opts=child_opts(parent, pulumi.ResourceOptions(depends_on=depends_on)),
    )
