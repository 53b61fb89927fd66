"""What the integration scenarios share: expected values, typed access to a deployed environment, AWS reads.

Expected values are written out here from the README's environment table, independently of
``lib/config.py``: a preset changed by mistake fails a scenario instead of moving the expectation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from tests.integration.conftest import AwsClients

Outputs = dict[str, Any]
ClientsFor = Callable[[str], AwsClients]

SERVICES = ("api", "payment", "notification")
PATHS = {"api": "/api/*", "payment": "/payment/*", "notification": "/notification/*"}
EXPECTED_TASKS = {"dev": (1, 2), "staging": (2, 4), "prod": (3, 10)}
EXPECTED_AZS = {"dev": 2, "staging": 2, "prod": 3}
EXPECTED_BACKUPS = {"dev": 1, "staging": 7, "prod": 30}


def sg_rules(aws: AwsClients, group_id: str) -> list[dict[str, Any]]:
    return aws("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def aurora_cluster(aws: AwsClients, o: Outputs) -> dict[str, Any]:
    return aws("rds").describe_db_clusters(DBClusterIdentifier=o["auroraClusterIdentifier"])["DBClusters"][0]


def redis_group(aws: AwsClients, o: Outputs) -> dict[str, Any]:
    groups = aws("elasticache").describe_replication_groups(ReplicationGroupId=o["redisReplicationGroupId"])
    return groups["ReplicationGroups"][0]


def describe_listener(aws: AwsClients, arn: str) -> dict[str, Any]:
    return aws("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"][0]


def ecs_services(aws: AwsClients, o: Outputs) -> list[dict[str, Any]]:
    names = [o["serviceNames"][s] for s in SERVICES]
    return aws("ecs").describe_services(cluster=o["ecsClusterName"], services=names)["services"]


def container_definition(aws: AwsClients, o: Outputs, service: str) -> dict[str, Any]:
    task = aws("ecs").describe_task_definition(taskDefinition=o["taskDefinitionArns"][service])["taskDefinition"]
    return task["containerDefinitions"][0]


def role_policies(aws: AwsClients, role_arn: str) -> list[dict[str, Any]]:
    iam = aws("iam")
    role = role_arn.split("/")[-1]
    documents = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        documents.append(json.loads(unquote(document)) if isinstance(document, str) else document)
    return documents


def policy_statements(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for document in documents:
        statements = document["Statement"]
        result.extend(statements if isinstance(statements, list) else [statements])
    return result


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
