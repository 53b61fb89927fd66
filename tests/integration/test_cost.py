"""Cost: right-sizing per environment."""

from __future__ import annotations

from tests.integration.support import (
    ClientsFor,
    Outputs,
    aurora_cluster,
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
