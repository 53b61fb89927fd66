"""Cost: right-sizing per environment."""

from __future__ import annotations

from tests.expectations import EXPECTED
from tests.integration.conftest import Deployed
from tests.integration.support import (
    SERVICES,
    ClientsFor,
    Outputs,
    aurora_cluster,
    redis_group,
)


def test_right_sizing_rises_with_the_environment(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Dev is smaller than staging, staging smaller than prod: no prod-sized bill for dev."""
    cpu = []
    for env in ("dev", "staging", "prod"):
        o, aws = all_outputs[env], clients_for(env)
        task = aws("ecs").describe_task_definition(taskDefinition=o["taskDefinitionArns"]["payment"])["taskDefinition"]
        cpu.append(int(task["cpu"]))
    assert cpu[0] < cpu[1] < cpu[2]


def test_dev_database_uses_the_smallest_valid_class(all_outputs: dict[str, Outputs], clients_for: ClientsFor) -> None:
    """Dev runs the cheapest instance class Aurora PostgreSQL accepts, prod a memory-optimised one."""
    classes = {}
    for env in ("dev", "prod"):
        o, aws = all_outputs[env], clients_for(env)
        member = aurora_cluster(aws, o)["DBClusterMembers"][0]["DBInstanceIdentifier"]
        classes[env] = aws("rds").describe_db_instances(DBInstanceIdentifier=member)["DBInstances"][0]["DBInstanceClass"]
    assert classes["dev"] in ("db.t3.medium", "db.t4g.medium")
    assert classes["prod"] == "db.r5.xlarge"


def test_sizes_match_the_environment_table(deployed: Deployed) -> None:
    """Every task, database instance and cache node is the size the environment table states: no prod-sized bill in
    dev, no dev-sized node carrying prod's payments."""
    o, aws, expected = deployed.outputs, deployed.aws, EXPECTED[deployed.env]
    for service in SERVICES:
        task = aws("ecs").describe_task_definition(taskDefinition=o["taskDefinitionArns"][service])["taskDefinition"]
        assert (int(task["cpu"]), int(task["memory"])) == (expected.task_cpu, expected.task_memory), service
    for member in aurora_cluster(aws, o)["DBClusterMembers"]:
        name = member["DBInstanceIdentifier"]
        instance = aws("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        assert instance["DBInstanceClass"] == expected.db_instance_class, name
    assert redis_group(aws, o)["CacheNodeType"] == expected.cache_node_type
