"""Identity guardrails (PCI DSS 4.0 Req 2.2, 3.6, 7 and 8): least privilege for IAM, no
administrator shortcuts, no blanket decrypt, authenticated and non-default database access, and
per-client identities instead of shared static credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, pci
from policy.rules.readers import as_list, as_map, is_true, statements

IAM_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE = "aws:iam/role:Role"
POLICY_DOCUMENT_TYPES = (IAM_POLICY, ROLE_POLICY, USER_POLICY, GROUP_POLICY, ROLE)
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
RDS_CLUSTER = "aws:rds/cluster:Cluster"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"

#: AWS managed policies that grant full administrative access.
ADMIN_POLICY_NAMES: frozenset[str] = frozenset({"AdministratorAccess"})

#: Engine default or well-known administrator names an attacker tries first.
DEFAULT_DB_USERS: frozenset[str] = frozenset(
    {"postgres", "admin", "administrator", "root", "rdsadmin", "master", "sa", "user", "mysql"}
)


def _documents(resource_type: str, props: Mapping[str, Any]) -> Iterator[Any]:
    """The identity-policy documents a resource carries (not trust or key policies)."""
    if resource_type == ROLE:
        for inline in as_list(props.get("inlinePolicies")):
            yield as_map(inline).get("policy")
    else:
        yield props.get("policy")


def _allow_statements(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, statement) for every Allow statement, the label being its Sid or position."""
    for document in _documents(resource_type, props):
        for index, statement in enumerate(statements(document)):
            if str(statement.get("Effect", "Allow")) == "Allow":
                yield str(statement.get("Sid") or f"#{index}"), statement


def iam_no_wildcard_action(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """No Allow statement grants ``*``, ``<service>:*`` or uses NotAction."""
    messages = []
    for label, statement in _allow_statements(resource_type, props):
        if "NotAction" in statement:
            messages.append(pci("7.2.1", f"IAM statement {label} allows everything except a NotAction list"))
        for action in as_list(statement.get("Action")):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                messages.append(
                    pci("7.2.1", f"IAM statement {label} allows action '{action}'; grant only the actions the workload needs")
                )
    return messages


def _is_admin_arn(arn: Any) -> bool:
    return isinstance(arn, str) and arn.rsplit("/", 1)[-1] in ADMIN_POLICY_NAMES and ":policy/" in arn


def iam_no_admin_policy(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """No role, user or group gets the AdministratorAccess managed policy."""
    arns = as_list(props.get("managedPolicyArns")) if resource_type == ROLE else [props.get("policyArn")]
    return [
        pci("7.2.2", f"administrator policy '{arn}' is attached; grant a least-privilege policy instead")
        for arn in arns
        if _is_admin_arn(arn)
    ]


def _grants_decrypt(action: Any) -> bool:
    if not isinstance(action, str):
        return False
    lowered = action.lower()
    return lowered in ("*", "kms:*", "kms:decrypt", "kms:decrypt*", "kms:d*")


def iam_no_kms_decrypt_on_wildcard(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """kms:Decrypt is granted on named keys, never on ``*``."""
    messages = []
    for label, statement in _allow_statements(resource_type, props):
        actions = [a for a in as_list(statement.get("Action")) if _grants_decrypt(a)]
        if actions and "*" in as_list(statement.get("Resource")):
            messages.append(
                pci("3.6.1", f"IAM statement {label} allows '{actions[0]}' on every key (Resource '*'); name the key ARNs")
            )
    return messages


def aurora_iam_authentication(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Aurora accepts IAM database authentication (short-lived, auditable credentials)."""
    if not is_true(props.get("iamDatabaseAuthenticationEnabled")):
        return [pci("8.3.1", "Aurora IAM database authentication is off (iamDatabaseAuthenticationEnabled is not true)")]
    return []


def aurora_non_default_admin(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """The Aurora master user is not an engine default or well-known name."""
    user = props.get("masterUsername")
    if not isinstance(user, str) or not user:
        return [pci("2.2.2", "Aurora master user is not set, so the engine default name is used (masterUsername)")]
    if user.lower() in DEFAULT_DB_USERS:
        return [pci("2.2.2", f"Aurora master user '{user}' is a vendor default name; choose a non-default masterUsername")]
    return []


#: The replication group properties that carry a static Redis AUTH token (``authTokenWo``: write-only variant).
STATIC_AUTH_TOKEN_PROPS: tuple[str, ...] = ("authToken", "authTokenWo")


def redis_auth_required(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis clients must authenticate: RBAC user groups (IAM-authenticated users) or, at least, an AUTH token.

    Whether a static token is acceptable is ``redis-no-static-auth-token``'s question; this rule only
    refuses a cache that anyone on the network can use.
    """
    if any(props.get(prop) for prop in STATIC_AUTH_TOKEN_PROPS) or as_list(props.get("userGroupIds")):
        return []
    return [pci("8.3.1", "Redis accepts unauthenticated clients (no authToken and no userGroupIds)")]


def redis_no_static_auth_token(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis authenticates individual users (``userGroupIds``: RBAC users, IAM authentication), not one shared token.

    A replication-group AUTH token is a single static password every client shares: it cannot tell
    the services apart, lives in configuration and state, and in practice is never rotated (PCI DSS
    8.6.3). IAM-authenticated users get short-lived tokens signed by each task role instead.
    """
    return [
        pci(
            "8.6.3",
            f"Redis uses a static AUTH token shared by every client ({prop}); "
            "authenticate each client as its own user through userGroupIds (RBAC users with IAM authentication)",
        )
        for prop in STATIC_AUTH_TOKEN_PROPS
        if props.get(prop)
    ]


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "iam-no-wildcard-action",
        "identity",
        "7.2.1",
        "IAM policies grant no '*' or '<service>:*' actions.",
        POLICY_DOCUMENT_TYPES,
        iam_no_wildcard_action,
    ),
    ResourceRule(
        "iam-no-admin-policy",
        "identity",
        "7.2.2",
        "No principal gets the AdministratorAccess managed policy.",
        (*ATTACHMENT_TYPES, ROLE),
        iam_no_admin_policy,
    ),
    ResourceRule(
        "iam-no-kms-decrypt-on-wildcard",
        "identity",
        "3.6.1",
        "kms:Decrypt is granted on specific keys only.",
        POLICY_DOCUMENT_TYPES,
        iam_no_kms_decrypt_on_wildcard,
    ),
    ResourceRule(
        "aurora-iam-authentication",
        "identity",
        "8.3.1",
        "Aurora clusters enable IAM database authentication.",
        (RDS_CLUSTER,),
        aurora_iam_authentication,
    ),
    ResourceRule(
        "aurora-non-default-admin",
        "identity",
        "2.2.2",
        "Aurora master user is not a vendor default name.",
        (RDS_CLUSTER,),
        aurora_non_default_admin,
    ),
    ResourceRule(
        "redis-auth-required",
        "identity",
        "8.3.1",
        "Redis requires client authentication (RBAC/IAM user groups or an AUTH token).",
        (REPLICATION_GROUP,),
        redis_auth_required,
    ),
    ResourceRule(
        "redis-no-static-auth-token",
        "identity",
        "8.6.3",
        "Redis authenticates individual users (RBAC user groups, IAM auth), not a shared static AUTH token.",
        (REPLICATION_GROUP,),
        redis_no_static_auth_token,
    ),
)
