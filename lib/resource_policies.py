"""Resource policies (S3 bucket policies, CloudWatch Logs resource policies, ...) as plain functions.

Each function takes plain strings (names, ARNs, account ids) and returns the policy document as a
``dict``; components call them inside ``Output.apply`` and ``json.dumps`` the result. Keeping the
documents pure means the unit tests can check every statement without a Pulumi runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.iam_policies import PolicyDocument, Statement, policy_document, policy_statement

#: Service principal that delivers ALB access logs in regions opened after August 2022
#: (and, increasingly, in the older ones too): the AWS-recommended modern grant.
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

#: Service principal that writes WAF (and other vended) logs to CloudWatch Logs.
LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"


def s3_bucket_arn(bucket: str, partition: str = "aws") -> str:
    """ARN of an S3 bucket (bucket ARNs carry neither region nor account)."""
    return f"arn:{partition}:s3:::{bucket}"


def _allow(
    sid: str,
    principal: str | Mapping[str, str],
    action: str | list[str],
    resource: str,
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    """Let ``principal`` (a service or an account) perform ``action`` on ``resource``, under ``condition`` if given."""
    return policy_statement(sid, action, principal=principal, resource=resource, condition=condition)


def _deny_insecure_transport(action: str, resource: str | list[str]) -> Statement:
    """Deny ``action`` on ``resource`` over plain HTTP, whoever the caller is (PCI DSS 4.2.1: TLS only)."""
    return policy_statement(
        "DenyInsecureTransport",
        action,
        effect="Deny",
        principal="*",
        resource=resource,
        condition={"Bool": {"aws:SecureTransport": "false"}},
    )


def s3_deny_insecure_transport_statement(bucket: str, partition: str = "aws") -> Statement:
    """Deny every S3 action on the bucket and its objects over plain HTTP (PCI DSS 4.2.1: TLS only)."""
    arn = s3_bucket_arn(bucket, partition)
    return _deny_insecure_transport("s3:*", [arn, f"{arn}/*"])


def alb_access_logs_bucket_policy(
    bucket: str,
    account_id: str,
    elb_account_arn: str,
    prefix: str = "alb",
    partition: str = "aws",
) -> PolicyDocument:
    """Bucket policy that lets Elastic Load Balancing write access logs, and only over TLS.

    Two grants of ``s3:PutObject`` on ``<prefix>/AWSLogs/<account_id>/*`` only (never the whole bucket):
    the log-delivery service principal (regions opened after August 2022, and the method AWS now
    recommends) and the regional ELB account ``elb_account_arn`` (what regions such as us-east-1 still
    use). The objects are owned by the bucket owner (BucketOwnerEnforced), so no ACL condition is needed.
    """
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "AWSLogs" in prefix:
        raise ValueError(f"ALB log prefix {prefix!r} must be non-empty, without leading/trailing '/', not contain AWSLogs")
    logs_objects = f"{s3_bucket_arn(bucket, partition)}/{prefix}/AWSLogs/{account_id}/*"
    return policy_document(
        _allow("AllowElbLogDeliveryService", {"Service": ELB_LOG_DELIVERY_SERVICE}, "s3:PutObject", logs_objects),
        _allow("AllowElbRegionalAccount", {"AWS": elb_account_arn}, "s3:PutObject", logs_objects),
        s3_deny_insecure_transport_statement(bucket, partition),
    )


def alb_waf_log_delivery_policy(log_group_name: str, account_id: str, region: str, partition: str = "aws") -> PolicyDocument:
    """CloudWatch Logs resource policy letting WAF's log delivery write to one ``aws-waf-logs-*`` group.

    Declared explicitly (rather than left to WAF, which otherwise appends to a shared ``AWSWAF-LOGS``
    policy) so the grant is scoped to this stack's log group and guarded against the confused-deputy
    problem with ``aws:SourceAccount`` / ``aws:SourceArn``.
    """
    if not log_group_name.startswith("aws-waf-logs-"):
        raise ValueError(f"WAF can only log to a log group named aws-waf-logs-*; got {log_group_name!r}")
    log_group_arn = f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name}"
    return policy_document(
        _allow(
            "AllowWafLogDelivery",
            {"Service": LOG_DELIVERY_SERVICE},
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            f"{log_group_arn}:log-stream:*",
            {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account_id}:*"},
            },
        )
    )


# --- account security and alarms (observability / account baseline) ----------------------------

#: Service principal that CloudWatch alarms publish to SNS as.
CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"

#: Service principal AWS Config delivers configuration snapshots and history as.
CONFIG_SERVICE = "config.amazonaws.com"

#: Service principal CloudTrail delivers log files as.
CLOUDTRAIL_SERVICE = "cloudtrail.amazonaws.com"

#: Canned ACL that service deliveries must set so the bucket owner owns (and can read) every object.
BUCKET_OWNER_FULL_CONTROL = "bucket-owner-full-control"


def _require_account_id(account_id: str) -> None:
    """Every confused-deputy condition pins a 12-digit account id; anything else is a programming error."""
    if not (len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")


def sns_alarm_topic_policy(topic_arn: str, account_id: str, region: str, partition: str = "aws") -> PolicyDocument:
    """Topic policy of the alarm topic: this account's CloudWatch alarms may publish, and only over TLS.

    ``aws:SourceAccount`` and ``aws:SourceArn`` (this account's alarms in this region) stop another
    account's alarms from using CloudWatch as a confused deputy to post into our pager. Same-account
    IAM principals keep managing the topic through their identity policies.
    """
    _require_account_id(account_id)
    if not topic_arn.startswith(f"arn:{partition}:sns:"):
        raise ValueError(f"topic_arn must be an SNS topic ARN in partition {partition!r}, got {topic_arn!r}")
    return policy_document(
        _allow(
            "AllowCloudWatchAlarmsToPublish",
            {"Service": CLOUDWATCH_SERVICE},
            "sns:Publish",
            topic_arn,
            {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},
            },
        ),
        # PCI DSS 4.2.1: no publish over plain HTTP, whoever the caller is.
        _deny_insecure_transport("sns:Publish", topic_arn),
    )


def _bucket_check(sid: str, service: str, action: str, bucket_arn: str, pin: Mapping[str, str]) -> Statement:
    """A delivering service may inspect the bucket itself (its ACL, its existence), for the caller ``pin`` names only."""
    return _allow(sid, {"Service": service}, action, bucket_arn, {"StringEquals": pin})


def _owner_controlled_delivery(sid: str, service: str, objects: str, pin: Mapping[str, str]) -> Statement:
    """A service may write ``objects`` (an ARN pattern) for the caller ``pin`` names, handing the bucket owner each object."""
    return _allow(
        sid, {"Service": service}, "s3:PutObject", objects, {"StringEquals": {"s3:x-amz-acl": BUCKET_OWNER_FULL_CONTROL, **pin}}
    )


def config_bucket_policy(bucket: str, account_id: str, partition: str = "aws") -> PolicyDocument:
    """Bucket policy of the AWS Config delivery bucket (the statements of "Permissions for the Amazon S3 Bucket").

    Config checks the bucket ACL and existence, then writes only under ``AWSLogs/<account>/Config/``
    with the ``bucket-owner-full-control`` ACL; every grant is pinned to this account with
    ``aws:SourceAccount``. Everything over plain HTTP is denied.
    """
    _require_account_id(account_id)
    bucket_arn = s3_bucket_arn(bucket, partition)
    source_account = {"aws:SourceAccount": account_id}
    return policy_document(
        _bucket_check("AWSConfigBucketPermissionsCheck", CONFIG_SERVICE, "s3:GetBucketAcl", bucket_arn, source_account),
        _bucket_check("AWSConfigBucketExistenceCheck", CONFIG_SERVICE, "s3:ListBucket", bucket_arn, source_account),
        _owner_controlled_delivery(
            "AWSConfigBucketDelivery", CONFIG_SERVICE, f"{bucket_arn}/AWSLogs/{account_id}/Config/*", source_account
        ),
        s3_deny_insecure_transport_statement(bucket, partition),
    )


def cloudtrail_trail_arn(name: str, account_id: str, region: str, partition: str = "aws") -> str:
    """ARN of a trail, known before the trail exists (its bucket policy must exist first)."""
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{name}"


def cloudtrail_bucket_policy(bucket: str, account_id: str, trail_arn: str, partition: str = "aws") -> PolicyDocument:
    """Bucket policy of the CloudTrail bucket: only this stack's trail may write, only over TLS.

    ``aws:SourceArn`` names the one trail (CloudTrail's recommended confused-deputy guard), and the
    write is limited to ``AWSLogs/<account>/`` with the ``bucket-owner-full-control`` ACL.
    """
    _require_account_id(account_id)
    if not trail_arn.startswith(f"arn:{partition}:cloudtrail:") or ":trail/" not in trail_arn:
        raise ValueError(f"trail_arn must be a CloudTrail trail ARN in partition {partition!r}, got {trail_arn!r}")
    bucket_arn = s3_bucket_arn(bucket, partition)
    source_arn = {"aws:SourceArn": trail_arn}
    return policy_document(
        _bucket_check("AWSCloudTrailAclCheck", CLOUDTRAIL_SERVICE, "s3:GetBucketAcl", bucket_arn, source_arn),
        _owner_controlled_delivery("AWSCloudTrailWrite", CLOUDTRAIL_SERVICE, f"{bucket_arn}/AWSLogs/{account_id}/*", source_arn),
        s3_deny_insecure_transport_statement(bucket, partition),
    )


#: Service principal that writes S3 server access logs.
S3_LOGGING_SERVICE = "logging.s3.amazonaws.com"


def server_access_logs_bucket_policy(
    bucket: str, account_id: str, source_bucket_arns: list[str], prefix: str, partition: str = "aws"
) -> PolicyDocument:
    """Bucket policy of the access-log bucket: S3's logging service writes the audit buckets' access logs, over TLS.

    The grant names the source buckets (``aws:SourceArn``) and the account (``aws:SourceAccount``), as the
    S3 documentation recommends ("Permissions for log delivery"): no other bucket can log into this one.
    """
    if not source_bucket_arns:
        raise ValueError("at least one source bucket is required")
    return policy_document(
        _allow(
            "S3ServerAccessLogsPolicy",
            {"Service": S3_LOGGING_SERVICE},
            "s3:PutObject",
            f"{s3_bucket_arn(bucket, partition)}/{prefix}*",
            {
                "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        ),
        s3_deny_insecure_transport_statement(bucket, partition),
    )
