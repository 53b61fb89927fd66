"""Network guardrails (PCI DSS 4.0 Req 1): what the internet can reach, and what can reach it.

Only the ALB faces the internet, and only on 80/443; nothing gets a public IP; databases and
caches live in subnets with no route to the internet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, StackResource, StackRule, Violation, pci
from policy.rules.readers import as_int, as_list, as_map, by_type, find, is_true

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
DEFAULT_ROUTE_TABLE = "aws:ec2/defaultRouteTable:DefaultRouteTable"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
MAIN_ROUTE_TABLE_ASSOCIATION = "aws:ec2/mainRouteTableAssociation:MainRouteTableAssociation"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
EGRESS_ONLY_GATEWAY = "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")

#: Anything that reads like a wildcard principal network.
INTERNET_CIDRS: frozenset[str] = frozenset({"0.0.0.0/0", "::/0"})

#: The only ports the internet may reach: the ALB's HTTP (redirect) and HTTPS listeners.
PUBLIC_WEB_PORTS: frozenset[int] = frozenset({80, 443})


def _internet_ingress(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, str, int | None, int | None]]:
    """(cidr, protocol, fromPort, toPort) of every ingress permission open to the internet."""
    if resource_type == INGRESS_RULE:
        for key in ("cidrIpv4", "cidrIpv6"):
            if props.get(key) in INTERNET_CIDRS:
                yield props[key], str(props.get("ipProtocol", "")), as_int(props.get("fromPort")), as_int(props.get("toPort"))
    elif resource_type == SECURITY_GROUP_RULE:
        if props.get("type") == "ingress":
            for cidr in as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks")):
                if cidr in INTERNET_CIDRS:
                    yield cidr, str(props.get("protocol", "")), as_int(props.get("fromPort")), as_int(props.get("toPort"))
    elif resource_type == SECURITY_GROUP:
        for rule in as_list(props.get("ingress")):
            rule = as_map(rule)
            for cidr in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")):
                if cidr in INTERNET_CIDRS:
                    yield cidr, str(rule.get("protocol", "")), as_int(rule.get("fromPort")), as_int(rule.get("toPort"))


def security_group_internet_ingress_web_ports_only(
    resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS
) -> list[str]:
    """Ingress from 0.0.0.0/0 or ::/0 is TCP 80 or 443, one port per permission."""
    messages = []
    for cidr, protocol, from_port, to_port in _internet_ingress(resource_type, props):
        if protocol.lower() not in ("tcp", "6") or from_port != to_port or from_port not in PUBLIC_WEB_PORTS:
            messages.append(
                pci(
                    "1.3.1",
                    f"ingress from {cidr} allows protocol {protocol or '?'} ports {from_port}-{to_port}; "
                    "only TCP 80 and 443 (the load balancer listeners) may be open to the internet",
                )
            )
    return messages


def _group_of(resource: StackResource) -> str | None:
    """The security group id an ingress permission belongs to."""
    if resource.type == SECURITY_GROUP:
        return resource.id
    value = resource.props.get("securityGroupId")
    return value if isinstance(value, str) else None


def _attachments(resources: Sequence[StackResource]) -> dict[str, list[StackResource]]:
    """Security group id -> the resources (load balancers, services, databases, caches) using it."""
    attached: dict[str, list[StackResource]] = {}
    for resource in resources:
        props = resource.props
        groups = (
            as_list(props.get("securityGroups"))
            + as_list(as_map(props.get("networkConfiguration")).get("securityGroups"))
            + as_list(props.get("vpcSecurityGroupIds"))
            + as_list(props.get("securityGroupIds"))
        )
        for group in groups:
            if isinstance(group, str):
                attached.setdefault(group, []).append(resource)
    return attached


def security_group_internet_ingress_alb_only(
    resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS
) -> list[Violation]:
    """A security group open to the internet is attached to load balancers and nothing else."""
    attached = _attachments(resources)
    violations = []
    for resource in by_type(resources, SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE):
        if not any(True for _ in _internet_ingress(resource.type, resource.props)):
            continue
        group_id = _group_of(resource)
        group = find(resources, group_id, SECURITY_GROUP)
        label = group.name if group else str(group_id)
        users = attached.get(group_id or "", [])
        if not any(u.type in LOAD_BALANCERS for u in users):
            violations.append(
                Violation(
                    resource.name,
                    pci("1.4.2", f"security group '{label}' is open to the internet but is not attached to a load balancer"),
                    resource.urn,
                )
            )
        for other in users:
            if other.type not in LOAD_BALANCERS:
                violations.append(
                    Violation(
                        resource.name,
                        pci(
                            "1.4.2",
                            f"security group '{label}' is open to the internet and is also attached to "
                            f"'{other.name}' ({other.type}); only load balancers may use it",
                        ),
                        resource.urn,
                    )
                )
    return violations


def subnet_no_public_ip_on_launch(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Subnets never hand out public IPs (the ALB and NAT gateways do not need them)."""
    if is_true(props.get("mapPublicIpOnLaunch")):
        return [pci("1.4.2", "subnet assigns public IPs on launch (mapPublicIpOnLaunch is true)")]
    return []


def rds_not_publicly_accessible(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Database instances are not reachable from the internet."""
    if is_true(props.get("publiclyAccessible")):
        return [pci("1.4.4", "database instance is publicly accessible (publiclyAccessible is true)")]
    return []


def _is_internet_target(resources: Sequence[StackResource], target: Any, prefixes: tuple[str, ...]) -> str | None:
    """A description of the internet gateway / NAT gateway ``target`` points to, or None."""
    if not isinstance(target, str) or not target:
        return None
    gateway = find(resources, target, INTERNET_GATEWAY, EGRESS_ONLY_GATEWAY, NAT_GATEWAY)
    if gateway is not None:
        kind = "NAT gateway" if gateway.type == NAT_GATEWAY else "internet gateway"
        return f"{kind} '{gateway.name}'"
    if target.startswith(prefixes):
        return f"gateway '{target}'"
    return None


def _route_targets(resources: Sequence[StackResource], route: Mapping[str, Any]) -> str | None:
    """The internet gateway or NAT gateway a route sends traffic to, or None for internal targets."""
    return (
        _is_internet_target(resources, route.get("gatewayId"), ("igw-",))
        or _is_internet_target(resources, route.get("natGatewayId"), ("nat-",))
        or _is_internet_target(resources, route.get("egressOnlyGatewayId"), ("eigw-",))
    )


def _internet_routes(resources: Sequence[StackResource], table: StackResource) -> list[str]:
    """Descriptions of the internet-bound routes of a route table (inline and separate routes)."""
    found = []
    for route in as_list(table.props.get("routes")):
        target = _route_targets(resources, as_map(route))
        if target:
            found.append(target)
    keys = table.keys()
    for route in by_type(resources, ROUTE):
        if route.props.get("routeTableId") in keys:
            target = _route_targets(resources, route.props)
            if target:
                found.append(target)
    return found


def _route_tables_of(resources: Sequence[StackResource], subnet_id: str) -> list[StackResource]:
    """The route table(s) a subnet uses: its explicit association, else its VPC's main table."""
    tables = []
    for assoc in by_type(resources, ROUTE_TABLE_ASSOCIATION):
        if assoc.props.get("subnetId") == subnet_id:
            table = find(resources, assoc.props.get("routeTableId"), ROUTE_TABLE, DEFAULT_ROUTE_TABLE)
            if table is not None:
                tables.append(table)
    if tables:
        return tables
    subnet = find(resources, subnet_id, SUBNET)
    vpc_id = subnet.props.get("vpcId") if subnet else None
    for assoc in by_type(resources, MAIN_ROUTE_TABLE_ASSOCIATION):
        if vpc_id and assoc.props.get("vpcId") == vpc_id:
            table = find(resources, assoc.props.get("routeTableId"), ROUTE_TABLE)
            if table is not None:
                tables.append(table)
    return tables


def data_stores_without_internet_route(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Database and cache subnet groups use only subnets whose route tables reach no IGW or NAT gateway."""
    violations = []
    for group in by_type(resources, RDS_SUBNET_GROUP, CACHE_SUBNET_GROUP):
        kind = "database" if group.type == RDS_SUBNET_GROUP else "cache"
        for subnet_id in as_list(group.props.get("subnetIds")):
            subnet = find(resources, subnet_id, SUBNET)
            label = subnet.name if subnet else str(subnet_id)
            for table in _route_tables_of(resources, str(subnet_id)):
                for target in _internet_routes(resources, table):
                    violations.append(
                        Violation(
                            group.name,
                            pci(
                                "1.4.4",
                                f"{kind} subnet group places the {kind} in subnet '{label}' whose route table "
                                f"'{table.name}' routes to {target}; use isolated subnets with no internet route",
                            ),
                            group.urn,
                        )
                    )
    return violations


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "sg-internet-ingress-web-ports-only",
        "network",
        "1.3.1",
        "Security group ingress from the internet is limited to TCP 80 and 443.",
        (SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE),
        security_group_internet_ingress_web_ports_only,
    ),
    StackRule(
        "sg-internet-ingress-alb-only",
        "network",
        "1.4.2",
        "Only load balancer security groups accept traffic from the internet.",
        (SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE),
        security_group_internet_ingress_alb_only,
    ),
    ResourceRule(
        "subnet-no-public-ip-on-launch",
        "network",
        "1.4.2",
        "Subnets do not assign public IPs on launch.",
        (SUBNET,),
        subnet_no_public_ip_on_launch,
    ),
    ResourceRule(
        "rds-not-publicly-accessible",
        "network",
        "1.4.4",
        "Database instances are not publicly accessible.",
        (RDS_CLUSTER_INSTANCE, RDS_INSTANCE),
        rds_not_publicly_accessible,
    ),
    StackRule(
        "data-stores-no-internet-route",
        "network",
        "1.4.4",
        "Databases and caches sit in subnets without a route to an internet or NAT gateway.",
        (RDS_SUBNET_GROUP, CACHE_SUBNET_GROUP),
        data_stores_without_internet_route,
    ),
)
