"""Policy documents of lib/iam_policies.py: pure functions, tested without Pulumi.

The least-privilege checker is tested with a compliant document plus one mutation per rule it
enforces; the generators are tested for exactly the statements the services need.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lib import iam_policies as p

ACCOUNT = "123456789012"
REGION = "eu-west-1"
REPOS = [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/scalepay-{s}-dev" for s in ("api", "payment", "notification")]
GROUPS = [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/scalepay-{s}-dev" for s in ("api", "payment", "notification")]
DB_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!cluster-abc-AbCdEf"
REDIS_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:scalepay-redis-auth-dev-XyZ123"
DATA_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1111-2222"


def execution_policy(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "region": REGION,
        "repository_arns": REPOS,
        "log_group_arns": GROUPS,
        "secret_arns": [DB_SECRET, REDIS_SECRET],
        "secrets_key_arn": DATA_KEY,
    }
    kwargs.update(overrides)
    return p.task_execution_role_policy(**kwargs)


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in p.statements(document)}


# --- trust policy ------------------------------------------------------------------------------


def test_assume_role_policy_trusts_only_ecs_tasks_of_this_account() -> None:
    doc = p.ecs_tasks_assume_role_policy(ACCOUNT)
    (statement,) = p.statements(doc)
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, statement
    assert p.actions(statement) == ["sts:AssumeRole"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}, "confused-deputy guard missing"
    assert p.least_privilege_violations(doc) == []


def test_assume_role_policy_requires_account() -> None:
    with pytest.raises(ValueError, match="account_id"):
        p.ecs_tasks_assume_role_policy("")


# --- execution role ----------------------------------------------------------------------------


def test_execution_policy_is_least_privilege_and_json_serialisable() -> None:
    doc = execution_policy()
    assert p.least_privilege_violations(doc) == []
    assert json.loads(json.dumps(doc)) == doc


def test_execution_policy_ecr_token_is_the_only_star_resource_statement() -> None:
    stars = [s for s in p.statements(execution_policy()) if "*" in p.resources(s)]
    assert [p.actions(s) for s in stars] == [["ecr:GetAuthorizationToken"]]


def test_execution_policy_pulls_only_from_the_given_repositories() -> None:
    pull = by_sid(execution_policy())["EcrPull"]
    assert sorted(p.actions(pull)) == sorted(
        ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    )
    assert sorted(p.resources(pull)) == sorted(REPOS)


def test_execution_policy_writes_only_to_the_given_log_groups_streams() -> None:
    logs = by_sid(execution_policy())["WriteTaskLogs"]
    assert sorted(p.actions(logs)) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert sorted(p.resources(logs)) == sorted(f"{g}:*" for g in GROUPS)


def test_execution_policy_reads_exactly_the_two_secrets() -> None:
    secrets = by_sid(execution_policy())["ReadInjectedSecrets"]
    assert p.actions(secrets) == ["secretsmanager:GetSecretValue"]
    assert sorted(p.resources(secrets)) == sorted([DB_SECRET, REDIS_SECRET])


def test_execution_policy_decrypts_with_the_data_key_only_via_secrets_manager() -> None:
    decrypt = by_sid(execution_policy())["DecryptSecretsViaSecretsManager"]
    assert p.actions(decrypt) == ["kms:Decrypt"]
    assert p.resources(decrypt) == [DATA_KEY]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}


def test_execution_policy_deduplicates_resources() -> None:
    secrets = by_sid(execution_policy(secret_arns=[DB_SECRET, DB_SECRET]))["ReadInjectedSecrets"]
    assert p.resources(secrets) == [DB_SECRET]


@pytest.mark.parametrize(
    "override",
    [
        {"repository_arns": []},
        {"log_group_arns": []},
        {"secret_arns": [DB_SECRET, ""]},
        {"secrets_key_arn": ""},
        {"region": ""},
    ],
    ids=["no-repos", "no-log-groups", "empty-secret", "no-key", "no-region"],
)
def test_execution_policy_refuses_empty_scopes(override: dict[str, Any]) -> None:
    # An empty Resource list is rejected by IAM; an empty ARN would be a silent bug.
    with pytest.raises(ValueError):
        execution_policy(**override)


def test_execution_policy_of_a_task_without_secrets_reads_no_secret() -> None:
    """The services' execution role: images and logs only; no secret, no key (issue #8.6: no master secret)."""
    doc = execution_policy(secret_arns=[], secrets_key_arn=None)
    assert sorted(by_sid(doc)) == ["EcrAuthorizationToken", "EcrPull", "WriteTaskLogs"]
    assert not any(a.startswith(("secretsmanager:", "kms:")) for s in p.statements(doc) for a in p.actions(s))


def test_log_stream_arns_appends_stream_wildcard_once() -> None:
    assert p.log_stream_arns(["arn:g", "arn:h:*"]) == ["arn:g:*", "arn:h:*"]


# --- task roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "payment", "notification"])
def test_task_role_policy_publishes_metrics_only_into_its_own_namespace(service: str) -> None:
    doc = p.service_task_role_policy(service, scope="prod")
    (statement,) = p.statements(doc)
    assert p.actions(statement) == ["cloudwatch:PutMetricData"]
    assert p.resources(statement) == ["*"]
    # The stack is in the namespace: in an account shared by dev and prod, dev's tasks cannot write prod's series.
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": f"ScalePayments/prod/{service}"}}
    assert p.least_privilege_violations(doc) == []


def test_task_role_policy_connects_as_its_own_database_and_redis_user_only() -> None:
    """IAM authentication (issue #8.6, #8.7): rds-db:connect on one database user, elasticache:Connect on one user."""
    db_user = p.rds_db_user_arn(REGION, "123456789012", "cluster-ABC", "scalepay_payment")
    assert db_user == f"arn:aws:rds-db:{REGION}:123456789012:dbuser:cluster-ABC/scalepay_payment"
    group = f"arn:aws:elasticache:{REGION}:123456789012:replicationgroup:scalepay-redis-prod"
    user = p.elasticache_user_arn(REGION, "123456789012", "scalepay-payment-redis-prod")
    doc = p.service_task_role_policy("payment", scope="prod", db_user_arns=[db_user], cache_resource_arns=[group, user])
    statements = by_sid(doc)
    assert p.actions(statements["ConnectAsOwnDatabaseUser"]) == ["rds-db:connect"]
    assert p.resources(statements["ConnectAsOwnDatabaseUser"]) == [db_user]
    assert p.actions(statements["ConnectToRedisAsOwnUser"]) == ["elasticache:Connect"]
    assert p.resources(statements["ConnectToRedisAsOwnUser"]) == sorted([group, user])
    assert p.least_privilege_violations(doc) == []


def test_task_role_policy_requires_service_and_scope() -> None:
    with pytest.raises(ValueError):
        p.service_task_role_policy("", scope="prod")
    with pytest.raises(ValueError):
        p.service_task_role_policy("payment", scope="")


# --- the least-privilege checker: one mutation per rule ----------------------------------------------


def compliant() -> dict[str, Any]:
    return execution_policy()


def mutate(path_sid: str, key: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(compliant())
    for statement in doc["Statement"]:
        if statement["Sid"] == path_sid:
            statement[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (mutate("EcrPull", "Action", "*"), "wildcard action '*'"),
        (mutate("EcrPull", "Action", ["ecr:*"]), "wildcard action 'ecr:*'"),
        (mutate("EcrPull", "Action", ["ecr:Batch*"]), "wildcard action 'ecr:Batch*'"),
        (mutate("EcrPull", "Resource", "*"), "Resource '*' for actions that support resource-level permissions"),
        (mutate("ReadInjectedSecrets", "Resource", ["*"]), "secretsmanager:GetSecretValue"),
        (mutate("EcrPull", "Resource", []), "no resources"),
        (mutate("EcrPull", "Action", []), "no actions"),
        (mutate("EcrPull", "NotResource", ["arn:x"]), "NotResource"),
        ({**compliant(), "Version": "2008-10-17"}, "Version"),
        ({"Version": "2012-10-17", "Statement": []}, "no statements"),
    ],
    ids=[
        "star-action",
        "service-star-action",
        "prefix-star-action",
        "star-resource-scoped-action",
        "star-resource-secrets",
        "no-resources",
        "no-actions",
        "not-resource",
        "old-version",
        "empty",
    ],
)
def test_least_privilege_violations_catch_each_rule(doc: dict[str, Any], expected: str) -> None:
    problems = p.least_privilege_violations(doc)
    assert any(expected in problem for problem in problems), problems


def test_least_privilege_accepts_single_statement_object() -> None:
    doc = {"Version": "2012-10-17", "Statement": p.statements(p.service_task_role_policy("api", scope="dev"))[0]}
    assert p.least_privilege_violations(doc) == []


def test_star_resource_mixed_with_scoped_action_is_flagged() -> None:
    doc = mutate("EcrAuthorizationToken", "Action", ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"])
    problems = p.least_privilege_violations(doc)
    assert len(problems) == 1 and "['ecr:BatchGetImage']" in problems[0], problems
