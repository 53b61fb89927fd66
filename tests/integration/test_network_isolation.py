"""Network isolation: which tiers reach what, and what the internet can reach."""

from __future__ import annotations

from tests.expectations import EXPECTED
from tests.integration.conftest import Deployed
from tests.integration.support import (
    ecs_services,
)


def test_database_subnets_have_no_route_out(deployed: Deployed) -> None:
    """A compromised database host has no path to the internet (PCI DSS 1.3)."""
    o, aws = deployed.outputs, deployed.aws
    tables = aws("ec2").describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": o["databaseSubnetIds"]}])[
        "RouteTables"
    ]
    assert tables
    for table in tables:
        for route in table["Routes"]:
            assert route.get("GatewayId", "local") == "local" or route.get("GatewayId", "").startswith("vpce-"), route
            assert "NatGatewayId" not in route, route


def test_private_subnets_leave_through_their_own_zones_nat(deployed: Deployed) -> None:
    """Service tasks reach payment processors through a NAT in their own zone: one zone's outage cuts no other zone's egress."""
    o, aws = deployed.outputs, deployed.aws
    ec2 = aws("ec2")
    subnet_zones = {
        s["SubnetId"]: s["AvailabilityZone"]
        for s in ec2.describe_subnets(SubnetIds=o["privateSubnetIds"] + o["publicSubnetIds"])["Subnets"]
    }
    nats = ec2.describe_nat_gateways(NatGatewayIds=o["natGatewayIds"])["NatGateways"]
    assert len(nats) == EXPECTED[deployed.env].nat_gateways
    # A NAT gateway's zone is its (public) subnet's zone.
    nat_zones = {n["NatGatewayId"]: subnet_zones[n["SubnetId"]] for n in nats if n["SubnetId"] in o["publicSubnetIds"]}
    assert set(nat_zones) == set(o["natGatewayIds"]), "every NAT gateway sits in one of the stack's public subnets"
    used = set()
    for subnet in o["privateSubnetIds"]:
        (table,) = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
        assert not [r for r in table["Routes"] if r.get("GatewayId", "").startswith("igw-")], subnet  # never straight out
        (default,) = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        nat = default.get("NatGatewayId")
        assert nat in nat_zones, (subnet, default)
        if not EXPECTED[deployed.env].single_nat_gateway:
            assert nat_zones[nat] == subnet_zones[subnet], (
                f"{subnet} in {subnet_zones[subnet]} leaves through {nat} in {nat_zones[nat]}"
            )
        used.add(nat)
    # Dev's one shared NAT serves every zone; elsewhere each zone's NAT serves its own zone, so all are in use.
    assert used == set(o["natGatewayIds"])


def test_public_subnets_route_to_internet_gateway(deployed: Deployed) -> None:
    """Customers reach the load balancer: public subnets route to the internet gateway."""
    o, aws = deployed.outputs, deployed.aws
    tables = aws("ec2").describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": o["publicSubnetIds"]}])[
        "RouteTables"
    ]
    defaults = [r for t in tables for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert defaults and all(r.get("GatewayId", "").startswith("igw-") for r in defaults)


def test_no_subnet_hands_out_public_ips(deployed: Deployed) -> None:
    """Nothing launched in the VPC gets a public IP by accident."""
    o, aws = deployed.outputs, deployed.aws
    subnets = aws("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["Subnets"]
    assert len(subnets) == 3 * EXPECTED[deployed.env].az_count
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)


def test_services_run_without_public_ips(deployed: Deployed) -> None:
    """Payment tasks run in private subnets without public addresses."""
    o, aws = deployed.outputs, deployed.aws
    for service in ecs_services(aws, o):
        network = service["networkConfiguration"]["awsvpcConfiguration"]
        assert network["assignPublicIp"] == "DISABLED", service["serviceName"]
        assert set(network["subnets"]) <= set(o["privateSubnetIds"]), service["serviceName"]
        assert network["securityGroups"] == [o["servicesSecurityGroupId"]]


def test_only_the_alb_listens_to_the_internet(deployed: Deployed) -> None:
    """No security group in the VPC admits the internet except the ALB on 80 and 443."""
    o, aws = deployed.outputs, deployed.aws
    groups = aws("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["SecurityGroups"]
    open_ports = set()
    for group in groups:
        for perm in group["IpPermissions"]:
            if any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])):
                open_ports.add((group["GroupId"], perm.get("FromPort"), perm.get("ToPort")))
    assert open_ports == {(o["albSecurityGroupId"], 80, 80), (o["albSecurityGroupId"], 443, 443)}


def test_default_security_group_is_closed(deployed: Deployed) -> None:
    """The VPC's default security group admits and emits nothing (CIS / PCI DSS 1.2)."""
    o, aws = deployed.outputs, deployed.aws
    groups = aws("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    assert groups[0]["IpPermissions"] == [] and groups[0]["IpPermissionsEgress"] == []


def test_vpc_flow_logs_capture_all_traffic(deployed: Deployed) -> None:
    """Network forensics are possible after an incident: all VPC traffic is logged."""
    o, aws = deployed.outputs, deployed.aws
    logs = aws("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [o["vpcId"]]}])["FlowLogs"]
    assert logs and logs[0]["TrafficType"] == "ALL"
    assert logs[0]["LogGroupName"] == o["flowLogGroupName"]


def test_services_reach_each_other_through_service_connect(deployed: Deployed) -> None:
    """api and payment call their peers by Service Connect alias in the environment's namespace, never via the public ALB."""
    o, aws = deployed.outputs, deployed.aws
    namespace_id = o["serviceConnectNamespaceArn"].rsplit("/", 1)[1]
    namespace = aws("servicediscovery").get_namespace(Id=namespace_id)["Namespace"]
    assert (namespace["Name"], namespace["Type"]) == (f"scalepay-mesh-{deployed.env}", "HTTP")
    definitions = {
        service: aws("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]
        for service, arn in o["taskDefinitionArns"].items()
    }
    env = {service: {e["name"]: e["value"] for e in c["environment"]} for service, c in definitions.items()}
    assert env["api"]["PAYMENT_URL"] == "http://payment:8080"
    assert env["api"]["NOTIFICATION_URL"] == env["payment"]["NOTIFICATION_URL"] == "http://notification:8080"
    for service, container in definitions.items():
        # The alias names the port mapping Service Connect publishes: named, with an HTTP application protocol.
        assert [(p["name"], p["appProtocol"], p["containerPort"]) for p in container["portMappings"]] == [("http", "http", 8080)]
        assert not any(o["albDnsName"] in value for value in env[service].values()), f"{service} calls through the ALB"
