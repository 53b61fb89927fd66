"""The environment matrix: what each environment registers, against the README's environment table.

Every expected value comes from tests/expectations.py, which parses the README's "### Environments" table;
nothing here reads lib/config.py's presets, so a wrong preset value fails a test instead of moving the
expectation along with it (issue #12, item 1). The second half checks the statement itself: every row of the
table is parsed for every environment, and a row or cell that cannot be read fails loudly.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from lib.config import ConfigError
from tests import expectations
from tests.expectations import EXPECTED, ROWS, TABLE, ExpectationError, Expected
from tools.evaluate import Evaluation, Registration, default_config, evaluate

SERVICES = ("api", "payment", "notification")
INTERFACE_ENDPOINT_SERVICES = {"ecr.api", "ecr.dkr", "logs", "secretsmanager"}
ACCOUNT_BASELINE = "scalepayments:account:AccountBaseline"

#: Keys and data stores: what `protect` + `retainOnDelete` must guard where the table says so.
GUARDED_TYPES = (
    "aws:kms/key:Key",
    "aws:kms/alias:Alias",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:elasticache/replicationGroup:ReplicationGroup",
)


@dataclass(frozen=True)
class Stack:
    """One evaluated environment and what the README table asks of it."""

    env: str
    ev: Evaluation
    expected: Expected

    def alarm(self, what: str) -> Registration:
        """The alarm ``scalepay-<what>-<env>`` (the naming convention of every alarm)."""
        name = f"scalepay-{what}-{self.env}"
        found = [a for a in self.ev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a.inputs["name"] == name]
        assert len(found) == 1, f"{self.env}: expected one alarm {name}, found {len(found)}"
        return found[0]

    def by_arn(self, arn: str) -> Registration:
        """The resource whose (mock) ARN is ``arn``."""
        found = [r for r in self.ev.custom() if r.state.get("arn") == arn]
        assert len(found) == 1, f"{self.env}: expected one resource with ARN {arn}, found {[r.name for r in found]}"
        return found[0]


@pytest.fixture(scope="module", params=list(EXPECTED))
def stack(request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation]) -> Stack:
    env = str(request.param)
    return Stack(env, evaluated(env), EXPECTED[env])


# --- network ------------------------------------------------------------------------------------------


def test_vpc_cidr_and_availability_zones(stack: Stack) -> None:
    vpc = stack.ev.one("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == stack.expected.vpc_cidr, f"{vpc.name} ({stack.env}): {vpc.inputs['cidrBlock']}"
    zones = {s.inputs["availabilityZone"] for s in stack.ev.of_type("aws:ec2/subnet:Subnet")}
    assert len(zones) == stack.expected.az_count, f"{stack.env}: subnets in {sorted(zones)}"
    assert len(stack.ev.outputs["availabilityZones"]) == stack.expected.az_count, stack.env


def test_nat_gateways(stack: Stack) -> None:
    nats = stack.ev.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == stack.expected.nat_gateways, f"{stack.env}: {[n.name for n in nats]}"
    # One per AZ means one per public subnet, never two in the same subnet.
    assert len({n.inputs["subnetId"] for n in nats}) == len(nats), f"{stack.env}: NAT gateways share a subnet"


def test_interface_endpoints_on_or_off(stack: Stack) -> None:
    interface = {
        e.inputs["serviceName"].split(".", 3)[-1]
        for e in stack.ev.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs.get("vpcEndpointType") == "Interface"
    }
    expected = INTERFACE_ENDPOINT_SERVICES if stack.expected.interface_endpoints else set()
    assert interface == expected, f"{stack.env}: interface endpoints {sorted(interface)}"


# --- ECS services ----------------------------------------------------------------------------------------


def test_every_service_task_definition_has_the_task_size(stack: Stack) -> None:
    services = stack.ev.of_type("aws:ecs/service:Service")
    assert len(services) == len(SERVICES), f"{stack.env}: {[s.name for s in services]}"
    for service in services:
        td = stack.by_arn(service.inputs["taskDefinition"])
        size = (int(td.inputs["cpu"]), int(td.inputs["memory"]))
        assert size == (stack.expected.task_cpu, stack.expected.task_memory), f"{td.name} ({stack.env}): cpu/memory {size}"


def test_task_count_bounds(stack: Stack) -> None:
    bounds = (stack.expected.min_tasks, stack.expected.max_tasks)
    targets = stack.ev.of_type("aws:appautoscaling/target:Target")
    assert len(targets) == len(SERVICES), f"{stack.env}: {[t.name for t in targets]}"
    for target in targets:
        found = (target.inputs["minCapacity"], target.inputs["maxCapacity"])
        assert found == bounds, f"{target.name} ({stack.env}): min/max {found}, expected {bounds}"
    for service in stack.ev.of_type("aws:ecs/service:Service"):
        assert service.inputs["desiredCount"] == stack.expected.min_tasks, f"{service.name} ({stack.env}): desiredCount"


def test_scaling_policy_targets_and_cooldowns(stack: Stack) -> None:
    e = stack.expected
    targets = {
        "ECSServiceAverageCPUUtilization": e.cpu_target_percent,
        "ECSServiceAverageMemoryUtilization": e.memory_target_percent,
        "ALBRequestCountPerTarget": e.requests_per_target,
    }
    policies = stack.ev.of_type("aws:appautoscaling/policy:Policy")
    for target in stack.ev.of_type("aws:appautoscaling/target:Target"):
        own = [p for p in policies if p.inputs["resourceId"] == target.inputs["resourceId"]]
        by_metric = {
            p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]["predefinedMetricType"]: p
            for p in own
        }
        assert len(own) == len(by_metric) == len(targets) and set(by_metric) == set(targets), (
            f"{target.name}: {sorted(by_metric)}"
        )
        for metric, policy in by_metric.items():
            tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
            assert tracking["targetValue"] == targets[metric], f"{policy.name} ({stack.env}): target {tracking['targetValue']}"
            assert tracking["scaleOutCooldown"] == e.scale_out_cooldown_seconds, f"{policy.name} ({stack.env}): scale-out"
            assert tracking["scaleInCooldown"] == e.scale_in_cooldown_seconds, f"{policy.name} ({stack.env}): scale-in"


# --- Aurora ----------------------------------------------------------------------------------------------


def test_aurora_class_count_and_monitoring(stack: Stack) -> None:
    e = stack.expected
    instances = stack.ev.of_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(instances) == e.db_instance_count, f"{stack.env}: {len(instances)} Aurora instances"
    for inst in instances:
        i = inst.inputs
        assert i["instanceClass"] == e.db_instance_class, f"{inst.name} ({stack.env}): {i['instanceClass']}"
        assert i["performanceInsightsEnabled"] is e.db_performance_insights, f"{inst.name} ({stack.env}): Performance Insights"
        interval = i.get("monitoringInterval", 0)
        assert interval == e.db_monitoring_interval_seconds, f"{inst.name} ({stack.env}): monitoringInterval {interval}"


def test_aurora_backups_and_deletion(stack: Stack) -> None:
    e = stack.expected
    cluster = stack.ev.one("aws:rds/cluster:Cluster")
    c = cluster.inputs
    assert c["backupRetentionPeriod"] == e.db_backup_retention_days, f"{cluster.name} ({stack.env}): backupRetentionPeriod"
    assert c["preferredBackupWindow"] == e.db_backup_window, f"{cluster.name} ({stack.env}): backup window"
    assert c["preferredMaintenanceWindow"] == e.db_maintenance_window, f"{cluster.name} ({stack.env}): maintenance window"
    assert c["deletionProtection"] is e.db_deletion_protection, f"{cluster.name} ({stack.env}): deletionProtection"
    assert c["skipFinalSnapshot"] is not e.db_final_snapshot, f"{cluster.name} ({stack.env}): skipFinalSnapshot"
    assert bool(c.get("finalSnapshotIdentifier")) is e.db_final_snapshot, f"{cluster.name} ({stack.env}): finalSnapshotIdentifier"


# --- Redis -----------------------------------------------------------------------------------------------


def test_redis_size_failover_and_snapshots(stack: Stack) -> None:
    e = stack.expected
    group = stack.ev.one("aws:elasticache/replicationGroup:ReplicationGroup")
    g = group.inputs
    found = (g["nodeType"], g["numCacheClusters"], g["automaticFailoverEnabled"], g["multiAzEnabled"])
    expected = (e.cache_node_type, e.cache_node_count, e.cache_automatic_failover, e.cache_multi_az)
    assert found == expected, f"{group.name} ({stack.env}): node type/count/failover/Multi-AZ {found}, expected {expected}"
    retention = g["snapshotRetentionLimit"]
    assert retention == e.cache_snapshot_retention_days, f"{group.name} ({stack.env}): snapshotRetentionLimit {retention}"


# --- logs and keys ---------------------------------------------------------------------------------------


def test_every_log_group_keeps_logs_for_the_retention(stack: Stack) -> None:
    groups = stack.ev.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups, stack.env
    for group in groups:
        retention = group.inputs.get("retentionInDays")
        assert retention == stack.expected.log_retention_days, f"{group.inputs['name']} ({stack.env}): retention {retention}"


def test_every_kms_key_has_the_deletion_window(stack: Stack) -> None:
    keys = stack.ev.of_type("aws:kms/key:Key")
    assert keys, stack.env
    for key in keys:
        window = key.inputs["deletionWindowInDays"]
        assert window == stack.expected.kms_deletion_window_days, f"{key.name} ({stack.env}): deletionWindowInDays {window}"


# --- alarms ----------------------------------------------------------------------------------------------


def _expected_alarms(e: Expected) -> dict[str, tuple[str, float]]:
    """Alarm (without prefix and environment) -> (comparison, threshold), from the README table."""
    expected: dict[str, tuple[str, float]] = {}
    for service in SERVICES:
        expected[f"{service}-cpu-high"] = ("GreaterThanThreshold", e.ecs_cpu_alarm_percent)
        expected[f"{service}-memory-high"] = ("GreaterThanThreshold", e.ecs_memory_alarm_percent)
        # Fewer running tasks than the minimum is an outage in the making.
        expected[f"{service}-tasks-low"] = ("LessThanThreshold", e.min_tasks)
    expected["alb-5xx"] = ("GreaterThanThreshold", e.alb_5xx_alarm_count)
    expected["alb-target-5xx"] = ("GreaterThanThreshold", e.alb_5xx_alarm_count)
    expected["alb-latency-high"] = ("GreaterThanThreshold", e.alb_latency_alarm_seconds)
    expected["aurora-cpu-high"] = ("GreaterThanThreshold", e.db_cpu_alarm_percent)
    expected["aurora-connections-high"] = ("GreaterThanThreshold", e.db_connections_alarm)
    expected["aurora-memory-low"] = ("LessThanThreshold", e.db_freeable_memory_alarm_bytes)
    if e.db_replica_lag_alarm_ms is not None:
        expected["aurora-replica-lag"] = ("GreaterThanThreshold", e.db_replica_lag_alarm_ms)
    expected["redis-cpu-high"] = ("GreaterThanThreshold", e.redis_cpu_alarm_percent)
    expected["redis-memory-high"] = ("GreaterThanThreshold", e.redis_memory_alarm_percent)
    expected["redis-evictions"] = ("GreaterThanThreshold", e.redis_evictions_alarm)
    return expected


def test_alarm_thresholds_and_comparisons(stack: Stack) -> None:
    for what, (comparison, threshold) in _expected_alarms(stack.expected).items():
        alarm = stack.alarm(what)
        assert alarm.inputs["comparisonOperator"] == comparison, f"{alarm.inputs['name']}: {alarm.inputs['comparisonOperator']}"
        assert alarm.inputs["threshold"] == pytest.approx(threshold), f"{alarm.inputs['name']}: {alarm.inputs['threshold']}"


def test_replica_lag_alarm_only_where_the_table_has_one(stack: Stack) -> None:
    names = {a.inputs["name"] for a in stack.ev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    present = f"scalepay-aurora-replica-lag-{stack.env}" in names
    assert present is (stack.expected.db_replica_lag_alarm_ms is not None), f"{stack.env}: replica lag alarm present={present}"


# --- WAF and account security ------------------------------------------------------------------------------


def test_waf_presence_and_rate_limit(stack: Stack) -> None:
    acls = stack.ev.of_type("aws:wafv2/webAcl:WebAcl")
    associations = stack.ev.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    if not stack.expected.security_services:
        assert (acls, associations) == ([], []), f"{stack.env}: a WAF the table does not ask for"
        return
    (acl,) = acls
    (association,) = associations
    assert association.inputs["webAclArn"] == acl.state["arn"], f"{association.name} ({stack.env})"
    assert association.inputs["resourceArn"] == stack.ev.one("aws:lb/loadBalancer:LoadBalancer").state["arn"], stack.env
    limits = [r["statement"]["rateBasedStatement"] for r in acl.inputs["rules"] if "rateBasedStatement" in r["statement"]]
    assert len(limits) == 1, f"{acl.name} ({stack.env}): rate-based rules {limits}"
    assert limits[0]["limit"] == stack.expected.waf_rate_limit, f"{acl.name} ({stack.env}): rate limit {limits[0]['limit']}"
    assert limits[0]["aggregateKeyType"] == "IP" and limits[0]["evaluationWindowSec"] == 300, f"{acl.name} ({stack.env})"


@pytest.mark.parametrize("type_", ["aws:guardduty/detector:Detector", "aws:cfg/recorder:Recorder", "aws:cloudtrail/trail:Trail"])
def test_guardduty_config_and_cloudtrail_presence(stack: Stack, type_: str) -> None:
    found = stack.ev.of_type(type_)
    assert len(found) == int(stack.expected.security_services), f"{stack.env}: {type_} x{len(found)}"


# --- protection -------------------------------------------------------------------------------------------


def test_keys_and_data_stores_are_protected_and_retained_as_the_table_says(stack: Stack) -> None:
    e = stack.expected
    guarded = [r for r in stack.ev.registrations if r.type in GUARDED_TYPES]
    guarded += [r for r in stack.ev.of_type("aws:s3/bucket:Bucket") if r.component == ACCOUNT_BASELINE]  # the audit logs
    assert {r.type for r in guarded} >= set(GUARDED_TYPES), f"{stack.env}: {sorted({r.type for r in guarded})}"
    for r in guarded:
        found = (r.protect, r.retain_on_delete)
        assert found == (e.protect, e.retain_on_delete), f"{r.name} ({stack.env}): protect/retainOnDelete {found}"
    if not (e.protect or e.retain_on_delete):
        loose = [r.name for r in stack.ev.registrations if r.protect or r.retain_on_delete]
        assert loose == [], f"{stack.env}: protected although the table says off: {loose}"


def test_alb_deletion_protection(stack: Stack) -> None:
    alb = stack.ev.one("aws:lb/loadBalancer:LoadBalancer")
    found = alb.inputs.get("enableDeletionProtection", False)
    assert found is stack.expected.alb_deletion_protection, f"{alb.name} ({stack.env}): enableDeletionProtection {found}"


def test_alb_access_logs_expire_after_the_table_days(stack: Stack) -> None:
    alb = stack.ev.one("aws:lb/loadBalancer:LoadBalancer")
    logs = alb.inputs["accessLogs"]
    assert logs["enabled"] is True, f"{alb.name} ({stack.env}): access logs off"
    (bucket,) = [b for b in stack.ev.of_type("aws:s3/bucket:Bucket") if b.inputs["bucket"] == logs["bucket"]]
    (lifecycle,) = [
        lc
        for lc in stack.ev.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if lc.inputs["bucket"] == bucket.state["id"]
    ]
    expected = stack.expected.alb_access_log_expiration_days
    assert lifecycle.inputs["rules"], f"{lifecycle.name} ({stack.env}): no rule"
    for rule in lifecycle.inputs["rules"]:
        assert rule["status"] == "Enabled", f"{lifecycle.name} ({stack.env}): {rule}"
        days = rule["expiration"]["days"]
        assert days == expected, f"{lifecycle.name} ({stack.env}): access logs expire after {days} days, expected {expected}"


def test_https_certificate_fallback_only_where_allowed(stack: Stack) -> None:
    config = {k: v for k, v in default_config(stack.env).items() if k != "scalepayments:certificateArn"}
    if not stack.expected.self_signed_certificate_allowed:
        with pytest.raises(ConfigError, match="certificateArn"):
            evaluate(stack.env, config)
        return
    evaluation = stack.ev if config == default_config(stack.env) else evaluate(stack.env, config)
    (certificate,) = evaluation.of_type("aws:acm/certificate:Certificate")
    assert len(evaluation.of_type("tls:index/selfSignedCert:SelfSignedCert")) == 1, stack.env
    https = [listener for listener in evaluation.of_type("aws:lb/listener:Listener") if listener.inputs["port"] == 443]
    assert [listener.inputs["certificateArn"] for listener in https] == [certificate.state["arn"]], stack.env


# --- the statement itself: README table <-> tests/expectations.py ---------------------------------------------


def test_every_row_of_the_readme_table_is_parsed_for_every_environment() -> None:
    assert list(TABLE) == list(ROWS), "the README rows and the parsers of tests/expectations.py differ (or their order)"
    assert set(EXPECTED) == set(expectations.ENVIRONMENTS) == {"dev", "staging", "prod"}
    for row, cells in TABLE.items():
        assert set(cells) == set(expectations.ENVIRONMENTS), row
    # Each row sets fields of its own, and together the rows set every field of Expected.
    set_by: dict[str, str] = {}
    for row, parser in ROWS.items():
        produced = parser(TABLE[row]["prod"])
        assert produced, f"{row}: sets no field"
        for name in produced:
            assert name not in set_by, f"{name} is set by both {set_by.get(name)!r} and {row!r}"
            set_by[name] = row
    assert set(set_by) == {f.name for f in fields(Expected)}


def test_expectations_do_not_read_the_program() -> None:
    """The statement must stay independent of the code under test: no import of lib/ or tools/."""
    tree = ast.parse(Path(expectations.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] in ("lib", "tools", "tap")], imported


def _readme() -> str:
    return expectations.README.read_text(encoding="utf-8")


def test_a_cell_that_does_not_parse_fails_naming_its_row_and_environment() -> None:
    text = _readme().replace("| KMS deletion window (days) | 7 | 14 | 30 |", "| KMS deletion window (days) | 7 | 14 | thirty |")
    with pytest.raises(ExpectationError, match=r"row 'KMS deletion window \(days\)', prod: cannot parse 'thirty'"):
        expectations.parse(text)


def test_a_missing_row_fails_naming_it() -> None:
    text = _readme().replace("| ECS CPU alarm (%) | 85 | 80 | 75 |\n", "")
    with pytest.raises(ExpectationError, match=r"rows missing: \['ECS CPU alarm \(%\)'\]"):
        expectations.parse(text)


def test_a_row_without_a_parser_fails_naming_it() -> None:
    row = "| KMS deletion window (days) | 7 | 14 | 30 |\n"
    text = _readme().replace(row, row + "| ALB idle timeout (s) | 60 | 60 | 60 |\n")
    with pytest.raises(ExpectationError, match=r"rows without a parser in tests/expectations.py: \['ALB idle timeout \(s\)'\]"):
        expectations.parse(text)


def test_the_table_is_consistent_with_itself() -> None:
    """Combinations AWS or PCI DSS refuse, caught in the statement before any resource is compared to it."""
    for env, e in EXPECTED.items():
        assert e.min_tasks <= e.max_tasks, env
        assert (e.waf_rate_limit is not None) is e.security_services, f"{env}: a WAF rate limit needs a WAF"
        assert (e.db_replica_lag_alarm_ms is not None) is (e.db_instance_count > 1), f"{env}: replica lag needs a replica"
        assert not e.cache_multi_az or (e.cache_automatic_failover and e.cache_node_count >= 2), f"{env}: Multi-AZ"
        assert e.scale_out_cooldown_seconds < e.scale_in_cooldown_seconds, f"{env}: scale out fast, in slowly"
    assert EXPECTED["prod"].log_retention_days >= 365, "PCI DSS 10.5.1: a year of audit logs"
