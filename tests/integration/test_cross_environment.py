"""Cross-environment isolation and progressive scaling."""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.integration.support import (
    ClientsFor,
    Outputs,
    as_list,
    aurora_cluster,
    ecs_services,
    policy_statements,
    role_policies,
)


def test_environment_networks_do_not_overlap(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Environments can be peered later without renumbering: their VPC blocks are disjoint."""
    cidrs = []
    for env in ("dev", "staging", "prod"):
        vpc = clients_for(env)("ec2").describe_vpcs(VpcIds=[all_outputs[env]["vpcId"]])["Vpcs"][0]
        cidrs.append(ipaddress.ip_network(vpc["CidrBlock"]))
    assert [str(c) for c in cidrs] == ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"]
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])


def test_capacity_grows_from_dev_to_prod(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Task floors and database instances rise dev -> staging -> prod."""
    floors, instances = [], []
    for env in ("dev", "staging", "prod"):
        o, aws = all_outputs[env], clients_for(env)
        floors.append(min(s["desiredCount"] for s in ecs_services(aws, o)))
        instances.append(len(aurora_cluster(aws, o)["DBClusterMembers"]))
    assert floors[0] < floors[1] < floors[2]
    assert instances[0] < instances[1] < instances[2]


def _flatten(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _flatten(item)]
    if isinstance(value, list):
        return [v for item in value for v in _flatten(item)]
    return [str(value)]


def test_dev_cannot_reach_prod_even_in_one_account(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """What keeps dev from prod is the program itself (names, network, IAM scoping), not separate accounts.

    The integration run deploys the three environments into one shared account, so these checks carry
    the isolation alone; they also hold when each environment has its own account.
    """
    dev, prod = all_outputs["dev"], all_outputs["prod"]
    dev_aws, prod_aws = clients_for("dev"), clients_for("prod")
    # Names: nothing dev created is named like (or is) one of prod's resources.
    skip = {
        "accountId",
        "region",
        "environment",
        "environmentSuffix",
        "availabilityZones",
        "auroraPort",
        "redisPort",
        "auroraDatabaseName",
    }
    dev_values = {v for k, item in dev.items() if k not in skip for v in _flatten(item)} - {""}
    prod_values = {v for k, item in prod.items() if k not in skip for v in _flatten(item)} - {""}
    assert dev_values & prod_values == set()
    assert not [v for v in dev_values if "-prod" in v or "/prod" in v]
    # Network: no peering, no route from dev's subnets into prod's block, and prod's data stores accept
    # only prod's services security group.
    ec2 = dev_aws("ec2")
    assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []
    prod_block = ipaddress.ip_network(prod["vpcCidr"])
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [dev["vpcId"]]}])["RouteTables"]
    for table in tables:
        for route in table["Routes"]:
            destination = route.get("DestinationCidrBlock")
            if destination and destination != "0.0.0.0/0":
                assert not ipaddress.ip_network(destination).overlaps(prod_block), (table["RouteTableId"], destination)
    for group in (prod["databaseSecurityGroupId"], prod["cacheSecurityGroupId"]):
        rules = prod_aws("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        sources = {
            r.get("ReferencedGroupInfo", {}).get("GroupId") or r.get("CidrIpv4")
            for r in rules["SecurityGroupRules"]
            if not r["IsEgress"]
        }
        assert sources == {prod["servicesSecurityGroupId"]}, (group, sources)
    # IAM: dev's roles name no prod resource.
    for role in [dev["taskExecutionRoleArn"], *dev["taskRoleArns"].values()]:
        for statement in policy_statements(role_policies(dev_aws, role)):
            for resource in as_list(statement.get("Resource", [])):
                assert "prod" not in resource, (role, resource)
                assert prod["auroraClusterResourceId"] not in resource, (role, resource)
