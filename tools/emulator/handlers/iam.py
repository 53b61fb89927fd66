"""IAM: roles, inline role policies, managed policy attachments."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list


def role(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    found = iam.get_role(RoleName=name)["Role"]
    return name, state(
        req,
        name=name,
        arn=found["Arn"],
        uniqueId=found["RoleId"],
        createDate=found["CreateDate"].isoformat(),
        path=found.get("Path"),
        maxSessionDuration=found.get("MaxSessionDuration"),
    )


def role_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:iam/rolePolicy:RolePolicy -> PutRolePolicy, read back with GetRolePolicy."""
    iam = aws.client("iam")
    role_name = str(req.get("role")).rsplit("/", 1)[-1]
    name = req.physical_name("name", 128)
    iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=as_json(req.get("policy")))
    found = iam.get_role_policy(RoleName=role_name, PolicyName=name)
    document = found["PolicyDocument"]
    return f"{role_name}:{name}", state(req, name=name, role=role_name, policy=as_json(document))


def role_policy_attachment(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:iam/rolePolicyAttachment:RolePolicyAttachment -> AttachRolePolicy, checked with ListAttachedRolePolicies."""
    iam = aws.client("iam")
    role_name = str(req.get("role")).rsplit("/", 1)[-1]
    policy_arn = req.get("policyArn")
    iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    if policy_arn not in {p["PolicyArn"] for p in attached}:
        raise RuntimeError(f"{policy_arn} not attached to {role_name} after AttachRolePolicy")
    return f"{role_name}/{policy_arn}", state(req, role=role_name, policyArn=policy_arn)


HANDLERS = {
    "aws:iam/role:Role": role,
    "aws:iam/rolePolicy:RolePolicy": role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": role_policy_attachment,
}
