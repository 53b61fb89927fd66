"""aws:ec2 -- VPC, subnets, gateways, addresses, route tables and routes, security groups, flow logs, endpoints."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import (
    api_params,
    as_json,
    delete_call,
    described,
    drop_none,
    fields,
    first_or_gone,
    given,
    none_when,
    read_by,
    tag_dict,
    tag_list,
    tag_spec,
)

# --- aws:ec2/vpc:Vpc ---------------------------------------------------------------------------------


def _vpc(aws: Aws, vpc_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeVpcs (+ its default group, main route table, default ACL, DNS attributes)."""
    ec2 = aws.client("ec2")
    found = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    main_rt = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]
    default_acl = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"][0]
    dns_support = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    dns_hostnames = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    return {
        "arn": aws.arn("ec2", f"vpc/{vpc_id}"),
        "cidrBlock": found["CidrBlock"],
        **fields(found, "InstanceTenancy", "OwnerId", "DhcpOptionsId"),
        "defaultSecurityGroupId": default_sg["GroupId"],
        "mainRouteTableId": main_rt["RouteTableId"],
        "defaultRouteTableId": main_rt["RouteTableId"],
        "defaultNetworkAclId": default_acl["NetworkAclId"],
        "enableDnsSupport": dns_support,
        "enableDnsHostnames": dns_hostnames,
        "tags": tag_dict(found.get("Tags")) or inputs.get("tags"),
    }


def create_vpc(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/vpc:Vpc -> CreateVpc + ModifyVpcAttribute, read back with DescribeVpcs and friends."""
    ec2 = aws.client("ec2")
    created = ec2.create_vpc(
        **drop_none(
            {
                "CidrBlock": req.get("cidrBlock"),
                "InstanceTenancy": req.get("instanceTenancy"),
                "TagSpecifications": tag_spec("vpc", req.get("tags")),
            }
        )
    )["Vpc"]
    vpc_id = created["VpcId"]
    # One attribute per call: the API refuses both in one request.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": bool(req.get("enableDnsSupport", True))})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": bool(req.get("enableDnsHostnames", False))})
    return described(aws, req, vpc_id, _vpc)


read_vpc = read_by(_vpc, "InvalidVpcID.NotFound")
# Its default security group, main route table and default ACL go with it.
delete_vpc = delete_call("ec2", "delete_vpc", "VpcId", "InvalidVpcID.NotFound")


# --- aws:ec2/subnet:Subnet ---------------------------------------------------------------------------


def _subnet(aws: Aws, subnet_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeSubnets."""
    found = aws.client("ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    return {
        "arn": found.get("SubnetArn") or aws.arn("ec2", f"subnet/{subnet_id}"),
        "cidrBlock": found["CidrBlock"],
        "availabilityZone": found["AvailabilityZone"],
        **fields(found, "AvailabilityZoneId", "MapPublicIpOnLaunch", "OwnerId"),
        "vpcId": found["VpcId"],
    }


def create_subnet(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/subnet:Subnet -> CreateSubnet (+ ModifySubnetAttribute), read back with DescribeSubnets."""
    ec2 = aws.client("ec2")
    created = ec2.create_subnet(
        **drop_none(
            {
                **api_params(req.inputs, "vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId"),
                "TagSpecifications": tag_spec("subnet", req.get("tags")),
            }
        )
    )["Subnet"]
    subnet_id = created["SubnetId"]
    if req.get("mapPublicIpOnLaunch"):
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    return described(aws, req, subnet_id, _subnet)


read_subnet = read_by(_subnet, "InvalidSubnetID.NotFound")
delete_subnet = delete_call("ec2", "delete_subnet", "SubnetId", "InvalidSubnetID.NotFound")


# --- aws:ec2/internetGateway:InternetGateway ---------------------------------------------------------


def _internet_gateway(aws: Aws, igw_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeInternetGateways."""
    found = aws.client("ec2").describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    attachments = found.get("Attachments") or []
    return {
        "arn": aws.arn("ec2", f"internet-gateway/{igw_id}"),
        "ownerId": found.get("OwnerId"),
        "vpcId": attachments[0]["VpcId"] if attachments else None,
    }


def create_internet_gateway(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/internetGateway:InternetGateway -> CreateInternetGateway + AttachInternetGateway."""
    ec2 = aws.client("ec2")
    igw_id = ec2.create_internet_gateway(
        **drop_none({"TagSpecifications": tag_spec("internet-gateway", req.get("tags")) or None})
    )["InternetGateway"]["InternetGatewayId"]
    if req.get("vpcId"):
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=req.get("vpcId"))
    return described(aws, req, igw_id, _internet_gateway)


read_internet_gateway = read_by(_internet_gateway, "InvalidInternetGatewayID.NotFound")


@none_when("InvalidInternetGatewayID.NotFound")
def delete_internet_gateway(aws: Aws, igw_id: str, _recorded: Mapping[str, Any]) -> None:
    """DetachInternetGateway from its VPC, then DeleteInternetGateway (AWS refuses to delete an attached one)."""
    ec2 = aws.client("ec2")
    found = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    for attachment in found.get("Attachments") or []:
        ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=attachment["VpcId"])
    ec2.delete_internet_gateway(InternetGatewayId=igw_id)


# --- aws:ec2/eip:Eip -----------------------------------------------------------------------------------


def _eip(aws: Aws, allocation_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeAddresses."""
    found = aws.client("ec2").describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    return {
        "arn": aws.arn("ec2", f"elastic-ip/{allocation_id}"),
        "allocationId": allocation_id,
        **fields(found, "PublicIp", "Domain", "AssociationId", "NetworkBorderGroup", "PublicIpv4Pool"),
    }


def create_eip(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/eip:Eip -> AllocateAddress (domain vpc), read back with DescribeAddresses."""
    ec2 = aws.client("ec2")
    allocation_id = ec2.allocate_address(
        **drop_none({"Domain": req.get("domain", "vpc"), "TagSpecifications": tag_spec("elastic-ip", req.get("tags")) or None})
    )["AllocationId"]
    return described(aws, req, allocation_id, _eip)


read_eip = read_by(_eip, "InvalidAllocationID.NotFound")


@none_when("InvalidAllocationID.NotFound")
def delete_eip(aws: Aws, allocation_id: str, _recorded: Mapping[str, Any]) -> None:
    """DisassociateAddress if it is still associated (as the provider does), then ReleaseAddress."""
    ec2 = aws.client("ec2")
    found = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    if found.get("AssociationId"):
        _disassociate_address(aws, found["AssociationId"])
    ec2.release_address(AllocationId=allocation_id)


@none_when("InvalidAssociationID.NotFound")
def _disassociate_address(aws: Aws, association_id: str) -> None:
    aws.client("ec2").disassociate_address(AssociationId=association_id)


# --- aws:ec2/natGateway:NatGateway ---------------------------------------------------------------------


def _describe_nat_gateway(aws: Aws, nat_id: str) -> dict[str, Any]:
    found = aws.client("ec2").describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    # AWS keeps a deleted NAT gateway listed (state "deleted") for about an hour; the provider treats it as gone.
    gateway: dict[str, Any] = first_or_gone((g for g in found if g.get("State") not in ("deleting", "deleted")), nat_id)
    return gateway


def _nat_gateway(aws: Aws, nat_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeNatGateways; a gateway in state deleting/deleted is gone."""
    found = _describe_nat_gateway(aws, nat_id)
    address = (found.get("NatGatewayAddresses") or [{}])[0]
    return {
        **fields(found, "SubnetId", "VpcId", "ConnectivityType"),
        "allocationId": address.get("AllocationId"),
        "networkInterfaceId": address.get("NetworkInterfaceId"),
        "privateIp": address.get("PrivateIp"),
        "publicIp": address.get("PublicIp"),
    }


def create_nat_gateway(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/natGateway:NatGateway -> CreateNatGateway, read back with DescribeNatGateways."""
    ec2 = aws.client("ec2")
    nat_id = ec2.create_nat_gateway(
        **drop_none(
            {
                **api_params(req.inputs, "subnetId", "allocationId", "connectivityType"),
                "TagSpecifications": tag_spec("natgateway", req.get("tags")) or None,
            }
        )
    )["NatGateway"]["NatGatewayId"]
    return described(aws, req, nat_id, _nat_gateway)


read_nat_gateway = read_by(_nat_gateway, "NatGatewayNotFound")


@none_when("NatGatewayNotFound")
def delete_nat_gateway(aws: Aws, nat_id: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteNatGateway (only when it still exists: deleting a deleted gateway is a no-op)."""
    found = _describe_nat_gateway(aws, nat_id)
    aws.client("ec2").delete_nat_gateway(NatGatewayId=nat_id)
    moto_fixes.release_nat_gateway_interface(aws, found)


# --- aws:ec2/routeTable:RouteTable and aws:ec2/route:Route -------------------------------------------


def _route_params(route: Mapping[str, Any]) -> dict[str, Any]:
    """camelCase route target inputs -> CreateRoute parameters."""
    return drop_none(
        {
            "DestinationCidrBlock": route.get("destinationCidrBlock") or route.get("cidrBlock"),
            "DestinationIpv6CidrBlock": route.get("destinationIpv6CidrBlock") or route.get("ipv6CidrBlock"),
            **api_params(
                route,
                "destinationPrefixListId",
                "gatewayId",
                "natGatewayId",
                "vpcEndpointId",
                "transitGatewayId",
                "networkInterfaceId",
                "vpcPeeringConnectionId",
            ),
            "EgressOnlyInternetGatewayId": route.get("egressOnlyGatewayId"),
        }
    )


_DESTINATIONS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId")
_NO_ROUTE_TABLE = "InvalidRouteTableID.NotFound"


def _routes_state(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-local routes of a route table, as the provider's ``routes`` output."""
    return [
        drop_none(
            {
                "cidrBlock": r.get("DestinationCidrBlock"),
                "gatewayId": r.get("GatewayId") if r.get("GatewayId") != "local" else None,
                "natGatewayId": r.get("NatGatewayId"),
                "vpcEndpointId": r.get("VpcEndpointId"),
            }
        )
        for r in routes
        if r.get("GatewayId") != "local"
    ]


def _route_table(aws: Aws, rtb_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeRouteTables."""
    found = aws.client("ec2").describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]
    return {
        "arn": aws.arn("ec2", f"route-table/{rtb_id}"),
        **fields(found, "OwnerId", "VpcId"),
        "routes": _routes_state(found.get("Routes", [])),
        "propagatingVgws": [],
    }


def create_route_table(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/routeTable:RouteTable -> CreateRouteTable (+ CreateRoute per inline route)."""
    ec2 = aws.client("ec2")
    rtb_id = ec2.create_route_table(
        **drop_none({"VpcId": req.get("vpcId"), "TagSpecifications": tag_spec("route-table", req.get("tags")) or None})
    )["RouteTable"]["RouteTableId"]
    for route in req.get("routes", []):
        ec2.create_route(RouteTableId=rtb_id, **_route_params(route))
    return described(aws, req, rtb_id, _route_table)


read_route_table = read_by(_route_table, _NO_ROUTE_TABLE)
# Its inline routes go with it; associations are resources of their own, deleted first.
delete_route_table = delete_call("ec2", "delete_route_table", "RouteTableId", _NO_ROUTE_TABLE)


def _route(aws: Aws, _route_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeRouteTables of the route's table; gone when no route has its destination."""
    destination = _route_destination(inputs)
    table = aws.client("ec2").describe_route_tables(RouteTableIds=[inputs.get("routeTableId")])["RouteTables"][0]
    found = first_or_gone((r for r in table["Routes"] if destination in (r.get(key) for key in _DESTINATIONS)), destination)
    return fields(found, "Origin", "State", "GatewayId", "NatGatewayId")


def _route_destination(inputs: Mapping[str, Any]) -> str:
    params = _route_params(inputs)
    return str(next((params[key] for key in _DESTINATIONS if params.get(key)), ""))


def create_route(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/route:Route -> CreateRoute, read back from DescribeRouteTables."""
    rtb_id = req.get("routeTableId")
    aws.client("ec2").create_route(RouteTableId=rtb_id, **_route_params(req.inputs))
    # The provider's id is "r-<route table id><hash of destination>".
    return described(aws, req, f"r-{rtb_id}{zlib.crc32(_route_destination(req.inputs).encode())}", _route)


read_route = read_by(_route, _NO_ROUTE_TABLE)


@none_when(_NO_ROUTE_TABLE, "InvalidRoute.NotFound")
def delete_route(aws: Aws, route_id: str, recorded: Mapping[str, Any]) -> None:
    """DeleteRoute by the route's table and destination."""
    _route(aws, route_id, recorded)  # GoneError -> already deleted
    destination = {k: v for k, v in _route_params(recorded).items() if k in _DESTINATIONS}
    aws.client("ec2").delete_route(RouteTableId=recorded.get("routeTableId"), **destination)


# --- aws:ec2/routeTableAssociation:RouteTableAssociation ---------------------------------------------


def _route_table_association(aws: Aws, association_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeRouteTables filtered by the association id."""
    tables = aws.client("ec2").describe_route_tables(
        Filters=[{"Name": "association.route-table-association-id", "Values": [association_id]}]
    )["RouteTables"]
    found = first_or_gone(
        (a for t in tables for a in t["Associations"] if a["RouteTableAssociationId"] == association_id), association_id
    )
    return {"routeTableId": found["RouteTableId"], "subnetId": found.get("SubnetId")}


def create_route_table_association(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/routeTableAssociation:RouteTableAssociation -> AssociateRouteTable."""
    association_id = aws.client("ec2").associate_route_table(
        **drop_none({"RouteTableId": req.get("routeTableId"), "SubnetId": req.get("subnetId"), "GatewayId": req.get("gatewayId")})
    )["AssociationId"]
    return described(aws, req, association_id, _route_table_association)


read_route_table_association = read_by(_route_table_association)
delete_route_table_association = delete_call("ec2", "disassociate_route_table", "AssociationId", "InvalidAssociationID.NotFound")


# --- aws:ec2/securityGroup:SecurityGroup and aws:ec2/defaultSecurityGroup:DefaultSecurityGroup -------


def _ip_permissions(rules: list[Mapping[str, Any]], group_id: str) -> list[dict[str, Any]]:
    """Inline ``ingress``/``egress`` blocks of a security group -> IpPermissions."""
    permissions = []
    for rule in rules:
        pairs = [{"GroupId": g} for g in rule.get("securityGroups") or []]
        if rule.get("self"):
            pairs.append({"GroupId": group_id})
        desc = rule.get("description")
        permissions.append(
            drop_none(
                {
                    "IpProtocol": str(rule.get("protocol")),
                    "FromPort": rule.get("fromPort"),
                    "ToPort": rule.get("toPort"),
                    "IpRanges": [drop_none({"CidrIp": c, "Description": desc}) for c in rule.get("cidrBlocks") or []],
                    "Ipv6Ranges": [drop_none({"CidrIpv6": c, "Description": desc}) for c in rule.get("ipv6CidrBlocks") or []],
                    "PrefixListIds": [
                        drop_none({"PrefixListId": p, "Description": desc}) for p in rule.get("prefixListIds") or []
                    ],
                    "UserIdGroupPairs": [drop_none({**p, "Description": desc}) for p in pairs],
                }
            )
        )
    return permissions


def _rules_state(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """IpPermissions read back -> the provider's inline rule blocks."""
    return [
        {
            "protocol": p.get("IpProtocol"),
            "fromPort": p.get("FromPort", 0),
            "toPort": p.get("ToPort", 0),
            "cidrBlocks": [r["CidrIp"] for r in p.get("IpRanges", [])],
            "ipv6CidrBlocks": [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])],
            "prefixListIds": [r["PrefixListId"] for r in p.get("PrefixListIds", [])],
            "securityGroups": [r["GroupId"] for r in p.get("UserIdGroupPairs", [])],
            "self": False,
            "description": next((r.get("Description") for r in p.get("IpRanges", []) if r.get("Description")), ""),
        }
        for p in permissions
    ]


def _revoke_all(aws: Aws, group: Mapping[str, Any]) -> None:
    """Revoke every rule of a group, as described by DescribeSecurityGroups."""
    ec2 = aws.client("ec2")
    if group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])


def _replace_rules(aws: Aws, group_id: str, ingress: list[Mapping[str, Any]], egress: list[Mapping[str, Any]]) -> None:
    """Make the group's rules exactly the inline ones (revoke what AWS put there)."""
    ec2 = aws.client("ec2")
    _revoke_all(aws, _describe_group(aws, group_id))
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=_ip_permissions(ingress, group_id))
    if egress:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=_ip_permissions(egress, group_id))


def _group_state(aws: Aws, found: Mapping[str, Any], with_vpc: bool) -> dict[str, Any]:
    """A group read back with DescribeSecurityGroups -> its computed attributes."""
    computed = {
        "arn": aws.arn("ec2", f"security-group/{found['GroupId']}"),
        "name": found["GroupName"],
        **fields(found, "Description", "OwnerId"),
        "ingress": _rules_state(found.get("IpPermissions", [])),
        "egress": _rules_state(found.get("IpPermissionsEgress", [])),
    }
    if with_vpc:
        computed["vpcId"] = found.get("VpcId")
    return computed


def _describe_group(aws: Aws, group_id: str) -> dict[str, Any]:
    found: dict[str, Any] = aws.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return found


def _security_group(aws: Aws, group_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeSecurityGroups."""
    return _group_state(aws, _describe_group(aws, group_id), with_vpc=True)


def _default_security_group(aws: Aws, group_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeSecurityGroups (the group exists as long as its VPC)."""
    return _group_state(aws, _describe_group(aws, group_id), with_vpc=False)


def create_security_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/securityGroup:SecurityGroup -> CreateSecurityGroup, then exactly the inline rules.

    Like the provider, the ALLOW ALL egress rule AWS adds to a new group is removed unless declared.
    """
    ec2 = aws.client("ec2")
    name = req.physical_name("name", 255)
    group_id = ec2.create_security_group(
        **drop_none(
            {
                "GroupName": name,
                "Description": req.get("description", "Managed by Pulumi"),
                "VpcId": req.get("vpcId"),
                "TagSpecifications": tag_spec("security-group", req.get("tags")) or None,
            }
        )
    )["GroupId"]
    _replace_rules(aws, group_id, req.get("ingress", []), req.get("egress", []))
    return described(aws, req, group_id, _security_group)


read_security_group = read_by(_security_group, "InvalidGroup.NotFound")


@none_when("InvalidGroup.NotFound")
def delete_security_group(aws: Aws, group_id: str, recorded: Mapping[str, Any]) -> None:
    """DeleteSecurityGroup; with ``revokeRulesOnDelete`` its rules are revoked first, as the provider does."""
    if given(recorded, "revokeRulesOnDelete", False):
        _revoke_all(aws, _describe_group(aws, group_id))
    aws.client("ec2").delete_security_group(GroupId=group_id)


def create_default_security_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/defaultSecurityGroup:DefaultSecurityGroup -> adopt the VPC's default group and set its rules.

    The provider does the same: it never creates the group, it finds it and replaces its rules
    (an empty ingress/egress leaves it denying everything, CIS 5.4).
    """
    ec2 = aws.client("ec2")
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [req.get("vpcId")]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    group_id = group["GroupId"]
    if req.get("tags"):
        ec2.create_tags(Resources=[group_id], Tags=tag_list(req.get("tags")))
    _replace_rules(aws, group_id, req.get("ingress", []), req.get("egress", []))
    return described(aws, req, group_id, _default_security_group)


read_default_security_group = read_by(_default_security_group, "InvalidGroup.NotFound")


def delete_default_security_group(_aws: Aws, _group_id: str, _recorded: Mapping[str, Any]) -> None:
    """Nothing to call: AWS cannot delete a VPC's default group; it goes with the VPC.

    The provider does the same (it only forgets the group, leaving its rules as they are).
    """


# --- aws:ec2/flowLog:FlowLog ---------------------------------------------------------------------------


def _flow_log(aws: Aws, flow_log_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeFlowLogs."""
    found = first_or_gone(aws.client("ec2").describe_flow_logs(FlowLogIds=[flow_log_id])["FlowLogs"], flow_log_id)
    return {
        "arn": aws.arn("ec2", f"vpc-flow-log/{flow_log_id}"),
        "logDestinationType": found.get("LogDestinationType"),
        "logDestination": moto_fixes.flow_log_destination_read(found, inputs),
        **fields(found, "TrafficType", "LogFormat", "MaxAggregationInterval"),
    }


def create_flow_log(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/flowLog:FlowLog -> CreateFlowLogs, read back with DescribeFlowLogs."""
    resource_type, resource_id = next(
        (kind, req.get(key))
        for key, kind in (("vpcId", "VPC"), ("subnetId", "Subnet"), ("eniId", "NetworkInterface"))
        if req.get(key)
    )
    destination_type = req.get("logDestinationType", "cloud-watch-logs")
    params: dict[str, Any] = {
        "ResourceIds": [resource_id],
        "ResourceType": resource_type,
        "TrafficType": req.get("trafficType", "ALL"),
        "LogDestinationType": destination_type,
        "DeliverLogsPermissionArn": req.get("iamRoleArn"),
        "LogFormat": req.get("logFormat"),
        "MaxAggregationInterval": req.get("maxAggregationInterval"),
        "TagSpecifications": tag_spec("vpc-flow-log", req.get("tags")) or None,
        **moto_fixes.flow_log_destination(destination_type, req.get("logDestination")),
    }
    response = aws.client("ec2").create_flow_logs(**drop_none(params))
    if response.get("Unsuccessful"):
        raise RuntimeError(f"CreateFlowLogs unsuccessful: {response['Unsuccessful']}")
    return described(aws, req, response["FlowLogIds"][0], _flow_log)


read_flow_log = read_by(_flow_log)


@none_when("InvalidFlowLogId.NotFound")
def delete_flow_log(aws: Aws, flow_log_id: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteFlowLogs."""
    response = aws.client("ec2").delete_flow_logs(FlowLogIds=[flow_log_id])
    failed = [u for u in response.get("Unsuccessful", []) if "NotFound" not in str(u.get("Error", {}).get("Code", ""))]
    if failed:
        raise RuntimeError(f"DeleteFlowLogs unsuccessful: {failed}")


# --- aws:ec2/vpcEndpoint:VpcEndpoint ---------------------------------------------------------------------


def _vpc_endpoint(aws: Aws, endpoint_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeVpcEndpoints; an endpoint in state deleting/deleted is gone."""
    endpoints = aws.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    # AWS lists a deleted endpoint for a while (state "deleted"); the provider treats it as gone.
    found = first_or_gone((e for e in endpoints if str(e.get("State", "")).lower() not in ("deleting", "deleted")), endpoint_id)
    return {
        "arn": aws.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
        **fields(found, "State", "VpcEndpointType", "OwnerId"),
        "routeTableIds": found.get("RouteTableIds") or [],
        "subnetIds": found.get("SubnetIds") or [],
        "networkInterfaceIds": found.get("NetworkInterfaceIds") or [],
        "securityGroupIds": [g["GroupId"] for g in found.get("Groups", [])] or inputs.get("securityGroupIds"),
        "privateDnsEnabled": found.get("PrivateDnsEnabled"),
        "dnsEntries": [{"dnsName": d.get("DnsName"), "hostedZoneId": d.get("HostedZoneId")} for d in found.get("DnsEntries", [])],
        "policy": found.get("PolicyDocument"),
        "requesterManaged": found.get("RequesterManaged", False),
    }


def create_vpc_endpoint(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/vpcEndpoint:VpcEndpoint -> CreateVpcEndpoint, read back with DescribeVpcEndpoints."""
    endpoint_type = req.get("vpcEndpointType", "Gateway")
    endpoint_id = aws.client("ec2").create_vpc_endpoint(
        **drop_none(
            {
                "VpcId": req.get("vpcId"),
                "ServiceName": req.get("serviceName"),
                "VpcEndpointType": endpoint_type,
                "RouteTableIds": req.get("routeTableIds") or None,
                "SubnetIds": req.get("subnetIds") or None,
                "SecurityGroupIds": req.get("securityGroupIds") or None,
                "PrivateDnsEnabled": req.get("privateDnsEnabled") if endpoint_type == "Interface" else None,
                "PolicyDocument": as_json(req.get("policy")) if req.get("policy") else None,
                "TagSpecifications": tag_spec("vpc-endpoint", req.get("tags")) or None,
            }
        )
    )["VpcEndpoint"]["VpcEndpointId"]
    return described(aws, req, endpoint_id, _vpc_endpoint)


read_vpc_endpoint = read_by(_vpc_endpoint, "InvalidVpcEndpointId.NotFound")


@none_when("InvalidVpcEndpointId.NotFound")
def delete_vpc_endpoint(aws: Aws, endpoint_id: str, recorded: Mapping[str, Any]) -> None:
    """DeleteVpcEndpoints (only while it exists: the API reports a deleted endpoint as Unsuccessful)."""
    _vpc_endpoint(aws, endpoint_id, recorded)
    response = aws.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    if response.get("Unsuccessful"):
        raise RuntimeError(f"DeleteVpcEndpoints unsuccessful: {response['Unsuccessful']}")


RESOURCES = (
    ResourceHandler("aws:ec2/vpc:Vpc", create_vpc, read_vpc, delete_vpc),
    ResourceHandler("aws:ec2/subnet:Subnet", create_subnet, read_subnet, delete_subnet),
    ResourceHandler(
        "aws:ec2/internetGateway:InternetGateway", create_internet_gateway, read_internet_gateway, delete_internet_gateway
    ),
    ResourceHandler("aws:ec2/eip:Eip", create_eip, read_eip, delete_eip),
    ResourceHandler("aws:ec2/natGateway:NatGateway", create_nat_gateway, read_nat_gateway, delete_nat_gateway),
    ResourceHandler("aws:ec2/routeTable:RouteTable", create_route_table, read_route_table, delete_route_table),
    ResourceHandler("aws:ec2/route:Route", create_route, read_route, delete_route),
    ResourceHandler(
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        create_route_table_association,
        read_route_table_association,
        delete_route_table_association,
    ),
    ResourceHandler("aws:ec2/securityGroup:SecurityGroup", create_security_group, read_security_group, delete_security_group),
    ResourceHandler(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        create_default_security_group,
        read_default_security_group,
        delete_default_security_group,
    ),
    ResourceHandler("aws:ec2/flowLog:FlowLog", create_flow_log, read_flow_log, delete_flow_log),
    ResourceHandler("aws:ec2/vpcEndpoint:VpcEndpoint", create_vpc_endpoint, read_vpc_endpoint, delete_vpc_endpoint),
)
