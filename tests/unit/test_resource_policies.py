"""Pure tests of the edge's resource policies (ALB access-logs bucket, WAF log delivery): no Pulumi runtime."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lib.resource_policies import (
    alb_access_logs_bucket_policy,
    alb_waf_log_delivery_policy,
    s3_deny_insecure_transport_statement,
)

BUCKET = "scalepay-alb-logs-dev-123456789012"
ACCOUNT = "123456789012"
ELB_ACCOUNT = "arn:aws:iam::127311923021:root"


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in policy["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid!r} in {json.dumps(policy)}"
    return found[0]


def test_alb_access_logs_policy_is_valid_json_document() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT)
    assert json.loads(json.dumps(policy)) == policy
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)), f"duplicate Sids {sids}"


def test_alb_access_logs_policy_grants_log_delivery_service_on_account_prefix_only() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT, prefix="alb")
    grant = _statement(policy, "AllowElbLogDeliveryService")
    assert grant["Effect"] == "Allow"
    assert grant["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert grant["Action"] == "s3:PutObject"
    assert grant["Resource"] == f"arn:aws:s3:::{BUCKET}/alb/AWSLogs/{ACCOUNT}/*"


def test_alb_access_logs_policy_grants_regional_elb_account_same_prefix() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT, prefix="edge/alb")
    grant = _statement(policy, "AllowElbRegionalAccount")
    assert grant["Effect"] == "Allow"
    assert grant["Principal"] == {"AWS": ELB_ACCOUNT}
    assert grant["Action"] == "s3:PutObject"
    assert grant["Resource"] == f"arn:aws:s3:::{BUCKET}/edge/alb/AWSLogs/{ACCOUNT}/*"


def test_alb_access_logs_policy_allows_nothing_but_putobject_and_no_anonymous_allow() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT)
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 2
    for statement in allows:
        assert statement["Action"] == "s3:PutObject", statement
        assert statement["Principal"] != "*", statement
        assert "/AWSLogs/" in statement["Resource"], statement


def test_alb_access_logs_policy_denies_insecure_transport_on_bucket_and_objects() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT)
    deny = _statement(policy, "DenyInsecureTransport")
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert sorted(deny["Resource"]) == sorted([f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"])
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alb_deny_insecure_transport_statement_uses_partition() -> None:
    deny = s3_deny_insecure_transport_statement("logs", partition="aws-us-gov")
    assert deny["Resource"] == ["arn:aws-us-gov:s3:::logs", "arn:aws-us-gov:s3:::logs/*"]


def test_alb_access_logs_policy_uses_partition() -> None:
    policy = alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT, partition="aws-cn")
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r.startswith("arn:aws-cn:s3:::") for r in resources), statement


@pytest.mark.parametrize("prefix", ["", "/alb", "alb/", "alb/AWSLogs"])
def test_alb_access_logs_policy_rejects_prefix_that_breaks_the_log_path(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        alb_access_logs_bucket_policy(BUCKET, ACCOUNT, ELB_ACCOUNT, prefix=prefix)


def test_alb_waf_log_delivery_policy_is_scoped_to_one_log_group_and_account() -> None:
    policy = alb_waf_log_delivery_policy("aws-waf-logs-scalepay-prod", ACCOUNT, "eu-west-1")
    grant = _statement(policy, "AllowWafLogDelivery")
    assert grant["Effect"] == "Allow"
    assert grant["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert sorted(grant["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert grant["Resource"] == f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:aws-waf-logs-scalepay-prod:log-stream:*"
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert grant["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:*"}


@pytest.mark.parametrize("name", ["scalepay-waf-dev", "/aws/waf/scalepay-dev", "waf-logs-scalepay-dev"])
def test_alb_waf_log_delivery_policy_rejects_group_waf_cannot_log_to(name: str) -> None:
    with pytest.raises(ValueError, match="aws-waf-logs-"):
        alb_waf_log_delivery_policy(name, ACCOUNT, "us-east-1")
