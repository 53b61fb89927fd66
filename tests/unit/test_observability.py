"""Observability: encrypted alarm topic, the full alarm set with per-environment thresholds, dashboard.

Thresholds come from the README's environment table (tests/expectations.py), never from the preset table the
program reads: a wrong preset threshold must fail here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lib.components.observability import (
    golden_signals_dashboard,
    parse_arn,
    redis_metric_queries,
    redis_nodes,
)
from lib.config import EnvironmentConfig
from tests.expectations import EXPECTED
from tools.evaluate import Evaluation, Registration, default_config, evaluate

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPONENT_TOKEN = "scalepayments:observability:Observability"


def _ours(evaluation: Evaluation, type_: str) -> list[Registration]:
    return [r for r in evaluation.of_type(type_) if COMPONENT_TOKEN in r.urn]


def _alarms(evaluation: Evaluation) -> dict[str, Registration]:
    return {r.inputs["name"]: r for r in _ours(evaluation, ALARM)}


def _topic(evaluation: Evaluation) -> Registration:
    (topic,) = _ours(evaluation, "aws:sns/topic:Topic")
    return topic


def _expected_alarms(cfg: EnvironmentConfig) -> dict[str, tuple[str, str, str, float]]:
    """alarm name -> (namespace, metric, comparison, threshold); thresholds from the README table (tests/expectations.py)."""
    e = EXPECTED[cfg.env]
    n = cfg.namer.name
    above, below = "GreaterThanThreshold", "LessThanThreshold"
    per_service: dict[str, tuple[str, str, str, float]] = {
        "cpu-high": ("AWS/ECS", "CPUUtilization", above, e.ecs_cpu_alarm_percent),
        "memory-high": ("AWS/ECS", "MemoryUtilization", above, e.ecs_memory_alarm_percent),
        "tasks-low": ("ECS/ContainerInsights", "RunningTaskCount", below, e.min_tasks),
        # Any unhealthy target is worth a look: the target group marks one unhealthy only after three failed checks.
        "unhealthy-hosts": ("AWS/ApplicationELB", "UnHealthyHostCount", above, 0),
    }
    shared: dict[str, tuple[str, str, str, float]] = {
        "alb-5xx": ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", above, e.alb_5xx_alarm_count),
        "alb-target-5xx": ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", above, e.alb_5xx_alarm_count),
        "alb-latency-high": ("AWS/ApplicationELB", "TargetResponseTime", above, e.alb_latency_alarm_seconds),
        "aurora-cpu-high": ("AWS/RDS", "CPUUtilization", above, e.db_cpu_alarm_percent),
        "aurora-connections-high": ("AWS/RDS", "DatabaseConnections", above, e.db_connections_alarm),
        "aurora-memory-low": ("AWS/RDS", "FreeableMemory", below, e.db_freeable_memory_alarm_bytes),
        "redis-cpu-high": ("AWS/ElastiCache", "EngineCPUUtilization", above, e.redis_cpu_alarm_percent),
        "redis-memory-high": ("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", above, e.redis_memory_alarm_percent),
        "redis-evictions": ("AWS/ElastiCache", "Evictions", above, e.redis_evictions_alarm),
    }
    if e.db_replica_lag_alarm_ms is not None:
        shared["aurora-replica-lag"] = ("AWS/RDS", "AuroraReplicaLagMaximum", above, e.db_replica_lag_alarm_ms)
    expected = {n(f"{service.name}-{alarm}"): spec for service in cfg.compute.services for alarm, spec in per_service.items()}
    expected.update({n(alarm): spec for alarm, spec in shared.items()})
    return expected


def _metric_of(alarm: Registration) -> tuple[str, str]:
    """(namespace, metric) of a single-metric alarm, or of the queries of a metric-math alarm."""
    inputs = alarm.inputs
    if "metricQueries" in inputs:
        metrics = {(q["metric"]["namespace"], q["metric"]["metricName"]) for q in inputs["metricQueries"] if "metric" in q}
        assert len(metrics) == 1, f"{inputs['name']}: metric-math alarm mixes metrics {metrics}"
        return metrics.pop()
    return inputs["namespace"], inputs["metricName"]


# --- the topic ----------------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_alarms_key(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    topic = _topic(evaluation)
    name = topic.inputs["name"]
    assert name == cfg.namer.name("alarms")
    assert topic.inputs.get("kmsMasterKeyId") == evaluation.outputs["kmsAlarmsKeyArn"], f"{name}: not the alarms key"
    assert topic.inputs["tags"]["Environment"] == cfg.env, f"{name} lacks the standard tags"
    assert evaluation.outputs["alarmTopicArn"] == topic.state["arn"]


def test_topic_policy_lets_cloudwatch_publish_over_tls_only(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = run
    topic_arn = _topic(evaluation).state["arn"]
    (policy_reg,) = _ours(evaluation, "aws:sns/topicPolicy:TopicPolicy")
    assert policy_reg.inputs["arn"] == topic_arn
    statements = json.loads(policy_reg.inputs["policy"])["Statement"]
    allows = [
        s
        for s in statements
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and s["Action"] == "sns:Publish"
    ]
    assert len(allows) == 1, f"topic policy of {topic_arn}: CloudWatch may not publish: {statements}"
    assert allows[0]["Resource"] == topic_arn
    assert allows[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == evaluation.outputs["accountId"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies), (
        f"topic policy of {topic_arn} does not deny plain-HTTP publishing"
    )


def test_every_configured_subscriber_receives_the_alarms() -> None:
    """Issue #8.8: alarms reach a person; e-mail, an HTTPS endpoint, SQS queues and Lambda functions can subscribe."""
    default = evaluate("dev", default_config("dev"))
    assert _ours(default, "aws:sns/topicSubscription:TopicSubscription") == [], "dev subscribes nobody by default"
    queue = "arn:aws:sqs:us-east-1:123456789012:pager"
    function = "arn:aws:lambda:us-east-1:123456789012:function:to-chat"
    config = {
        **default_config("dev"),
        "scalepayments:alarmEmail": "oncall@example.com",
        "scalepayments:alarmHttpsEndpoint": "https://events.pagerduty.com/integration/abc/enqueue",
        "scalepayments:alarmSubscriberArns": f"{queue},{function}",
    }
    evaluation = evaluate("dev", config)
    found = {
        (s.inputs["protocol"], s.inputs["endpoint"]) for s in _ours(evaluation, "aws:sns/topicSubscription:TopicSubscription")
    }
    assert found == {
        ("email", "oncall@example.com"),
        ("https", "https://events.pagerduty.com/integration/abc/enqueue"),
        ("sqs", queue),
        ("lambda", function),
    }
    topic_arn = _topic(evaluation).state["arn"]
    assert all(s.inputs["topic"] == topic_arn for s in _ours(evaluation, "aws:sns/topicSubscription:TopicSubscription"))


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_refuse_alarms_that_page_nobody(env: str) -> None:
    from lib.config import ConfigError

    config = {k: v for k, v in default_config(env).items() if k != "scalepayments:alarmSubscriberArns"}
    with pytest.raises(ConfigError) as excinfo:
        evaluate(env, config)
    message = str(excinfo.value)
    assert message.startswith("scalepayments:alarmEmail: invalid value None; allowed: at least one alarm subscriber")
    assert f"{env} refuses to deploy alarms that page nobody" in message


def test_a_subscriber_arn_must_be_a_queue_or_a_function() -> None:
    from lib.config import ConfigError

    config = {**default_config("staging"), "scalepayments:alarmSubscriberArns": "arn:aws:sns:us-east-1:123456789012:other"}
    with pytest.raises(ConfigError, match=r"scalepayments:alarmSubscriberArns.*SQS queues"):
        evaluate("staging", config)


# --- alarms -------------------------------------------------------------------------------------


def test_full_alarm_set_exists(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    found = set(_alarms(evaluation))
    expected = set(_expected_alarms(cfg))
    assert found == expected, f"missing: {sorted(expected - found)}; unexpected: {sorted(found - expected)}"


def test_replica_lag_alarm_only_with_readers(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    name = cfg.namer.name("aurora-replica-lag")
    instances = EXPECTED[cfg.env].db_instance_count
    assert (name in _alarms(evaluation)) == (instances > 1), (
        f"{name}: expected only with more than one Aurora instance ({instances})"
    )


def test_alarm_metrics_and_thresholds_follow_the_environment_table(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    alarms = _alarms(evaluation)
    for name, (namespace, metric, comparison, threshold) in _expected_alarms(cfg).items():
        alarm = alarms[name]
        assert _metric_of(alarm) == (namespace, metric), f"{name} watches {_metric_of(alarm)}"
        assert alarm.inputs["comparisonOperator"] == comparison, f"{name}: {alarm.inputs['comparisonOperator']}"
        assert alarm.inputs["threshold"] == pytest.approx(threshold), f"{name}: {alarm.inputs['threshold']} != {threshold}"


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    _, evaluation = run
    topic_arn = _topic(evaluation).state["arn"]
    for name, alarm in _alarms(evaluation).items():
        assert alarm.inputs.get("alarmActions") == [topic_arn], f"{name} does not notify {topic_arn}"
        assert alarm.inputs.get("okActions") == [topic_arn], f"{name} does not report recovery to {topic_arn}"
        assert alarm.inputs.get("actionsEnabled") is True, f"{name} has actions disabled"
        assert alarm.inputs.get("treatMissingData") in {"missing", "notBreaching", "breaching"}, f"{name}: treatMissingData unset"
        assert alarm.inputs.get("datapointsToAlarm", 0) <= alarm.inputs["evaluationPeriods"], f"{name}: M of N inverted"
        assert alarm.inputs["tags"]["Component"] == "observability", f"{name} lacks the standard tags"


def test_missing_data_handling_is_deliberate(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    alarms = _alarms(evaluation)
    n = cfg.namer.name
    for service in cfg.compute.services:
        # No RunningTaskCount datapoint means no task reports: that is the outage.
        assert alarms[n(f"{service.name}-tasks-low")].inputs["treatMissingData"] == "breaching", service.name
    for what in ("alb-5xx", "alb-target-5xx", "alb-latency-high"):
        # The ALB publishes nothing for a quiet minute: silence must not page.
        assert alarms[n(what)].inputs["treatMissingData"] == "notBreaching", n(what)


def test_service_alarms_watch_the_right_service(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    alarms = _alarms(evaluation)
    cluster = evaluation.outputs["ecsClusterName"]
    for service in cfg.compute.services:
        expected = {"ClusterName": cluster, "ServiceName": evaluation.outputs["serviceNames"][service.name]}
        for what in ("cpu-high", "memory-high", "tasks-low"):
            name = cfg.namer.name(f"{service.name}-{what}")
            assert alarms[name].inputs["dimensions"] == expected, f"{name}: {alarms[name].inputs['dimensions']}"


def test_alb_alarms_watch_the_alb_and_its_target_groups(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    alarms = _alarms(evaluation)
    alb_suffix = evaluation.one("aws:lb/loadBalancer:LoadBalancer").state["arnSuffix"]
    for what in ("alb-5xx", "alb-target-5xx", "alb-latency-high"):
        name = cfg.namer.name(what)
        assert alarms[name].inputs["dimensions"] == {"LoadBalancer": alb_suffix}, f"{name}: {alarms[name].inputs['dimensions']}"
    latency = alarms[cfg.namer.name("alb-latency-high")].inputs
    assert latency.get("extendedStatistic") == "p95", "latency alarm should judge a percentile, not the average"
    suffixes = {tg.inputs["name"]: tg.state["arnSuffix"] for tg in evaluation.of_type("aws:lb/targetGroup:TargetGroup")}
    for service in cfg.compute.services:
        name = cfg.namer.name(f"{service.name}-unhealthy-hosts")
        dims = alarms[name].inputs["dimensions"]
        assert dims["LoadBalancer"] == alb_suffix, name
        assert dims["TargetGroup"] in suffixes.values(), f"{name}: {dims['TargetGroup']} is no target group of the stack"
        assert service.short_name in dims["TargetGroup"], f"{name} watches another service's target group {dims['TargetGroup']}"


def test_database_alarms_watch_the_aurora_cluster(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    cluster_id = evaluation.outputs["auroraClusterIdentifier"]
    aurora = {name: a for name, a in _alarms(evaluation).items() if "-aurora-" in name}
    assert len(aurora) == 3 + (EXPECTED[cfg.env].db_instance_count > 1)
    for name, alarm in aurora.items():
        assert alarm.inputs["dimensions"] == {"DBClusterIdentifier": cluster_id}, f"{name}: {alarm.inputs['dimensions']}"


def test_redis_alarms_cover_every_member_cluster(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    members = set(evaluation.one("aws:elasticache/replicationGroup:ReplicationGroup").state["memberClusters"])
    assert len(members) == EXPECTED[cfg.env].cache_node_count
    for what in ("redis-cpu-high", "redis-memory-high", "redis-evictions"):
        name = cfg.namer.name(what)
        queries = _alarms(evaluation)[name].inputs["metricQueries"]
        watched = {q["metric"]["dimensions"]["CacheClusterId"] for q in queries if "metric" in q}
        assert watched == members, f"{name} watches {sorted(watched)}, the group has {sorted(members)}"
        returned = [q for q in queries if q.get("returnData")]
        assert len(returned) == 1 and "expression" in returned[0], f"{name}: exactly one returned expression expected"


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_has_golden_signals_of_every_tier(run: tuple[EnvironmentConfig, Evaluation]) -> None:
    cfg, evaluation = run
    (dashboard,) = _ours(evaluation, "aws:cloudwatch/dashboard:Dashboard")
    name = dashboard.inputs["dashboardName"]
    assert name == cfg.namer.name("golden-signals") == evaluation.outputs["dashboardName"]
    body = json.loads(dashboard.inputs["dashboardBody"])
    widgets = body["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    blob = json.dumps(body)

    for service in cfg.compute.services:
        own = [w for w in widgets if w["properties"]["title"].startswith(f"{service.name}:")]
        own_blob = json.dumps(own)
        assert len(own) >= 3, f"{name}: {service.name} lacks traffic/latency/saturation widgets: {titles}"
        assert evaluation.outputs["serviceNames"][service.name] in own_blob, f"{name}: {service.name} ECS service not charted"
        assert "TargetResponseTime" in own_blob and "HTTPCode_Target_5XX_Count" in own_blob, service.name
    for tier in ("ALB", "Aurora", "Redis"):
        assert any(t.startswith(tier) for t in titles), f"{name}: no {tier} widget in {titles}"
    assert evaluation.outputs["auroraClusterIdentifier"] in blob, f"{name}: Aurora cluster not charted"
    for member in evaluation.one("aws:elasticache/replicationGroup:ReplicationGroup").state["memberClusters"]:
        assert member in blob, f"{name}: Redis node {member} not charted"
    for signal in ("traffic", "latency", "errors", "saturation"):
        assert sum(signal in t for t in titles) >= 2, f"{name}: golden signal {signal!r} charted for too few tiers"
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24, f"{name}: widget {widget['properties']['title']} overflows the grid"
        assert widget["properties"]["region"] == cfg.region


# --- pure helpers -------------------------------------------------------------------------------


def test_parse_arn() -> None:
    assert parse_arn("arn:aws-us-gov:sns:us-gov-west-1:123456789012:alarms") == ("aws-us-gov", "us-gov-west-1", "123456789012")
    with pytest.raises(ValueError, match="not an ARN"):
        parse_arn("alarms")


def test_redis_nodes_falls_back_to_the_first_member() -> None:
    assert redis_nodes("scalepay-redis-dev", None) == ["scalepay-redis-dev-001"]
    assert redis_nodes("scalepay-redis-dev", []) == ["scalepay-redis-dev-001"]
    assert redis_nodes("g", ["g-002", "g-001"]) == ["g-001", "g-002"]


def test_redis_metric_queries_combine_every_node() -> None:
    queries = redis_metric_queries("Evictions", "Sum", "SUM", "evictions", ["g-001", "g-002", "g-003"])
    metrics = [q for q in queries if q.metric is not None]
    dimensions = [getattr(q.metric, "dimensions", None) for q in metrics]
    assert dimensions == [{"CacheClusterId": f"g-00{i}"} for i in (1, 2, 3)]
    assert all(q.return_data is False for q in metrics)
    (expression,) = [q for q in queries if q.expression is not None]
    assert expression.expression == "SUM([m0, m1, m2])"
    assert expression.return_data is True


def _dashboard_ids() -> dict[str, Any]:
    return {
        "cluster": "c",
        "services": {"api": "svc-api", "payment": "svc-pay"},
        "alb": "app/alb/1",
        "target_groups": {"api": "targetgroup/api/1", "payment": "targetgroup/pay/1"},
        "db_cluster": "aurora-1",
        "cache_nodes": ["r-001", "r-002"],
    }


def test_dashboard_body_is_pure_and_complete() -> None:
    body = golden_signals_dashboard("eu-west-1", _dashboard_ids())
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert any(t.startswith("api:") for t in titles) and any(t.startswith("payment:") for t in titles)
    text = json.dumps(body)
    for identifier in ("svc-api", "svc-pay", "targetgroup/pay/1", "aurora-1", "r-001", "r-002", "app/alb/1"):
        assert identifier in text, identifier
    assert {w["properties"]["region"] for w in body["widgets"]} == {"eu-west-1"}
    # No two widgets overlap on the grid.
    cells = [(w["x"], w["y"]) for w in body["widgets"]]
    assert len(cells) == len(set(cells))
