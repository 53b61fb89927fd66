"""Policy documents of the alarm topic, the Config and CloudTrail buckets and their service roles (no mocks).

Each builder is checked on a happy path, then one mutation per way it must refuse or restrict.
"""

from __future__ import annotations

from typing import Any

import pytest

from lib.components.account_baseline import (
    cloudtrail_assume_role_policy,
    cloudtrail_logs_role_policy,
    config_assume_role_policy,
    config_delivery_role_policy,
    log_stream_arn,
)
from lib.iam_policies import least_privilege_violations
from lib.resource_policies import (
    cloudtrail_bucket_policy,
    cloudtrail_trail_arn,
    config_bucket_policy,
    sns_alarm_topic_policy,
)

ACCOUNT = "123456789012"
REGION = "eu-west-1"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:scalepay-alarms-prod"
TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/scalepay-cloudtrail-prod"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/cloudtrail/scalepay-cloudtrail-prod"


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def _assert_tls_only(document: dict[str, Any], resources: list[str] | str) -> None:
    deny = _by_sid(document)["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == resources


# --- SNS alarm topic --------------------------------------------------------------------------------


def test_alarm_topic_policy_lets_this_accounts_alarms_publish() -> None:
    policy = sns_alarm_topic_policy(TOPIC, ACCOUNT, REGION)
    allow = _by_sid(policy)["AllowCloudWatchAlarmsToPublish"]
    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == TOPIC
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert allow["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"}
    _assert_tls_only(policy, TOPIC)
    assert [s["Effect"] for s in policy["Statement"]].count("Allow") == 1, "nobody but CloudWatch is granted anything"


def test_alarm_topic_policy_follows_the_partition() -> None:
    topic = f"arn:aws-us-gov:sns:us-gov-west-1:{ACCOUNT}:alarms"
    allow = _by_sid(sns_alarm_topic_policy(topic, ACCOUNT, "us-gov-west-1", "aws-us-gov"))["AllowCloudWatchAlarmsToPublish"]
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"].startswith("arn:aws-us-gov:cloudwatch:us-gov-west-1:")


@pytest.mark.parametrize(
    ("topic", "account"),
    [
        (TOPIC, "12345"),  # not an account id
        (TOPIC, ""),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue", ACCOUNT),  # not a topic
        ("scalepay-alarms-prod", ACCOUNT),  # a name, not an ARN
    ],
)
def test_alarm_topic_policy_rejects_bad_inputs(topic: str, account: str) -> None:
    with pytest.raises(ValueError):
        sns_alarm_topic_policy(topic, account, REGION)


# --- AWS Config bucket ------------------------------------------------------------------------------


def test_config_bucket_policy_matches_the_documented_grants() -> None:
    bucket = "scalepay-config-prod-123456789012"
    policy = config_bucket_policy(bucket, ACCOUNT)
    statements = _by_sid(policy)
    checks = {"AWSConfigBucketPermissionsCheck": "s3:GetBucketAcl", "AWSConfigBucketExistenceCheck": "s3:ListBucket"}
    for sid, action in checks.items():
        assert statements[sid]["Action"] == action
        assert statements[sid]["Resource"] == f"arn:aws:s3:::{bucket}"
    delivery = statements["AWSConfigBucketDelivery"]
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/Config/*"
    assert delivery["Condition"]["StringEquals"] == {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": ACCOUNT}
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            assert statement["Principal"] == {"Service": "config.amazonaws.com"}, statement["Sid"]
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT, statement["Sid"]
    _assert_tls_only(policy, [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])


def test_config_bucket_policy_rejects_a_bad_account() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        config_bucket_policy("bucket", "not-an-account")


# --- CloudTrail bucket ------------------------------------------------------------------------------


def test_trail_arn_is_known_before_the_trail() -> None:
    assert cloudtrail_trail_arn("scalepay-cloudtrail-prod", ACCOUNT, REGION) == TRAIL
    assert cloudtrail_trail_arn("t", ACCOUNT, "cn-north-1", "aws-cn") == f"arn:aws-cn:cloudtrail:cn-north-1:{ACCOUNT}:trail/t"


def test_cloudtrail_bucket_policy_admits_only_this_trail() -> None:
    bucket = "scalepay-cloudtrail-prod-123456789012"
    policy = cloudtrail_bucket_policy(bucket, ACCOUNT, TRAIL)
    statements = _by_sid(policy)
    acl = statements["AWSCloudTrailAclCheck"]
    assert acl["Action"] == "s3:GetBucketAcl" and acl["Resource"] == f"arn:aws:s3:::{bucket}"
    write = statements["AWSCloudTrailWrite"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
    for statement in (acl, write):
        assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL, statement["Sid"]
    _assert_tls_only(policy, [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])


@pytest.mark.parametrize(
    ("account", "trail"),
    [
        ("1234", TRAIL),  # bad account id
        (ACCOUNT, f"arn:aws:s3:::{ACCOUNT}"),  # not a trail
        (ACCOUNT, f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:eventdatastore/x"),  # a CloudTrail ARN but not a trail
        (ACCOUNT, TRAIL.replace("arn:aws:", "arn:aws-cn:")),  # another partition than the bucket's
    ],
)
def test_cloudtrail_bucket_policy_rejects_bad_inputs(account: str, trail: str) -> None:
    with pytest.raises(ValueError):
        cloudtrail_bucket_policy("bucket", account, trail)


# --- service roles ------------------------------------------------------------------------------------


def test_config_role_trusts_config_for_this_account_only() -> None:
    (statement,) = config_assume_role_policy(ACCOUNT)["Statement"]
    assert statement["Principal"] == {"Service": "config.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_config_delivery_role_policy_is_scoped_to_bucket_prefix_and_key() -> None:
    policy = config_delivery_role_policy("cfg-bucket", ACCOUNT, KEY)
    assert least_privilege_violations(policy) == []
    statements = _by_sid(policy)
    assert statements["DeliverSnapshots"]["Resource"] == f"arn:aws:s3:::cfg-bucket/AWSLogs/{ACCOUNT}/Config/*"
    assert statements["CheckDeliveryBucket"]["Resource"] == "arn:aws:s3:::cfg-bucket"
    assert statements["EncryptWithAuditKey"]["Resource"] == KEY
    assert sorted(statements["EncryptWithAuditKey"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_cloudtrail_role_writes_one_log_group_only() -> None:
    (trust,) = cloudtrail_assume_role_policy()["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    policy = cloudtrail_logs_role_policy(LOG_GROUP)
    assert least_privilege_violations(policy) == []
    (write,) = policy["Statement"]
    assert write["Resource"] == f"{LOG_GROUP}:*"
    assert sorted(write["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    # An ARN that already names the streams is not suffixed twice.
    assert cloudtrail_logs_role_policy(f"{LOG_GROUP}:*")["Statement"][0]["Resource"] == f"{LOG_GROUP}:*"
    with pytest.raises(ValueError):
        cloudtrail_logs_role_policy("/aws/cloudtrail/scalepay-cloudtrail-prod")


def test_log_stream_arn() -> None:
    assert log_stream_arn(LOG_GROUP) == f"{LOG_GROUP}:*"
    assert log_stream_arn(f"{LOG_GROUP}:*") == f"{LOG_GROUP}:*"
