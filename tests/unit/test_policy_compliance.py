"""``python -m tools.compliance``: rule runner, report, and the stack's compliance per environment."""

from __future__ import annotations

import pytest

from policy.enforcement import ENVIRONMENTS
from policy.rules import ALL_RULES
from policy.rules.base import StackResource
from tools.compliance import RuleResult, format_report, run_rules, stack_resources

DEV_CLUSTER = StackResource(
    "aws:rds/cluster:Cluster",
    "database-cluster",
    {
        "storageEncrypted": True,
        "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
        "deletionProtection": False,
        "backupRetentionPeriod": 1,
        "iamDatabaseAuthenticationEnabled": True,
        "masterUsername": "scalepay_admin",
    },
    "urn:cluster",
    "database-cluster-id",
)


def by_name(results: list[RuleResult]) -> dict[str, RuleResult]:
    return {r.rule.name: r for r in results}


def test_dev_prod_rules_are_advisory_in_dev_and_blocking_in_prod() -> None:
    dev, prod = by_name(run_rules("dev", [DEV_CLUSTER])), by_name(run_rules("prod", [DEV_CLUSTER]))
    assert dev["aurora-deletion-protection"].findings and not dev["aurora-deletion-protection"].blocking
    assert prod["aurora-deletion-protection"].blocking
    assert prod["aurora-backup-retention"].findings[0].resource == "database-cluster"
    # the parameter group is missing: mandatory everywhere
    assert dev["aurora-ssl-only"].blocking and dev["aurora-ssl-only"].checked == 1


def test_staging_does_not_require_deletion_protection_but_does_require_backups() -> None:
    staging = by_name(run_rules("staging", [DEV_CLUSTER]))
    assert staging["aurora-deletion-protection"].findings == []
    assert [f.message for f in staging["aurora-backup-retention"].findings] == [
        "PCI DSS 4.0 Req 12.10.1: Aurora keeps backups for 1 days (backupRetentionPeriod); at least 7 are required"
    ]


def test_report_lists_each_policy_and_each_violation_with_its_resource() -> None:
    report = format_report("prod", run_rules("prod", [DEV_CLUSTER]))
    assert "aurora-deletion-protection" in report and "Req 12.10.1" in report
    assert (
        "[mandatory] aurora-deletion-protection: database-cluster (aws:rds/cluster:Cluster)\n"
        "      PCI DSS 4.0 Req 12.10.1: Aurora cluster has no deletion protection (deletionProtection is not true)"
    ) in report
    assert all(rule.name in report for rule in ALL_RULES)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def evaluated(request: pytest.FixtureRequest) -> tuple[str, list[RuleResult]]:
    env = request.param
    return env, run_rules(env, stack_resources(env))


def test_the_stack_has_no_mandatory_violation(evaluated: tuple[str, list[RuleResult]]) -> None:
    env, results = evaluated
    blocking = [f"{r.rule.name}: {f.resource}: {f.message}" for r in results if r.blocking for f in r.findings]
    assert blocking == [], f"{env}: mandatory PCI DSS violations:\n" + "\n".join(blocking)


def test_the_policies_see_the_stack_resources(evaluated: tuple[str, list[RuleResult]]) -> None:
    env, results = evaluated
    checked = {r.rule.name: r.checked for r in results}
    for name in (
        "database-encrypted-with-cmk",
        "redis-transit-encryption",
        "alb-https-tls12",
        "ecs-read-only-root-filesystem",
        "log-group-retention",
        "kms-key-rotation",
        "data-stores-no-internet-route",
        "iam-no-wildcard-action",
        "ecs-read-only-root-writable-scratch",
        "ecs-images-from-private-registry",
        "engine-version-pinned",
        "aurora-audit-logging",
        "container-insights-logs-managed",
        "alarm-topic-has-subscriber",
        "redis-no-static-auth-token",
    ):
        assert checked[name] > 0, f"{env}: {name} checked no resource"


def test_the_production_like_policies_see_the_account_baseline_and_waf(evaluated: tuple[str, list[RuleResult]]) -> None:
    env, results = evaluated
    checked = {r.rule.name: r.checked for r in results}
    for name in ("waf-baseline-managed-rules", "audit-buckets-locked", "cloudtrail-bucket-key-decrypt"):
        if env == "dev":
            # dev runs no WAF, trail or Config (README, environment table): nothing for these rules to see.
            assert checked[name] == 0, f"dev: {name} found a resource dev should not have"
        else:
            assert checked[name] > 0, f"{env}: {name} checked no resource"


def test_dev_alarms_without_a_subscriber_are_only_advisory() -> None:
    topic = StackResource("aws:sns/topic:Topic", "alarms-topic", {"arn": "arn:aws:sns:us-east-1:123456789012:alarms"})
    alarm = StackResource(
        "aws:cloudwatch/metricAlarm:MetricAlarm", "cpu-high", {"alarmActions": ["arn:aws:sns:us-east-1:123456789012:alarms"]}
    )
    dev, prod = by_name(run_rules("dev", [topic, alarm])), by_name(run_rules("prod", [topic, alarm]))
    assert dev["alarm-topic-has-subscriber"].findings and not dev["alarm-topic-has-subscriber"].blocking
    assert prod["alarm-topic-has-subscriber"].blocking
