"""``make diagram ENV=dev|staging|prod``: the architecture picture, generated from the resource graph.

Writes ``docs/architecture-<env>.svg`` and ``.png``. Nothing is drawn by hand: the DOT source is built
with the ``graphviz`` package from the registrations of one offline evaluation (:mod:`tools.insight.graph`)
and laid out by Graphviz itself (a ``dot`` binary when one is installed, otherwise Graphviz compiled to
WebAssembly run by Node.js: ``@hpcc-js/wasm-graphviz``, pinned in ``package.json``, installed by
``npm ci``); ``resvg-py`` turns the SVG into the PNG.

What the picture shows, all read from the graph:

- the VPC with its tiers (the subnets' ``Tier`` tag) and one node per subnet with its CIDR and AZ, each
  tier's default route (internet gateway, NAT gateway or none), the NAT gateways with their addresses;
- the load balancer with its listeners and one edge per path route (listener rule -> target group ->
  ECS service), the services with their Fargate size and task counts (autoscaling min-max, desired);
- Aurora with its instances (class, AZ) and Redis with its nodes (type);
- the security-group paths: an edge wherever one group's egress AND the other's ingress allow a port
  (from a group, from the VPC's CIDR or from anywhere), labelled with the ports;
- the KMS keys and what they encrypt, and the edge (WAF, certificate) and account-security services
  (GuardDuty, AWS Config, CloudTrail and their buckets) present in that environment; a resource of any
  other kind placed in a subnet still appears, in its tier.

Each node, cluster and edge carries the logical name of its component as SVG ``class``, so a test can
check that every component of the stack is drawn. The output is deterministic: nodes, clusters and
edges are emitted in sorted order, the graph has no timestamp, and the same input gives byte-identical
SVG and PNG with the same renderer.

    python -m tools.insight.diagram --env prod            # docs/architecture-prod.svg + .png
    python -m tools.insight.diagram --env dev --dot       # print the DOT source only
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import graphviz

from tools.evaluate import Registration
from tools.insight.graph import Graph, add_config_argument, get_in, load, number, overrides_from, run_cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RENDER_SCRIPT = Path(__file__).with_name("render.mjs")
WASM_PACKAGE = ROOT / "node_modules" / "@hpcc-js" / "wasm-graphviz"

ANYWHERE = "0.0.0.0/0"
TIER_ORDER = ("public", "private", "database")
TIER_COLOURS = {"public": "#e8f4fd", "private": "#eef7ea", "database": "#fdf1e6"}
FONT = "Helvetica"
#: Edge styles shared by every edge of a kind: path routes (load balancer -> service) and security-group paths.
ROUTE_EDGE = {"color": "#1a73e8", "penwidth": "1.6", "fontcolor": "#1a73e8"}
SG_EDGE = {"color": "#2e7d32", "style": "dashed", "fontcolor": "#2e7d32"}
ENGINES = {"aurora-postgresql": "Aurora PostgreSQL", "aurora-mysql": "Aurora MySQL", "redis": "Redis", "valkey": "Valkey"}

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


class RendererMissingError(RuntimeError):
    """Neither a ``dot`` binary nor Node.js with the pinned WebAssembly Graphviz is available."""


@dataclass
class Cluster:
    """A Graphviz cluster before emission: nested clusters and nodes, emitted in sorted order."""

    name: str
    label: str
    css: str
    attrs: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    #: Nodes drawn side by side (the subnets of a tier, one per AZ).
    same_rank: list[str] = field(default_factory=list)

    def child(self, name: str, label: str, css: str, **attrs: str) -> Cluster:
        """The nested cluster ``name`` (created on first use)."""
        if name not in self.clusters:
            self.clusters[name] = Cluster(name, label, css, dict(attrs))
        return self.clusters[name]


@dataclass(frozen=True)
class Box:
    """Where an edge attaches: a node, drawn to the border of ``cluster`` when set (compound edges)."""

    node: str
    cluster: str = ""


def node_id(registration: Registration) -> str:
    """A DOT identifier for a resource (no ``:``, which DOT reads as a port)."""
    return f"{registration.type.split(':')[-1]}__{registration.name}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _port_text(rule: Registration) -> str:
    low, high = int(number(rule.inputs.get("fromPort"))), int(number(rule.inputs.get("toPort")))
    protocol = str(rule.inputs.get("ipProtocol", "tcp"))
    if protocol == "-1":
        return "all traffic"
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _covers(rule: Registration, other: Registration) -> bool:
    """True when ``rule`` (ports) admits every port ``other`` opens (same protocol)."""
    if rule.inputs.get("ipProtocol") == "-1":
        return True
    same_protocol = rule.inputs.get("ipProtocol") == other.inputs.get("ipProtocol")
    return (
        same_protocol
        and number(rule.inputs.get("fromPort")) <= number(other.inputs.get("fromPort"))
        and number(other.inputs.get("toPort")) <= number(rule.inputs.get("toPort"))
    )


class Diagram:
    """Builds the DOT graph of one evaluation."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.boxes: dict[str, list[Box]] = {}  # urn -> where edges to this resource attach
        self.node_cluster: dict[str, str] = {}  # node id -> the cluster it is drawn in
        self.edges: dict[tuple[str, str, str, str], dict[str, str]] = {}
        self.external: dict[str, tuple[str, dict[str, str]]] = {}
        top = graph.component_tree()[0] if graph.components else None
        account = graph.evaluation.outputs.get("accountId", "")
        title = f"{top.name if top else graph.stack} · AWS account {account} · {graph.region}"
        self.root = Cluster("cluster_stack", title, top.name if top else graph.stack, {"style": "rounded", "color": "#232f3e"})

    # --- helpers ------------------------------------------------------------------------------------

    def css(self, registration: Registration) -> str:
        """The SVG class of a resource's node: its component's logical name."""
        return self.graph.component_name(registration)

    def name(self, registration: Registration) -> str:
        """The resource's physical name (or its logical name when AWS assigns one)."""
        return self.graph.physical_name(registration).value or registration.name

    def add_node(self, cluster: Cluster, registration: Registration, label: str, **attrs: str) -> str:
        """A node for ``registration`` in ``cluster``; edges to it attach to the node."""
        ident = node_id(registration)
        cluster.nodes[ident] = (label, {"class": self.css(registration), **attrs})
        self.node_cluster[ident] = cluster.name
        self.boxes.setdefault(registration.urn, []).append(Box(ident))
        return ident

    def component_node(
        self, registration: Registration, label: str, fillcolor: str, shape: str = "box", style: str = "rounded,filled"
    ) -> str:
        """A filled node for a resource outside the VPC, in the cluster of its component."""
        return self.add_node(
            self.component_cluster(registration), registration, label, shape=shape, style=style, fillcolor=fillcolor
        )

    def edge(self, tail: Box, head: Box, css: str, label: str = "", **attrs: str) -> None:
        """An edge between two boxes; edges with the same ends and class merge their labels."""
        if tail == head:
            return
        key = (tail.node, head.node, tail.cluster + "|" + head.cluster, css)
        found = self.edges.setdefault(key, {"class": css, **attrs})
        if tail.cluster:
            found["ltail"] = tail.cluster
        if head.cluster:
            found["lhead"] = head.cluster
        if label:
            labels = [part for part in found.get("label", "").split("\\n") if part]
            if label not in labels:
                found["label"] = "\\n".join(sorted([*labels, label]))

    def component_cluster(self, registration: Registration) -> Cluster:
        """The cluster of the component a (non-VPC) resource belongs to, inside the stack's cluster."""
        component = self.css(registration)
        return self.root.child(
            f"cluster_component_{_slug(component)}", component, component, style="rounded,dashed", color="#888888"
        )

    # --- the VPC --------------------------------------------------------------------------------------

    def build(self) -> graphviz.Digraph:
        """The whole picture as a ``graphviz.Digraph``."""
        graph = self.graph
        for vpc in graph.of_type("aws:ec2/vpc:Vpc"):
            self.vpc(vpc)
        self.load_balancers()
        self.security_group_paths()
        self.edge_services()
        self.keys()
        self.registries()
        self.observability()
        self.account_security()
        self.stack_layout()
        return self.emit()

    def invisible(self, tail: str, head: str) -> None:
        """A layout-only edge: ``head`` is ranked below ``tail``."""
        self.edges.setdefault((tail, head, "layout", ""), {"style": "invis", "weight": "2"})

    def stack_layout(self) -> None:
        """Stack what would otherwise sit side by side: tiers top to bottom, the other components in a column.

        Graphviz ranks nodes by their edges only, so three tiers whose subnets share the top rank come out
        as three columns. Invisible edges put each tier's resources below its subnets and the next tier
        below them (public, private, database: the order traffic flows in), and chain the components
        outside the VPC into two columns beside it (balanced by node count).
        """

        def all_nodes(cluster: Cluster) -> list[str]:
            return sorted(cluster.nodes) + [n for c in sorted(cluster.clusters) for n in all_nodes(cluster.clusters[c])]

        def rows(cluster: Cluster) -> Iterable[list[str]]:
            if cluster.same_rank:
                yield sorted(cluster.same_rank)
            for child in cluster.clusters.values():
                yield from rows(child)

        # Nodes drawn side by side keep their sorted order (AZ a, b, c) instead of the crossing-minimising one.
        for row in rows(self.root):
            for tail, head in itertools.pairwise(row):
                self.invisible(tail, head)
        for vpc_cluster in (c for name, c in sorted(self.root.clusters.items()) if name.startswith("cluster_vpc_")):
            tiers = [vpc_cluster.clusters[n] for n in vpc_cluster.clusters if n.startswith("cluster_tier_")]
            tiers.sort(key=lambda t: list(vpc_cluster.clusters).index(t.name))
            above = [n for n in sorted(vpc_cluster.nodes) if n.startswith("InternetGateway__")]
            for tier in tiers:
                nodes = all_nodes(tier)
                subnets = [n for n in nodes if n.startswith("Subnet__")]
                contents = [n for n in nodes if n not in subnets]
                for tail in above:
                    for head in subnets:
                        self.invisible(tail, head)
                for head in contents:
                    for tail in subnets:
                        self.invisible(tail, head)
                above = contents or subnets
        # The components outside the VPC: each one's nodes in a column, the components in two columns
        # (balanced by node count), each column starting at the top of the picture.
        columns: list[list[str]] = [[], []]
        for _, cluster in sorted(self.root.clusters.items()):
            if cluster.name.startswith("cluster_component_") and cluster.nodes:
                shortest = min(columns, key=len)
                shortest.extend(all_nodes(cluster))
        for column in columns:
            for tail, head in zip(["internet", *column], column, strict=False):
                self.invisible(tail, head)

    def vpc(self, vpc: Registration) -> None:
        """The VPC cluster: tiers with their subnets, routes, NAT gateways and what runs in each tier."""
        graph = self.graph
        flow_logs = [
            graph.resolve(f.inputs.get("logDestination"))
            for f in graph.of_type("aws:ec2/flowLog:FlowLog")
            if graph.resolve(f.inputs.get("vpcId")) is vpc
        ]
        flow_text = ""
        for group in filter(None, flow_logs):
            flow_text = f"\\nflow logs -> {self.name(group)} ({number(group.inputs.get('retentionInDays')):g} days)"
        cluster = self.root.child(
            f"cluster_vpc_{_slug(vpc.name)}",
            f"VPC {self.name(vpc)}  {vpc.inputs.get('cidrBlock')}{flow_text}",
            self.css(vpc),
            style="rounded",
            color="#1a73e8",
        )
        subnets = [s for s in graph.of_type("aws:ec2/subnet:Subnet") if graph.resolve(s.inputs.get("vpcId")) is vpc]
        tiers = sorted({graph.tier_of(s) for s in subnets}, key=lambda t: (TIER_ORDER.index(t) if t in TIER_ORDER else 99, t))
        routes = self.default_routes()
        for tier in tiers:
            members = sorted(
                (s for s in subnets if graph.tier_of(s) == tier), key=lambda s: (str(s.inputs.get("availabilityZone")), s.name)
            )
            targets = sorted({routes.get(s.urn, "no route out") for s in members})
            tier_cluster = cluster.child(
                f"cluster_tier_{_slug(tier)}",
                f"{tier} tier: 0.0.0.0/0 -> {', '.join(targets)}",
                self.css(members[0]),
                style="rounded,filled",
                fillcolor=TIER_COLOURS.get(tier, "#f4f4f4"),
                color="#9aa0a6",
            )
            for subnet in members:
                label = f"{self.name(subnet)}\\n{subnet.inputs.get('cidrBlock')}\\n{subnet.inputs.get('availabilityZone')}"
                tier_cluster.same_rank.append(
                    self.add_node(tier_cluster, subnet, label, shape="box", style="filled", fillcolor="white", fontsize="9")
                )
        self.gateways(vpc, cluster)
        self.placed(cluster)

    def default_routes(self) -> dict[str, str]:
        """Subnet URN -> where its 0.0.0.0/0 route goes (``internet gateway``, ``NAT gateway <name>``)."""
        graph = self.graph
        via: dict[str, str] = {}
        for route in graph.of_type("aws:ec2/route:Route"):
            if route.inputs.get("destinationCidrBlock") != ANYWHERE:
                continue
            table = graph.resolve(route.inputs.get("routeTableId"))
            target = graph.resolve(route.inputs.get("natGatewayId")) or graph.resolve(route.inputs.get("gatewayId"))
            if table is None or target is None:
                continue
            kind = "NAT gateway" if target.type == "aws:ec2/natGateway:NatGateway" else "internet gateway"
            for association in graph.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
                if graph.resolve(association.inputs.get("routeTableId")) is table:
                    subnet = graph.resolve(association.inputs.get("subnetId"))
                    if subnet is not None:
                        via[subnet.urn] = kind
        return via

    def gateways(self, vpc: Registration, cluster: Cluster) -> None:
        """Internet gateway, NAT gateways (with their public addresses) and gateway endpoints."""
        graph = self.graph
        for igw in graph.of_type("aws:ec2/internetGateway:InternetGateway"):
            if graph.resolve(igw.inputs.get("vpcId")) is vpc:
                ident = self.add_node(
                    cluster, igw, f"internet gateway\\n{self.name(igw)}", shape="box", style="rounded,filled", fillcolor="#fff3cd"
                )
                self.edge(Box("internet"), Box(ident), self.css(igw), "0.0.0.0/0", dir="both")
        nats = graph.of_type("aws:ec2/natGateway:NatGateway")
        for nat in nats:
            subnet = graph.resolve(nat.inputs.get("subnetId"))
            tier = graph.tier_of(subnet) if subnet is not None else "untiered"
            tier_cluster = cluster.clusters.get(f"cluster_tier_{_slug(tier)}", cluster)
            nat_cluster = tier_cluster.child(
                "cluster_nat", f"NAT gateways ({len(nats)})", self.css(nat), style="rounded", color="#9aa0a6"
            )
            eip = graph.resolve(nat.inputs.get("allocationId"))
            zone = subnet.inputs.get("availabilityZone") if subnet is not None else ""
            address = f"\\npublic IPv4: {self.name(eip)}" if eip is not None else ""
            ident = self.add_node(
                nat_cluster, nat, f"{self.name(nat)}\\n{zone}{address}", shape="box", style="rounded,filled", fillcolor="white"
            )
            for igw in graph.of_type("aws:ec2/internetGateway:InternetGateway"):
                for box in self.boxes.get(igw.urn, [])[:1]:
                    self.edge(Box(ident), box, self.css(nat), constraint="false")
        for endpoint in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
            if endpoint.inputs.get("vpcEndpointType") == "Gateway" and graph.resolve(endpoint.inputs.get("vpcId")) is vpc:
                tables = [graph.resolve(t) for t in endpoint.inputs.get("routeTableIds") or []]
                service = str(endpoint.inputs.get("serviceName")).rsplit(".", 1)[-1]
                label = f"gateway endpoint\\n{service}\\n(route tables: {len(tables)})"
                self.add_node(cluster, endpoint, label, shape="box", style="rounded,filled", fillcolor="#f1f3f4")

    def placed(self, vpc_cluster: Cluster) -> None:
        """Everything placed in subnets, in the tier of its subnets (ECS, Aurora, Redis, endpoints, the rest)."""
        graph = self.graph
        drawn = {SG, "aws:ec2/natGateway:NatGateway", "aws:ec2/routeTableAssociation:RouteTableAssociation"}
        drawn |= {"aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup"}
        for resource in graph.resources:
            tier = graph.tier_of_resource(resource)
            if tier is None or resource.type in drawn:
                continue
            tier_cluster = vpc_cluster.clusters.get(f"cluster_tier_{_slug(tier)}", vpc_cluster)
            if resource.type == "aws:ecs/service:Service":
                self.ecs_service(tier_cluster, resource)
            elif resource.type == "aws:rds/cluster:Cluster":
                self.aurora(tier_cluster, resource)
            elif resource.type == "aws:elasticache/replicationGroup:ReplicationGroup":
                self.redis(tier_cluster, resource)
            elif resource.type == "aws:ec2/vpcEndpoint:VpcEndpoint":
                endpoints = tier_cluster.child(
                    "cluster_interface_endpoints",
                    "interface endpoints" + self.sg_text(resource),
                    self.css(resource),
                    style="rounded",
                    color="#9aa0a6",
                )
                service = str(resource.inputs.get("serviceName")).split(".", 3)[-1]
                label = f"{service}\\n{len(resource.inputs.get('subnetIds') or [])} AZs"
                ident = self.add_node(endpoints, resource, label, shape="box", style="rounded,filled", fillcolor="white")
                self.boxes[resource.urn] = [Box(ident, endpoints.name)]
            elif resource.type == "aws:lb/loadBalancer:LoadBalancer":
                self.load_balancer(tier_cluster, resource)
            else:
                kind = resource.type.split(":")[-1]
                self.add_node(
                    tier_cluster,
                    resource,
                    f"{kind}\\n{self.name(resource)}",
                    shape="box",
                    style="rounded,filled",
                    fillcolor="white",
                )

    def sg_text(self, registration: Registration) -> str:
        """``\\nSG name, name`` for the security groups a resource is in."""
        groups = self.graph.refers_to(registration, SG)
        return ("\\nSG " + ", ".join(self.name(g) for g in groups)) if groups else ""

    def ecs_service(self, tier_cluster: Cluster, service: Registration) -> None:
        """A service node (size, task counts, image) in the cluster of its ECS cluster."""
        graph = self.graph
        ecs = graph.resolve(service.inputs.get("cluster"))
        ecs_name = self.name(ecs) if ecs is not None else "ECS"
        ecs_cluster = tier_cluster.child(
            f"cluster_ecs_{_slug(ecs_name)}",
            f"ECS cluster {ecs_name} (Fargate){self.sg_text(service)}",
            self.css(service),
            style="rounded",
            color="#ff9900",
        )
        task = graph.resolve(service.inputs.get("taskDefinition"), "aws:ecs/taskDefinition:TaskDefinition")
        size = image = ""
        if task is not None:
            size = f"\\n{number(task.inputs.get('cpu')):g} CPU / {number(task.inputs.get('memory')):g} MiB"
            containers = json.loads(str(task.inputs.get("containerDefinitions") or "[]"))
            image = f"\\n{str(containers[0].get('image', '')).rsplit('/', 1)[-1]}" if containers else ""
        low, high = self.task_bounds(service)
        desired = number(service.inputs.get("desiredCount"), low)
        label = f"{self.name(service)}{size}\\ntasks {low:g}-{high:g} (desired {desired:g}){image}"
        ident = self.add_node(ecs_cluster, service, label, shape="box", style="rounded,filled", fillcolor="#fff8e1")
        self.boxes[service.urn] = [Box(ident, ecs_cluster.name)]
        if ecs is not None:
            self.boxes[ecs.urn] = [Box(ident, ecs_cluster.name)]

    def task_bounds(self, service: Registration) -> tuple[float, float]:
        """(min, max) tasks from the service's autoscaling target, else its desired count."""
        name = self.name(service)
        for target in self.graph.of_type("aws:appautoscaling/target:Target"):
            if str(target.inputs.get("resourceId", "")).endswith(f"/{name}"):
                return number(target.inputs.get("minCapacity")), number(target.inputs.get("maxCapacity"))
        desired = number(service.inputs.get("desiredCount"), 1)
        return desired, desired

    def database_title(self, database: Registration, default_engine: str | None = None) -> str:
        """``<engine> <version>: <name>``, the engine by its display name (:data:`ENGINES`) when it has one."""
        engine = str(database.inputs.get("engine", default_engine))
        return f"{ENGINES.get(engine, engine)} {database.inputs.get('engineVersion')}: {self.name(database)}"

    def database_cluster(
        self, tier_cluster: Cluster, kind: str, database: Registration, label: str, fillcolor: str, color: str
    ) -> Cluster:
        """The filled cluster a database (Aurora, Redis) is drawn as, with its instances or nodes inside."""
        return tier_cluster.child(
            f"cluster_{kind}_{_slug(database.name)}",
            label,
            self.css(database),
            style="rounded,filled",
            fillcolor=fillcolor,
            color=color,
        )

    def aurora(self, tier_cluster: Cluster, cluster: Registration) -> None:
        """The Aurora cluster with one node per instance."""
        graph = self.graph
        days = number(cluster.inputs.get("backupRetentionPeriod"))
        flags = [
            f"backups kept {days:g} day{'' if days == 1 else 's'}",
            "deletion protection" if cluster.inputs.get("deletionProtection") else "no deletion protection",
        ]
        label = f"{self.database_title(cluster)}\\n{', '.join(flags)}{self.sg_text(cluster)}"
        box = self.database_cluster(tier_cluster, "aurora", cluster, label, fillcolor="#fbe9e7", color="#3b48cc")
        instances = [i for i, _ in graph.referrers(cluster, "aws:rds/clusterInstance:ClusterInstance")]
        for instance in sorted(instances, key=lambda i: self.name(i)):
            text = (
                f"{self.name(instance)}\\n{instance.inputs.get('instanceClass')}\\n{instance.inputs.get('availabilityZone', '')}"
            )
            box.same_rank.append(self.add_node(box, instance, text, shape="cylinder", style="filled", fillcolor="white"))
        first = sorted(box.nodes)[0] if box.nodes else self.add_node(box, cluster, self.name(cluster), shape="cylinder")
        self.boxes[cluster.urn] = [Box(first, box.name)]

    def redis(self, tier_cluster: Cluster, group: Registration) -> None:
        """The replication group with one node per cache node (member clusters)."""
        flags = [
            "automatic failover" if group.inputs.get("automaticFailoverEnabled") else "no failover",
            "Multi-AZ" if group.inputs.get("multiAzEnabled") else "single AZ",
            "TLS" if group.inputs.get("transitEncryptionEnabled") else "no TLS",
        ]
        label = f"ElastiCache {self.database_title(group, 'redis')}\\n{', '.join(flags)}{self.sg_text(group)}"
        box = self.database_cluster(tier_cluster, "redis", group, label, fillcolor="#fce4ec", color="#c7131f")
        members = group.state.get("memberClusters") or [
            f"{self.name(group)}-{i:03d}" for i in range(1, int(number(group.inputs.get("numCacheClusters"), 1)) + 1)
        ]
        for member in members:
            ident = f"{node_id(group)}__{member}"
            box.nodes[ident] = (
                f"{member}\\n{group.inputs.get('nodeType')}",
                {"class": self.css(group), "shape": "cylinder", "style": "filled", "fillcolor": "white"},
            )
            box.same_rank.append(ident)
        self.boxes[group.urn] = [Box(sorted(box.nodes)[0], box.name)]

    # --- load balancers and path routes ------------------------------------------------------------------

    def load_balancer(self, tier_cluster: Cluster, alb: Registration) -> None:
        """The load balancer node, with its listeners in the label."""
        listeners = [r for r, _ in self.graph.referrers(alb, "aws:lb/listener:Listener")]
        lines = []
        for listener in sorted(listeners, key=lambda x: number(x.inputs.get("port"))):
            action = (listener.inputs.get("defaultActions") or [{}])[0]
            what = (
                "redirect to HTTPS"
                if action.get("type") == "redirect"
                else str(listener.inputs.get("sslPolicy") or action.get("type"))
            )
            lines.append(f"{listener.inputs.get('protocol')} :{number(listener.inputs.get('port')):g} ({what})")
        protection = "deletion protection" if alb.inputs.get("enableDeletionProtection") else "no deletion protection"
        label = f"Application Load Balancer\\n{self.name(alb)}\\n" + "\\n".join(lines) + f"\\n{protection}{self.sg_text(alb)}"
        self.add_node(tier_cluster, alb, label, shape="box", style="rounded,filled,bold", fillcolor="#e3f2fd")

    def load_balancers(self) -> None:
        """One edge per path route: load balancer -> service, via listener rule and target group."""
        graph = self.graph
        for rule in graph.of_type("aws:lb/listenerRule:ListenerRule"):
            listener = graph.resolve(rule.inputs.get("listenerArn"))
            alb = graph.resolve(listener.inputs.get("loadBalancerArn")) if listener is not None else None
            if alb is None or alb.urn not in self.boxes:
                continue
            paths = [v for c in rule.inputs.get("conditions") or [] for v in get_in(c, "pathPattern.values", [])]
            for action in rule.inputs.get("actions") or []:
                group = graph.resolve(action.get("targetGroupArn"))
                if group is None:
                    continue
                for service, _ in graph.referrers(group, "aws:ecs/service:Service"):
                    route = f"{listener.inputs.get('protocol') if listener else ''} {' '.join(paths)}".strip()
                    port = f":{number(group.inputs.get('port')):g}"
                    head = Box(self.boxes[service.urn][0].node) if service.urn in self.boxes else None
                    if head is not None:
                        self.edge(
                            self.boxes[alb.urn][0],
                            head,
                            self.css(rule),
                            f"{route} -> {port}",
                            **ROUTE_EDGE,
                        )

    # --- security groups -------------------------------------------------------------------------------------

    def sg_boxes(self, group: Registration) -> list[Box]:
        """Where edges to the members of a security group attach (one box per drawn cluster or node)."""
        found: list[Box] = []
        for member, path in self.graph.referrers(group):
            if member.type in (INGRESS, EGRESS, SG) or path == "vpcId":
                continue
            for box in self.boxes.get(member.urn, []):
                whole = Box(box.node, box.cluster) if box.cluster else box
                if all((b.cluster or b.node) != (whole.cluster or whole.node) for b in found):
                    found.append(whole)
        return sorted(found, key=lambda b: (b.cluster, b.node))

    def security_group_paths(self) -> None:
        """An edge wherever the destination's ingress and the source's egress both allow a port."""
        graph = self.graph
        groups = graph.of_type(SG)
        ingress = graph.of_type(INGRESS)
        egress = graph.of_type(EGRESS)
        vpc_cidrs = [ipaddress.ip_network(str(v.inputs.get("cidrBlock"))) for v in graph.of_type("aws:ec2/vpc:Vpc")]

        def in_vpc(cidr: str) -> bool:
            network = ipaddress.ip_network(cidr, strict=False)
            return any(network.overlaps(v) for v in vpc_cidrs) and cidr != ANYWHERE

        def egress_allows(source: Registration, destination: Registration, rule: Registration) -> bool:
            for out in egress:
                if graph.resolve(out.inputs.get("securityGroupId")) is not source or not _covers(out, rule):
                    continue
                target = out.inputs.get("referencedSecurityGroupId")
                cidr = str(out.inputs.get("cidrIpv4") or "")
                if (target and graph.resolve(target) is destination) or cidr == ANYWHERE or (cidr and in_vpc(cidr)):
                    return True
            return False

        for rule in ingress:
            destination = graph.resolve(rule.inputs.get("securityGroupId"))
            if destination is None:
                continue
            heads = self.sg_boxes(destination)
            referenced = graph.resolve(rule.inputs.get("referencedSecurityGroupId"))
            cidr = str(rule.inputs.get("cidrIpv4") or "")
            if referenced is not None:
                sources = [referenced] if egress_allows(referenced, destination, rule) else []
            elif cidr and in_vpc(cidr):
                sources = [g for g in groups if g is not destination and egress_allows(g, destination, rule)]
            else:
                sources = []
            tails = [Box("internet")] if cidr == ANYWHERE else [b for s in sources for b in self.sg_boxes(s)]
            for tail in tails:
                for head in heads:
                    if tail == head:
                        self.note_self_path(head, _port_text(rule))
                    self.edge(tail, head, self.css(rule), f"SG {_port_text(rule)}", **SG_EDGE)
        self.internet_egress(egress)

    def note_self_path(self, box: Box, port: str) -> None:
        """A group that admits itself (service to service): noted in its cluster's label, not as a loop."""
        cluster = self.find_cluster(self.root, box.cluster)
        note = f"\\nmembers to each other: {port}"
        if cluster is not None and note not in cluster.label:
            cluster.label += note

    def find_cluster(self, cluster: Cluster, name: str) -> Cluster | None:
        """The cluster called ``name`` anywhere below ``cluster``."""
        if cluster.name == name:
            return cluster
        for child in cluster.clusters.values():
            found = self.find_cluster(child, name)
            if found is not None:
                return found
        return None

    def internet_egress(self, egress: Iterable[Registration]) -> None:
        """Egress to anywhere, drawn to the NAT gateways when the members' subnets route through them."""
        graph = self.graph
        routes = self.default_routes()
        nat_box = next((b for n in graph.of_type("aws:ec2/natGateway:NatGateway") for b in self.boxes.get(n.urn, [])), None)
        for rule in egress:
            if rule.inputs.get("cidrIpv4") != ANYWHERE:
                continue
            group = graph.resolve(rule.inputs.get("securityGroupId"))
            if group is None:
                continue
            members = [m for m, p in graph.referrers(group) if m.type not in (INGRESS, EGRESS, SG) and p != "vpcId"]
            via = {routes.get(s.urn) for m in members for s in graph.subnets_of(m)}
            head = Box(nat_box.node, "cluster_nat") if "NAT gateway" in via and nat_box else Box("internet")
            for tail in self.sg_boxes(group):
                self.edge(
                    tail,
                    head,
                    self.css(rule),
                    f"SG {_port_text(rule)} to 0.0.0.0/0",
                    **SG_EDGE,
                    constraint="false",
                )

    # --- outside the VPC -----------------------------------------------------------------------------------------

    def edge_services(self) -> None:
        """WAF, certificates and the load balancer's log bucket, with what they attach to."""
        graph = self.graph
        for acl in graph.of_type("aws:wafv2/webAcl:WebAcl"):
            rules = acl.inputs.get("rules") or []
            limits = [get_in(r, "statement.rateBasedStatement.limit") for r in rules if get_in(r, "statement.rateBasedStatement")]
            rate = f"\\nrate limit {number(limits[0]):g} per 5 min per IP" if limits else ""
            label = f"WAF web ACL\\n{self.name(acl)}\\n{len(rules)} rules{rate}"
            ident = self.component_node(acl, label, "#ffebee", shape="octagon", style="filled")
            for association in graph.of_type("aws:wafv2/webAclAssociation:WebAclAssociation"):
                target = graph.resolve(association.inputs.get("resourceArn"))
                if graph.resolve(association.inputs.get("webAclArn")) is acl and target is not None and target.urn in self.boxes:
                    self.edge(
                        Box(ident),
                        self.boxes[target.urn][0],
                        self.css(association),
                        "filters requests",
                        style="bold",
                        color="#c62828",
                        constraint="false",
                    )
        for certificate in graph.of_type("aws:acm/certificate:Certificate"):
            kind = "imported (self-signed)" if certificate.inputs.get("certificateBody") else "DNS-validated"
            label = f"ACM certificate\\n{self.name(certificate)}\\n{kind}"
            ident = self.component_node(certificate, label, "#f3e5f5", shape="note", style="filled")
            for listener in graph.of_type("aws:lb/listener:Listener"):
                alb = graph.resolve(listener.inputs.get("loadBalancerArn"))
                if (
                    graph.resolve(listener.inputs.get("certificateArn")) is certificate
                    and alb is not None
                    and alb.urn in self.boxes
                ):
                    self.edge(Box(ident), self.boxes[alb.urn][0], self.css(listener), "TLS", constraint="false")
        for alb in graph.of_type("aws:lb/loadBalancer:LoadBalancer"):
            bucket_name = get_in(alb.inputs, "accessLogs.bucket")
            bucket = graph.resolve(bucket_name, "aws:s3/bucket:Bucket")
            if bucket is not None and alb.urn in self.boxes:
                ident = self.bucket(bucket)
                self.edge(self.boxes[alb.urn][0], Box(ident), self.css(alb), "access logs", style="dotted", constraint="false")

    def bucket(self, bucket: Registration) -> str:
        """A bucket node (once), with its lifecycle expiration and Object Lock retention."""
        if bucket.urn in self.boxes:
            return self.boxes[bucket.urn][0].node
        graph = self.graph
        notes = []
        for lifecycle, _ in graph.referrers(bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
            days = [get_in(r, "expiration.days") for r in lifecycle.inputs.get("rules") or [] if get_in(r, "expiration.days")]
            if days:
                notes.append(f"expires after {number(min(days)):g} days")
        for lock, _ in graph.referrers(bucket, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"):
            notes.append(
                f"Object Lock {get_in(lock.inputs, 'rule.defaultRetention.mode')} "
                f"{number(get_in(lock.inputs, 'rule.defaultRetention.days')):g} days"
            )
        label = f"S3 bucket\\n{self.name(bucket)}" + "".join(f"\\n{n}" for n in notes)
        return self.component_node(bucket, label, "#e8f5e9", shape="folder", style="filled")

    def keys(self) -> None:
        """The KMS keys, each with an edge to every drawn resource whose inputs name it."""
        graph = self.graph
        for key in graph.of_type("aws:kms/key:Key"):
            aliases = [self.name(a) for a, _ in graph.referrers(key, "aws:kms/alias:Alias")]
            rotation = "rotation on" if key.inputs.get("enableKeyRotation") else "no rotation"
            window = f"{number(key.inputs.get('deletionWindowInDays')):g}-day deletion window"
            label = f"KMS key\\n{', '.join(aliases) or self.name(key)}\\n{rotation}, {window}"
            ident = self.component_node(key, label, "#fffde7")
            targets = {box for user, _ in graph.referrers(key) for box in self.boxes.get(user.urn, [])[:1]}
            # An Aurora instance inside a cluster the key already points at needs no edge of its own.
            clusters = {box.cluster for box in targets if box.cluster}
            for box in sorted(targets, key=lambda b: (b.cluster, b.node)):
                if box.cluster or self.node_cluster.get(box.node) not in clusters:
                    self.edge(
                        Box(ident), box, self.css(key), "", style="dotted", color="#9e9d24", arrowhead="odot", constraint="false"
                    )

    def registries(self) -> None:
        """ECR repositories (one node) and the Service Connect namespace."""
        graph = self.graph
        repositories = graph.of_type("aws:ecr/repository:Repository")
        if repositories:
            first = repositories[0]
            names = "\\n".join(self.name(r) for r in repositories)
            label = f"ECR repositories ({len(repositories)})\\n{names}"
            ident = self.component_node(first, label, "#fff3e0", shape="box3d", style="filled")
            for repository in repositories[1:]:
                self.boxes[repository.urn] = [Box(ident)]
            for service in graph.of_type("aws:ecs/service:Service"):
                for box in self.boxes.get(service.urn, [])[:1]:
                    self.edge(Box(ident), box, self.css(first), "images", style="dotted", constraint="false")
        for namespace in graph.of_type("aws:servicediscovery/httpNamespace:HttpNamespace"):
            self.component_node(namespace, f"Service Connect namespace\\n{self.name(namespace)}", "#fff3e0")

    def observability(self) -> None:
        """Alarm topic with its subscribers, the alarms and the dashboard."""
        graph = self.graph
        alarms = graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        for topic in graph.of_type("aws:sns/topic:Topic"):
            topic_id = self.component_node(topic, f"SNS topic\\n{self.name(topic)}", "#f3e5f5")
            for subscription, _ in graph.referrers(topic, "aws:sns/topicSubscription:TopicSubscription"):
                endpoint = str(subscription.inputs.get("endpoint"))
                ident = f"subscriber__{_slug(endpoint)}"
                self.external[ident] = (
                    f"{subscription.inputs.get('protocol')} subscriber\\n{endpoint.rsplit(':', 1)[-1]}",
                    {"class": self.css(subscription), "shape": "box", "style": "rounded,dashed"},
                )
                self.edge(Box(topic_id), Box(ident), self.css(subscription), "alarms")
            if alarms:
                first = alarms[0]
                alarm_id = self.component_node(first, f"CloudWatch alarms ({len(alarms)})", "#f3e5f5")
                self.edge(Box(alarm_id), Box(topic_id), self.css(first), "notify")
        for dashboard in graph.of_type("aws:cloudwatch/dashboard:Dashboard"):
            self.component_node(dashboard, f"dashboard\\n{self.name(dashboard)}", "#f3e5f5")

    def account_security(self) -> None:
        """GuardDuty, AWS Config and CloudTrail, with the buckets they deliver to."""
        graph = self.graph
        for detector in graph.of_type("aws:guardduty/detector:Detector"):
            features = [
                str(f.inputs.get("name"))
                for f, _ in graph.referrers(detector, "aws:guardduty/detectorFeature:DetectorFeature")
                if f.inputs.get("status") == "ENABLED"
            ]
            label = "GuardDuty detector" + "".join(f"\\n+ {f}" for f in sorted(features))
            self.component_node(detector, label, "#e0f7fa")
        rules = graph.of_type("aws:cfg/rule:Rule")
        for recorder in graph.of_type("aws:cfg/recorder:Recorder"):
            label = f"AWS Config recorder\\n{self.name(recorder)}\\n{len(rules)} managed rules"
            ident = self.component_node(recorder, label, "#e0f7fa")
            for channel in graph.of_type("aws:cfg/deliveryChannel:DeliveryChannel"):
                bucket = graph.resolve(channel.inputs.get("s3BucketName"), "aws:s3/bucket:Bucket")
                if bucket is not None:
                    self.edge(Box(ident), Box(self.bucket(bucket)), self.css(channel), "snapshots")
        for trail in graph.of_type("aws:cloudtrail/trail:Trail"):
            insights = [str(s.get("insightType")) for s in trail.inputs.get("insightSelectors") or []]
            extra = f"\\nInsights: {', '.join(insights)}" if insights else ""
            validation = "on" if trail.inputs.get("enableLogFileValidation") else "off"
            label = f"CloudTrail\\n{self.name(trail)}\\nlog file validation {validation}{extra}"
            ident = self.component_node(trail, label, "#e0f7fa")
            bucket = graph.resolve(trail.inputs.get("s3BucketName"), "aws:s3/bucket:Bucket")
            if bucket is not None:
                self.edge(Box(ident), Box(self.bucket(bucket)), self.css(trail), "log files")
        for logging in graph.of_type("aws:s3/bucketLogging:BucketLogging"):
            source = graph.resolve(logging.inputs.get("bucket"))
            target = graph.resolve(logging.inputs.get("targetBucket"), "aws:s3/bucket:Bucket")
            if source is not None and target is not None:
                self.edge(Box(self.bucket(source)), Box(self.bucket(target)), self.css(logging), "access logs", style="dotted")

    # --- emission --------------------------------------------------------------------------------------------------

    def emit(self) -> graphviz.Digraph:
        """The DOT graph: attributes, the internet, the clusters (sorted), external nodes and edges (sorted)."""
        graph = self.graph
        dot = graphviz.Digraph("architecture", strict=False)
        resources = len(graph.resources)
        dot.attr(
            label=f"ScalePayments {graph.environment} (stack {graph.stack}): {resources} resources, "
            "generated from the resource graph by tools/insight/diagram.py",
            labelloc="t",
            fontname=FONT,
            fontsize="18",
            compound="true",
            newrank="true",
            rankdir="TB",
            nodesep="0.25",
            ranksep="0.45",
            bgcolor="white",
        )
        dot.attr("node", fontname=FONT, fontsize="10", margin="0.12,0.06")
        dot.attr("edge", fontname=FONT, fontsize="9", color="#5f6368")
        dot.node("internet", "Internet", shape="ellipse", style="filled", fillcolor="#eceff1", **{"class": "internet"})
        self.emit_cluster(dot, self.root)
        for ident in sorted(self.external):
            label, attrs = self.external[ident]
            dot.node(ident, label, **attrs)
        for (tail, head, _, _), attrs in sorted(self.edges.items()):
            dot.edge(tail, head, **attrs)
        return dot

    def emit_cluster(self, parent: graphviz.Digraph, cluster: Cluster) -> None:
        """One cluster and, recursively, its children (nodes and clusters sorted by identifier)."""
        with parent.subgraph(name=cluster.name) as sub:
            sub.attr(label=cluster.label, fontname=FONT, fontsize="12", **{"class": cluster.css, **cluster.attrs})
            if cluster.same_rank:
                with sub.subgraph() as row:
                    row.attr(rank="same")
                    for ident in sorted(cluster.same_rank):
                        label, attrs = cluster.nodes[ident]
                        row.node(ident, label, **attrs)
            for ident in sorted(set(cluster.nodes) - set(cluster.same_rank)):
                label, attrs = cluster.nodes[ident]
                sub.node(ident, label, **attrs)
            for name in sorted(cluster.clusters):
                self.emit_cluster(sub, cluster.clusters[name])


def dot_source(graph: Graph) -> str:
    """The DOT source of the architecture picture of ``graph``."""
    return Diagram(graph).build().source


# --- rendering --------------------------------------------------------------------------------------------------


def renderer(choice: str = "auto") -> str:
    """``dot`` when a Graphviz binary is on PATH (and ``auto``), else ``wasm`` (Node.js + the pinned package)."""
    if choice in ("auto", "dot") and shutil.which("dot"):
        return "dot"
    if choice == "dot":
        raise RendererMissingError("no `dot` binary on PATH (install Graphviz, or use --renderer wasm)")
    if shutil.which("node") is None:
        raise RendererMissingError("neither `dot` nor `node` is on PATH: install Graphviz, or Node.js 18+ and run `npm ci`")
    if not WASM_PACKAGE.exists():
        raise RendererMissingError(f"{WASM_PACKAGE.relative_to(ROOT)} is missing: run `npm ci` at the repository root")
    return "wasm"


def render_svg(source: str, choice: str = "auto") -> str:
    """Lay out ``source`` with Graphviz and return the SVG."""
    command = ["dot", "-Tsvg"] if renderer(choice) == "dot" else ["node", str(RENDER_SCRIPT)]
    result = subprocess.run(command, input=source, capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    if result.returncode != 0 or "<svg" not in result.stdout:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[:2000]}")
    return result.stdout


_POINTS = re.compile(r'(<svg[^>]*?\b(?:width|height)=")([0-9.]+)pt(")')
_FONT_FAMILY = re.compile(r'font-family="[^"]*"')

#: Fonts the PNG is rendered with, first found wins: (family as the font file names it, file name).
#: Graphviz lays text out with Helvetica's metrics; these have about its width (DejaVu Sans Condensed
#: calls its family "DejaVu Sans"). Only the chosen file is loaded, so that the PNG does not depend on
#: whatever other fonts a machine has.
PNG_FONTS: tuple[tuple[str, str], ...] = (
    ("DejaVu Sans", "DejaVuSansCondensed.ttf"),
    ("Liberation Sans Narrow", "LiberationSansNarrow-Regular.ttf"),
    ("DejaVu Sans", "DejaVuSans.ttf"),
    ("Liberation Sans", "LiberationSans-Regular.ttf"),
    ("Arial", "Arial.ttf"),
)
FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".fonts",
    Path("/Library/Fonts"),
    Path("/System/Library/Fonts"),
)


def png_font() -> tuple[str, Path] | None:
    """The first of :data:`PNG_FONTS` installed on this machine (family, file)."""
    for family, file_name in PNG_FONTS:
        for directory in FONT_DIRS:
            if directory.is_dir():
                found = sorted(directory.rglob(file_name))
                if found:
                    return family, found[0]
    return None


def svg_to_png(svg: str, zoom: float = 1.0) -> bytes:
    """The SVG as PNG with resvg (a wheel: no system libraries).

    Two adjustments, for the PNG only: Graphviz sizes its SVG in points, which resvg-py refuses as a
    document size, so the size is given in pixels (1 pt = 4/3 px, what a browser shows); and resvg-py
    does not fall back from Graphviz's ``Helvetica,sans-Serif`` to an installed font, so the text is set
    in the font :func:`png_font` finds.
    """
    import resvg_py

    sized = svg
    for _ in range(2):  # width, then height
        sized = _POINTS.sub(lambda m: f"{m.group(1)}{float(m.group(2)) * 4 / 3:.0f}{m.group(3)}", sized, count=1)
    font = png_font()
    if font is None:
        png: bytes = resvg_py.svg_to_bytes(svg_string=sized, background="white", zoom=zoom)
    else:
        sized = _FONT_FAMILY.sub(f'font-family="{font[0]}"', sized)
        png = resvg_py.svg_to_bytes(
            svg_string=sized, background="white", zoom=zoom, font_files=[str(font[1])], skip_system_fonts=True
        )
    return bytes(png)


def write(graph: Graph, out_dir: Path = DOCS, choice: str = "auto") -> list[Path]:
    """Write ``architecture-<env>.svg`` and ``.png`` into ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    svg = render_svg(dot_source(graph), choice)
    svg_path = out_dir / f"architecture-{graph.stack}.svg"
    png_path = out_dir / f"architecture-{graph.stack}.png"
    svg_path.write_text(svg, encoding="utf-8")
    png_path.write_bytes(svg_to_png(svg))
    return [svg_path, png_path]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the architecture picture of one stack (or print its DOT source)."""
    parser = argparse.ArgumentParser(prog="python -m tools.insight.diagram", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="dev, staging, prod (or any stack with a Pulumi.<stack>.yaml)")
    parser.add_argument("--out", default=os.environ.get("DIAGRAM_DIR", str(DOCS)), help="output directory (default: docs/)")
    parser.add_argument("--renderer", choices=("auto", "dot", "wasm"), default="auto", help="auto: dot if installed, else wasm")
    parser.add_argument("--dot", action="store_true", help="print the DOT source and write nothing")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    graph = load(args.env, overrides_from(args.config))
    if args.dot:
        sys.stdout.write(dot_source(graph))
        return 0
    try:
        paths = write(graph, Path(args.out), args.renderer)
    except RendererMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
