"""Alarms to an encrypted SNS topic, and a golden-signals dashboard per environment.

Every alarm notifies the topic both when it fires and when it recovers, so the on-call engineer
sees the incident close as well as open. Thresholds come from :class:`ObservabilitySettings`
(one row of the preset table per environment); which alarms exist follows from what is being
monitored (e.g. replica lag only with more than one Aurora instance), never from the environment name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, child_opts
from lib.config import ObservabilitySettings
from lib.resource_policies import sns_alarm_topic_policy

COMPONENT = "observability"

#: Metric resolution of every alarm and widget (seconds): AWS/ECS, ALB, RDS and ElastiCache all publish per minute.
PERIOD = 60

#: HTTP error counts are judged over five minutes (``http_5xx_alarm_count`` is "errors per 5 minutes").
ERROR_WINDOW = 300

# treat_missing_data values, chosen per alarm (the comment at each alarm says why).
#: No datapoint means nothing happened (ALB publishes no 5xx/latency datapoint without requests or errors).
NOT_BREACHING = "notBreaching"
#: No datapoint means nothing runs (Container Insights stops publishing when a service has no tasks).
BREACHING = "breaching"
#: No datapoint is not evidence either way: keep the current state (saturation of always-on resources).
MISSING = "missing"

GREATER = "GreaterThanThreshold"
LESS = "LessThanThreshold"

#: Redis: what to alarm on per member cluster, and how the per-node series are combined.
REDIS_ALARMS: tuple[tuple[str, str, str, str], ...] = (
    # (alarm suffix, metric, per-node statistic, metric-math combination over the nodes)
    ("redis-cpu-high", "EngineCPUUtilization", "Average", "MAX"),
    ("redis-memory-high", "DatabaseMemoryUsagePercentage", "Average", "MAX"),
    ("redis-evictions", "Evictions", "Sum", "SUM"),
)

#: Metric namespaces of the ALB and Aurora alarms.
ELB = "AWS/ApplicationELB"
RDS = "AWS/RDS"


class Judgement(NamedTuple):
    """When an alarm fires: the comparison, M (datapoints) of N (evaluation periods), what a gap means."""

    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    period: int = PERIOD


#: Saturation of an always-on resource: 3 of 5 minutes beyond the threshold rides out a deploy's start-up spike
#: or one busy minute; the resource publishes every minute, so a gap is no evidence either way and keeps the state.
SUSTAINED_ABOVE = Judgement(GREATER, 5, 3, MISSING)
SUSTAINED_BELOW = Judgement(LESS, 5, 3, MISSING)


class Metric(NamedTuple):
    """One CloudWatch metric and the statistic an alarm takes of it (``p95`` and the like are percentiles)."""

    namespace: str
    name: str
    statistic: str

    @property
    def is_percentile(self) -> bool:
        """Whether the statistic is a percentile (CloudWatch's extended statistic), such as ``p95``."""
        return self.statistic.startswith("p")


class AlarmSpec(NamedTuple):
    """One single-metric alarm: its name, metric, judgement, threshold and what it tells the on-call engineer."""

    what: str
    metric: Metric
    judged: Judgement
    threshold: float
    description: str


@dataclass(frozen=True, kw_only=True)
class MonitoredResources:
    """Identifiers of what the alarms and the dashboard watch."""

    cluster_name: pulumi.Input[str]
    service_names: dict[str, pulumi.Output[str]]
    min_tasks: int
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: dict[str, pulumi.Output[str]]
    db_cluster_identifier: pulumi.Input[str]
    db_instance_identifiers: list[pulumi.Output[str]]
    cache_replication_group_id: pulumi.Input[str]
    cache_member_clusters: pulumi.Input[list[str]]


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """Inputs of :class:`Observability`."""

    context: Context
    settings: ObservabilitySettings
    monitored: MonitoredResources
    alarms_key_arn: pulumi.Input[str]


def parse_arn(arn: str) -> tuple[str, str, str]:
    """``(partition, region, account_id)`` of an ARN such as ``arn:aws:sns:us-east-1:123456789012:topic``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1], parts[3], parts[4]


def alarm_topic_policy_json(topic_arn: str) -> str:
    """The alarm topic's policy as JSON; partition, region and account come from the topic ARN itself."""
    partition, region, account_id = parse_arn(topic_arn)
    return json.dumps(sns_alarm_topic_policy(topic_arn, account_id, region, partition))


def alarm_subscriptions(settings: ObservabilitySettings) -> list[tuple[str, str, str]]:
    """``(logical name, SNS protocol, endpoint)`` of every alarm subscriber the settings name.

    E-mail and HTTPS endpoints (a paging service, a chat webhook) subscribe directly; an SQS queue or a
    Lambda function subscribes with the protocol named by its ARN. An e-mail or HTTPS subscription stays
    pending until its owner confirms it (the deploy summary says so).
    """
    found: list[tuple[str, str, str]] = []
    if settings.alarm_email:
        found.append(("alarms-email", "email", settings.alarm_email))
    if settings.alarm_https_endpoint:
        found.append(("alarms-https", "https", settings.alarm_https_endpoint))
    for index, arn in enumerate(settings.alarm_subscriber_arns, start=1):
        protocol = arn.split(":")[2]  # sqs or lambda (validated in lib/config.py)
        found.append((f"alarms-{protocol}-{index}", protocol, arn))
    return found


def redis_nodes(replication_group_id: str, member_clusters: Sequence[str] | None) -> list[str]:
    """Member cluster ids to watch; ``<group>-001`` (always the first member) if AWS reported none yet."""
    return sorted(member_clusters) if member_clusters else [f"{replication_group_id}-001"]


def redis_metric_queries(
    metric_name: str, statistic: str, combine: str, label: str, nodes: Sequence[str]
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """Metric math combining one metric across every member cluster of a replication group.

    ElastiCache publishes Redis metrics per ``CacheClusterId`` (one per node), not per replication
    group, and after a failover the primary is whichever node won: an alarm on ``<group>-001``
    alone would watch a replica. ``MAX``/``SUM`` over all members covers every node and stays
    correct through failovers and replica changes.
    """
    queries = [
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=f"m{index}",
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace="AWS/ElastiCache",
                metric_name=metric_name,
                dimensions={"CacheClusterId": node},
                period=PERIOD,
                stat=statistic,
            ),
            return_data=False,
        )
        for index, node in enumerate(nodes)
    ]
    ids = ", ".join(f"m{index}" for index in range(len(nodes)))
    queries.append(
        aws.cloudwatch.MetricAlarmMetricQueryArgs(id="e1", expression=f"{combine}([{ids}])", label=label, return_data=True)
    )
    return queries


def _queries_for(
    metric_name: str, statistic: str, combine: str, nodes: Sequence[str]
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """:func:`redis_metric_queries` labelled ``<combination> <metric>`` (bound with functools.partial per alarm)."""
    return redis_metric_queries(metric_name, statistic, combine, f"{combine} {metric_name}", nodes)


def golden_signals_dashboard(region: str, resources: Mapping[str, Any]) -> dict[str, Any]:
    """CloudWatch dashboard body: latency, traffic, errors and saturation of every tier.

    ``resources`` holds resolved identifiers: ``cluster``, ``services`` (service -> ECS service
    name), ``alb``, ``target_groups`` (service -> target group ARN suffix), ``db_cluster`` and
    ``cache_nodes`` (Redis member cluster ids).
    """
    widgets: list[dict[str, Any]] = []
    row = 0

    def add_row(*row_widgets: tuple[str, list[list[Any]], str, dict[str, Any]]) -> None:
        nonlocal row
        width = 24 // len(row_widgets)
        for index, (title, metrics, stat, extra) in enumerate(row_widgets):
            widgets.append(
                {
                    "type": "metric",
                    "x": index * width,
                    "y": row,
                    "width": width,
                    "height": 6,
                    "properties": {
                        "title": title,
                        "region": region,
                        "view": "timeSeries",
                        "stacked": False,
                        "period": PERIOD,
                        "stat": stat,
                        "metrics": metrics,
                        **extra,
                    },
                }
            )
        row += 6

    alb = resources["alb"]
    elb = "AWS/ApplicationELB"
    add_row(
        ("ALB traffic: requests", [[elb, "RequestCount", "LoadBalancer", alb]], "Sum", {}),
        (
            "ALB latency: target response time (s)",
            [[elb, "TargetResponseTime", "LoadBalancer", alb, {"stat": p, "label": p}] for p in ("p50", "p95", "p99")],
            "p95",
            {},
        ),
        (
            "ALB errors: 5xx",
            [
                [elb, "HTTPCode_ELB_5XX_Count", "LoadBalancer", alb],
                [elb, "HTTPCode_Target_5XX_Count", "LoadBalancer", alb],
            ],
            "Sum",
            {},
        ),
    )

    cluster = resources["cluster"]
    for service, service_name in sorted(resources["services"].items()):
        target_group = resources["target_groups"][service]
        tg_dims = ["TargetGroup", target_group, "LoadBalancer", alb]
        ecs_dims = ["ClusterName", cluster, "ServiceName", service_name]
        add_row(
            (
                f"{service}: traffic and errors",
                [
                    [elb, "RequestCount", *tg_dims, {"label": "requests"}],
                    [elb, "HTTPCode_Target_5XX_Count", *tg_dims, {"label": "5xx", "yAxis": "right"}],
                    [elb, "UnHealthyHostCount", *tg_dims, {"label": "unhealthy targets", "stat": "Maximum", "yAxis": "right"}],
                ],
                "Sum",
                {},
            ),
            (
                f"{service}: latency (s)",
                [[elb, "TargetResponseTime", *tg_dims, {"stat": p, "label": p}] for p in ("p50", "p95", "p99")],
                "p95",
                {},
            ),
            (
                f"{service}: saturation",
                [
                    ["AWS/ECS", "CPUUtilization", *ecs_dims, {"label": "CPU %"}],
                    ["AWS/ECS", "MemoryUtilization", *ecs_dims, {"label": "memory %"}],
                    ["ECS/ContainerInsights", "RunningTaskCount", *ecs_dims, {"label": "running tasks", "yAxis": "right"}],
                ],
                "Average",
                {},
            ),
        )

    db = ["DBClusterIdentifier", resources["db_cluster"]]
    rds = "AWS/RDS"
    add_row(
        (
            "Aurora traffic: connections and commits",
            [[rds, "DatabaseConnections", *db], [rds, "CommitThroughput", *db, {"yAxis": "right"}]],
            "Average",
            {},
        ),
        (
            "Aurora latency (s)",
            [[rds, "ReadLatency", *db], [rds, "WriteLatency", *db]],
            "Average",
            {},
        ),
        (
            "Aurora errors: deadlocks, replica lag (ms)",
            [[rds, "Deadlocks", *db, {"stat": "Sum"}], [rds, "AuroraReplicaLagMaximum", *db, {"yAxis": "right"}]],
            "Maximum",
            {},
        ),
        (
            "Aurora saturation: CPU %, freeable memory",
            [[rds, "CPUUtilization", *db], [rds, "FreeableMemory", *db, {"stat": "Minimum", "yAxis": "right"}]],
            "Maximum",
            {},
        ),
    )

    cache = "AWS/ElastiCache"
    nodes = list(resources["cache_nodes"])

    def per_node(metric: str, **options: Any) -> list[list[Any]]:
        return [[cache, metric, "CacheClusterId", node, {"label": f"{node} {metric}", **options}] for node in nodes]

    add_row(
        ("Redis traffic: commands", per_node("GetTypeCmds") + per_node("SetTypeCmds"), "Sum", {}),
        ("Redis latency (us)", per_node("GetTypeCmdsLatency") + per_node("SetTypeCmdsLatency"), "Average", {}),
        ("Redis errors: evictions, cache misses", per_node("Evictions") + per_node("CacheMisses"), "Sum", {}),
        (
            "Redis saturation: engine CPU %, memory %",
            per_node("EngineCPUUtilization") + per_node("DatabaseMemoryUsagePercentage"),
            "Maximum",
            {},
        ),
    )
    return {"widgets": widgets}


class Observability(Component):
    """SNS alarm topic (KMS), CloudWatch alarms with the topic as action, dashboard."""

    alarm_topic_arn: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:observability:Observability", name, None, opts)
        self._ctx = args.context
        settings = args.settings
        monitored = args.monitored

        topic = self._topic(args)
        self._actions = [topic.arn]
        self._alarms: list[aws.cloudwatch.MetricAlarm] = []

        self._service_alarms(settings, monitored)
        self._alb_alarms(settings, monitored)
        self._database_alarms(settings, monitored)
        self._cache_alarms(settings, monitored)

        resolved: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(
            {
                "cluster": monitored.cluster_name,
                "services": monitored.service_names,
                "alb": monitored.alb_arn_suffix,
                "target_groups": monitored.target_group_arn_suffixes,
                "db_cluster": monitored.db_cluster_identifier,
                "cache_group": monitored.cache_replication_group_id,
                "cache_members": monitored.cache_member_clusters,
            }
        )
        region = self._ctx.region

        def render(ids: dict[str, Any]) -> str:
            nodes = redis_nodes(ids["cache_group"], ids["cache_members"])
            return json.dumps(golden_signals_dashboard(region, {**ids, "cache_nodes": nodes}), sort_keys=True)

        dashboard = aws.cloudwatch.Dashboard(
            "golden-signals",
            dashboard_name=self._ctx.name("golden-signals"),
            dashboard_body=resolved.apply(render),
            opts=child_opts(self),
        )

        self.alarm_topic_arn = topic.arn
        self.alarm_names = [alarm.name for alarm in self._alarms]
        self.dashboard_name = dashboard.dashboard_name
        self.finish()

    # --- topic -----------------------------------------------------------------------------------

    def _topic(self, args: ObservabilityArgs) -> aws.sns.Topic:
        """The KMS-encrypted alarm topic, its policy and its subscribers (required in staging and prod)."""
        ctx = self._ctx
        topic_name = ctx.name("alarms")
        topic = aws.sns.Topic(
            "alarms-topic",
            name=topic_name,
            display_name=f"ScalePayments {ctx.environment} alarms",
            # The keys component lets cloudwatch.amazonaws.com use this key; without that grant alarms
            # would fire and their notifications be dropped silently.
            kms_master_key_id=args.alarms_key_arn,
            tags=ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        # The topic ARN carries partition, region and account: no extra lookup is needed for the conditions.
        aws.sns.TopicPolicy(
            "alarms-topic-policy",
            arn=topic.arn,
            policy=topic.arn.apply(alarm_topic_policy_json),
            opts=child_opts(self),
        )
        for logical, protocol, endpoint in alarm_subscriptions(args.settings):
            aws.sns.TopicSubscription(
                logical,
                topic=topic.arn,
                protocol=protocol,
                endpoint=endpoint,
                opts=child_opts(self),
            )
        return topic

    # --- alarms ----------------------------------------------------------------------------------

    def _alarm(
        self,
        what: str,
        description: str,
        threshold: float,
        judged: Judgement,
        *,
        metric: Metric | None = None,
        dimensions: Mapping[str, pulumi.Input[str]] | None = None,
        metric_queries: pulumi.Input[Sequence[aws.cloudwatch.MetricAlarmMetricQueryArgs]] | None = None,
    ) -> None:
        """One alarm named ``scalepay-<what>-<env>`` that notifies the topic on ALARM and on OK.

        It watches either one ``metric`` (with its ``dimensions``) or the result of ``metric_queries``.
        """
        # A metric-math alarm takes namespace, statistic and period from its queries.
        percentile = metric is not None and metric.is_percentile
        alarm = aws.cloudwatch.MetricAlarm(
            what,
            name=self._ctx.name(what),
            alarm_description=description,
            namespace=metric.namespace if metric else None,
            metric_name=metric.name if metric else None,
            dimensions=dimensions,
            statistic=metric.statistic if metric and not percentile else None,
            extended_statistic=metric.statistic if metric and percentile else None,
            period=judged.period if metric else None,
            metric_queries=metric_queries,
            comparison_operator=judged.comparison,
            threshold=threshold,
            evaluation_periods=judged.evaluation_periods,
            datapoints_to_alarm=judged.datapoints_to_alarm,
            treat_missing_data=judged.treat_missing_data,
            # Percentiles over a handful of requests are noise: judge latency only with enough samples.
            evaluate_low_sample_count_percentiles="ignore" if percentile else None,
            actions_enabled=True,
            alarm_actions=self._actions,
            ok_actions=self._actions,
            tags=self._ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        self._alarms.append(alarm)

    def _metric_alarms(self, dimensions: Mapping[str, pulumi.Input[str]], alarms: Sequence[AlarmSpec]) -> None:
        """One single-metric alarm per row of ``alarms``, all on the same ``dimensions``."""
        for row in alarms:
            self._alarm(row.what, row.description, row.threshold, row.judged, metric=row.metric, dimensions=dimensions)

    def _service_alarms(self, settings: ObservabilitySettings, monitored: MonitoredResources) -> None:
        """Per ECS service: CPU and memory saturation, and fewer running tasks than the autoscaling minimum."""
        for service, service_name in sorted(monitored.service_names.items()):
            dims = {"ClusterName": monitored.cluster_name, "ServiceName": service_name}
            # Saturation: SUSTAINED_ABOVE rides out a deploy's start-up spike. Missing data keeps the state: a service
            # without tasks is reported by the running-tasks alarm instead.
            self._metric_alarms(
                dims,
                [
                    AlarmSpec(
                        f"{service}-cpu-high",
                        Metric("AWS/ECS", "CPUUtilization", "Average"),
                        SUSTAINED_ABOVE,
                        settings.cpu_alarm_percent,
                        f"{service}: average CPU above {settings.cpu_alarm_percent}% for 3 of 5 minutes; "
                        "autoscaling is not keeping up (check max tasks and the latest deploy).",
                    ),
                    AlarmSpec(
                        f"{service}-memory-high",
                        Metric("AWS/ECS", "MemoryUtilization", "Average"),
                        SUSTAINED_ABOVE,
                        settings.memory_alarm_percent,
                        f"{service}: average memory above {settings.memory_alarm_percent}% for 3 of 5 minutes; "
                        "tasks risk being OOM-killed.",
                    ),
                    # Availability: Container Insights (enabled on the cluster) publishes RunningTaskCount; no
                    # datapoint at all means no task reports, which is the outage this alarm exists for, hence breaching.
                    AlarmSpec(
                        f"{service}-tasks-low",
                        Metric("ECS/ContainerInsights", "RunningTaskCount", "Minimum"),
                        Judgement(LESS, 3, 3, BREACHING),
                        monitored.min_tasks,
                        f"{service}: fewer than {monitored.min_tasks} running tasks (the autoscaling minimum) for 3 minutes; "
                        "tasks are crashing or cannot be placed (check stopped-task reasons).",
                    ),
                ],
            )

    def _alb_alarms(self, settings: ObservabilitySettings, monitored: MonitoredResources) -> None:
        """ALB errors (its own and the targets'), latency, and unhealthy targets per target group."""
        # The ALB publishes no 5xx or latency datapoint for a minute without errors or requests: missing
        # data is the healthy case, hence notBreaching for all of these.
        errors = Judgement(GREATER, 1, 1, NOT_BREACHING, period=ERROR_WINDOW)
        limit = settings.http_5xx_alarm_count
        self._metric_alarms(
            {"LoadBalancer": monitored.alb_arn_suffix},
            [
                AlarmSpec(
                    "alb-5xx",
                    Metric(ELB, "HTTPCode_ELB_5XX_Count", "Sum"),
                    errors,
                    limit,
                    f"ALB itself returned more than {limit} 5xx responses in 5 minutes "
                    "(no healthy target, or the ALB cannot reach the services).",
                ),
                AlarmSpec(
                    "alb-target-5xx",
                    Metric(ELB, "HTTPCode_Target_5XX_Count", "Sum"),
                    errors,
                    limit,
                    f"Services returned more than {limit} 5xx responses in 5 minutes.",
                ),
                AlarmSpec(
                    "alb-latency-high",
                    Metric(ELB, "TargetResponseTime", "p95"),
                    Judgement(GREATER, 5, 3, NOT_BREACHING),
                    settings.response_time_alarm_seconds,
                    f"p95 target response time above {settings.response_time_alarm_seconds}s for 3 of 5 minutes.",
                ),
            ],
        )
        for service, target_group in sorted(monitored.target_group_arn_suffixes.items()):
            # A target group with no registered targets publishes nothing; that case is the tasks-low alarm's.
            self._alarm(
                f"{service}-unhealthy-hosts",
                f"{service}: at least one target failed ALB health checks for 2 minutes.",
                0,
                Judgement(GREATER, 2, 2, NOT_BREACHING),
                metric=Metric(ELB, "UnHealthyHostCount", "Maximum"),
                dimensions={"TargetGroup": target_group, "LoadBalancer": monitored.alb_arn_suffix},
            )

    def _database_alarms(self, settings: ObservabilitySettings, monitored: MonitoredResources) -> None:
        """Aurora cluster (DBClusterIdentifier dimension): CPU, connections, freeable memory, replica lag."""
        # Cluster-level datapoints aggregate the instances: Maximum (Minimum for memory) is the worst instance.
        # Aurora always publishes these, so a gap is no evidence either way: missing keeps the state (SUSTAINED).
        alarms = [
            AlarmSpec(
                "aurora-cpu-high",
                Metric(RDS, "CPUUtilization", "Maximum"),
                SUSTAINED_ABOVE,
                settings.db_cpu_alarm_percent,
                f"Aurora: an instance above {settings.db_cpu_alarm_percent}% CPU for 3 of 5 minutes.",
            ),
            AlarmSpec(
                "aurora-connections-high",
                Metric(RDS, "DatabaseConnections", "Maximum"),
                SUSTAINED_ABOVE,
                settings.db_connections_alarm,
                f"Aurora: an instance above {settings.db_connections_alarm} connections for 3 of 5 minutes "
                "(connection leak or pool misconfiguration).",
            ),
            AlarmSpec(
                "aurora-memory-low",
                Metric(RDS, "FreeableMemory", "Minimum"),
                SUSTAINED_BELOW,
                settings.db_freeable_memory_alarm_bytes,
                f"Aurora: an instance below {settings.db_freeable_memory_alarm_bytes // 1024**2} MiB freeable memory "
                "for 3 of 5 minutes.",
            ),
        ]
        # Replica lag only exists with a reader; AuroraReplicaLagMaximum is its cluster-level form (milliseconds).
        if len(monitored.db_instance_identifiers) > 1:
            alarms.append(
                AlarmSpec(
                    "aurora-replica-lag",
                    Metric(RDS, "AuroraReplicaLagMaximum", "Maximum"),
                    SUSTAINED_ABOVE,
                    settings.db_replica_lag_alarm_ms,
                    f"Aurora: a reader more than {settings.db_replica_lag_alarm_ms} ms behind the writer for 3 of 5 minutes "
                    "(reads may be stale; failover would lose nothing but take longer).",
                )
            )
        self._metric_alarms({"DBClusterIdentifier": monitored.db_cluster_identifier}, alarms)

    def _cache_alarms(self, settings: ObservabilitySettings, monitored: MonitoredResources) -> None:
        """Redis: engine CPU, memory and evictions across every member cluster (metric math, see redis_metric_queries)."""
        thresholds = {
            "redis-cpu-high": (settings.redis_cpu_alarm_percent, "Redis: engine CPU of a node above {}% for 3 of 5 min"),
            "redis-memory-high": (settings.redis_memory_alarm_percent, "Redis: a node above {}% of its memory for 3 of 5 min"),
            "redis-evictions": (settings.redis_evictions_alarm, "Redis: more than {} keys evicted per minute for 3 of 5 min"),
        }
        members = pulumi.Output.all(monitored.cache_replication_group_id, monitored.cache_member_clusters).apply(
            lambda v: redis_nodes(v[0], v[1])
        )
        for what, metric, statistic, combine in REDIS_ALARMS:
            threshold, description = thresholds[what]
            # Only the query list is computed from the member ids; the alarm itself is declared here.
            queries = members.apply(functools.partial(_queries_for, metric, statistic, combine))
            # ElastiCache publishes every minute for a live node: a gap proves nothing, keep the state (SUSTAINED).
            self._alarm(what, description.format(threshold), threshold, SUSTAINED_ABOVE, metric_queries=queries)
