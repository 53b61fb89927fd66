"""IAM policy documents as plain functions: no Pulumi, so they are tested without mocks.

Components render these with ``json.dumps`` inside ``Output.all(...).apply(...)`` once the ARNs
they name are known. Every document follows the same least-privilege rules, which
:func:`least_privilege_violations` checks (and the unit tests run against every document the
stack registers):

- no wildcard in an action (no ``*``, no ``s3:*``, no ``s3:Get*``);
- ``"Resource": "*"`` only for actions that have no resource-level permissions at all
  (:data:`ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS`);
- no ``NotAction`` / ``NotResource`` (they grant everything they do not name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

POLICY_VERSION = "2012-10-17"

Statement = dict[str, Any]
PolicyDocument = dict[str, Any]

#: Actions whose IAM authorization only accepts ``"Resource": "*"`` (Service Authorization Reference):
#: ``ecr:GetAuthorizationToken`` returns a registry-wide token; ``cloudwatch:PutMetricData`` is scoped
#: with the ``cloudwatch:namespace`` condition key instead of a resource.
ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS: frozenset[str] = frozenset({"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"})

#: What the ECS agent needs to pull an image from a private ECR repository (besides the token).
ECR_PULL_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
)

#: What the awslogs log driver needs; the log group itself is created by the stack, not the task.
LOG_WRITE_ACTIONS: tuple[str, ...] = ("logs:CreateLogStream", "logs:PutLogEvents")

ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"

#: CloudWatch namespace prefix a service's task role may publish custom metrics into.
METRIC_NAMESPACE_PREFIX = "ScalePayments"


def policy_document(*statements: Statement) -> PolicyDocument:
    """A policy document of the current policy language version holding ``statements`` in order."""
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def policy_statement(
    sid: str,
    action: str | list[str],
    *,
    effect: str = "Allow",
    principal: str | Mapping[str, Any] | None = None,
    resource: str | list[str] | None = None,
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    """One policy statement; the identity, trust, key and resource policies of the stack all build theirs here.

    The keys come in one order (Sid, Effect, Principal, Action, Resource, Condition): the rendered JSON, and so
    the resource graph, does not change with the policy that asks. ``principal`` belongs to resource-based and
    trust policies, ``resource`` to all but trust policies; a key left unset (or an empty condition) is omitted.
    """
    result: Statement = {"Sid": sid, "Effect": effect}
    if principal is not None:
        result["Principal"] = principal
    result["Action"] = action
    if resource is not None:
        result["Resource"] = resource
    if condition:
        result["Condition"] = dict(condition)
    return result


def _require(values: Sequence[str], what: str) -> list[str]:
    """Return ``values`` as a sorted, de-duplicated list; AWS rejects a statement with no resources."""
    if not values or any(not v for v in values):
        raise ValueError(f"{what}: at least one non-empty ARN is required, got {list(values)!r}")
    return sorted(set(values))


def service_assume_role_policy(sid: str, service: str, condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trust policy letting one AWS service principal assume a role.

    ``condition`` (``aws:SourceAccount``, ``aws:SourceArn``) closes the confused-deputy hole where
    the service documents one.
    """
    return policy_document(policy_statement(sid, "sts:AssumeRole", principal={"Service": service}, condition=condition))


def ecs_tasks_assume_role_policy(account_id: str) -> dict[str, Any]:
    """Trust policy letting ECS tasks of this account (and only this account) assume a role.

    The ``aws:SourceAccount`` condition closes the confused-deputy hole: the ECS service
    principal cannot be tricked into assuming the role on behalf of another account's task.
    """
    if not account_id:
        raise ValueError("account_id is required for the aws:SourceAccount condition")
    return service_assume_role_policy(
        "EcsTasksAssumeRole", ECS_TASKS_PRINCIPAL, {"StringEquals": {"aws:SourceAccount": account_id}}
    )


def log_stream_arn(log_group_arn: str) -> str:
    """``<log group arn>:*`` (Pulumi returns log-group ARNs without the ``:*`` CloudTrail and IAM expect)."""
    return log_group_arn if log_group_arn.endswith(":*") else f"{log_group_arn}:*"


def log_stream_arns(log_group_arns: Iterable[str]) -> list[str]:
    """Log-stream ARNs (``<group arn>:*``) for log-group ARNs as Pulumi returns them (without ``:*``)."""
    return [log_stream_arn(arn) for arn in log_group_arns]


def task_execution_role_policy(
    *,
    region: str,
    repository_arns: Sequence[str],
    log_group_arns: Sequence[str],
    secret_arns: Sequence[str] = (),
    secrets_key_arn: str | None = None,
) -> dict[str, Any]:
    """Inline policy of an ECS task execution role (the ECS agent, not the application).

    It pulls images from exactly the given repositories and writes to exactly the given log groups.
    Only a task that is injected secrets (the migrate task: the Aurora master secret) gets
    ``secretsmanager:GetSecretValue`` on exactly those secrets, decrypting them with the data key only
    when Secrets Manager asks (``kms:ViaService``); the services' execution role reads no secret at all.
    """
    if not region:
        raise ValueError("region is required for the kms:ViaService condition")
    granted = [
        # GetAuthorizationToken has no resource-level permissions: "*" is the only valid
        # resource. The token alone grants nothing; pulls are limited by EcrPull below.
        policy_statement("EcrAuthorizationToken", ["ecr:GetAuthorizationToken"], resource="*"),
        policy_statement("EcrPull", list(ECR_PULL_ACTIONS), resource=_require(repository_arns, "repository_arns")),
        policy_statement(
            "WriteTaskLogs", list(LOG_WRITE_ACTIONS), resource=log_stream_arns(_require(log_group_arns, "log_group_arns"))
        ),
    ]
    if secret_arns:
        if not secrets_key_arn:
            raise ValueError("secrets_key_arn is required when the task is injected secrets")
        granted += [
            policy_statement(
                "ReadInjectedSecrets", ["secretsmanager:GetSecretValue"], resource=_require(secret_arns, "secret_arns")
            ),
            policy_statement(
                "DecryptSecretsViaSecretsManager",
                ["kms:Decrypt"],
                resource=_require([secrets_key_arn], "secrets_key_arn"),
                condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            ),
        ]
    return policy_document(*granted)


def metric_namespace(scope: str, service: str) -> str:
    """The CloudWatch namespace a service of one stack (``scope``: ``<environment>[-<suffix>]``) publishes to.

    The stack is part of it: with several stacks in one account, dev's tasks may not write prod's series.
    """
    return f"{METRIC_NAMESPACE_PREFIX}/{scope}/{service}"


def rds_db_user_arn(region: str, account_id: str, cluster_resource_id: str, db_user: str, partition: str = "aws") -> str:
    """The ARN ``rds-db:connect`` names: one database user of one cluster (its resource id, not its name)."""
    return f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{cluster_resource_id}/{db_user}"


def elasticache_user_arn(region: str, account_id: str, user_id: str, partition: str = "aws") -> str:
    """The ARN of an ElastiCache user (``elasticache:Connect`` names it together with the replication group)."""
    return f"arn:{partition}:elasticache:{region}:{account_id}:user:{user_id}"


def service_task_role_policy(
    service: str, *, scope: str, db_user_arns: Sequence[str] = (), cache_resource_arns: Sequence[str] = ()
) -> dict[str, Any]:
    """Inline policy of one service's task role (what the application code may call).

    A service publishes custom metrics into its own stack's namespace for it only (one service cannot
    forge another's business metrics, nor dev's tasks prod's), connects to PostgreSQL as its own database user only
    (``rds-db:connect`` on that user's ARN: IAM database authentication, no password anywhere), and
    to Redis as its own ElastiCache user only (``elasticache:Connect`` on the replication group and
    that user).
    """
    if not service or not scope:
        raise ValueError("service name and stack scope are required")
    granted = [
        # PutMetricData has no resource-level permissions; the namespace condition scopes it.
        policy_statement(
            "PublishOwnMetrics",
            ["cloudwatch:PutMetricData"],
            resource="*",
            condition={"StringEquals": {"cloudwatch:namespace": metric_namespace(scope, service)}},
        )
    ]
    if db_user_arns:
        granted.append(
            policy_statement("ConnectAsOwnDatabaseUser", ["rds-db:connect"], resource=_require(db_user_arns, "db_user_arns"))
        )
    if cache_resource_arns:
        granted.append(
            policy_statement(
                "ConnectToRedisAsOwnUser", ["elasticache:Connect"], resource=_require(cache_resource_arns, "cache_resource_arns")
            )
        )
    return policy_document(*granted)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document as a list (IAM also accepts a single statement object)."""
    raw = document.get("Statement", [])
    return [raw] if isinstance(raw, dict) else list(raw)


def actions(statement: Mapping[str, Any]) -> list[str]:
    """The actions of a statement as a list."""
    return _as_list(statement.get("Action"))


def resources(statement: Mapping[str, Any]) -> list[str]:
    """The resources of a statement as a list (empty for trust policies)."""
    return _as_list(statement.get("Resource"))


def least_privilege_violations(document: Mapping[str, Any]) -> list[str]:
    """Every way ``document`` breaks the least-privilege rules of this module (empty = compliant).

    Trust policies (statements with a ``Principal``) carry no ``Resource`` and are checked for
    wildcard actions only.
    """
    problems: list[str] = []
    if document.get("Version") != POLICY_VERSION:
        problems.append(f"Version must be {POLICY_VERSION}, got {document.get('Version')!r}")
    found = statements(document)
    if not found:
        problems.append("policy has no statements")
    for index, statement in enumerate(found):
        label = statement.get("Sid") or f"statement {index}"
        for forbidden in ("NotAction", "NotResource", "NotPrincipal"):
            if forbidden in statement:
                problems.append(f"{label}: {forbidden} grants everything it does not name")
        acts = actions(statement)
        if not acts:
            problems.append(f"{label}: no actions")
        for action in acts:
            if "*" in action:
                problems.append(f"{label}: wildcard action {action!r}")
        if "Principal" in statement:
            continue
        res = resources(statement)
        if not res:
            problems.append(f"{label}: no resources")
        if "*" in res and statement.get("Effect") == "Allow":
            scoped = sorted(a for a in acts if a not in ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS)
            if scoped:
                problems.append(f"{label}: Resource '*' for actions that support resource-level permissions: {scoped}")
    return problems
