"""Cross-environment isolation and progressive scaling.

``make integration`` deploys dev, staging and prod into one shared AWS account, so nothing but the program keeps
them apart: names, networks, security groups, IAM scoping and resource policies. These scenarios read those from
the deployed resources themselves; they hold as well when each environment has an account of its own.
"""

from __future__ import annotations

import ipaddress
import json
from itertools import permutations
from typing import Any

import pytest

from tests.integration.conftest import AwsClients, Deployed
from tests.integration.support import (
    DATA_PLANE_ACTION,
    RESOURCELESS_ACTIONS,
    ClientsFor,
    Outputs,
    as_list,
    aurora_cluster,
    ecs_services,
    named_resources,
    paginate,
    policy_statements,
    role_policies,
    stack_role_arns,
    trust_policy,
)

ANYWHERE = ipaddress.ip_network("0.0.0.0/0")

#: AWS managed policies a stack's role may carry: the ones AWS documents for enhanced monitoring and Config.
ALLOWED_MANAGED_POLICIES = {"service-role/AmazonRDSEnhancedMonitoringRole", "service-role/AWS_ConfigRole"}

Resources = dict[str, dict[str, set[str]]]


@pytest.fixture(scope="module")
def resources(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> Resources:
    """Per environment: the physical names of what it runs on, by kind, read back from the deployed resources."""
    return {env: named_resources(clients_for(env), o) for env, o in all_outputs.items()}


def _identifiers(o: Outputs, names: dict[str, set[str]]) -> set[str]:
    """Strings that only this environment's resource ARNs contain: its names and the ids AWS chose for it."""
    return {v for values in names.values() for v in values} | {o["auroraClusterResourceId"]}


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


def test_no_two_environments_share_a_named_resource(resources: Resources) -> None:
    """A dev deploy can never overwrite, read or delete a prod resource: no name (or key) is shared between environments."""
    for env, by_kind in resources.items():
        # Not vacuous: every environment reports each kind it always has.
        for kind in ("ECS cluster", "IAM role", "log group", "S3 bucket", "KMS alias", "KMS key", "secret", "Aurora cluster"):
            assert by_kind.get(kind), f"{env}: no {kind} found"
    for a, b in permutations(resources, 2):
        for kind, names in resources[a].items():
            shared = names & resources[b].get(kind, set())
            assert not shared, f"{a} and {b} share {kind}: {sorted(shared)}"


def test_no_network_path_between_environments(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """A compromised dev task has no route into prod's network: no peering, no transit gateway, no route to another VPC."""
    vpcs = {env: o["vpcId"] for env, o in all_outputs.items()}
    blocks = {env: ipaddress.ip_network(o["vpcCidr"]) for env, o in all_outputs.items()}
    assert len(set(vpcs.values())) == len(vpcs)
    for env, o in all_outputs.items():
        ec2 = clients_for(env)("ec2")
        peerings = [
            p
            for p in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
            if {p.get("RequesterVpcInfo", {}).get("VpcId"), p.get("AccepterVpcInfo", {}).get("VpcId")} & set(vpcs.values())
        ]
        assert peerings == [], peerings
        attachments = [
            a
            for a in ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
            if a.get("VpcId") in vpcs.values()
        ]
        assert attachments == [], attachments
        # What this VPC's routes may point at: the VPC itself, its own internet gateway, NATs and gateway endpoints.
        own_igws = {
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [o["vpcId"]]}])[
                "InternetGateways"
            ]
        }
        own_endpoints = {
            e["VpcEndpointId"]
            for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["VpcEndpoints"]
        }
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["RouteTables"]
        assert tables
        for table in tables:
            for route in table["Routes"]:
                where = (env, table["RouteTableId"], route)
                targets = {k: v for k, v in route.items() if k.endswith("Id") and k != "DestinationPrefixListId"}
                destination = route.get("DestinationCidrBlock")
                if destination is None:
                    # A prefix-list route: only the S3 gateway endpoint of this VPC adds one.
                    assert set(targets) == {"GatewayId"} and targets["GatewayId"] in own_endpoints, where
                    continue
                block = ipaddress.ip_network(destination)
                if block == ANYWHERE:
                    assert targets in ({"GatewayId": g} for g in own_igws) or (
                        set(targets) == {"NatGatewayId"} and targets["NatGatewayId"] in o["natGatewayIds"]
                    ), where
                    continue
                # Anything else is the VPC's own local route: never a block of another environment's VPC.
                assert targets == {"GatewayId": "local"} and block == blocks[env], where


def test_no_security_group_reaches_into_another_environment(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Firewall rules never name another environment: no rule references its security groups or its address block."""
    blocks = {env: ipaddress.ip_network(o["vpcCidr"]) for env, o in all_outputs.items()}
    for env, o in all_outputs.items():
        ec2 = clients_for(env)("ec2")
        groups = {
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["SecurityGroups"]
        }
        rules = paginate(
            ec2, "describe_security_group_rules", "SecurityGroupRules", Filters=[{"Name": "group-id", "Values": sorted(groups)}]
        )
        assert rules
        for rule in rules:
            where = (env, rule["GroupId"], rule["SecurityGroupRuleId"])
            assert "PrefixListId" not in rule and "CidrIpv6" not in rule, where
            referenced = rule.get("ReferencedGroupInfo")
            if referenced:
                assert referenced["GroupId"] in groups, where
                assert referenced.get("UserId", o["accountId"]) == o["accountId"], where
                continue
            block = ipaddress.ip_network(rule["CidrIpv4"])
            if block == ANYWHERE:
                continue  # the internet (ALB listeners, HTTPS egress): no environment in particular
            assert block.subnet_of(blocks[env]), where  # type: ignore[arg-type]
            for other, other_block in blocks.items():
                assert other == env or not block.overlaps(other_block), (*where, other)


def _managed_policy_documents(aws: AwsClients, role: str) -> list[dict[str, Any]]:
    """The documents of a role's customer-managed policies (AWS managed ones must be on the allow-list)."""
    iam = aws("iam")
    documents = []
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        if arn.split(":")[4] == "aws":
            assert arn.split(":policy/", 1)[1] in ALLOWED_MANAGED_POLICIES, (role, arn)
            continue
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
    return documents


def test_each_environments_roles_name_only_its_own_resources(
    deployed: Deployed, all_outputs: dict[str, Outputs], resources: Resources
) -> None:
    """A leaked dev credential opens nothing of prod's: every resource dev's roles may use is dev's, none by wildcard."""
    env, o, aws = deployed.env, deployed.outputs, deployed.aws
    identifiers = {e: _identifiers(all_outputs[e], names) for e, names in resources.items()}
    roles = stack_role_arns(aws, o)
    assert roles
    for role_arn in sorted(roles):
        role = role_arn.rsplit("/", 1)[1]
        # Only an AWS service assumes these roles: no account, role or user of another environment.
        for statement in as_list(trust_policy(aws, role_arn)["Statement"]):
            assert statement["Effect"] == "Allow" and set(statement["Principal"]) == {"Service"}, (role, statement)
        documents = role_policies(aws, role_arn) + _managed_policy_documents(aws, role)
        for statement in policy_statements(documents):
            if statement["Effect"] != "Allow":
                continue
            actions = as_list(statement["Action"])
            assert "NotResource" not in statement and "NotAction" not in statement, (role, statement)
            for resource in as_list(statement["Resource"]):
                where = (role, actions, resource)
                if resource == "*":
                    assert set(actions) <= RESOURCELESS_ACTIONS, where
                    if "cloudwatch:PutMetricData" in actions:
                        # No resource to scope: the namespace condition keeps each stack in its own metrics.
                        namespace = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
                        assert namespace.startswith(f"ScalePayments/{env}/"), (*where, namespace)
                    continue
                if any(DATA_PLANE_ACTION.match(a) for a in actions):
                    assert "*" not in resource, where
                owners = {e for e, ids in identifiers.items() if any(i in resource for i in ids)}
                assert owners == {env}, (*where, owners)


def test_no_environments_keys_or_secrets_grant_another_environments_roles(
    all_outputs: dict[str, Outputs], clients_for: ClientsFor
) -> None:
    """Prod's encryption keys and its database secret name no dev role: dev can never decrypt prod's data by policy."""
    principals: dict[str, set[str]] = {}
    for env, o in all_outputs.items():
        aws = clients_for(env)
        arns = stack_role_arns(aws, o)
        ids = {aws("iam").get_role(RoleName=a.rsplit("/", 1)[1])["Role"]["RoleId"] for a in arns}
        principals[env] = arns | ids
    for owner, other in permutations(all_outputs, 2):
        o, aws = all_outputs[owner], clients_for(owner)
        foreign = principals[other]
        documents = {
            name: aws("kms").get_key_policy(KeyId=o[name], PolicyName="default")["Policy"]
            for name in ("kmsDataKeyArn", "kmsLogsKeyArn", "kmsAlarmsKeyArn", "kmsAuditKeyArn")
        }
        secret = aws("secretsmanager").get_resource_policy(SecretId=o["auroraSecretArn"]).get("ResourcePolicy")
        if secret:
            documents["auroraSecretArn"] = secret
        # Each key policy's account statement delegates use of the key to IAM: what the other environment's roles
        # may do with these keys is their IAM policies' business (test_each_environments_roles_name_only_its_own_resources).
        for name, text in documents.items():
            for statement in as_list(json.loads(text)["Statement"]):
                if statement["Effect"] != "Allow":
                    continue
                assert statement.get("Principal") != "*" and "*" not in as_list(statement["Principal"].get("AWS", [])), (
                    owner,
                    name,
                )
                named = {p for values in statement["Principal"].values() for p in as_list(values)}
                named |= {str(v) for pairs in statement.get("Condition", {}).values() for v in pairs.values()}
                assert not {p for p in named if any(f in p for f in foreign)}, (owner, name, other, statement)
        for name in ("kmsDataKeyArn", "kmsLogsKeyArn", "kmsAlarmsKeyArn", "kmsAuditKeyArn"):
            grants = paginate(aws("kms"), "list_grants", "Grants", KeyId=o[name])
            assert not [g for g in grants if g.get("GranteePrincipal") in foreign or g.get("RetiringPrincipal") in foreign], (
                owner,
                name,
                other,
            )
