"""``make cost``: monthly estimate per environment, at minimum and maximum autoscaling scale.

Requirements (issue "see before you deploy", 3): the arithmetic is right on known inputs; every billable
resource type the program creates has a price, and a new billable type without one fails here (the types
the program registers in every preset and configuration variant, and every resource class its source can
instantiate, must be priced or declared free); every price is sourced and dated; the usage assumptions
are explicit and overridable; min scale runs ``minTasks`` per service, max scale ``maxTasks``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lib.config import AURORA_POSTGRES_CLASSES, PRESETS, Environment
from tools.evaluate import Evaluation, Registration, default_config, evaluate
from tools.insight import cost
from tools.insight.cost import FREE, PRICED, Estimate, estimate
from tools.insight.graph import Graph
from tools.insight.prices import PriceTable, UnpricedError
from tools.insight.usage import Usage, UsageError, parse_usage, usage_for

ROOT = Path(__file__).resolve().parents[2]
ENVS = ("dev", "staging", "prod")
PRICES = PriceTable.load()


@pytest.fixture(scope="module")
def estimates(graph: Callable[[str], Graph]) -> dict[str, Estimate]:
    return {env: estimate(graph(env), PRICES, usage_for(env)) for env in ENVS}


# --- the arithmetic on known inputs ---------------------------------------------------------------------------

COMPONENT = "urn:pulumi:t::p::x:c:Comp::comp"


def resource(type_: str, name: str, inputs: dict[str, Any]) -> Registration:
    """A registration as the mock runtime records it: id ``<name>-id``, ARN ``arn:<name>``."""
    return Registration(
        type_,
        name,
        f"{COMPONENT}$ {type_}::{name}",
        COMPONENT,
        True,
        inputs,
        False,
        False,
        (),
        {"id": f"{name}-id", "arn": f"arn:{name}"},
    )


def synthetic_graph(*extra: Registration) -> Graph:
    registrations = [
        Registration("x:c:Comp", "comp", COMPONENT, "", False, {}, False, False, ()),
        resource("aws:ecs/cluster:Cluster", "cl", {"name": "cl"}),
        resource(
            "aws:ecs/taskDefinition:TaskDefinition",
            "td",
            {
                "family": "svc",
                "cpu": "512",
                "memory": "1024",
                "containerDefinitions": json.dumps(
                    [{"name": "svc", "logConfiguration": {"options": {"awslogs-group": "/ecs/svc"}}}]
                ),
            },
        ),
        resource(
            "aws:ecs/service:Service",
            "svc",
            {"name": "svc", "cluster": "arn:cl", "taskDefinition": "arn:td", "desiredCount": 2.0},
        ),
        resource(
            "aws:appautoscaling/target:Target",
            "scaling",
            {"serviceNamespace": "ecs", "resourceId": "service/cl/svc", "minCapacity": 2.0, "maxCapacity": 4.0},
        ),
        resource("aws:ec2/natGateway:NatGateway", "nat-a", {}),
        resource("aws:ec2/natGateway:NatGateway", "nat-b", {}),
        resource(
            "aws:rds/cluster:Cluster",
            "db",
            {"clusterIdentifier": "db", "backupRetentionPeriod": 7.0, "manageMasterUserPassword": True},
        ),
        resource(
            "aws:rds/clusterInstance:ClusterInstance",
            "db-1",
            {"identifier": "db-1", "instanceClass": "db.r6g.large", "clusterIdentifier": "db-id"},
        ),
        resource("aws:cloudwatch/logGroup:LogGroup", "logs", {"name": "/ecs/svc", "retentionInDays": 30.0}),
        resource("aws:kms/key:Key", "key", {}),
        resource(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "alarm",
            {"metricQueries": [{"id": "a", "metric": {}}, {"id": "b", "metric": {}}, {"id": "e", "expression": "a+b"}]},
        ),
        resource("aws:s3/bucket:Bucket", "bucket", {"bucket": "bucket-name"}),
        resource(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "bucket-lifecycle",
            {"bucket": "bucket-id", "rules": [{"status": "Enabled", "expiration": {"days": 60.0}}]},
        ),
        resource("aws:iam/role:Role", "role", {"name": "role"}),
        *extra,
    ]
    return Graph(Evaluation("t", registrations, {}), {})


ROUND_PRICES = PriceTable.of(
    {
        "fargate.linux_x86.vcpu_hour": 0.1,
        "fargate.linux_x86.gb_hour": 0.01,
        "vpc.nat_gateway.hour": 1.0,
        "vpc.nat_gateway.gb_processed": 0.5,
        "rds.aurora.storage.gb_month": 0.1,
        "rds.aurora.io.million_requests": 0.2,
        "rds.aurora.backup.gb_month": 0.02,
        "secretsmanager.secret.month": 0.4,
        "secretsmanager.api.10k": 0.05,
        "rds.aurora_postgresql.db.r6g.large.hour": 0.5,
        "logs.ingestion.gb": 0.5,
        "logs.storage.gb_month": 0.03,
        "kms.key.month": 1.0,
        "kms.requests.10k": 0.03,
        "cloudwatch.alarm_metric.month": 0.1,
        "s3.standard.gb_month": 0.02,
    }
)

ROUND_USAGE = replace(
    Usage(),
    hours_per_month=100,
    nat_processed_gb=100,
    aurora_storage_gb=10,
    aurora_io_millions=5,
    aurora_backup_change_gb_per_day=1,
    secrets_api_calls=20_000,
    service_log_gb_per_task=1,
    log_stored_ratio=0.5,
    kms_requests_per_key=10_000,
    other_bucket_gb=3,
)


def test_arithmetic_on_known_inputs() -> None:
    result = estimate(synthetic_graph(), ROUND_PRICES, ROUND_USAGE)
    month = 365 / 12
    by_resource: dict[str, tuple[float, float]] = {}
    for item in result.items:
        low, high = by_resource.get(item.resource, (0.0, 0.0))
        by_resource[item.resource] = (low + item.monthly_min, high + item.monthly_max)
    # Fargate: 0.5 vCPU and 1 GB per task, 100 hours, 2 tasks at min scale and 4 at max.
    assert by_resource["svc"] == pytest.approx((2 * 100 * (0.5 * 0.1 + 1 * 0.01), 4 * 100 * (0.5 * 0.1 + 1 * 0.01)))
    assert by_resource["svc"] == pytest.approx((12.0, 24.0))
    # NAT: 100 hours at $1 each, plus half of the 100 GB at $0.5 per GB.
    assert by_resource["nat-a"] == by_resource["nat-b"] == pytest.approx((125.0, 125.0))
    # Aurora storage 10 GB x 0.1 + 5 M I/O x 0.2 + 7 days x 1 GB x 0.02 + the managed secret 0.4 + 2 x 10k calls x 0.05.
    assert by_resource["db"] == pytest.approx((2.64, 2.64))
    assert by_resource["db-1"] == pytest.approx((50.0, 50.0))
    # Service logs: 1 GB per task (2 or 4 tasks) at 0.5; stored: half of it, for 30 days, at 0.03 per GB-month.
    assert by_resource["logs"] == pytest.approx((2 * 0.5 + 2 * 0.5 * 30 / month * 0.03, 4 * 0.5 + 4 * 0.5 * 30 / month * 0.03))
    assert by_resource["key"] == pytest.approx((1.03, 1.03))
    assert by_resource["alarm"] == pytest.approx((0.2, 0.2)), "two metrics; the expression is not billed"
    # 3 GB a month kept 60 days (the lifecycle's expiration) at 0.02 per GB-month.
    assert by_resource["bucket"] == pytest.approx((3 * 60 / month * 0.02,) * 2)
    assert "role" not in by_resource and "td" not in by_resource, "IAM is free; the task definition is priced on its service"
    assert result.total_min == pytest.approx(sum(low for low, _ in by_resource.values()))
    assert result.total_max == pytest.approx(sum(high for _, high in by_resource.values()))
    assert result.total_min == pytest.approx(317.0179452, abs=1e-6)
    assert result.total_max == pytest.approx(330.0475342, abs=1e-6)
    assert result.tasks == "2-4"
    assert result.unpriced == []
    assert sum(c[1] for c in result.by_component()) == pytest.approx(result.total_min)


def test_a_type_neither_priced_nor_free_is_reported() -> None:
    result = estimate(synthetic_graph(resource("aws:sqs/queue:Queue", "queue", {})), ROUND_PRICES, ROUND_USAGE)
    assert result.unpriced == ["aws:sqs/queue:Queue"]


def test_a_missing_price_names_the_key() -> None:
    prices = PriceTable.of({k: p.usd for k, p in ROUND_PRICES.prices.items() if "r6g" not in k})
    with pytest.raises(UnpricedError, match=r"rds\.aurora_postgresql\.db\.r6g\.large\.hour"):
        estimate(synthetic_graph(), prices, ROUND_USAGE)


# --- the real program ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_min_scale_runs_min_tasks_and_max_scale_max_tasks(env: str, estimates: dict[str, Estimate]) -> None:
    compute = PRESETS[Environment(env)].compute
    result = estimates[env]
    hours = result.usage.hours_per_month
    for service in compute.services:
        vcpu = [i for i in result.items if i.resource == f"{service.name}-service" and i.price.key.endswith("vcpu_hour")]
        assert len(vcpu) == 1
        assert vcpu[0].quantity_min == pytest.approx(compute.min_tasks * hours * service.cpu / 1024)
        assert vcpu[0].quantity_max == pytest.approx(compute.max_tasks * hours * service.cpu / 1024)
    # Only what runs per task scales: Fargate, the service log groups and Container Insights.
    scaling = {i.resource for i in result.items if abs(i.monthly_min - i.monthly_max) > 1e-9}
    assert scaling == {f"{s.name}-service" for s in compute.services} | {f"{s.name}-log-group" for s in compute.services} | {
        "container-insights-logs"
    }
    assert result.tasks == f"{compute.min_tasks}-{compute.max_tasks}"


def test_instances_and_nodes_are_priced_per_class_and_count(estimates: dict[str, Estimate]) -> None:
    prod = estimates["prod"]
    instances = [i for i in prod.items if i.type == "aws:rds/clusterInstance:ClusterInstance" and "instance hours" in i.item]
    assert len(instances) == 3
    assert {i.price.key for i in instances} == {"rds.aurora_postgresql.db.r5.xlarge.hour"}
    assert all(i.quantity_min == 730 for i in instances)
    nodes = [i for i in prod.items if i.price.key == "elasticache.cache.r6g.large.hour"]
    assert [i.quantity_min for i in nodes] == [3 * 730]
    nat = [i for i in prod.items if i.price.key == "vpc.nat_gateway.hour"]
    assert len(nat) == 3, "one NAT gateway per AZ in prod"
    assert len([i for i in estimates["dev"].items if i.price.key == "vpc.nat_gateway.hour"]) == 1


def test_dev_costs_less_than_prod_and_account_security_only_outside_dev(estimates: dict[str, Estimate]) -> None:
    dev, staging, prod = (estimates[e] for e in ENVS)
    assert dev.total_max < staging.total_min < prod.total_min <= prod.total_max
    components = {e: {c for c, _, _ in estimates[e].by_component()} for e in ENVS}
    assert "account-baseline" not in components["dev"] and "account-baseline" in components["prod"]
    assert all(not e.unpriced for e in estimates.values())


# --- price coverage ---------------------------------------------------------------------------------------------------


def test_priced_and_free_types_do_not_overlap() -> None:
    assert not set(PRICED) & set(FREE)
    assert all(reason.strip() for reason in FREE.values())


def variant(env: str, drop: tuple[str, ...] = (), **settings: str) -> Evaluation:
    config = {k: v for k, v in default_config(env).items() if k.split(":")[-1] not in drop}
    config.update({f"scalepayments:{k}": v for k, v in settings.items()})
    return evaluate(env, config)


@pytest.mark.parametrize("env", ENVS)
def test_every_registered_type_is_priced_or_free(env: str, evaluated: Callable[[str], Evaluation]) -> None:
    missing = sorted({r.type for r in evaluated(env).registrations if r.custom} - set(PRICED) - set(FREE))
    assert not missing, f"price these in tools/insight/cost.py (PRICED) or declare them free (FREE): {missing}"


def test_types_of_configuration_variants_are_priced_or_free() -> None:
    # A DNS-validated certificate (ACM + Route 53 record) and e-mail/HTTPS alarm subscribers.
    evaluation = variant(
        "staging",
        drop=("certificateArn",),
        domainName="pay.example.com",
        hostedZoneId="Z0123456789ABCDEFGHIJ",
        alarmEmail="oncall@example.com",
        alarmHttpsEndpoint="https://pager.example.com/hook",
    )
    types = {r.type for r in evaluation.registrations if r.custom}
    assert "aws:route53/record:Record" in types
    assert not sorted(types - set(PRICED) - set(FREE))


def _resource_classes_in_source() -> dict[str, str]:
    """Every pulumi resource class ``lib/`` refers to (``aws.ec2.Vpc``), with its type token.

    Read from the provider SDK's source (one generated file per resource class, ``ec2/vpc.py``) rather
    than imported: importing every provider module the program uses takes seconds.
    """
    found: dict[str, str] = {}
    packages = {"aws": "pulumi_aws", "tls": "pulumi_tls", "random": "pulumi_random"}
    pattern = re.compile(r"\b(aws|tls|random)\.(?:([a-z0-9_]+)\.)?([A-Z][A-Za-z0-9]*)\b")
    for path in sorted((ROOT / "lib").rglob("*.py")):
        for provider, module, name in pattern.findall(path.read_text(encoding="utf-8")):
            if name.endswith(("Args", "ArgsDict")):
                continue
            spec = importlib.util.find_spec(packages[provider])
            assert spec is not None and spec.submodule_search_locations
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
            source = Path(spec.submodule_search_locations[0], *([module] if module else []), f"{snake}.py")
            if not source.exists():
                continue  # a function or a data type, not a resource class
            text = source.read_text(encoding="utf-8")
            if f"class {name}(pulumi.CustomResource)" not in text:
                continue
            token = re.findall(r"__init__\(\s*'([a-z0-9-]+:[^']+)'", text)[0]
            found[f"{provider}.{module + '.' if module else ''}{name}"] = token
    return found


def test_every_resource_class_the_program_can_create_is_priced_or_free() -> None:
    # Not only what the presets register: a resource behind a setting no preset turns on counts too.
    classes = _resource_classes_in_source()
    assert classes["aws.rds.ClusterInstance"] == "aws:rds/clusterInstance:ClusterInstance"
    assert len(classes) > 50
    missing = sorted(f"{name} ({token})" for name, token in classes.items() if token not in PRICED and token not in FREE)
    assert not missing, f"price these in tools/insight/cost.py (PRICED) or declare them free (FREE): {missing}"


def test_every_price_is_sourced_and_dated() -> None:
    problems = [p for price in PRICES.prices.values() for p in price.problems()]
    assert not problems
    assert PRICES.region == "us-east-1" and PRICES.term == "on-demand"


def test_every_instance_class_and_node_type_the_configuration_allows_has_a_price() -> None:
    for instance_class in sorted(AURORA_POSTGRES_CLASSES):
        unit = "acu_hour" if instance_class == "db.serverless" else "hour"
        assert f"rds.aurora_postgresql.{instance_class}.{unit}" in PRICES, instance_class
    presets = {p.cache.node_type for p in PRESETS.values()} | {p.database.instance_class for p in PRESETS.values()}
    assert {"cache.t4g.micro", "cache.t4g.small", "cache.r6g.large", "db.t4g.medium", "db.r6g.large", "db.r5.xlarge"} <= presets
    for family in ("t3", "t4g"):
        for size in ("micro", "small", "medium"):
            assert f"elasticache.cache.{family}.{size}.hour" in PRICES
    for family in ("m5", "m6g", "m7g", "r5", "r6g", "r7g"):
        for size in ("large", "xlarge", "2xlarge", "4xlarge"):
            assert f"elasticache.cache.{family}.{size}.hour" in PRICES


# --- usage assumptions and the command ------------------------------------------------------------------------------


def test_usage_assumptions_are_documented_and_overridable() -> None:
    assert all(help_text for _, help_text in Usage.fields())
    assert parse_usage("requests_millions=250 nat_processed_gb=10") == {"requests_millions": 250.0, "nat_processed_gb": 10.0}
    with pytest.raises(UsageError, match="did you mean requests_millions"):
        parse_usage(["request_millions=1"])
    with pytest.raises(UsageError, match="not a number"):
        parse_usage(["alb_lcu=many"])
    assert usage_for("prod", {"alb_lcu": 9}).alb_lcu == 9
    assert usage_for("dev").requests_millions < usage_for("prod").requests_millions


def test_a_usage_override_changes_only_what_depends_on_it(graph: Callable[[str], Graph], estimates: dict[str, Estimate]) -> None:
    more = estimate(graph("prod"), PRICES, usage_for("prod", {"nat_processed_gb": 1500}))
    nat_price = PRICES["vpc.nat_gateway.gb_processed"].usd
    assert more.total_min - estimates["prod"].total_min == pytest.approx(1000 * nat_price)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cost.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_command_json_is_itemized_with_sources() -> None:
    code, out, _ = run("--env", "dev", "--format", "json", "--usage", "requests_millions=2")
    assert code == 0
    (dev,) = json.loads(out)["environments"]
    assert dev["usage"]["requests_millions"] == 2
    assert dev["unpriced"] == []
    assert dev["totalMin"] == pytest.approx(sum(i["monthlyMin"] for i in dev["items"]), abs=0.01)
    assert dev["totalMax"] == pytest.approx(sum(c["max"] for c in dev["components"]), abs=0.01)
    assert all(i["priceSource"].startswith("https://aws.amazon.com/") and i["priceAsOf"] for i in dev["items"])


def test_command_rejects_an_unknown_usage_key_and_lists_assumptions() -> None:
    code, _, err = run("--env", "dev", "--usage", "bogus=1")
    assert code == 2 and "bogus" in err
    code, out, _ = run("--show-usage")
    assert code == 0
    assert all(f"`{name}`" in out for name, _ in Usage.fields())
