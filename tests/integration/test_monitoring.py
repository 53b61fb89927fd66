"""Monitoring and alerting: alarms, the on-call topic, the dashboard."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import AwsClients, Deployed


def _alarms(aws: AwsClients, env: str) -> list[dict[str, Any]]:
    """The stack's own alarms: named scalepay-...-<env> (target-tracking policies add AWS-managed ones we do
    not own, and other stacks may share the account)."""
    paginator = aws("cloudwatch").get_paginator("describe_alarms")
    alarms = [a for page in paginator.paginate(AlarmTypes=["MetricAlarm"]) for a in page["MetricAlarms"]]
    return [a for a in alarms if a["AlarmName"].startswith("scalepay-") and a["AlarmName"].endswith(f"-{env}")]


def _watched_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric) pairs an alarm watches, directly or through metric math."""
    if "MetricName" in alarm:
        return {(alarm["Namespace"], alarm["MetricName"])}
    return {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"])
        for q in alarm.get("Metrics", [])
        if "MetricStat" in q
    }


def test_every_alarm_pages_the_on_call_topic(deployed: Deployed) -> None:
    """No alarm fires into the void: each one notifies the alarm topic, on alarm and on recovery."""
    o, aws = deployed.outputs, deployed.aws
    alarms = _alarms(aws, deployed.env)
    assert len(alarms) >= 15
    for alarm in alarms:
        assert o["alarmTopicArn"] in alarm["AlarmActions"], alarm["AlarmName"]
        assert o["alarmTopicArn"] in alarm["OKActions"], alarm["AlarmName"]


def test_failure_signals_are_watched(deployed: Deployed) -> None:
    """5xx errors, unhealthy targets, latency, database and cache saturation all raise alarms."""
    aws = deployed.aws
    metrics = set().union(*(_watched_metrics(a) for a in _alarms(aws, deployed.env)))
    for expected in (
        ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("AWS/ApplicationELB", "UnHealthyHostCount"),
        ("AWS/ApplicationELB", "TargetResponseTime"),
        ("AWS/ECS", "CPUUtilization"),
        ("AWS/ECS", "MemoryUtilization"),
        ("AWS/RDS", "CPUUtilization"),
        ("AWS/RDS", "DatabaseConnections"),
        ("AWS/RDS", "FreeableMemory"),
        ("AWS/ElastiCache", "Evictions"),
    ):
        assert expected in metrics, expected


def test_alarm_topic_is_encrypted(deployed: Deployed) -> None:
    """Alert payloads, which can name customers' resources, are encrypted with our key."""
    o, aws = deployed.outputs, deployed.aws
    attributes = aws("sns").get_topic_attributes(TopicArn=o["alarmTopicArn"])["Attributes"]
    assert attributes.get("KmsMasterKeyId")


def test_dashboard_shows_golden_signals(deployed: Deployed) -> None:
    """On-call sees latency, traffic, errors and saturation for every tier on one dashboard."""
    o, aws = deployed.outputs, deployed.aws
    body = aws("cloudwatch").get_dashboard(DashboardName=o["dashboardName"])["DashboardBody"]
    for needle in ("AWS/ApplicationELB", "AWS/ECS", "AWS/RDS", "AWS/ElastiCache"):
        assert needle in body, needle


def test_alarms_reach_a_person_in_staging_and_prod(deployed: Deployed) -> None:
    """An alarm nobody receives detects nothing: staging and prod subscribe at least one pager."""
    o, aws = deployed.outputs, deployed.aws
    subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=o["alarmTopicArn"])["Subscriptions"]
    if deployed.env == "dev":
        assert subscriptions == [], "dev runs without a subscriber unless one is configured"
        return
    assert subscriptions, f"{o['alarmTopicArn']} has no subscriber"
    (pager,) = [s for s in subscriptions if s["Protocol"] == "sqs"]
    queue_url = aws("sqs").get_queue_url(QueueName=pager["Endpoint"].rsplit(":", 1)[1])["QueueUrl"]
    aws("sns").publish(TopicArn=o["alarmTopicArn"], Subject="ALARM", Message='{"AlarmName": "integration-probe"}')
    received = aws("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert received and "integration-probe" in received[0]["Body"], "the pager did not receive the alarm"


def test_log_groups_aws_would_create_exist_encrypted(deployed: Deployed) -> None:
    """Container Insights and enhanced monitoring write to groups the stack made: encrypted, retained."""
    o, aws = deployed.outputs, deployed.aws
    retention = {"dev": 7, "staging": 90, "prod": 365}[deployed.env]
    names = [f"/aws/ecs/containerinsights/{o['ecsClusterName']}/performance"]
    if deployed.env != "dev":
        names.append("RDSOSMetrics")  # enhanced monitoring is on in staging and prod (one group per account)
    for name in names:
        (group,) = [g for g in aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        assert group.get("kmsKeyId"), name
        assert group["retentionInDays"] >= retention if name == "RDSOSMetrics" else group["retentionInDays"] == retention
