"""The private, versioned, encrypted S3 bucket every log destination in the stack uses."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lib.components.base import child_opts


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
    kms_key_arn: pulumi.Input[str] | None,
    bucket_opts: pulumi.ResourceOptions,
) -> PrivateBucket:
    """Create bucket ``prefix`` with public access blocked, ACLs disabled, versioning and encryption.

    ``kms_key_arn`` None means SSE-S3 (AES256), for writers that cannot use SSE-KMS (ALB access
    logs); otherwise SSE-KMS with an S3 bucket key (one data-key request per bucket, not per object).
    """
    bucket = aws.s3.Bucket(prefix, bucket=bucket_name, force_destroy=False, tags=tags, opts=bucket_opts)
    by_default = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256")
        if kms_key_arn is None
        else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
        )
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{prefix}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=by_default,
                bucket_key_enabled=None if kms_key_arn is None else True,
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
    return PrivateBucket(bucket, versioning, [encryption, public_access, ownership, versioning])
