"""``make preview``: the plan grouped by component, counts per type, physical names, protection flags.

Requirements (issue "see before you deploy", 1): the counts equal the resources the program registers;
resources are grouped by the ComponentResource tree; physical names and the ``[protected]`` /
``[retain-on-delete]`` flags are shown; ``FORMAT=json`` carries the same content; the stack configuration
(stack file + ``CONFIG``) is applied as the deployment applies it.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import pytest

from tools.evaluate import Evaluation, Registration
from tools.insight import preview
from tools.insight.graph import Graph, get_in
from tools.stack_config import offline_config

ENVS = ("dev", "staging", "prod")


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert preview.main(list(argv)) == 0
    return out.getvalue()


@pytest.mark.parametrize("env", ENVS)
def test_counts_equal_the_resources_the_program_registers(
    env: str, graph: Callable[[str], Graph], evaluated: Callable[[str], Evaluation]
) -> None:
    registered = evaluated(env)
    custom = [r for r in registered.registrations if r.custom]
    data = preview.plan(graph(env))
    totals = data["totals"]
    assert totals["resources"] == len(custom)
    assert totals["countsByType"] == dict(Counter(r.type for r in custom))
    assert totals["components"] == sum(1 for r in registered.registrations if not r.custom)
    assert totals["protected"] == sum(r.protect for r in custom)
    assert totals["retainOnDelete"] == sum(r.retain_on_delete for r in custom)
    # Per component: the counts add up to the total, each resource is listed once, counts match the list.
    listed = [entry["urn"] for component in data["components"] for entry in component["resources"]]
    assert sorted(listed) == sorted(r.urn for r in custom)
    for component in data["components"]:
        assert component["resourceCount"] == len(component["resources"])
        assert component["countsByType"] == dict(Counter(e["type"] for e in component["resources"]))
    assert sum(c["resourceCount"] for c in data["components"]) == totals["resources"]


@pytest.mark.parametrize("env", ENVS)
def test_resources_are_grouped_under_their_component(env: str, graph: Callable[[str], Graph]) -> None:
    data = preview.plan(graph(env))
    by_name = {c["name"]: c for c in data["components"]}
    top = by_name[f"scalepay-{env}"]
    assert top["type"] == "scalepayments:stack:TapStack" and top["depth"] == 0 and top["parent"] is None
    expected = {
        "database": ("aws:rds/cluster:Cluster", "database-cluster"),
        "cache": ("aws:elasticache/replicationGroup:ReplicationGroup", "cache-replication-group"),
        "network": ("aws:ec2/vpc:Vpc", "network-vpc"),
        "keys": ("aws:kms/key:Key", "keys-data"),
        "edge": ("aws:lb/loadBalancer:LoadBalancer", "alb"),
        "compute": ("aws:ecs/service:Service", "api-service"),
    }
    for component, (type_, name) in expected.items():
        assert by_name[component]["parent"] == top["name"] and by_name[component]["depth"] == 1
        assert (type_, name) in {(e["type"], e["name"]) for e in by_name[component]["resources"]}
    assert ("account-baseline" in by_name) == (env != "dev"), "account security only outside dev"


def _synthetic(urn_parts: list[tuple[str, str, str, bool]]) -> Evaluation:
    """Registrations (type, name, parent name, custom) with URNs like the engine's."""
    registrations = []
    urns: dict[str, str] = {}
    for type_, name, parent, custom in urn_parts:
        urn = f"urn:pulumi:t::p::{type_}::{name}"
        urns[name] = urn
        registrations.append(
            Registration(type_, name, urn, urns.get(parent, ""), custom, {}, False, False, (), {"id": f"{name}-id"})
        )
    return Evaluation("t", registrations, {})


def test_nested_components_and_top_level_resources_each_get_their_group() -> None:
    evaluation = _synthetic(
        [
            ("x:c:Outer", "outer", "", False),
            ("x:c:Inner", "inner", "outer", False),
            ("aws:s3/bucket:Bucket", "direct", "outer", True),
            ("aws:s3/bucket:Bucket", "deep", "inner", True),
            ("aws:sqs/queue:Queue", "orphan", "", True),
        ]
    )
    data = preview.plan(Graph(evaluation, {}))
    groups = {c["name"]: (c["depth"], [e["name"] for e in c["resources"]]) for c in data["components"]}
    assert groups == {"(stack)": (0, ["orphan"]), "outer": (0, ["direct"]), "inner": (1, ["deep"])}
    assert data["totals"]["resources"] == 3


def test_physical_names_come_from_the_inputs_or_what_a_resource_attaches_to(graph: Callable[[str], Graph]) -> None:
    g = graph("prod")
    names = {
        (e["type"], e["name"]): (e["physicalName"], e["physicalNameSource"])
        for c in preview.plan(g)["components"]
        for e in c["resources"]
    }
    assert names[("aws:rds/cluster:Cluster", "database-cluster")] == ("scalepay-aurora-prod", "input clusterIdentifier")
    # A cluster instance names its cluster too (by reference): its own identifier wins.
    assert names[("aws:rds/clusterInstance:ClusterInstance", "database-instance-1")] == (
        "scalepay-aurora-prod-1",
        "input identifier",
    )
    assert names[("aws:elasticache/replicationGroup:ReplicationGroup", "cache-replication-group")][0] == "scalepay-redis-prod"
    assert names[("aws:ecs/taskDefinition:TaskDefinition", "api-task-definition")] == ("scalepay-api-prod", "input family")
    bucket = names[("aws:s3/bucket:Bucket", "alb-logs")][0]
    assert bucket.startswith("scalepay-alb-logs-prod-")
    # The bucket policy's input is the bucket's id; its name is the bucket it is attached to.
    assert names[("aws:s3/bucketPolicy:BucketPolicy", "alb-logs-policy")] == (bucket, "on bucket")
    assert names[("aws:ec2/subnet:Subnet", "network-public-a")] == ("scalepay-public-a-prod", "Name tag")
    assert names[("aws:guardduty/detector:Detector", "guardduty")] == (None, "assigned by AWS")
    # No physical name is a mock id: ids are what AWS assigns, never a name the program chose.
    assert not [k for k, (value, _) in names.items() if value and value.endswith("-id")]


@pytest.mark.parametrize("env", ENVS)
def test_protected_and_retained_resources_are_flagged_in_the_text(env: str, graph: Callable[[str], Graph]) -> None:
    g = graph(env)
    text = preview.render_text(preview.plan(g))
    for resource in g.resources:
        lines = [line for line in text.splitlines() if line.strip().startswith(resource.name + " ")]
        assert len(lines) == 1, (resource.name, lines)
        assert ("[protected]" in lines[0]) == resource.protect
        assert ("[retain-on-delete]" in lines[0]) == resource.retain_on_delete
    flagged = sum("[protected]" in line for line in text.splitlines())
    assert (flagged > 0) == (env == "prod"), "prod protects its data stores and keys; dev and staging do not"


def test_text_shows_the_count_per_type_of_each_component(graph: Callable[[str], Graph]) -> None:
    text = preview.render_text(preview.plan(graph("prod")))
    block = text.split("\n  database  (")[1].split("\n\n")[0]
    assert "aws:rds/clusterInstance:ClusterInstance x3" in block
    assert "database-instance-3  scalepay-aurora-prod-3" in block


def test_json_follows_the_stack_configuration_and_per_run_overrides() -> None:
    # One run of the real command: Pulumi.prod.yaml, the offline stand-ins and CONFIG, as make passes it.
    data: dict[str, Any] = json.loads(run_cli("--env", "prod", "--format", "json", "--config", "dbInstanceCount=4 azCount=2"))
    counts = data["totals"]["countsByType"]
    assert counts["aws:rds/clusterInstance:ClusterInstance"] == 4
    assert counts["aws:ec2/subnet:Subnet"] == 6 and counts["aws:ec2/natGateway:NatGateway"] == 2
    config = offline_config("prod", {"scalepayments:dbInstanceCount": "4", "scalepayments:azCount": "2"})
    assert config["scalepayments:certificateArn"].endswith("local-prod"), "the offline stand-in the deployment uses"
    instances = [e for c in data["components"] for e in c["resources"] if e["type"] == "aws:rds/clusterInstance:ClusterInstance"]
    assert all(e["protect"] and e["retainOnDelete"] for e in instances)
    assert get_in(data, "totals.resources") == sum(c["resourceCount"] for c in data["components"])
