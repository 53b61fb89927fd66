"""Monitoring and alerting: alarms, the on-call topic, the dashboard."""

from __future__ import annotations

import json
from typing import Any

from tests.expectations import EXPECTED
from tests.integration.conftest import AwsClients, Deployed
from tests.integration.support import (
    SERVICES,
    Outputs,
    arn_suffix,
    aurora_cluster,
    expected_statements,
    partition_of,
    redis_group,
    statements_by_sid,
)

GREATER, LESS = "GreaterThanThreshold", "LessThanThreshold"


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


def _dimensions(**pairs: str) -> list[tuple[str, str]]:
    return sorted(pairs.items())


def _alarm(
    namespace: str,
    metric: str,
    dimensions: list[tuple[str, str]],
    statistic: str,
    threshold: float,
    comparison: str,
    periods: tuple[int, int],
    missing: str,
    period: int = 60,
) -> dict[str, Any]:
    """What a single-metric alarm must be: its metric, its threshold and how many datapoints of how many periods breach."""
    return {
        "metric": (namespace, metric, dimensions, statistic, period),
        "threshold": (comparison, float(threshold)),
        "evaluation": (periods, missing),
    }


def _redis_alarm(metric: str, statistic: str, combine: str, nodes: list[str], threshold: float) -> dict[str, Any]:
    """A Redis alarm: one metric of every node, combined by metric math, so it holds through failovers."""
    queries = [("AWS/ElastiCache", metric, _dimensions(CacheClusterId=node), statistic, 60) for node in nodes]
    ids = ", ".join(f"m{index}" for index in range(len(nodes)))
    return {
        "metric": (f"{combine}([{ids}])", sorted(queries)),
        "threshold": (GREATER, float(threshold)),
        "evaluation": ((5, 3), "missing"),
    }


def _expected_alarms(env: str, o: Outputs, aws: AwsClients) -> dict[str, dict[str, Any]]:
    """Every alarm the stack must have, by name. Thresholds are the README environment table's alarm rows; the
    evaluation windows (3 of 5 minutes, 5xx per 5 minutes...) are the program's declarations, which the alarm
    descriptions spell out to the on-call engineer."""
    e = EXPECTED[env]
    alb = arn_suffix(o["albArn"])
    alarms: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        ecs = _dimensions(ClusterName=o["ecsClusterName"], ServiceName=o["serviceNames"][service])
        target = _dimensions(TargetGroup=arn_suffix(o["targetGroupArns"][service]), LoadBalancer=alb)
        alarms[f"{service}-cpu-high"] = _alarm(
            "AWS/ECS", "CPUUtilization", ecs, "Average", e.ecs_cpu_alarm_percent, GREATER, (5, 3), "missing"
        )
        alarms[f"{service}-memory-high"] = _alarm(
            "AWS/ECS", "MemoryUtilization", ecs, "Average", e.ecs_memory_alarm_percent, GREATER, (5, 3), "missing"
        )
        # Fewer running tasks than the autoscaling floor; no datapoint at all means no task reports: breaching.
        alarms[f"{service}-tasks-low"] = _alarm(
            "ECS/ContainerInsights", "RunningTaskCount", ecs, "Minimum", e.min_tasks, LESS, (3, 3), "breaching"
        )
        alarms[f"{service}-unhealthy-hosts"] = _alarm(
            "AWS/ApplicationELB", "UnHealthyHostCount", target, "Maximum", 0, GREATER, (2, 2), "notBreaching"
        )
    lb = _dimensions(LoadBalancer=alb)
    for what, metric in (("alb-5xx", "HTTPCode_ELB_5XX_Count"), ("alb-target-5xx", "HTTPCode_Target_5XX_Count")):
        alarms[what] = _alarm(
            "AWS/ApplicationELB", metric, lb, "Sum", e.alb_5xx_alarm_count, GREATER, (1, 1), "notBreaching", period=300
        )
    alarms["alb-latency-high"] = _alarm(
        "AWS/ApplicationELB", "TargetResponseTime", lb, "p95", e.alb_latency_alarm_seconds, GREATER, (5, 3), "notBreaching"
    )
    db = _dimensions(DBClusterIdentifier=o["auroraClusterIdentifier"])
    alarms["aurora-cpu-high"] = _alarm(
        "AWS/RDS", "CPUUtilization", db, "Maximum", e.db_cpu_alarm_percent, GREATER, (5, 3), "missing"
    )
    alarms["aurora-connections-high"] = _alarm(
        "AWS/RDS", "DatabaseConnections", db, "Maximum", e.db_connections_alarm, GREATER, (5, 3), "missing"
    )
    alarms["aurora-memory-low"] = _alarm(
        "AWS/RDS", "FreeableMemory", db, "Minimum", e.db_freeable_memory_alarm_bytes, LESS, (5, 3), "missing"
    )
    if e.db_replica_lag_alarm_ms is not None:
        alarms["aurora-replica-lag"] = _alarm(
            "AWS/RDS", "AuroraReplicaLagMaximum", db, "Maximum", e.db_replica_lag_alarm_ms, GREATER, (5, 3), "missing"
        )
    nodes = sorted(redis_group(aws, o)["MemberClusters"])
    assert len(nodes) == e.cache_node_count  # every node the README plans, so that no alarm misses one
    alarms["redis-cpu-high"] = _redis_alarm("EngineCPUUtilization", "Average", "MAX", nodes, e.redis_cpu_alarm_percent)
    alarms["redis-memory-high"] = _redis_alarm(
        "DatabaseMemoryUsagePercentage", "Average", "MAX", nodes, e.redis_memory_alarm_percent
    )
    alarms["redis-evictions"] = _redis_alarm("Evictions", "Sum", "SUM", nodes, e.redis_evictions_alarm)
    return {f"scalepay-{what}-{env}": alarm for what, alarm in alarms.items()}


def _deployed_shape(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm as AWS stores it, in the form :func:`_expected_alarms` states it."""
    if "MetricName" in alarm:
        metric: tuple[Any, ...] = (
            alarm["Namespace"],
            alarm["MetricName"],
            sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])),
            alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            alarm["Period"],
        )
    else:
        (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
        queries = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
        metric = (
            expression["Expression"],
            sorted(
                (
                    q["Metric"]["Namespace"],
                    q["Metric"]["MetricName"],
                    sorted((d["Name"], d["Value"]) for d in q["Metric"]["Dimensions"]),
                    q["Stat"],
                    q["Period"],
                )
                for q in queries
            ),
        )
    return {
        "metric": metric,
        "threshold": (alarm["ComparisonOperator"], float(alarm["Threshold"])),
        "evaluation": ((alarm["EvaluationPeriods"], alarm.get("DatapointsToAlarm")), alarm.get("TreatMissingData")),
    }


def test_every_alarm_pages_the_on_call_topic(deployed: Deployed) -> None:
    """No alarm fires into the void: each one notifies the alarm topic, and only it, on alarm and on recovery."""
    o, aws = deployed.outputs, deployed.aws
    alarms = _alarms(aws, deployed.env)
    assert len(alarms) == len(_expected_alarms(deployed.env, o, aws))
    for alarm in alarms:
        assert alarm["ActionsEnabled"] is True, alarm["AlarmName"]
        assert alarm["AlarmActions"] == [o["alarmTopicArn"]], alarm["AlarmName"]
        assert alarm["OKActions"] == [o["alarmTopicArn"]], alarm["AlarmName"]


def test_alarm_thresholds_match_the_environment(deployed: Deployed) -> None:
    """On-call is paged at the agreed thresholds: each alarm watches its own resource at the README's threshold and direction."""
    o, aws = deployed.outputs, deployed.aws
    expected = _expected_alarms(deployed.env, o, aws)
    found = {a["AlarmName"]: a for a in _alarms(aws, deployed.env)}
    assert sorted(found) == sorted(expected)
    for name, alarm in sorted(expected.items()):
        assert _deployed_shape(found[name]) == alarm, name


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
    """Alert payloads, which can name customers' resources, are encrypted with this stack's alarms key."""
    o, aws = deployed.outputs, deployed.aws
    attributes = aws("sns").get_topic_attributes(TopicArn=o["alarmTopicArn"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == o["kmsAlarmsKeyArn"]


def test_only_this_accounts_alarms_may_publish_to_the_pager(deployed: Deployed) -> None:
    """Nobody can page on-call with fake alerts: only CloudWatch, for this account's alarms, may publish, and only over TLS."""
    o, aws = deployed.outputs, deployed.aws
    topic, account, region = o["alarmTopicArn"], o["accountId"], o["region"]
    policy = json.loads(aws("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert statements_by_sid(policy) == expected_statements(
        {
            "Sid": "AllowCloudWatchAlarmsToPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            # Another account's alarm cannot use CloudWatch as a confused deputy to post into our pager.
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition_of(topic)}:cloudwatch:{region}:{account}:alarm:*"},
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )


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


def test_log_groups_aws_would_create_exist_encrypted(deployed: Deployed, all_outputs: dict[str, Outputs]) -> None:
    """Container Insights and enhanced monitoring write to groups the stack made: encrypted with its key, retained exactly."""
    o, aws = deployed.outputs, deployed.aws
    insights = f"/aws/ecs/containerinsights/{o['ecsClusterName']}/performance"
    expected = {insights: (EXPECTED[deployed.env].log_retention_days, o["kmsLogsKeyArn"])}
    if EXPECTED[deployed.env].enhanced_monitoring:
        # One RDSOSMetrics group per account: the stack that owns the account's singletons makes it, with its own
        # retention and key (prod in the integration run's shared account; each environment in an account of its own).
        owner = deployed.env if o["cloudTrailArn"] else "prod"
        expected["RDSOSMetrics"] = (EXPECTED[owner].log_retention_days, all_outputs[owner]["kmsLogsKeyArn"])
    for name, (retention, key) in expected.items():
        (group,) = [g for g in aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        assert (group.get("retentionInDays"), group.get("kmsKeyId")) == (retention, key), name


def test_aurora_instances_report_at_the_table_interval(deployed: Deployed) -> None:
    """Every Aurora instance sends OS metrics at the interval the table states (prod every 15 s, so an incident's
    first minute is visible), sent through the stack's monitoring role."""
    o, aws, expected = deployed.outputs, deployed.aws, EXPECTED[deployed.env]
    for member in aurora_cluster(aws, o)["DBClusterMembers"]:
        name = member["DBInstanceIdentifier"]
        instance = aws("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        assert instance.get("MonitoringInterval", 0) == expected.db_monitoring_interval_seconds, name
        assert bool(instance.get("MonitoringRoleArn")) == expected.enhanced_monitoring, name
        # Performance Insights is not read here: the emulator (moto) does not return it for Aurora instances;
        # the unit matrix (test_aurora_class_count_and_monitoring) checks what the program declares.
