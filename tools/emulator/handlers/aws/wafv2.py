"""aws:wafv2 -- web ACLs, their association with the ALB, and their logging configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import (
    GoneError,
    delete_call,
    described,
    drop_none,
    none_when,
    pascal,
    read_by,
    refreshed,
    state,
    tag_list,
)

_NOT_FOUND = "WAFNonexistentItemException"

# camelCase -> PascalCase exceptions in the WAFv2 API (Pulumi's WAFv2 blocks otherwise mirror it one to one).
_WAF_KEYS = {
    "cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled",
    "ipSetReferenceStatement": "IPSetReferenceStatement",
    "ipSetForwardedIpConfig": "IPSetForwardedIPConfig",
    "forwardedIpConfig": "ForwardedIPConfig",
    "arn": "ARN",
}


def _waf(value: Any) -> Any:
    """A WAFv2 input block in the API's PascalCase."""
    return pascal(value, _WAF_KEYS)


def _waf_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    converted = _waf(rule)
    # Pulumi's ``ruleLabels`` is the API's RuleLabels ([{Name}]); everything else converts by key.
    return {k: v for k, v in converted.items() if v not in ({}, [], None) or k in ("Action", "OverrideAction")}


# --- aws:wafv2/webAcl:WebAcl -----------------------------------------------------------------------------


def _web_acl(aws: Aws, name: str, scope: str, acl_id: str) -> dict[str, Any]:
    found = aws.client("wafv2").get_web_acl(Name=name, Scope=scope, Id=acl_id)
    acl = found["WebACL"]
    return {
        "name": acl["Name"],
        "arn": acl["ARN"],
        "capacity": acl.get("Capacity"),
        "lockToken": found.get("LockToken"),
        "applicationIntegrationUrl": found.get("ApplicationIntegrationURL"),
    }


def create_web_acl(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAcl:WebAcl -> CreateWebACL, read back with GetWebACL."""
    name = req.physical_name("name", 128)
    scope = req.get("scope", "REGIONAL")
    summary = aws.client("wafv2").create_web_acl(
        **drop_none(
            {
                "Name": name,
                "Scope": scope,
                "Description": req.get("description"),
                "DefaultAction": _waf(req.get("defaultAction")),
                "Rules": [_waf_rule(r) for r in req.get("rules", [])],
                "VisibilityConfig": _waf(req.get("visibilityConfig")),
                "CustomResponseBodies": {
                    b["key"]: {"ContentType": b["contentType"], "Content": b["content"]}
                    for b in req.get("customResponseBodies", [])
                }
                or None,
                "TokenDomains": list(req.get("tokenDomains", [])) or None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["Summary"]
    return summary["Id"], state(req, **_web_acl(aws, name, scope, summary["Id"]))


@none_when(_NOT_FOUND)
def read_web_acl(aws: Aws, acl_id: str, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """GetWebACL by name, scope and id."""
    return refreshed(recorded, **_web_acl(aws, recorded["name"], recorded.get("scope") or "REGIONAL", acl_id))


@none_when(_NOT_FOUND)
def delete_web_acl(aws: Aws, acl_id: str, recorded: Mapping[str, Any]) -> None:
    """DeleteWebACL with the current lock token (GetWebACL): the API refuses a stale one."""
    waf = aws.client("wafv2")
    name, scope = recorded["name"], recorded.get("scope") or "REGIONAL"
    lock_token = waf.get_web_acl(Name=name, Scope=scope, Id=acl_id)["LockToken"]
    waf.delete_web_acl(Name=name, Scope=scope, Id=acl_id, LockToken=lock_token)


# --- aws:wafv2/webAclAssociation:WebAclAssociation -------------------------------------------------------


def _association(aws: Aws, _association_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetWebACLForResource: gone when the resource has no (or another) web ACL."""
    acl_arn, resource_arn = inputs["webAclArn"], inputs["resourceArn"]
    found = aws.client("wafv2").get_web_acl_for_resource(ResourceArn=resource_arn).get("WebACL") or {}
    if found.get("ARN") != acl_arn:
        raise GoneError(f"{resource_arn} is not associated with {acl_arn}")
    return {"webAclArn": found["ARN"]}


def create_web_acl_association(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAclAssociation:WebAclAssociation -> AssociateWebACL, checked with GetWebACLForResource."""
    acl_arn, resource_arn = req.get("webAclArn"), req.get("resourceArn")
    aws.client("wafv2").associate_web_acl(WebACLArn=acl_arn, ResourceArn=resource_arn)
    return described(aws, req, f"{acl_arn},{resource_arn}", _association)


read_web_acl_association = read_by(_association, _NOT_FOUND)


@none_when(_NOT_FOUND)
def delete_web_acl_association(aws: Aws, _association_id: str, recorded: Mapping[str, Any]) -> None:
    """DisassociateWebACL."""
    aws.client("wafv2").disassociate_web_acl(ResourceArn=recorded["resourceArn"])


# --- aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration -------------------------------------


def _logging(aws: Aws, resource_arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetLoggingConfiguration (the id is the web ACL's ARN)."""
    found = aws.client("wafv2").get_logging_configuration(ResourceArn=resource_arn)["LoggingConfiguration"]
    return {"logDestinationConfigs": found.get("LogDestinationConfigs", [])}


def create_web_acl_logging(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAclLoggingConfiguration -> PutLoggingConfiguration, read back with GetLoggingConfiguration."""
    resource_arn = req.get("resourceArn")
    aws.client("wafv2").put_logging_configuration(
        LoggingConfiguration=drop_none(
            {
                "ResourceArn": resource_arn,
                "LogDestinationConfigs": list(req.get("logDestinationConfigs", [])),
                "RedactedFields": [_waf(f) for f in req.get("redactedFields", [])] or None,
                "LoggingFilter": _waf(req.get("loggingFilter")) if req.get("loggingFilter") else None,
            }
        )
    )
    return described(aws, req, resource_arn, _logging)


read_web_acl_logging = read_by(_logging, _NOT_FOUND)
delete_web_acl_logging = delete_call("wafv2", "delete_logging_configuration", "ResourceArn", _NOT_FOUND)


RESOURCES = (
    ResourceHandler("aws:wafv2/webAcl:WebAcl", create_web_acl, read_web_acl, delete_web_acl),
    ResourceHandler(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        create_web_acl_association,
        read_web_acl_association,
        delete_web_acl_association,
    ),
    ResourceHandler(
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        create_web_acl_logging,
        read_web_acl_logging,
        delete_web_acl_logging,
    ),
)
