"""``make cost ENV=dev|staging|prod|all [USAGE="key=value ..."] [CONFIG=...]``: monthly estimate, offline.

For each environment: the resources the program registers (read from the resource graph, as the
preview shows them), priced with the pinned table (:mod:`tools.insight.prices`, us-east-1, on-demand,
each price with its source and date) and the explicit usage assumptions (:mod:`tools.insight.usage`),
itemized by component and resource, at the minimum autoscaling scale (``minTasks`` per service) and at
the maximum (``maxTasks``).

Every resource type the program registers is either priced here (:data:`PRICED`, one function per type
that turns a registration into line items) or declared free with the reason (:data:`FREE`). A type in
neither list makes the estimate incomplete: the command says which and exits 1, and the unit test
``test_insight_cost.py`` fails, so a new billable resource cannot go unpriced silently.

What is not modelled (see the README's cost section): data transfer out to the internet and between AZs,
free tiers that are per account (KMS requests, dashboards, Config evaluations), Savings Plans and
reserved capacity, S3 request charges, and Fargate Spot.

    python -m tools.insight.cost --env all
    python -m tools.insight.cost --env prod --usage requests_millions=250 --format json
    python -m tools.insight.cost --show-usage
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.evaluate import Registration
from tools.insight.graph import Graph, add_config_argument, get_in, load, number, overrides_from, run_cli
from tools.insight.prices import Price, PriceTable, UnpricedError
from tools.insight.usage import PROFILES, Usage, UsageError, parse_usage, usage_for

#: 365 / 12: converts a retention period in days into months of stored data.
DAYS_PER_MONTH = 365 / 12

#: Performance Insights keeps this many days for free; longer retention is billed per vCPU.
PI_FREE_RETENTION_DAYS = 7

#: Days of RDSOSMetrics the account keeps when the stack does not own the log group (AWS's default).
RDS_OS_METRICS_DEFAULT_RETENTION_DAYS = 30

#: Fargate gives every task this much ephemeral storage for free.
FARGATE_FREE_STORAGE_GIB = 20


@dataclass(frozen=True)
class LineItem:
    """One priced quantity of one resource: ``quantity * unit price`` per month, at min and max scale."""

    component: str
    type: str
    resource: str
    physical_name: str
    item: str
    quantity_min: float
    quantity_max: float
    price: Price

    @property
    def monthly_min(self) -> float:
        """USD per month at the minimum scale."""
        return self.quantity_min * self.price.usd

    @property
    def monthly_max(self) -> float:
        """USD per month at the maximum scale."""
        return self.quantity_max * self.price.usd


@dataclass
class Estimate:
    """The line items of one stack, and the resource types nothing prices (should be empty)."""

    stack: str
    environment: str
    usage: Usage
    #: Tasks per service at min and max scale, as read from the services (``3-10``; ``2-4, 1-2`` if they differ).
    tasks: str
    items: list[LineItem] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def total_min(self) -> float:
        """USD per month at the minimum autoscaling scale."""
        return sum(i.monthly_min for i in self.items)

    @property
    def total_max(self) -> float:
        """USD per month at the maximum autoscaling scale."""
        return sum(i.monthly_max for i in self.items)

    def by_component(self) -> list[tuple[str, float, float]]:
        """``(component, min, max)``, most expensive first (at max scale), then by name."""
        totals: dict[str, list[float]] = {}
        for item in self.items:
            pair = totals.setdefault(item.component, [0.0, 0.0])
            pair[0] += item.monthly_min
            pair[1] += item.monthly_max
        return sorted(((c, v[0], v[1]) for c, v in totals.items()), key=lambda t: (-t[2], t[0]))


class Pricer:
    """Turns registrations into line items with one price table and one set of usage assumptions."""

    def __init__(self, graph: Graph, prices: PriceTable, usage: Usage) -> None:
        self.graph = graph
        self.prices = prices
        self.usage = usage

    @property
    def hours(self) -> float:
        """Hours in the month being estimated."""
        return self.usage.hours_per_month

    def item(
        self, registration: Registration, item: str, price_key: str, quantity_min: float, quantity_max: float | None = None
    ) -> LineItem:
        """A line item for ``registration``; ``quantity_max`` defaults to ``quantity_min`` (does not scale)."""
        return LineItem(
            component=self.graph.component_name(registration),
            type=registration.type,
            resource=registration.name,
            physical_name=str(self.graph.physical_name(registration)),
            item=item,
            quantity_min=quantity_min,
            quantity_max=quantity_min if quantity_max is None else quantity_max,
            price=self.prices[price_key],
        )

    # --- shared readings of the graph ----------------------------------------------------------------

    def services(self) -> list[Registration]:
        """The ECS services of the stack."""
        return self.graph.of_type("aws:ecs/service:Service")

    def task_bounds(self, service: Registration) -> tuple[float, float]:
        """(min, max) running tasks: the service's autoscaling target, or its desired count when it has none."""
        name = self.graph.physical_name(service).value or ""
        for target in self.graph.of_type("aws:appautoscaling/target:Target"):
            resource_id = str(target.inputs.get("resourceId", ""))
            if target.inputs.get("serviceNamespace") == "ecs" and resource_id.endswith(f"/{name}"):
                return number(target.inputs.get("minCapacity")), number(target.inputs.get("maxCapacity"))
        desired = number(service.inputs.get("desiredCount"), 1.0)
        return desired, desired

    def services_running(self, task_definition: Registration) -> list[Registration]:
        """The ECS services that run ``task_definition``."""
        return [r for r, _ in self.graph.referrers(task_definition, "aws:ecs/service:Service")]

    def retention_days(self, log_group: Registration) -> float:
        """Days a log group keeps its events (the assumption for "never expire")."""
        days = number(log_group.inputs.get("retentionInDays"))
        return days if days > 0 else self.usage.never_expire_retention_days

    def stored_log_gb(self, ingested_gb: float, retention_days: float) -> float:
        """Steady-state stored (compressed) GB of a log group ingesting ``ingested_gb`` a month."""
        return ingested_gb * self.usage.log_stored_ratio * retention_days / DAYS_PER_MONTH

    def log_items(
        self, registration: Registration, what: str, gb_min: float, gb_max: float, retention_days: float, vended: bool = False
    ) -> list[LineItem]:
        """Ingestion and storage of ``gb_min``/``gb_max`` GB of logs a month, kept ``retention_days``."""
        ingestion = "logs.vended_ingestion.gb" if vended else "logs.ingestion.gb"
        return [
            self.item(registration, f"{what}: ingestion", ingestion, gb_min, gb_max),
            self.item(
                registration,
                f"{what}: storage ({retention_days:g} days kept)",
                "logs.storage.gb_month",
                self.stored_log_gb(gb_min, retention_days),
                self.stored_log_gb(gb_max, retention_days),
            ),
        ]


def _log_group_name(registration: Registration) -> str:
    return str(registration.inputs.get("name", ""))


def _container_log_groups(task_definition: Registration) -> set[str]:
    """The ``awslogs-group`` of every container of a task definition."""
    raw = task_definition.inputs.get("containerDefinitions") or "[]"
    containers = json.loads(raw) if isinstance(raw, str) else raw
    return {str(get_in(c, "logConfiguration.options", {}).get("awslogs-group", "")) for c in containers} - {""}


def vcpus(instance_class: str) -> float:
    """vCPUs of an RDS or ElastiCache class by AWS's size convention (``large`` 2, ``xlarge`` 4, ``4xlarge`` 16)."""
    size = instance_class.rsplit(".", 1)[-1]
    if size in ("micro", "small", "medium", "large"):
        return 2.0
    match = re.fullmatch(r"(\d*)xlarge", size)
    if match is None:
        raise UnpricedError(f"cannot tell the vCPUs of {instance_class!r}")
    return 4.0 * int(match.group(1) or 1)


# --- one function per priced resource type ---------------------------------------------------------------

PriceFunction = Callable[[Pricer, Registration], list[LineItem]]

#: Resource type -> the function that prices one registration of it.
PRICED: dict[str, PriceFunction] = {}


def priced(type_: str) -> Callable[[PriceFunction], PriceFunction]:
    """Register the pricing function of a resource type."""

    def register(function: PriceFunction) -> PriceFunction:
        PRICED[type_] = function
        return function

    return register


@priced("aws:ecs/service:Service")
def _ecs_service(p: Pricer, service: Registration) -> list[LineItem]:
    task_definition = p.graph.resolve(service.inputs.get("taskDefinition"), "aws:ecs/taskDefinition:TaskDefinition")
    if task_definition is None:
        return []
    low, high = p.task_bounds(service)
    return _fargate(p, service, task_definition, low * p.hours, high * p.hours, f"{low:g}-{high:g} tasks")


def _fargate(
    p: Pricer, owner: Registration, task_definition: Registration, hours_min: float, hours_max: float, label: str
) -> list[LineItem]:
    """Fargate vCPU, memory and extra ephemeral storage for ``hours_min``..``hours_max`` task-hours."""
    cpu = number(task_definition.inputs.get("cpu")) / 1024
    memory_gb = number(task_definition.inputs.get("memory")) / 1024
    arm = get_in(task_definition.inputs, "runtimePlatform.cpuArchitecture") == "ARM64"
    platform = "linux_arm" if arm else "linux_x86"
    items = [
        p.item(
            owner, f"Fargate vCPU ({cpu:g} vCPU x {label})", f"fargate.{platform}.vcpu_hour", cpu * hours_min, cpu * hours_max
        ),
        p.item(
            owner,
            f"Fargate memory ({memory_gb:g} GB x {label})",
            f"fargate.{platform}.gb_hour",
            memory_gb * hours_min,
            memory_gb * hours_max,
        ),
    ]
    extra = number(get_in(task_definition.inputs, "ephemeralStorage.sizeInGib")) - FARGATE_FREE_STORAGE_GIB
    if extra > 0:
        items.append(
            p.item(
                owner,
                f"Fargate storage beyond 20 GiB ({extra:g} GiB)",
                "fargate.ephemeral_storage.gb_hour",
                extra * hours_min,
                extra * hours_max,
            )
        )
    return items


@priced("aws:ecs/taskDefinition:TaskDefinition")
def _task_definition(p: Pricer, task_definition: Registration) -> list[LineItem]:
    # A task definition a service runs is priced on the service; one no service runs is a one-off task.
    if p.services_running(task_definition):
        return []
    hours = p.usage.one_off_task_hours
    return _fargate(p, task_definition, task_definition, hours, hours, f"{hours:g} one-off task-hours")


@priced("aws:ecs/cluster:Cluster")
def _ecs_cluster(p: Pricer, cluster: Registration) -> list[LineItem]:
    insights = {s.get("value") for s in cluster.inputs.get("settings") or [] if s.get("name") == "containerInsights"}
    if not insights & {"enabled", "enhanced"}:
        return []
    services = [r for r, _ in p.graph.referrers(cluster, "aws:ecs/service:Service")]
    metrics = p.usage.container_insights_metrics_per_cluster + p.usage.container_insights_metrics_per_service * len(services)
    return [p.item(cluster, f"Container Insights metrics ({len(services)} services)", "cloudwatch.custom_metric.month", metrics)]


@priced("aws:ec2/natGateway:NatGateway")
def _nat_gateway(p: Pricer, nat: Registration) -> list[LineItem]:
    gateways = len(p.graph.of_type(nat.type))
    share = p.usage.nat_processed_gb / gateways
    return [
        p.item(nat, "NAT gateway hours", "vpc.nat_gateway.hour", p.hours),
        p.item(nat, f"data processed (1/{gateways} of the NAT traffic)", "vpc.nat_gateway.gb_processed", share),
    ]


@priced("aws:ec2/eip:Eip")
def _elastic_ip(p: Pricer, eip: Registration) -> list[LineItem]:
    return [p.item(eip, "public IPv4 address", "vpc.public_ipv4.hour", p.hours)]


@priced("aws:ec2/vpcEndpoint:VpcEndpoint")
def _vpc_endpoint(p: Pricer, endpoint: Registration) -> list[LineItem]:
    if endpoint.inputs.get("vpcEndpointType") != "Interface":
        return []  # gateway endpoints (S3, DynamoDB) are free
    zones = len(endpoint.inputs.get("subnetIds") or [])
    return [
        p.item(endpoint, f"interface endpoint in {zones} AZs", "vpc.interface_endpoint.az_hour", zones * p.hours),
        p.item(endpoint, "data processed", "vpc.interface_endpoint.gb_processed", p.usage.interface_endpoint_processed_gb),
    ]


@priced("aws:lb/loadBalancer:LoadBalancer")
def _load_balancer(p: Pricer, alb: Registration) -> list[LineItem]:
    if alb.inputs.get("loadBalancerType", "application") != "application":
        raise UnpricedError(f"{alb.name}: only application load balancers are priced")
    items = [
        p.item(alb, "load balancer hours", "elb.alb.hour", p.hours),
        p.item(alb, f"LCU-hours ({p.usage.alb_lcu:g} LCU average)", "elb.alb.lcu_hour", p.usage.alb_lcu * p.hours),
    ]
    if not alb.inputs.get("internal"):
        # An internet-facing ALB has a public IPv4 address per AZ node; AWS bills those since 2024.
        zones = len(alb.inputs.get("subnets") or [])
        items.append(p.item(alb, f"public IPv4 addresses ({zones} AZs)", "vpc.public_ipv4.hour", zones * p.hours))
    return items


@priced("aws:rds/cluster:Cluster")
def _aurora_cluster(p: Pricer, cluster: Registration) -> list[LineItem]:
    retention = number(cluster.inputs.get("backupRetentionPeriod"), 1)
    items = [
        p.item(cluster, "storage", "rds.aurora.storage.gb_month", p.usage.aurora_storage_gb),
        p.item(cluster, "I/O requests", "rds.aurora.io.million_requests", p.usage.aurora_io_millions),
        p.item(
            cluster,
            f"backup storage ({retention:g} days retained)",
            "rds.aurora.backup.gb_month",
            retention * p.usage.aurora_backup_change_gb_per_day,
        ),
    ]
    if cluster.inputs.get("manageMasterUserPassword"):
        # RDS creates (and rotates) the master user secret in Secrets Manager: a billable secret.
        items += [
            p.item(cluster, "master user secret (Secrets Manager)", "secretsmanager.secret.month", 1),
            p.item(cluster, "master user secret API calls", "secretsmanager.api.10k", p.usage.secrets_api_calls / 10_000),
        ]
    return items


@priced("aws:rds/clusterInstance:ClusterInstance")
def _aurora_instance(p: Pricer, instance: Registration) -> list[LineItem]:
    instance_class = str(instance.inputs.get("instanceClass"))
    if instance_class == "db.serverless":
        acu_min, acu_max = p.usage.aurora_serverless_acu_min, p.usage.aurora_serverless_acu_max
        items = [
            p.item(
                instance,
                f"Serverless v2 capacity ({acu_min:g}-{acu_max:g} ACU)",
                "rds.aurora_postgresql.db.serverless.acu_hour",
                acu_min * p.hours,
                acu_max * p.hours,
            )
        ]
    else:
        items = [p.item(instance, f"instance hours ({instance_class})", f"rds.aurora_postgresql.{instance_class}.hour", p.hours)]
    if instance.inputs.get("performanceInsightsEnabled"):
        days = number(instance.inputs.get("performanceInsightsRetentionPeriod"), PI_FREE_RETENTION_DAYS)
        if days <= PI_FREE_RETENTION_DAYS:
            items.append(
                p.item(instance, "Performance Insights (7 days: free)", "rds.performance_insights.free_tier.vcpu_hour", 0)
            )
        else:
            cpus = vcpus(instance_class)
            items.append(
                p.item(
                    instance,
                    f"Performance Insights, {days:g} days ({cpus:g} vCPU)",
                    "rds.database_insights_advanced.vcpu_hour",
                    cpus * p.hours,
                )
            )
    interval = number(instance.inputs.get("monitoringInterval"))
    if interval > 0:
        samples = p.hours * 3600 / interval
        gb = samples * p.usage.enhanced_monitoring_kb_per_sample / (1024 * 1024)
        owned = [g for g in p.graph.of_type("aws:cloudwatch/logGroup:LogGroup") if _log_group_name(g) == "RDSOSMetrics"]
        retention = p.retention_days(owned[0]) if owned else RDS_OS_METRICS_DEFAULT_RETENTION_DAYS
        items += p.log_items(instance, f"enhanced monitoring every {interval:g} s", gb, gb, retention)
    return items


@priced("aws:elasticache/replicationGroup:ReplicationGroup")
def _redis(p: Pricer, group: Registration) -> list[LineItem]:
    node_type = str(group.inputs.get("nodeType"))
    if group.inputs.get("numNodeGroups"):
        nodes = number(group.inputs.get("numNodeGroups")) * (1 + number(group.inputs.get("replicasPerNodeGroup")))
    else:
        nodes = number(group.inputs.get("numCacheClusters"), 1)
    retention = number(group.inputs.get("snapshotRetentionLimit"))
    plural = "" if nodes == 1 else "s"
    items = [p.item(group, f"{nodes:g} node{plural} ({node_type})", f"elasticache.{node_type}.hour", nodes * p.hours)]
    if retention > 0:
        items.append(
            p.item(
                group,
                f"snapshots ({retention:g} days retained)",
                "elasticache.backup.gb_month",
                retention * p.usage.redis_dataset_gb,
            )
        )
    return items


@dataclass(frozen=True)
class FeeAndRequests:
    """The price function of a type billed a flat monthly fee plus its API requests per 10,000."""

    fee: str
    fee_price: str
    requests: str
    requests_price: str
    #: API requests per month of one resource, from the usage assumptions.
    per_month: Callable[[Usage], float]

    def __call__(self, p: Pricer, registration: Registration) -> list[LineItem]:
        """The fee and the requests of ``registration``."""
        return [
            p.item(registration, self.fee, self.fee_price, 1),
            p.item(registration, self.requests, self.requests_price, self.per_month(p.usage) / 10_000),
        ]


PRICED["aws:kms/key:Key"] = FeeAndRequests(
    "customer managed key", "kms.key.month", "API requests", "kms.requests.10k", lambda u: u.kms_requests_per_key
)
PRICED["aws:secretsmanager/secret:Secret"] = FeeAndRequests(
    "secret", "secretsmanager.secret.month", "API calls", "secretsmanager.api.10k", lambda u: u.secrets_api_calls
)


@priced("aws:cloudwatch/logGroup:LogGroup")
def _log_group(p: Pricer, log_group: Registration) -> list[LineItem]:
    """Ingestion and storage of a log group, by what writes to it (found through the graph)."""
    name = _log_group_name(log_group)
    usage = p.usage
    retention = p.retention_days(log_group)
    writers = {r.type for r, _ in p.graph.referrers(log_group)}
    if name == "RDSOSMetrics":
        return []  # enhanced monitoring is priced on the instances that send it (the stack may not own this group)
    if "aws:ec2/flowLog:FlowLog" in writers:
        return p.log_items(log_group, "VPC flow logs", usage.flow_log_gb, usage.flow_log_gb, retention, vended=True)
    if "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration" in writers:
        gb = usage.requests_millions * usage.waf_log_gb_per_million_requests
        return p.log_items(log_group, "WAF logs", gb, gb, retention, vended=True)
    if "aws:cloudtrail/trail:Trail" in writers:
        return p.log_items(log_group, "CloudTrail events", usage.cloudtrail_log_gb, usage.cloudtrail_log_gb, retention)
    writing_tasks = [t for t in p.graph.of_type("aws:ecs/taskDefinition:TaskDefinition") if name in _container_log_groups(t)]
    if writing_tasks:
        low = high = 0.0
        for task_definition in writing_tasks:
            for service in p.services_running(task_definition):
                service_low, service_high = p.task_bounds(service)
                low, high = low + service_low, high + service_high
        if low == high == 0:
            return p.log_items(log_group, "one-off task logs", usage.one_off_log_gb, usage.one_off_log_gb, retention)
        per_task = usage.service_log_gb_per_task
        return p.log_items(log_group, f"service logs ({low:g}-{high:g} tasks)", low * per_task, high * per_task, retention)
    for group in p.graph.of_type("aws:elasticache/replicationGroup:ReplicationGroup"):
        if any(d.get("destination") == name for d in group.inputs.get("logDeliveryConfigurations") or []):
            return p.log_items(log_group, "Redis slow log", usage.cache_log_gb, usage.cache_log_gb, retention, vended=True)
    if name.startswith("/aws/rds/"):
        return p.log_items(log_group, "Aurora PostgreSQL logs", usage.database_log_gb, usage.database_log_gb, retention)
    if name.startswith("/aws/ecs/containerinsights/"):
        bounds = [p.task_bounds(s) for s in p.services()]
        low, high = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
        per_task = usage.container_insights_gb_per_task
        return p.log_items(log_group, f"Container Insights ({low:g}-{high:g} tasks)", low * per_task, high * per_task, retention)
    return p.log_items(log_group, "logs", usage.other_log_gb, usage.other_log_gb, retention)


@priced("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(p: Pricer, alarm: Registration) -> list[LineItem]:
    queries = alarm.inputs.get("metricQueries") or []
    metrics = sum(1 for q in queries if q.get("metric") is not None) if queries else 1
    return [p.item(alarm, f"alarm ({metrics} metrics)" if metrics > 1 else "alarm", "cloudwatch.alarm_metric.month", metrics)]


@priced("aws:appautoscaling/policy:Policy")
def _scaling_policy(p: Pricer, policy: Registration) -> list[LineItem]:
    if policy.inputs.get("policyType") != "TargetTrackingScaling":
        return []  # step scaling uses alarms the program declares (priced as alarms)
    # Target tracking creates and owns two CloudWatch alarms (scale out, scale in), billed as standard alarms.
    return [p.item(policy, "target-tracking alarms (2)", "cloudwatch.alarm_metric.month", 2)]


@priced("aws:cloudwatch/dashboard:Dashboard")
def _dashboard(p: Pricer, dashboard: Registration) -> list[LineItem]:
    return [p.item(dashboard, "dashboard", "cloudwatch.dashboard.month", 1)]


@priced("aws:sns/topic:Topic")
def _topic(p: Pricer, topic: Registration) -> list[LineItem]:
    return [p.item(topic, "publishes", "sns.publish.million", p.usage.sns_publishes / 1_000_000)]


@priced("aws:wafv2/webAcl:WebAcl")
def _web_acl(p: Pricer, acl: Registration) -> list[LineItem]:
    rules = len(acl.inputs.get("rules") or [])
    return [
        p.item(acl, "web ACL", "waf.web_acl.month", 1),
        p.item(acl, f"{rules} rules", "waf.rule.month", rules),
        p.item(acl, "requests inspected", "waf.requests.million", p.usage.requests_millions),
    ]


@priced("aws:guardduty/detector:Detector")
def _guardduty(p: Pricer, detector: Registration) -> list[LineItem]:
    if detector.inputs.get("enable") is False:
        return []
    usage = p.usage
    return [
        p.item(
            detector,
            "CloudTrail management events analysed",
            "guardduty.cloudtrail_events.million",
            usage.cloudtrail_management_events_millions,
        ),
        p.item(detector, "VPC flow and DNS logs analysed", "guardduty.flow_dns_logs.gb", usage.flow_log_gb + usage.dns_log_gb),
    ]


@priced("aws:guardduty/detectorFeature:DetectorFeature")
def _guardduty_feature(p: Pricer, feature: Registration) -> list[LineItem]:
    if feature.inputs.get("status") != "ENABLED":
        return []
    name = feature.inputs.get("name")
    if name == "S3_DATA_EVENTS":
        return [p.item(feature, "S3 data events analysed", "guardduty.s3_data_events.million", p.usage.s3_data_events_millions)]
    if name == "RDS_LOGIN_EVENTS":
        instances = p.graph.of_type("aws:rds/clusterInstance:ClusterInstance")
        cpus = sum(
            vcpus(str(i.inputs.get("instanceClass"))) for i in instances if i.inputs.get("instanceClass") != "db.serverless"
        )
        return [p.item(feature, f"RDS login activity ({cpus:g} vCPU)", "guardduty.rds_protection.vcpu_month", cpus)]
    raise UnpricedError(f"GuardDuty feature {name!r} ({feature.name}) has no pricing in tools/insight/cost.py")


@priced("aws:cfg/recorder:Recorder")
def _config_recorder(p: Pricer, recorder: Registration) -> list[LineItem]:
    return [p.item(recorder, "configuration items recorded", "config.item.each", p.usage.config_items)]


@priced("aws:cfg/rule:Rule")
def _config_rule(p: Pricer, rule: Registration) -> list[LineItem]:
    return [p.item(rule, "rule evaluations", "config.rule_evaluation.each", p.usage.config_evaluations_per_rule)]


@priced("aws:cloudtrail/trail:Trail")
def _trail(p: Pricer, trail: Registration) -> list[LineItem]:
    usage = p.usage
    events = usage.cloudtrail_management_events_millions * 1_000_000
    items = [p.item(trail, "management events (first copy: free)", "cloudtrail.management_events.first_trail", events)]
    for selector in trail.inputs.get("insightSelectors") or []:
        kind = selector.get("insightType")
        # API call rate analyses write events; API error rate analyses every management event.
        analysed = events * (usage.cloudtrail_write_event_share if kind == "ApiCallRateInsight" else 1)
        items.append(p.item(trail, f"Insights: {kind}", "cloudtrail.insights.100k_events", analysed / 100_000))
    return items


@priced("aws:s3/bucket:Bucket")
def _bucket(p: Pricer, bucket: Registration) -> list[LineItem]:
    """Steady-state storage: what the bucket receives a month, kept as long as its lifecycle keeps it."""
    name = p.graph.physical_name(bucket).value
    usage = p.usage
    graph = p.graph
    if any(get_in(lb.inputs, "accessLogs.bucket") == name for lb in graph.of_type("aws:lb/loadBalancer:LoadBalancer")):
        what, monthly = "ALB access logs", usage.requests_millions * usage.alb_log_gb_per_million_requests
    elif any(t.inputs.get("s3BucketName") == name for t in graph.of_type("aws:cloudtrail/trail:Trail")):
        what, monthly = "CloudTrail log files", usage.cloudtrail_bucket_gb
    elif any(d.inputs.get("s3BucketName") == name for d in graph.of_type("aws:cfg/deliveryChannel:DeliveryChannel")):
        what, monthly = "AWS Config snapshots", usage.config_bucket_gb
    elif any(b.inputs.get("targetBucket") == name for b in graph.of_type("aws:s3/bucketLogging:BucketLogging")):
        what, monthly = "S3 server access logs", usage.access_log_bucket_gb
    else:
        what, monthly = "objects", usage.other_bucket_gb
    days = usage.never_expire_retention_days
    for lifecycle, _ in graph.referrers(bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        expirations = [
            number(get_in(rule, "expiration.days"))
            for rule in lifecycle.inputs.get("rules") or []
            if rule.get("status") == "Enabled" and get_in(rule, "expiration.days")
        ]
        days = min(expirations, default=days)
    return [p.item(bucket, f"{what} ({days:g} days kept)", "s3.standard.gb_month", monthly * days / DAYS_PER_MONTH)]


@priced("aws:ecr/repository:Repository")
def _repository(p: Pricer, repository: Registration) -> list[LineItem]:
    return [p.item(repository, "image storage", "ecr.storage.gb_month", p.usage.ecr_gb_per_repository)]


#: Resource types with no charge of their own, and why (their cost, if any, is priced elsewhere).
FREE: dict[str, str] = {
    "aws:acm/certificate:Certificate": "public and imported ACM certificates are free",
    "aws:acm/certificateValidation:CertificateValidation": "a waiter for DNS validation, not an AWS resource",
    "aws:appautoscaling/target:Target": "Application Auto Scaling is free (the policies' alarms are priced on the policies)",
    "aws:cfg/deliveryChannel:DeliveryChannel": "no charge (what it delivers is priced on the bucket)",
    "aws:cfg/recorderStatus:RecorderStatus": "turns the recorder on (priced on the recorder)",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "no charge",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "security groups are free",
    "aws:ec2/flowLog:FlowLog": "no charge of its own (its records are priced as vended logs on the log group)",
    "aws:ec2/internetGateway:InternetGateway": "no charge (data transfer out is not modelled)",
    "aws:ec2/route:Route": "no charge",
    "aws:ec2/routeTable:RouteTable": "no charge",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "no charge",
    "aws:ec2/securityGroup:SecurityGroup": "security groups are free",
    "aws:ec2/subnet:Subnet": "no charge",
    "aws:ec2/vpc:Vpc": "no charge",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "no charge (it bounds the repository's storage)",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": "no charge",
    "aws:elasticache/parameterGroup:ParameterGroup": "no charge",
    "aws:elasticache/subnetGroup:SubnetGroup": "no charge",
    "aws:elasticache/user:User": "no charge",
    "aws:elasticache/userGroup:UserGroup": "no charge",
    "aws:iam/role:Role": "IAM is free",
    "aws:iam/rolePolicy:RolePolicy": "IAM is free",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "IAM is free",
    "aws:kms/alias:Alias": "aliases are free (the key is priced)",
    "aws:lb/listener:Listener": "priced in the load balancer's hours and LCUs",
    "aws:lb/listenerRule:ListenerRule": "priced in the load balancer's LCUs (rule evaluations)",
    "aws:lb/targetGroup:TargetGroup": "no charge",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": "no charge",
    "aws:rds/subnetGroup:SubnetGroup": "no charge",
    "aws:route53/record:Record": "records are free; queries are billed on the hosted zone, which this stack does not create",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "no charge (its expiration bounds the bucket's storage)",
    "aws:s3/bucketLogging:BucketLogging": "no charge (the log objects are priced on the target bucket)",
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": "no charge",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "no charge",
    "aws:s3/bucketPolicy:BucketPolicy": "no charge",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "no charge",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "no charge (KMS calls: on the key)",
    "aws:s3/bucketVersioning:BucketVersioning": "no charge (noncurrent versions are not modelled)",
    "aws:servicediscovery/httpNamespace:HttpNamespace": "no charge (Cloud Map registrations by Service Connect: not modelled)",
    "aws:sns/topicPolicy:TopicPolicy": "no charge",
    "aws:sns/topicSubscription:TopicSubscription": "deliveries to SQS and Lambda are free (e-mail, HTTPS: not modelled)",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "security group rules are free",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "security group rules are free",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "no charge (the web ACL is priced)",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "no charge (the log volume is priced on the log group)",
    "random:index/randomPassword:RandomPassword": "computed by the random provider; no cloud resource",
    "tls:index/privateKey:PrivateKey": "computed locally by the tls provider; no cloud resource",
    "tls:index/selfSignedCert:SelfSignedCert": "computed locally by the tls provider; no cloud resource",
}


def estimate(graph: Graph, prices: PriceTable, usage: Usage) -> Estimate:
    """Price every resource of ``graph``; types neither priced nor free are listed in ``unpriced``."""
    pricer = Pricer(graph, prices, usage)
    bounds = sorted({pricer.task_bounds(s) for s in pricer.services()})
    tasks = ", ".join(f"{low:g}-{high:g}" for low, high in bounds) or "none"
    result = Estimate(graph.stack, graph.environment, usage, tasks)
    for registration in graph.resources:
        function = PRICED.get(registration.type)
        if function is not None:
            result.items += function(pricer, registration)
        elif registration.type not in FREE and registration.type not in result.unpriced:
            result.unpriced.append(registration.type)
    result.items.sort(key=lambda i: (i.component, i.type, i.resource))
    return result


# --- output -------------------------------------------------------------------------------------------------


def money(value: float) -> str:
    """``$1,234.56``."""
    return f"${value:,.2f}"


def quantity(value: float) -> str:
    """A quantity short enough for a table (``2,190``, ``4.5``, ``0.0417``)."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _range(low: float, high: float, render: Callable[[float], str]) -> str:
    return render(low) if abs(low - high) < 1e-9 else f"{render(low)} to {render(high)}"


def render_markdown(estimates: Sequence[Estimate], prices: PriceTable, overrides: dict[str, float], itemized: bool = True) -> str:
    """Summary, per-component table and (with ``itemized``) every line item, for each estimate."""
    lines = [
        f"## Monthly cost estimate ({prices.region}, {prices.term}, {prices.currency})",
        "",
        f"Prices: `tools/insight/prices.json`, dated {', '.join(prices.dates())} and recorded offline (source page per "
        "price: verify them there before budgeting). "
        "Usage: the environment's profile in `tools/insight/usage.py`"
        + (f", overridden: {', '.join(f'`{k}={v:g}`' for k, v in overrides.items())}" if overrides else "")
        + ". Min scale: `minTasks` tasks per service; max scale: `maxTasks`.",
        "",
        "| environment | tasks per service | min scale | max scale |",
        "|---|---|---|---|",
    ]
    lines += [f"| {e.stack} | {e.tasks} | {money(e.total_min)} | {money(e.total_max)} |" for e in estimates]
    if len(estimates) > 1:
        components = sorted({c for e in estimates for c, _, _ in e.by_component()})
        lines += ["", "| component | " + " | ".join(e.stack for e in estimates) + " |", "|---|" + "---|" * len(estimates)]
        for component in components:
            cells = []
            for e in estimates:
                found = [(lo, hi) for c, lo, hi in e.by_component() if c == component]
                cells.append(_range(*found[0], money) if found else "—")
            lines.append(f"| {component} | " + " | ".join(cells) + " |")
    for e in estimates:
        lines += ["", f"### {e.stack}: {money(e.total_min)} to {money(e.total_max)} per month", ""]
        lines += ["| component | min scale | max scale |", "|---|---|---|"]
        lines += [f"| {c} | {money(lo)} | {money(hi)} |" for c, lo, hi in e.by_component()]
        lines.append(f"| **total** | **{money(e.total_min)}** | **{money(e.total_max)}** |")
        if itemized:
            lines += [
                "",
                "| component | resource | item | quantity | unit | unit price | monthly |",
                "|---|---|---|---|---|---|---|",
            ]
            for i in e.items:
                lines.append(
                    f"| {i.component} | `{i.resource}` | {i.item} | {_range(i.quantity_min, i.quantity_max, quantity)} | "
                    f"{i.price.unit} | ${i.price.usd:g} | {_range(i.monthly_min, i.monthly_max, money)} |"
                )
        if e.unpriced:
            lines += ["", "**Incomplete:** no price and no free entry for " + ", ".join(f"`{t}`" for t in e.unpriced) + "."]
    return "\n".join(lines) + "\n"


def as_json(estimates: Sequence[Estimate], prices: PriceTable) -> dict[str, Any]:
    """The estimates as plain data (every line item with its price's source and date)."""
    return {
        "region": prices.region,
        "currency": prices.currency,
        "term": prices.term,
        "environments": [
            {
                "stack": e.stack,
                "environment": e.environment,
                "tasksPerService": e.tasks,
                "totalMin": round(e.total_min, 2),
                "totalMax": round(e.total_max, 2),
                "components": [{"component": c, "min": round(lo, 2), "max": round(hi, 2)} for c, lo, hi in e.by_component()],
                "usage": dataclasses.asdict(e.usage),
                "unpriced": e.unpriced,
                "items": [
                    {
                        "component": i.component,
                        "type": i.type,
                        "resource": i.resource,
                        "physicalName": i.physical_name,
                        "item": i.item,
                        "quantityMin": i.quantity_min,
                        "quantityMax": i.quantity_max,
                        "unit": i.price.unit,
                        "unitPrice": i.price.usd,
                        "priceKey": i.price.key,
                        "priceSource": i.price.source,
                        "priceAsOf": i.price.as_of,
                        "monthlyMin": round(i.monthly_min, 4),
                        "monthlyMax": round(i.monthly_max, 4),
                    }
                    for i in e.items
                ],
            }
            for e in estimates
        ],
    }


def render_usage() -> str:
    """The usage assumptions: key, prod default, per-environment values and what each means."""
    envs = list(PROFILES)
    lines = ["| assumption | " + " | ".join(envs) + " | meaning |", "|---|" + "---|" * len(envs) + "---|"]
    for name, help_text in Usage.fields():
        values = [f"{getattr(usage_for(env), name):g}" for env in envs]
        lines.append(f"| `{name}` | " + " | ".join(values) + f" | {help_text} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the estimate of one stack or of dev, staging and prod (``--env all``)."""
    parser = argparse.ArgumentParser(prog="python -m tools.insight.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="all", help="dev, staging, prod (any stack with a Pulumi.<stack>.yaml) or all")
    parser.add_argument("--usage", action="append", default=[], metavar='"KEY=VALUE ..."', help="override usage assumptions")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--summary", action="store_true", help="totals per environment and component only, no line items")
    parser.add_argument("--show-usage", action="store_true", help="print the usage assumptions and exit")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    if args.show_usage:
        sys.stdout.write(render_usage())
        return 0
    try:
        overrides = parse_usage(args.usage)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prices = PriceTable.load()
    stacks = ["dev", "staging", "prod"] if args.env == "all" else [args.env]
    config = overrides_from(args.config)
    try:
        estimates = []
        for stack in stacks:
            graph = load(stack, config)
            estimates.append(estimate(graph, prices, usage_for(graph.environment, overrides)))
    except UnpricedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(json.dumps(as_json(estimates, prices), indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(estimates, prices, overrides, itemized=not args.summary))
    unpriced = sorted({t for e in estimates for t in e.unpriced})
    if unpriced:
        print(
            f"error: estimate incomplete; price or declare free in tools/insight/cost.py: {', '.join(unpriced)}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
