"""EC2 / VPC: VPC, subnets, gateways, routes, security groups and their rules, flow logs, endpoints."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_dict, tag_list


def _tag_spec(resource_type: str, req: Request) -> list[dict[str, Any]]:
    """TagSpecifications for a Create* call, so the resource is tagged atomically as the provider does."""
    tags = req.get("tags") or {}
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}] if tags else []


def vpc(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/vpc:Vpc -> CreateVpc + ModifyVpcAttribute, read back with DescribeVpcs and friends."""
    ec2 = aws.client("ec2")
    created = ec2.create_vpc(
        **drop_none(
            {
                "CidrBlock": req.get("cidrBlock"),
                "InstanceTenancy": req.get("instanceTenancy"),
                "TagSpecifications": _tag_spec("vpc", req),
            }
        )
    )["Vpc"]
    vpc_id = created["VpcId"]
    # One attribute per call: the API refuses both in one request.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": bool(req.get("enableDnsSupport", True))})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": bool(req.get("enableDnsHostnames", False))})
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
    return vpc_id, state(
        req,
        arn=aws.arn("ec2", f"vpc/{vpc_id}"),
        cidrBlock=found["CidrBlock"],
        instanceTenancy=found.get("InstanceTenancy"),
        ownerId=found.get("OwnerId"),
        dhcpOptionsId=found.get("DhcpOptionsId"),
        defaultSecurityGroupId=default_sg["GroupId"],
        mainRouteTableId=main_rt["RouteTableId"],
        defaultRouteTableId=main_rt["RouteTableId"],
        defaultNetworkAclId=default_acl["NetworkAclId"],
        enableDnsSupport=dns_support,
        enableDnsHostnames=dns_hostnames,
        tags=tag_dict(found.get("Tags")) or req.get("tags"),
    )


def subnet(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/subnet:Subnet -> CreateSubnet (+ ModifySubnetAttribute), read back with DescribeSubnets."""
    ec2 = aws.client("ec2")
    created = ec2.create_subnet(
        **drop_none(
            {
                "VpcId": req.get("vpcId"),
                "CidrBlock": req.get("cidrBlock"),
                "AvailabilityZone": req.get("availabilityZone"),
                "AvailabilityZoneId": req.get("availabilityZoneId"),
                "TagSpecifications": _tag_spec("subnet", req),
            }
        )
    )["Subnet"]
    subnet_id = created["SubnetId"]
    if req.get("mapPublicIpOnLaunch"):
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    found = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    return subnet_id, state(
        req,
        arn=found.get("SubnetArn") or aws.arn("ec2", f"subnet/{subnet_id}"),
        cidrBlock=found["CidrBlock"],
        availabilityZone=found["AvailabilityZone"],
        availabilityZoneId=found.get("AvailabilityZoneId"),
        mapPublicIpOnLaunch=found.get("MapPublicIpOnLaunch"),
        ownerId=found.get("OwnerId"),
        vpcId=found["VpcId"],
    )


def internet_gateway(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/internetGateway:InternetGateway -> CreateInternetGateway + AttachInternetGateway."""
    ec2 = aws.client("ec2")
    igw_id = ec2.create_internet_gateway(**drop_none({"TagSpecifications": _tag_spec("internet-gateway", req) or None}))[
        "InternetGateway"
    ]["InternetGatewayId"]
    if req.get("vpcId"):
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=req.get("vpcId"))
    found = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    attachments = found.get("Attachments") or []
    return igw_id, state(
        req,
        arn=aws.arn("ec2", f"internet-gateway/{igw_id}"),
        ownerId=found.get("OwnerId"),
        vpcId=attachments[0]["VpcId"] if attachments else None,
    )


def eip(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/eip:Eip -> AllocateAddress (domain vpc), read back with DescribeAddresses."""
    ec2 = aws.client("ec2")
    allocation_id = ec2.allocate_address(
        **drop_none({"Domain": req.get("domain", "vpc"), "TagSpecifications": _tag_spec("elastic-ip", req) or None})
    )["AllocationId"]
    found = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
    return allocation_id, state(
        req,
        arn=aws.arn("ec2", f"elastic-ip/{allocation_id}"),
        allocationId=allocation_id,
        publicIp=found.get("PublicIp"),
        domain=found.get("Domain"),
        associationId=found.get("AssociationId"),
        networkBorderGroup=found.get("NetworkBorderGroup"),
        publicIpv4Pool=found.get("PublicIpv4Pool"),
    )


def nat_gateway(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/natGateway:NatGateway -> CreateNatGateway, read back with DescribeNatGateways."""
    ec2 = aws.client("ec2")
    nat_id = ec2.create_nat_gateway(
        **drop_none(
            {
                "SubnetId": req.get("subnetId"),
                "AllocationId": req.get("allocationId"),
                "ConnectivityType": req.get("connectivityType"),
                "TagSpecifications": _tag_spec("natgateway", req) or None,
            }
        )
    )["NatGateway"]["NatGatewayId"]
    found = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
    address = (found.get("NatGatewayAddresses") or [{}])[0]
    return nat_id, state(
        req,
        subnetId=found.get("SubnetId"),
        vpcId=found.get("VpcId"),
        connectivityType=found.get("ConnectivityType"),
        allocationId=address.get("AllocationId"),
        networkInterfaceId=address.get("NetworkInterfaceId"),
        privateIp=address.get("PrivateIp"),
        publicIp=address.get("PublicIp"),
    )


def _route_params(route: Mapping[str, Any]) -> dict[str, Any]:
    """camelCase route target inputs -> CreateRoute parameters."""
    return drop_none(
        {
            "DestinationCidrBlock": route.get("destinationCidrBlock") or route.get("cidrBlock"),
            "DestinationIpv6CidrBlock": route.get("destinationIpv6CidrBlock") or route.get("ipv6CidrBlock"),
            "DestinationPrefixListId": route.get("destinationPrefixListId"),
            "GatewayId": route.get("gatewayId"),
            "NatGatewayId": route.get("natGatewayId"),
            "VpcEndpointId": route.get("vpcEndpointId"),
            "TransitGatewayId": route.get("transitGatewayId"),
            "NetworkInterfaceId": route.get("networkInterfaceId"),
            "VpcPeeringConnectionId": route.get("vpcPeeringConnectionId"),
            "EgressOnlyInternetGatewayId": route.get("egressOnlyGatewayId"),
        }
    )


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


def route_table(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/routeTable:RouteTable -> CreateRouteTable (+ CreateRoute per inline route)."""
    ec2 = aws.client("ec2")
    rtb_id = ec2.create_route_table(
        **drop_none({"VpcId": req.get("vpcId"), "TagSpecifications": _tag_spec("route-table", req) or None})
    )["RouteTable"]["RouteTableId"]
    for route in req.get("routes", []):
        ec2.create_route(RouteTableId=rtb_id, **_route_params(route))
    found = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]
    return rtb_id, state(
        req,
        arn=aws.arn("ec2", f"route-table/{rtb_id}"),
        ownerId=found.get("OwnerId"),
        vpcId=found.get("VpcId"),
        routes=_routes_state(found.get("Routes", [])),
        propagatingVgws=[],
    )


def route(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/route:Route -> CreateRoute, read back from DescribeRouteTables."""
    ec2 = aws.client("ec2")
    rtb_id = req.get("routeTableId")
    params = _route_params(req.inputs)
    ec2.create_route(RouteTableId=rtb_id, **params)
    destination = (
        params.get("DestinationCidrBlock") or params.get("DestinationIpv6CidrBlock") or params.get("DestinationPrefixListId", "")
    )
    table = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]
    found = next(
        r
        for r in table["Routes"]
        if destination in (r.get("DestinationCidrBlock"), r.get("DestinationIpv6CidrBlock"), r.get("DestinationPrefixListId"))
    )
    # The provider's id is "r-<route table id><hash of destination>".
    route_id = f"r-{rtb_id}{zlib.crc32(destination.encode())}"
    return route_id, state(
        req,
        origin=found.get("Origin"),
        state=found.get("State"),
        gatewayId=found.get("GatewayId"),
        natGatewayId=found.get("NatGatewayId"),
    )


def route_table_association(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/routeTableAssociation:RouteTableAssociation -> AssociateRouteTable."""
    ec2 = aws.client("ec2")
    association_id = ec2.associate_route_table(
        **drop_none({"RouteTableId": req.get("routeTableId"), "SubnetId": req.get("subnetId"), "GatewayId": req.get("gatewayId")})
    )["AssociationId"]
    table = ec2.describe_route_tables(Filters=[{"Name": "association.route-table-association-id", "Values": [association_id]}])[
        "RouteTables"
    ][0]
    found = next(a for a in table["Associations"] if a["RouteTableAssociationId"] == association_id)
    return association_id, state(req, routeTableId=found["RouteTableId"], subnetId=found.get("SubnetId"))


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


def _replace_rules(aws: Aws, group_id: str, ingress: list[Mapping[str, Any]], egress: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Make the group's rules exactly the inline ones (revoke what AWS put there), then read the group back."""
    ec2 = aws.client("ec2")
    current = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    if current.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=current["IpPermissions"])
    if current.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=current["IpPermissionsEgress"])
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=_ip_permissions(ingress, group_id))
    if egress:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=_ip_permissions(egress, group_id))
    found: dict[str, Any] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return found


def security_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
                "TagSpecifications": _tag_spec("security-group", req) or None,
            }
        )
    )["GroupId"]
    found = _replace_rules(aws, group_id, req.get("ingress", []), req.get("egress", []))
    return group_id, state(
        req,
        arn=aws.arn("ec2", f"security-group/{group_id}"),
        name=found["GroupName"],
        description=found.get("Description"),
        ownerId=found.get("OwnerId"),
        vpcId=found.get("VpcId"),
        ingress=_rules_state(found.get("IpPermissions", [])),
        egress=_rules_state(found.get("IpPermissionsEgress", [])),
    )


def default_security_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    found = _replace_rules(aws, group_id, req.get("ingress", []), req.get("egress", []))
    return group_id, state(
        req,
        arn=aws.arn("ec2", f"security-group/{group_id}"),
        name=found["GroupName"],
        description=found.get("Description"),
        ownerId=found.get("OwnerId"),
        ingress=_rules_state(found.get("IpPermissions", [])),
        egress=_rules_state(found.get("IpPermissionsEgress", [])),
    )


def _sg_rule(aws: Aws, req: Request, direction: str) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroup{Ingress,Egress}Rule -> Authorize*, read back with DescribeSecurityGroupRules."""
    ec2 = aws.client("ec2")
    protocol = str(req.get("ipProtocol"))
    desc = req.get("description")
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol not in ("-1", "all"):
        permission.update(drop_none({"FromPort": req.get("fromPort"), "ToPort": req.get("toPort")}))
    if req.get("cidrIpv4"):
        permission["IpRanges"] = [drop_none({"CidrIp": req.get("cidrIpv4"), "Description": desc})]
    if req.get("cidrIpv6"):
        permission["Ipv6Ranges"] = [drop_none({"CidrIpv6": req.get("cidrIpv6"), "Description": desc})]
    if req.get("prefixListId"):
        permission["PrefixListIds"] = [drop_none({"PrefixListId": req.get("prefixListId"), "Description": desc})]
    if req.get("referencedSecurityGroupId"):
        permission["UserIdGroupPairs"] = [drop_none({"GroupId": req.get("referencedSecurityGroupId"), "Description": desc})]
    authorize = ec2.authorize_security_group_ingress if direction == "ingress" else ec2.authorize_security_group_egress
    response = authorize(
        GroupId=req.get("securityGroupId"),
        IpPermissions=[permission],
        **({"TagSpecifications": _tag_spec("security-group-rule", req)} if req.get("tags") else {}),
    )
    rule_id = response["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    found = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][0]
    return rule_id, state(
        req,
        arn=aws.arn("ec2", f"security-group-rule/{rule_id}"),
        securityGroupRuleId=rule_id,
        securityGroupId=found.get("GroupId"),
        ipProtocol=found.get("IpProtocol"),
        fromPort=found.get("FromPort") if protocol not in ("-1", "all") else None,
        toPort=found.get("ToPort") if protocol not in ("-1", "all") else None,
        cidrIpv4=found.get("CidrIpv4"),
    )


def security_group_ingress_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule -> AuthorizeSecurityGroupIngress."""
    return _sg_rule(aws, req, "ingress")


def security_group_egress_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule -> AuthorizeSecurityGroupEgress."""
    return _sg_rule(aws, req, "egress")


def flow_log(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/flowLog:FlowLog -> CreateFlowLogs, read back with DescribeFlowLogs."""
    ec2 = aws.client("ec2")
    resource_type, resource_id = next(
        (kind, req.get(key))
        for key, kind in (("vpcId", "VPC"), ("subnetId", "Subnet"), ("eniId", "NetworkInterface"))
        if req.get(key)
    )
    destination_type = req.get("logDestinationType", "cloud-watch-logs")
    destination = req.get("logDestination")
    params: dict[str, Any] = {
        "ResourceIds": [resource_id],
        "ResourceType": resource_type,
        "TrafficType": req.get("trafficType", "ALL"),
        "LogDestinationType": destination_type,
        "DeliverLogsPermissionArn": req.get("iamRoleArn"),
        "LogFormat": req.get("logFormat"),
        "MaxAggregationInterval": req.get("maxAggregationInterval"),
        "TagSpecifications": _tag_spec("vpc-flow-log", req) or None,
    }
    if destination_type == "cloud-watch-logs" and destination:
        # Same request by log group name (equally valid for the API): the emulator checks delivery by name.
        params["LogGroupName"] = destination.split(":log-group:", 1)[-1].removesuffix(":*")
    else:
        params["LogDestination"] = destination
    response = ec2.create_flow_logs(**drop_none(params))
    if response.get("Unsuccessful"):
        raise RuntimeError(f"CreateFlowLogs unsuccessful: {response['Unsuccessful']}")
    flow_log_id = response["FlowLogIds"][0]
    found = ec2.describe_flow_logs(FlowLogIds=[flow_log_id])["FlowLogs"][0]
    return flow_log_id, state(
        req,
        arn=aws.arn("ec2", f"vpc-flow-log/{flow_log_id}"),
        logDestinationType=found.get("LogDestinationType"),
        logDestination=found.get("LogDestination") or destination,
        trafficType=found.get("TrafficType"),
        logFormat=found.get("LogFormat"),
        maxAggregationInterval=found.get("MaxAggregationInterval"),
    )


def vpc_endpoint(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ec2/vpcEndpoint:VpcEndpoint -> CreateVpcEndpoint, read back with DescribeVpcEndpoints."""
    ec2 = aws.client("ec2")
    endpoint_type = req.get("vpcEndpointType", "Gateway")
    endpoint_id = ec2.create_vpc_endpoint(
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
                "TagSpecifications": _tag_spec("vpc-endpoint", req) or None,
            }
        )
    )["VpcEndpoint"]["VpcEndpointId"]
    found = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]
    return endpoint_id, state(
        req,
        arn=aws.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
        state=found.get("State"),
        vpcEndpointType=found.get("VpcEndpointType"),
        ownerId=found.get("OwnerId"),
        routeTableIds=found.get("RouteTableIds") or [],
        subnetIds=found.get("SubnetIds") or [],
        networkInterfaceIds=found.get("NetworkInterfaceIds") or [],
        securityGroupIds=[g["GroupId"] for g in found.get("Groups", [])] or req.get("securityGroupIds"),
        privateDnsEnabled=found.get("PrivateDnsEnabled"),
        dnsEntries=[{"dnsName": d.get("DnsName"), "hostedZoneId": d.get("HostedZoneId")} for d in found.get("DnsEntries", [])],
        policy=found.get("PolicyDocument"),
        requesterManaged=found.get("RequesterManaged", False),
    )


HANDLERS = {
    "aws:ec2/vpc:Vpc": vpc,
    "aws:ec2/subnet:Subnet": subnet,
    "aws:ec2/internetGateway:InternetGateway": internet_gateway,
    "aws:ec2/eip:Eip": eip,
    "aws:ec2/natGateway:NatGateway": nat_gateway,
    "aws:ec2/routeTable:RouteTable": route_table,
    "aws:ec2/route:Route": route,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": route_table_association,
    "aws:ec2/securityGroup:SecurityGroup": security_group,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": default_security_group,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": security_group_ingress_rule,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": security_group_egress_rule,
    "aws:ec2/flowLog:FlowLog": flow_log,
    "aws:ec2/vpcEndpoint:VpcEndpoint": vpc_endpoint,
}


def availability_zones(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:index/getAvailabilityZones -> DescribeAvailabilityZones."""
    filters = [{"Name": f["name"], "Values": f["values"]} for f in args.get("filters") or []]
    if args.get("state"):
        filters.append({"Name": "state", "Values": [args["state"]]})
    zones = aws.client("ec2").describe_availability_zones(**({"Filters": filters} if filters else {}))["AvailabilityZones"]
    excluded = set(args.get("excludeNames") or [])
    zones = [z for z in zones if z["ZoneName"] not in excluded]
    return {
        "id": aws.region,
        "names": [z["ZoneName"] for z in zones],
        "zoneIds": [z["ZoneId"] for z in zones],
        "groupNames": sorted({z.get("GroupName", aws.region) for z in zones}),
        "state": args.get("state"),
    }


CALLS = {"aws:index/getAvailabilityZones:getAvailabilityZones": availability_zones}
