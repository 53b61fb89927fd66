"""aws:iam -- roles, inline role policies, managed policy attachments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import GoneError, as_json, described, drop_none, given, none_when, read_by, tag_list

_NO_ENTITY = "NoSuchEntity"

# --- aws:iam/role:Role -----------------------------------------------------------------------------------


def _role(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetRole."""
    found = aws.client("iam").get_role(RoleName=name)["Role"]
    return {
        "name": name,
        "arn": found["Arn"],
        "uniqueId": found["RoleId"],
        "createDate": found["CreateDate"].isoformat(),
        "path": found.get("Path"),
        "maxSessionDuration": found.get("MaxSessionDuration"),
    }


def create_role(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:iam/role:Role -> CreateRole (+ inline policies and attachments), read back with GetRole."""
    iam = aws.client("iam")
    name = req.physical_name("name", 64)
    iam.create_role(
        **drop_none(
            {
                "RoleName": name,
                "Path": req.get("path"),
                "AssumeRolePolicyDocument": as_json(req.get("assumeRolePolicy")),
                "Description": req.get("description"),
                "MaxSessionDuration": req.get("maxSessionDuration"),
                "PermissionsBoundary": req.get("permissionsBoundary"),
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    for policy in req.get("inlinePolicies", []):
        if policy.get("name") and policy.get("policy"):
            iam.put_role_policy(RoleName=name, PolicyName=policy["name"], PolicyDocument=as_json(policy["policy"]))
    for arn in req.get("managedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    return described(aws, req, name, _role)


read_role = read_by(_role, _NO_ENTITY)


@none_when(_NO_ENTITY)
def delete_role(aws: Aws, name: str, recorded: Mapping[str, Any]) -> None:
    """DeleteRole, after removing what AWS refuses to delete a role with.

    Only the role's own policies go first: those it declared inline (``inlinePolicies``,
    ``managedPolicyArns``), or all of them with ``forceDetachPolicies``, as the provider does.
    RolePolicy and RolePolicyAttachment resources of the stack are deleted by their own handlers
    (before the role, being created after it); instance profiles lose the role first.
    """
    iam = aws.client("iam")
    force = bool(given(recorded, "forceDetachPolicies", False))
    own_inline = {p.get("name") for p in given(recorded, "inlinePolicies", []) if p.get("name")}
    own_managed = set(given(recorded, "managedPolicyArns", []))
    for policy_name in _paginate(iam, "list_role_policies", "PolicyNames", RoleName=name):
        if force or policy_name in own_inline:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    for attached in _paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
        if force or attached["PolicyArn"] in own_managed:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    for profile in _paginate(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name):
        iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)


def _paginate(iam: Any, operation: str, key: str, **params: Any) -> list[Any]:
    return [item for page in iam.get_paginator(operation).paginate(**params) for item in page[key]]


# --- aws:iam/rolePolicy:RolePolicy -----------------------------------------------------------------------


def _role_name(role: Any) -> str:
    """A role input may be its name or its ARN."""
    return str(role).rsplit("/", 1)[-1]


def _role_policy(aws: Aws, policy_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetRolePolicy (the id is ``<role>:<policy name>``)."""
    role_name, name = policy_id.split(":", 1)
    found = aws.client("iam").get_role_policy(RoleName=role_name, PolicyName=name)
    return {"name": name, "role": role_name, "policy": as_json(found["PolicyDocument"])}


def create_role_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:iam/rolePolicy:RolePolicy -> PutRolePolicy, read back with GetRolePolicy."""
    role_name = _role_name(req.get("role"))
    name = req.physical_name("name", 128)
    aws.client("iam").put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=as_json(req.get("policy")))
    return described(aws, req, f"{role_name}:{name}", _role_policy)


read_role_policy = read_by(_role_policy, _NO_ENTITY)


@none_when(_NO_ENTITY)
def delete_role_policy(aws: Aws, policy_id: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteRolePolicy."""
    role_name, name = policy_id.split(":", 1)
    aws.client("iam").delete_role_policy(RoleName=role_name, PolicyName=name)


# --- aws:iam/rolePolicyAttachment:RolePolicyAttachment ---------------------------------------------------


def _attachment(aws: Aws, _attachment_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """ListAttachedRolePolicies of the role; gone when the policy is no longer attached."""
    role_name, policy_arn = _role_name(inputs["role"]), inputs["policyArn"]
    attached = _paginate(aws.client("iam"), "list_attached_role_policies", "AttachedPolicies", RoleName=role_name)
    if policy_arn not in {p["PolicyArn"] for p in attached}:
        raise GoneError(f"{policy_arn} is not attached to {role_name}")
    return {"role": role_name, "policyArn": policy_arn}


def create_role_policy_attachment(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:iam/rolePolicyAttachment:RolePolicyAttachment -> AttachRolePolicy, checked with ListAttachedRolePolicies."""
    role_name = _role_name(req.get("role"))
    policy_arn = req.get("policyArn")
    aws.client("iam").attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    return described(aws, req, f"{role_name}/{policy_arn}", _attachment)


read_role_policy_attachment = read_by(_attachment, _NO_ENTITY)


@none_when(_NO_ENTITY)
def delete_role_policy_attachment(aws: Aws, _attachment_id: str, recorded: Mapping[str, Any]) -> None:
    """DetachRolePolicy."""
    aws.client("iam").detach_role_policy(RoleName=_role_name(recorded["role"]), PolicyArn=recorded["policyArn"])


RESOURCES = (
    ResourceHandler("aws:iam/role:Role", create_role, read_role, delete_role),
    ResourceHandler("aws:iam/rolePolicy:RolePolicy", create_role_policy, read_role_policy, delete_role_policy),
    ResourceHandler(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        create_role_policy_attachment,
        read_role_policy_attachment,
        delete_role_policy_attachment,
    ),
)
