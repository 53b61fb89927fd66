"""``make diagram``: the architecture picture generated from the resource graph (Graphviz).

Requirements (issue "see before you deploy", 4): the picture contains every component of the stack and
what the issue lists (the VPC's tiers and subnets per AZ, the load balancer and its path routes, the
services with their task counts, Aurora and Redis with their nodes, the security-group paths with ports,
the KMS keys, the edge and account-security services of that environment), and it is regenerated
deterministically (same input, byte-identical SVG and PNG). Rendering needs Graphviz: a ``dot`` binary
or Node.js with the pinned ``@hpcc-js/wasm-graphviz`` (``npm ci``); the rendering tests skip only when
neither ``dot`` nor ``node`` exists.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.evaluate import default_config
from tools.insight import diagram
from tools.insight.graph import Graph

ENVS = ("dev", "staging", "prod")
needs_graphviz = pytest.mark.skipif(
    shutil.which("dot") is None and shutil.which("node") is None, reason="neither Graphviz (dot) nor Node.js is installed"
)


@pytest.fixture(scope="module")
def sources(graph: Callable[[str], Graph]) -> dict[str, str]:
    return {env: diagram.dot_source(graph(env)) for env in ENVS}


def labels(source: str) -> str:
    """Every label of the DOT source, line breaks as spaces: what a reader of the picture sees."""
    return " ".join(re.findall(r'label="((?:[^"\\]|\\.)*)"', source)).replace("\\n", " ")


@pytest.mark.parametrize("env", ENVS)
def test_every_component_is_drawn(env: str, graph: Callable[[str], Graph], sources: dict[str, str]) -> None:
    classes = set(re.findall(r'class="?([^"\s\]]+)"?', sources[env]))
    components = {c.name for c in graph(env).components}
    assert components <= classes, components - classes


@pytest.mark.parametrize("env", ENVS)
def test_vpc_tiers_and_every_subnet_per_az(env: str, graph: Callable[[str], Graph], sources: dict[str, str]) -> None:
    g, text = graph(env), labels(sources[env])
    for tier, route in (("public", "internet gateway"), ("private", "NAT gateway"), ("database", "no route out")):
        assert f"{tier} tier: 0.0.0.0/0 -> {route}" in text
    subnets = g.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 3 * g.settings.network.az_count
    for subnet in subnets:
        assert f"{g.physical_name(subnet).value} {subnet.inputs['cidrBlock']} {subnet.inputs['availabilityZone']}" in text
    assert f"NAT gateways ({len(g.of_type('aws:ec2/natGateway:NatGateway'))})" in text


@pytest.mark.parametrize("env", ENVS)
def test_services_routes_and_data_stores(env: str, graph: Callable[[str], Graph], sources: dict[str, str]) -> None:
    g, source = graph(env), sources[env]
    text = labels(source)
    compute = g.settings.compute
    for service in compute.services:
        size = f"{service.cpu} CPU / {service.memory} MiB"
        assert f"scalepay-{service.name}-{env} {size} tasks {compute.min_tasks}-{compute.max_tasks}" in text
        assert f"HTTPS {service.path_pattern} -> :{service.port}" in text, "the path route of the service"
    database, cache = g.settings.database, g.settings.cache
    for index in range(1, database.instance_count + 1):
        assert f"scalepay-aurora-{env}-{index} {database.instance_class}" in text
    for index in range(1, cache.node_count + 1):
        assert f"scalepay-redis-{env}-{index:03d} {cache.node_type}" in text


@pytest.mark.parametrize("env", ENVS)
def test_security_group_paths_with_ports(env: str, sources: dict[str, str]) -> None:
    source = sources[env]
    edges = re.findall(r'^\s*"?([^"\s]+)"? -> "?([^"\s]+)"? \[([^\n]*)\]', source, flags=re.MULTILINE)
    sg_edges = {(tail, head, label) for tail, head, attrs in edges for label in re.findall(r'label="(SG [^"]*)"', attrs)}
    flat = {(t.split("__")[0], h.split("__")[0], label) for t, h, label in sg_edges}
    assert ("internet", "LoadBalancer", "SG tcp 443\\nSG tcp 80") in flat
    assert ("LoadBalancer", "Service", "SG tcp 8080") in flat
    assert ("Service", "ClusterInstance", "SG tcp 5432") in flat
    assert ("Service", "ReplicationGroup__cache-replication-group", "SG tcp 6379") in {
        (t.split("__")[0], h.rsplit("__", 1)[0], lbl) for t, h, lbl in sg_edges
    }
    assert ("Service", "NatGateway", "SG tcp 443 to 0.0.0.0/0") in flat
    # No path from the internet or the load balancer straight to a data store.
    assert not [e for e in flat if e[0] in ("internet", "LoadBalancer") and e[1] in ("ClusterInstance", "ReplicationGroup")]
    assert "members to each other: tcp 8080" in labels(source), "service to service (Service Connect)"


@pytest.mark.parametrize("env", ENVS)
def test_keys_edge_and_account_security_present_in_that_environment(
    env: str, graph: Callable[[str], Graph], sources: dict[str, str]
) -> None:
    g, text = graph(env), labels(sources[env])
    for purpose in ("data", "logs", "alarms", "audit"):
        assert f"alias/scalepay-{purpose}-{env}" in text
    secured = env != "dev"
    assert ("WAF web ACL" in text) == g.settings.edge.waf_enabled == secured
    for service in ("GuardDuty detector", "AWS Config recorder", "CloudTrail"):
        assert (service in text) == secured, service
    assert ("Insights: ApiCallRateInsight" in text) == (env == "prod")
    assert ("ACM certificate" in text) == (env == "dev"), "dev imports a self-signed certificate; the others use an ARN"
    assert ("interface endpoints" in text) == g.settings.network.interface_endpoints


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_graphviz
def test_rendering_is_deterministic_and_complete(graph: Callable[[str], Graph], tmp_path: Path) -> None:
    g = graph("prod")
    first = diagram.write(g, tmp_path / "one")
    second = diagram.write(g, tmp_path / "two")
    assert [p.name for p in first] == ["architecture-prod.svg", "architecture-prod.png"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs"
    svg = first[0].read_text(encoding="utf-8")
    assert "<svg" in svg and not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", svg), "no timestamp in the picture"
    classes = {html.unescape(c) for c in re.findall(r'class="(?:node|edge|cluster) ([^"]+)"', svg)}
    assert {c.name for c in g.components} <= classes
    width, height = png_size(first[1].read_bytes())
    assert width > 1000 and height > 1000


@needs_graphviz
def test_the_same_graph_from_a_fresh_evaluation_gives_the_same_source(
    graph: Callable[[str], Graph], sources: dict[str, str]
) -> None:
    from tools.evaluate import evaluate

    fresh = Graph(evaluate("dev", default_config("dev")), default_config("dev"))
    assert diagram.dot_source(fresh) == sources["dev"]
