"""Resource policies (S3 bucket policies, CloudWatch Logs resource policies, ...) as plain functions.

Each function takes plain strings (names, ARNs, account ids) and returns the policy document as a
``dict``; components call them inside ``Output.apply`` and ``json.dumps`` the result. Keeping the
documents pure means the unit tests can check every statement without a Pulumi runtime.
"""

from __future__ import annotations

from typing import Any

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

POLICY_VERSION = "2012-10-17"

#: Service principal that delivers ALB access logs in regions opened after August 2022
#: (and, increasingly, in the older ones too): the AWS-recommended modern grant.
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

#: Service principal that writes WAF (and other vended) logs to CloudWatch Logs.
LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"


def s3_bucket_arn(bucket: str, partition: str = "aws") -> str:
    """ARN of an S3 bucket (bucket ARNs carry neither region nor account)."""
    return f"arn:{partition}:s3:::{bucket}"


def s3_deny_insecure_transport_statement(bucket: str, partition: str = "aws") -> Statement:
    """Deny every S3 action on the bucket and its objects over plain HTTP (PCI DSS 4.2.1: TLS only)."""
    arn = s3_bucket_arn(bucket, partition)
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


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
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowElbLogDeliveryService",
                "Effect": "Allow",
                "Principal": {"Service": ELB_LOG_DELIVERY_SERVICE},
                "Action": "s3:PutObject",
                "Resource": logs_objects,
            },
            {
                "Sid": "AllowElbRegionalAccount",
                "Effect": "Allow",
                "Principal": {"AWS": elb_account_arn},
                "Action": "s3:PutObject",
                "Resource": logs_objects,
            },
            s3_deny_insecure_transport_statement(bucket, partition),
        ],
    }


def alb_waf_log_delivery_policy(log_group_name: str, account_id: str, region: str, partition: str = "aws") -> PolicyDocument:
    """CloudWatch Logs resource policy letting WAF's log delivery write to one ``aws-waf-logs-*`` group.

    Declared explicitly (rather than left to WAF, which otherwise appends to a shared ``AWSWAF-LOGS``
    policy) so the grant is scoped to this stack's log group and guarded against the confused-deputy
    problem with ``aws:SourceAccount`` / ``aws:SourceArn``.
    """
    if not log_group_name.startswith("aws-waf-logs-"):
        raise ValueError(f"WAF can only log to a log group named aws-waf-logs-*; got {log_group_name!r}")
    log_group_arn = f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name}"
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowWafLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_SERVICE},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{log_group_arn}:log-stream:*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account_id}:*"},
                },
            }
        ],
    }


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
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowCloudWatchAlarmsToPublish",
                "Effect": "Allow",
                "Principal": {"Service": CLOUDWATCH_SERVICE},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},
                },
            },
            {
                # PCI DSS 4.2.1: no publish over plain HTTP, whoever the caller is.
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def config_bucket_policy(bucket: str, account_id: str, partition: str = "aws") -> PolicyDocument:
    """Bucket policy of the AWS Config delivery bucket (the statements of "Permissions for the Amazon S3 Bucket").

    Config checks the bucket ACL and existence, then writes only under ``AWSLogs/<account>/Config/``
    with the ``bucket-owner-full-control`` ACL; every grant is pinned to this account with
    ``aws:SourceAccount``. Everything over plain HTTP is denied.
    """
    _require_account_id(account_id)
    bucket_arn = s3_bucket_arn(bucket, partition)
    source_account = {"aws:SourceAccount": account_id}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AWSConfigBucketPermissionsCheck",
                "Effect": "Allow",
                "Principal": {"Service": CONFIG_SERVICE},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": dict(source_account)},
            },
            {
                "Sid": "AWSConfigBucketExistenceCheck",
                "Effect": "Allow",
                "Principal": {"Service": CONFIG_SERVICE},
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": dict(source_account)},
            },
            {
                "Sid": "AWSConfigBucketDelivery",
                "Effect": "Allow",
                "Principal": {"Service": CONFIG_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account_id}/Config/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": BUCKET_OWNER_FULL_CONTROL, **source_account}},
            },
            s3_deny_insecure_transport_statement(bucket, partition),
        ],
    }


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
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": CLOUDTRAIL_SERVICE},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": dict(source_arn)},
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": CLOUDTRAIL_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": BUCKET_OWNER_FULL_CONTROL, **source_arn}},
            },
            s3_deny_insecure_transport_statement(bucket, partition),
        ],
    }


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
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "S3ServerAccessLogsPolicy",
                "Effect": "Allow",
                "Principal": {"Service": S3_LOGGING_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{s3_bucket_arn(bucket, partition)}/{prefix}*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            s3_deny_insecure_transport_statement(bucket, partition),
        ],
    }
