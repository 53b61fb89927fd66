"""aws:vpc -- standalone security group rules (one rule per resource, with its own rule id)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import described, drop_none, none_when, read_by, tag_spec

_ALL_PROTOCOLS = ("-1", "all")
_NO_RULE = ("InvalidSecurityGroupRuleId.NotFound", "InvalidGroup.NotFound")


def _rule(aws: Aws, rule_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeSecurityGroupRules by rule id (ingress and egress alike)."""
    found = aws.client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][0]
    ports = str(inputs.get("ipProtocol")) not in _ALL_PROTOCOLS
    return {
        "arn": aws.arn("ec2", f"security-group-rule/{rule_id}"),
        "securityGroupRuleId": rule_id,
        "securityGroupId": found.get("GroupId"),
        "ipProtocol": found.get("IpProtocol"),
        "fromPort": found.get("FromPort") if ports else None,
        "toPort": found.get("ToPort") if ports else None,
        "cidrIpv4": found.get("CidrIpv4"),
    }


def _create_rule(aws: Aws, req: Request, direction: str) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroup{Ingress,Egress}Rule -> Authorize*, read back with DescribeSecurityGroupRules."""
    ec2 = aws.client("ec2")
    protocol = str(req.get("ipProtocol"))
    desc = req.get("description")
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol not in _ALL_PROTOCOLS:
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
        **({"TagSpecifications": tag_spec("security-group-rule", req.get("tags"))} if req.get("tags") else {}),
    )
    rule_id = response["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    return described(aws, req, rule_id, _rule)


def create_ingress_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule -> AuthorizeSecurityGroupIngress."""
    return _create_rule(aws, req, "ingress")


def create_egress_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule -> AuthorizeSecurityGroupEgress."""
    return _create_rule(aws, req, "egress")


read_rule = read_by(_rule, *_NO_RULE)


@none_when(*_NO_RULE, "InvalidPermission.NotFound")
def delete_ingress_rule(aws: Aws, rule_id: str, recorded: Mapping[str, Any]) -> None:
    """RevokeSecurityGroupIngress by rule id."""
    aws.client("ec2").revoke_security_group_ingress(GroupId=recorded.get("securityGroupId"), SecurityGroupRuleIds=[rule_id])


@none_when(*_NO_RULE, "InvalidPermission.NotFound")
def delete_egress_rule(aws: Aws, rule_id: str, recorded: Mapping[str, Any]) -> None:
    """RevokeSecurityGroupEgress by rule id."""
    aws.client("ec2").revoke_security_group_egress(GroupId=recorded.get("securityGroupId"), SecurityGroupRuleIds=[rule_id])


RESOURCES = (
    ResourceHandler(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", create_ingress_rule, read_rule, delete_ingress_rule
    ),
    ResourceHandler("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", create_egress_rule, read_rule, delete_egress_rule),
)
