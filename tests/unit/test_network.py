"""Network tier: VPC, subnets, routing, NAT, flow logs and endpoints in every environment."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi_aws
import pytest

from lib.cidr import plan_subnets
from lib.components.network import FLOW_LOG_ACTIONS, first_zones, flow_logs_role_policy, flow_logs_trust_policy
from lib.config import EnvironmentConfig
from tools.evaluate import ACCOUNT_ID, Evaluation, Registration

NETWORK = "scalepayments:network:Network"
TIERS = ("public", "private", "database")
ANYWHERE = "0.0.0.0/0"
INTERFACE_SERVICES = {"ecr.api", "ecr.dkr", "logs", "secretsmanager"}


@dataclass(frozen=True)
class Expected:
    """What the README environment table asks of the network."""

    cidr: str
    azs: int
    nat_gateways: int
    interface_endpoints: bool


EXPECTED = {
    "dev": Expected("10.0.0.0/16", azs=2, nat_gateways=1, interface_endpoints=False),
    "staging": Expected("10.1.0.0/16", azs=2, nat_gateways=2, interface_endpoints=True),
    "prod": Expected("10.2.0.0/16", azs=3, nat_gateways=3, interface_endpoints=True),
}


@dataclass(frozen=True)
class Stack:
    """One evaluated environment."""

    env: str
    evaluation: Evaluation
    config: EnvironmentConfig
    expected: Expected

    def network(self, type_: str) -> list[Registration]:
        """Registrations of ``type_`` inside the Network component."""
        return [r for r in self.evaluation.of_type(type_) if r.component == NETWORK]

    def by_id(self, resource_id: str) -> Registration:
        """The resource whose (mock) physical id is ``resource_id``."""
        for r in self.evaluation.custom():
            if r.state.get("id") == resource_id:
                return r
        raise KeyError(f"{self.env}: no resource with id {resource_id!r}")

    def by_arn(self, arn: str) -> Registration:
        """The resource whose (mock) ARN is ``arn``."""
        for r in self.evaluation.custom():
            if r.state.get("arn") == arn:
                return r
        raise KeyError(f"{self.env}: no resource with ARN {arn!r}")


@pytest.fixture(scope="module", params=list(EXPECTED))
def stack(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> Stack:
    env = str(request.param)
    return Stack(env, evaluated(env), resolved(env), EXPECTED[env])


def _tagged(registrations: list[Registration], tier: str) -> list[Registration]:
    return sorted((r for r in registrations if r.inputs["tags"].get("Tier") == tier), key=lambda r: r.name)


def _subnets(stack: Stack, tier: str) -> list[Registration]:
    return _tagged(stack.network("aws:ec2/subnet:Subnet"), tier)


def _route_tables(stack: Stack, tier: str) -> list[Registration]:
    return _tagged(stack.network("aws:ec2/routeTable:RouteTable"), tier)


def _routes_of(stack: Stack, route_table: Registration) -> list[Registration]:
    return [r for r in stack.evaluation.of_type("aws:ec2/route:Route") if r.inputs["routeTableId"] == route_table.state["id"]]


def _associated_subnets(stack: Stack, route_table: Registration) -> set[str]:
    assocs = stack.evaluation.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    return {a.inputs["subnetId"] for a in assocs if a.inputs["routeTableId"] == route_table.state["id"]}


# --- VPC and subnets ---------------------------------------------------------------------------------


def test_vpc_uses_the_environment_cidr_with_dns(stack: Stack) -> None:
    (vpc,) = stack.network("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == stack.expected.cidr, f"{vpc.name} ({stack.env})"
    assert vpc.inputs["enableDnsSupport"] is True, f"{vpc.name}: DNS support off"
    assert vpc.inputs["enableDnsHostnames"] is True, f"{vpc.name}: DNS hostnames off (endpoint private DNS needs it)"
    assert vpc.inputs["tags"]["Name"] == f"scalepay-vpc-{stack.env}"
    assert stack.evaluation.outputs["vpcCidr"] == stack.expected.cidr
    assert stack.evaluation.outputs["vpcId"] == vpc.state["id"]


def test_each_tier_has_one_subnet_per_az_with_the_planned_cidr(stack: Stack) -> None:
    """Regular zones only (issue #8.11): the mock region also offers an opted-in Local Zone that sorts first."""
    plan = plan_subnets(stack.expected.cidr, stack.expected.azs)
    zones = [f"us-east-1{letter}" for letter in "abc"[: stack.expected.azs]]
    assert stack.evaluation.outputs["availabilityZones"] == zones
    for tier in TIERS:
        subnets = _subnets(stack, tier)
        assert len(subnets) == stack.expected.azs, f"{stack.env}: {len(subnets)} {tier} subnets, want {stack.expected.azs}"
        planned = getattr(plan, tier)
        for i, subnet in enumerate(subnets):
            letter = "abc"[i]
            assert subnet.inputs["tags"]["Name"] == f"scalepay-{tier}-{letter}-{stack.env}", subnet.name
            assert subnet.inputs["cidrBlock"] == planned[i], f"{subnet.name}: {subnet.inputs['cidrBlock']} != plan {planned[i]}"
            assert subnet.inputs["availabilityZone"] == zones[i], f"{subnet.name} is in {subnet.inputs['availabilityZone']}"
    assert len(stack.network("aws:ec2/subnet:Subnet")) == 3 * stack.expected.azs


def test_subnet_outputs_are_the_tier_subnets(stack: Stack) -> None:
    for tier, output in (("public", "publicSubnetIds"), ("private", "privateSubnetIds"), ("database", "databaseSubnetIds")):
        assert stack.evaluation.outputs[output] == [s.state["id"] for s in _subnets(stack, tier)], output


def test_no_subnet_in_the_stack_assigns_public_ips(stack: Stack) -> None:
    for subnet in stack.evaluation.of_type("aws:ec2/subnet:Subnet"):
        assert subnet.inputs.get("mapPublicIpOnLaunch") is False, f"{subnet.name} ({stack.env}) maps public IPs on launch"


def test_first_zones_refuses_a_region_with_too_few_azs() -> None:
    assert first_zones(["us-east-1a", "us-east-1b", "us-east-1c"], 2) == ["us-east-1a", "us-east-1b"]
    with pytest.raises(ValueError, match="offers 2 available AZs"):
        first_zones(["eu-x-1a", "eu-x-1b"], 3)


# --- routing, IGW and NAT --------------------------------------------------------------------------------


def test_public_route_table_sends_the_internet_to_the_igw(stack: Stack) -> None:
    (igw,) = stack.network("aws:ec2/internetGateway:InternetGateway")
    (rt,) = _route_tables(stack, "public")
    routes = [(r.inputs["destinationCidrBlock"], r.inputs.get("gatewayId")) for r in _routes_of(stack, rt)]
    assert routes == [(ANYWHERE, igw.state["id"])], f"{rt.name}: routes {routes}"
    assert not rt.inputs.get("routes"), f"{rt.name}: inline routes would fight the aws.ec2.Route resources"
    assert _associated_subnets(stack, rt) == {s.state["id"] for s in _subnets(stack, "public")}, rt.name


def test_nat_gateways_one_shared_in_dev_one_per_az_otherwise(stack: Stack) -> None:
    nats = sorted(stack.network("aws:ec2/natGateway:NatGateway"), key=lambda r: r.name)
    eips = stack.network("aws:ec2/eip:Eip")
    assert len(nats) == stack.expected.nat_gateways, f"{stack.env}: {len(nats)} NAT gateways"
    assert len(eips) == len(nats), f"{stack.env}: {len(eips)} EIPs for {len(nats)} NAT gateways"
    assert sorted(n.inputs["allocationId"] for n in nats) == sorted(e.state["id"] for e in eips), "each NAT has its own EIP"
    assert all(e.inputs.get("domain") == "vpc" for e in eips)
    public_ids = [s.state["id"] for s in _subnets(stack, "public")]
    igw = stack.network("aws:ec2/internetGateway:InternetGateway")[0]
    for i, nat in enumerate(nats):
        assert nat.inputs["subnetId"] == public_ids[i], f"{nat.name} is not in public subnet {i}"
        assert nat.inputs.get("connectivityType", "public") == "public", nat.name
        assert any(d.endswith(f"::{igw.name}") for d in nat.depends_on), f"{nat.name} must wait for the internet gateway"
    assert stack.evaluation.outputs["natGatewayIds"] == [n.state["id"] for n in nats]


def test_private_route_tables_route_through_the_nat_of_their_az(stack: Stack) -> None:
    nats = sorted(stack.network("aws:ec2/natGateway:NatGateway"), key=lambda r: r.name)
    rts = _route_tables(stack, "private")
    private = _subnets(stack, "private")
    assert len(rts) == stack.expected.azs, f"{stack.env}: one private route table per AZ, found {len(rts)}"
    for i, rt in enumerate(rts):
        routes = _routes_of(stack, rt)
        assert len(routes) == 1 and routes[0].inputs["destinationCidrBlock"] == ANYWHERE, f"{rt.name}: {routes}"
        nat = stack.by_id(routes[0].inputs["natGatewayId"])
        expected_nat = nats[0] if stack.expected.nat_gateways == 1 else nats[i]
        assert nat.name == expected_nat.name, f"{rt.name} routes through {nat.name}, want {expected_nat.name}"
        assert "gatewayId" not in routes[0].inputs, f"{rt.name}: private subnets must not route to the IGW"
        assert _associated_subnets(stack, rt) == {private[i].state["id"]}, rt.name


def test_database_route_table_has_no_route_beyond_the_vpc(stack: Stack) -> None:
    rts = _route_tables(stack, "database")
    assert rts, f"{stack.env}: no database route table"
    db_ids = {s.state["id"] for s in _subnets(stack, "database")}
    associated: set[str] = set()
    for rt in rts:
        assert _routes_of(stack, rt) == [], f"{rt.name} ({stack.env}) has routes: the database tier must stay isolated"
        assert not rt.inputs.get("routes"), f"{rt.name} has inline routes"
        associated |= _associated_subnets(stack, rt)
    assert associated == db_ids, f"{stack.env}: database subnets associated {associated}, want {db_ids}"


def test_every_subnet_is_associated_with_a_route_table(stack: Stack) -> None:
    assocs = stack.evaluation.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    subnet_ids = [a.inputs["subnetId"] for a in assocs if a.component == NETWORK]
    assert sorted(subnet_ids) == sorted(s.state["id"] for s in stack.network("aws:ec2/subnet:Subnet"))


def test_default_security_group_is_managed_with_no_rules(stack: Stack) -> None:
    (vpc,) = stack.network("aws:ec2/vpc:Vpc")
    (sg,) = stack.evaluation.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg.inputs["vpcId"] == vpc.state["id"], sg.name
    assert not sg.inputs.get("ingress"), f"{sg.name} ({stack.env}) has ingress rules"
    assert not sg.inputs.get("egress"), f"{sg.name} ({stack.env}) has egress rules"


# --- flow logs ---------------------------------------------------------------------------------------------


def test_flow_log_captures_all_traffic_to_an_encrypted_log_group(stack: Stack) -> None:
    (vpc,) = stack.network("aws:ec2/vpc:Vpc")
    (flow_log,) = stack.evaluation.of_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["vpcId"] == vpc.state["id"], flow_log.name
    assert flow_log.inputs["trafficType"] == "ALL", f"{flow_log.name}: traffic type {flow_log.inputs['trafficType']}"
    assert flow_log.inputs.get("logDestinationType", "cloud-watch-logs") == "cloud-watch-logs"
    group = stack.by_arn(flow_log.inputs["logDestination"])
    assert group.type == "aws:cloudwatch/logGroup:LogGroup", f"{flow_log.name} does not deliver to a log group"
    logs_key = stack.evaluation.named("keys-logs")
    assert group.inputs["kmsKeyId"] == logs_key.state["arn"], f"{group.name} is not encrypted with the logs CMK"
    assert group.inputs["retentionInDays"] == stack.config.observability.log_retention_days, group.name
    if stack.env == "prod":
        assert group.inputs["retentionInDays"] >= 365, f"{group.name}: PCI DSS 10.5.1 needs a year of logs"
    assert stack.evaluation.outputs["flowLogGroupName"] == group.inputs["name"]
    (role_policy,) = stack.network("aws:iam/rolePolicy:RolePolicy")
    assert any(dep.endswith(f"::{role_policy.name}") for dep in flow_log.depends_on), "flow log must wait for its permissions"


def test_flow_log_role_is_assumable_by_flow_logs_only_and_writes_one_group(stack: Stack) -> None:
    (flow_log,) = stack.evaluation.of_type("aws:ec2/flowLog:FlowLog")
    role = stack.by_arn(flow_log.inputs["iamRoleArn"])
    assert role.inputs["name"] == f"scalepay-flow-logs-{stack.env}"
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "vpc-flow-logs.amazonaws.com"}], role.name
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    (policy,) = [p for p in stack.network("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.state["id"]]
    log_group_arn = flow_log.inputs["logDestination"]
    for statement in json.loads(policy.inputs["policy"])["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a.startswith("logs:") and "*" not in a for a in actions), f"{policy.name}: {actions}"
        assert statement["Resource"] == [log_group_arn, f"{log_group_arn}:*"], f"{policy.name}: {statement['Resource']}"


def test_flow_log_policy_documents() -> None:
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:/aws/vpc/scalepay-flow-logs-dev"
    (statement,) = flow_logs_role_policy(arn)["Statement"]
    assert statement == {
        "Sid": "WriteFlowLogRecords",
        "Effect": "Allow",
        "Action": list(FLOW_LOG_ACTIONS),
        "Resource": [arn, f"{arn}:*"],
    }
    assert "logs:CreateLogGroup" not in FLOW_LOG_ACTIONS, "the log group is ours; the service must not create others"
    (trust,) = flow_logs_trust_policy(ACCOUNT_ID, "eu-west-1", "aws")["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:vpc-flow-log/*"}


# --- VPC endpoints ----------------------------------------------------------------------------------------------


def _endpoints(stack: Stack, kind: str) -> dict[str, Registration]:
    endpoints = stack.network("aws:ec2/vpcEndpoint:VpcEndpoint")
    return {e.inputs["serviceName"].split(".", 3)[3]: e for e in endpoints if e.inputs["vpcEndpointType"] == kind}


def test_s3_gateway_endpoint_serves_private_and_database_route_tables(stack: Stack) -> None:
    gateways = _endpoints(stack, "Gateway")
    assert set(gateways) == {"s3"}, f"{stack.env}: gateway endpoints {sorted(gateways)}"
    s3 = gateways["s3"]
    assert s3.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    expected = {rt.state["id"] for tier in ("private", "database") for rt in _route_tables(stack, tier)}
    assert set(s3.inputs["routeTableIds"]) == expected, f"{s3.name}: route tables {s3.inputs['routeTableIds']}"


def test_interface_endpoints_only_where_enabled(stack: Stack) -> None:
    interfaces = _endpoints(stack, "Interface")
    if not stack.expected.interface_endpoints:
        assert interfaces == {}, f"{stack.env}: unexpected interface endpoints {sorted(interfaces)}"
        return
    assert set(interfaces) == INTERFACE_SERVICES, f"{stack.env}: interface endpoints {sorted(interfaces)}"
    private_ids = sorted(s.state["id"] for s in _subnets(stack, "private"))
    ingress = stack.evaluation.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    egress = stack.evaluation.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    for endpoint in interfaces.values():
        assert endpoint.inputs["privateDnsEnabled"] is True, f"{endpoint.name}: private DNS off"
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids, f"{endpoint.name} is not in the private subnets"
        (sg_id,) = endpoint.inputs["securityGroupIds"]
        sg = stack.by_id(sg_id)
        assert not sg.inputs.get("ingress") and not sg.inputs.get("egress"), f"{sg.name}: inline rules"
        rules = [
            (r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"], r.inputs.get("cidrIpv4"))
            for r in ingress
            if r.inputs["securityGroupId"] == sg_id
        ]
        assert rules == [("tcp", 443, 443, stack.expected.cidr)], f"{sg.name}: endpoints must accept 443 from the VPC only"
        assert not [r for r in egress if r.inputs["securityGroupId"] == sg_id], f"{sg.name} needs no egress"


# --- tags ---------------------------------------------------------------------------------------------------------


def _taggable(type_token: str) -> bool:
    module, name = type_token.split(":")[1].split("/")[0], type_token.split(":")[2]
    cls: Any = getattr(getattr(pulumi_aws, module), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_ec2_family_resource_in_the_stack_has_a_name_tag(stack: Stack) -> None:
    ec2_family = [r for r in stack.evaluation.custom() if r.type.split(":")[1].split("/")[0] in ("ec2", "vpc")]
    assert ec2_family
    for r in ec2_family:
        if _taggable(r.type):
            tags = r.inputs.get("tags") or {}
            assert tags.get("Name"), f"{r.name} ({r.type}, {stack.env}) has no Name tag"
            assert tags.get("Environment") == stack.env, f"{r.name}: Environment tag {tags.get('Environment')}"


def test_network_resources_carry_the_standard_tags(stack: Stack) -> None:
    for r in stack.evaluation.custom():
        if r.component == NETWORK and _taggable(r.type):
            tags = r.inputs.get("tags") or {}
            assert tags.get("Component") == "network" and tags.get("ManagedBy") == "pulumi", f"{r.name}: {tags}"
            assert {"Project", "CostCenter", "Compliance"} <= set(tags), f"{r.name}: {tags}"


def test_subnets_and_route_tables_carry_a_tier_tag(stack: Stack) -> None:
    for r in stack.network("aws:ec2/subnet:Subnet") + stack.network("aws:ec2/routeTable:RouteTable"):
        assert r.inputs["tags"].get("Tier") in TIERS, f"{r.name} has Tier tag {r.inputs['tags'].get('Tier')!r}"
