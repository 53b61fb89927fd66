"""What a stack deployed, read back from the AWS API emulator: the input of the local data plane.

The data plane never reads ``lib/`` or the presets. It starts servers and tasks for what the control plane
created in the emulator, so a wrong setting in the program shows up as a platform that does not work:
clusters, their parameter groups and master secrets (RDS, Secrets Manager), replication groups and their users
(ElastiCache), services and task definitions (ECS), the load balancers (ELBv2, read by
:mod:`tools.localplane.alb_config`). The stack's deployment record (:mod:`tools.emulator.state`) says which
resources belong to the stack, and supplies the two facts moto accepts but does not keep (see
``tools/emulator/handlers/moto_fixes.py``): a service's Service Connect configuration and the members of an
ElastiCache user group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.emulator.engine import Aws
from tools.emulator.state import ResourceRecord, StackRecord
from tools.localplane.redis_front import RedisUser

CLUSTER = "aws:rds/cluster:Cluster"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
ECS_SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"


class NotRunnableError(RuntimeError):
    """The deployed stack lacks something the data plane needs to run it (one line for the operator)."""


@dataclass(frozen=True)
class AuroraCluster:
    """An Aurora PostgreSQL cluster as DescribeDBClusters and its parameter group show it."""

    identifier: str
    resource_id: str
    endpoint: str
    reader_endpoint: str
    port: int
    database: str
    master_username: str
    secret_arn: str
    iam_auth: bool
    force_ssl: bool
    min_tls_version: str


@dataclass(frozen=True)
class CacheGroup:
    """An ElastiCache replication group, its endpoint and the users of its user groups."""

    identifier: str
    primary_endpoint: str
    reader_endpoint: str
    port: int
    transit_encryption: bool
    users: tuple[RedisUser, ...]


@dataclass(frozen=True)
class Container:
    """The (only) container of a task definition, as ECS would run it."""

    name: str
    image: str
    environment: Mapping[str, str]
    secrets: Mapping[str, str]  # variable -> valueFrom (secret ARN, optionally :json-key:version-stage:version-id)
    port: int | None
    health_check: tuple[str, ...]  # the CMD of the container health check, empty if none
    health_interval_s: int
    health_timeout_s: int
    health_retries: int
    health_start_period_s: int
    readonly_root: bool
    mount_paths: tuple[str, ...]


@dataclass(frozen=True)
class TaskDefinition:
    """A task definition: family, roles and its container."""

    arn: str
    family: str
    task_role_arn: str
    execution_role_arn: str
    container: Container


@dataclass(frozen=True)
class ServiceConnect:
    """What a service publishes in its Service Connect namespace."""

    namespace_arn: str
    namespace: str
    aliases: tuple[tuple[str, int], ...]  # (dns name, port) clients use


@dataclass(frozen=True)
class EcsService:
    """An ECS service: how many tasks of which definition, and where they are registered."""

    name: str
    cluster: str
    desired_count: int
    task_definition: TaskDefinition
    target_group_arns: tuple[str, ...]
    container_port: int | None
    service_connect: ServiceConnect | None


@dataclass(frozen=True)
class DeployedStack:
    """Everything of one stack the data plane runs."""

    stack: str
    endpoint: str
    account_id: str
    region: str
    clusters: tuple[AuroraCluster, ...] = ()
    caches: tuple[CacheGroup, ...] = ()
    services: tuple[EcsService, ...] = ()
    one_off_tasks: tuple[TaskDefinition, ...] = ()  # task definitions no service runs (the migrate job)
    load_balancer_arns: tuple[str, ...] = ()
    certificate_files: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # certificate ARN -> (cert, key)


def _of_type(record: StackRecord, token: str) -> list[ResourceRecord]:
    return [r for r in record.resources if r.type == token]


def _cluster(aws: Aws, identifier: str) -> AuroraCluster:
    rds = aws.client("rds")
    found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    parameters: dict[str, str] = {}
    group = found.get("DBClusterParameterGroup")
    if group:
        pages = rds.get_paginator("describe_db_cluster_parameters").paginate(DBClusterParameterGroupName=group, Source="user")
        for page in pages:
            for parameter in page["Parameters"]:
                parameters[parameter["ParameterName"]] = str(parameter.get("ParameterValue", ""))
    secret = (found.get("MasterUserSecret") or {}).get("SecretArn")
    if not secret:
        raise NotRunnableError(f"Aurora cluster {identifier}: no RDS-managed master secret (ManageMasterUserPassword)")
    return AuroraCluster(
        identifier=identifier,
        resource_id=found["DbClusterResourceId"],
        endpoint=found["Endpoint"],
        reader_endpoint=found.get("ReaderEndpoint", ""),
        port=int(found.get("Port") or 5432),
        database=found.get("DatabaseName") or "postgres",
        master_username=found["MasterUsername"],
        secret_arn=secret,
        iam_auth=bool(found.get("IAMDatabaseAuthenticationEnabled")),
        force_ssl=parameters.get("rds.force_ssl") == "1",
        min_tls_version=parameters.get("ssl_min_protocol_version") or "TLSv1.2",
    )


def _user_group_members(record: StackRecord) -> dict[str, list[str]]:
    return {r.id: [str(u) for u in r.state.get("userIds") or r.inputs.get("userIds") or []] for r in _of_type(record, USER_GROUP)}


def _cache(aws: Aws, identifier: str, members: Mapping[str, list[str]]) -> CacheGroup:
    elasticache = aws.client("elasticache")
    found = elasticache.describe_replication_groups(ReplicationGroupId=identifier)["ReplicationGroups"][0]
    node_group = found["NodeGroups"][0]
    primary = node_group["PrimaryEndpoint"]
    users: list[RedisUser] = []
    for group_id in found.get("UserGroupIds") or []:
        for user_id in members.get(group_id, []):
            user = elasticache.describe_users(UserId=user_id)["Users"][0]
            kind = str((user.get("Authentication") or {}).get("Type", "no-password")).lower()
            users.append(RedisUser(user["UserId"], user["UserName"], user.get("AccessString", ""), kind))
    return CacheGroup(
        identifier=identifier,
        primary_endpoint=primary["Address"],
        reader_endpoint=(node_group.get("ReaderEndpoint") or {}).get("Address", ""),
        port=int(primary.get("Port") or 6379),
        transit_encryption=bool(found.get("TransitEncryptionEnabled")),
        users=tuple(users),
    )


def _task_definition(aws: Aws, arn: str) -> TaskDefinition:
    found = aws.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    containers = found.get("containerDefinitions") or []
    if len(containers) != 1:
        raise NotRunnableError(f"task definition {arn}: {len(containers)} containers; the local runner runs exactly one")
    c = containers[0]
    check = c.get("healthCheck") or {}
    command = [str(part) for part in check.get("command") or []]
    if command[:1] == ["CMD"]:
        command = command[1:]
    elif command:
        raise NotRunnableError(f"task definition {arn}: health check {command[:1]} (only CMD is run locally)")
    ports = c.get("portMappings") or []
    return TaskDefinition(
        arn=found["taskDefinitionArn"],
        family=found["family"],
        task_role_arn=found.get("taskRoleArn", ""),
        execution_role_arn=found.get("executionRoleArn", ""),
        container=Container(
            name=c["name"],
            image=c["image"],
            environment={e["name"]: e["value"] for e in c.get("environment") or []},
            secrets={s["name"]: s["valueFrom"] for s in c.get("secrets") or []},
            port=int(ports[0]["containerPort"]) if ports else None,
            health_check=tuple(command),
            health_interval_s=int(check.get("interval", 30)),
            health_timeout_s=int(check.get("timeout", 5)),
            health_retries=int(check.get("retries", 3)),
            health_start_period_s=int(check.get("startPeriod", 0)),
            readonly_root=bool(c.get("readonlyRootFilesystem")),
            mount_paths=tuple(m["containerPath"] for m in c.get("mountPoints") or []),
        ),
    )


def _service_connect(inputs: Mapping[str, Any], namespaces: Mapping[str, str]) -> ServiceConnect | None:
    config = inputs.get("serviceConnectConfiguration") or {}
    if not config.get("enabled"):
        return None
    arn = str(config.get("namespace", ""))
    aliases = tuple(
        (str(alias["dnsName"]), int(alias["port"]))
        for service in config.get("services") or []
        for alias in service.get("clientAlias") or []
    )
    return ServiceConnect(arn, namespaces.get(arn, arn.rsplit("/", 1)[-1]), aliases)


def read_stack(aws: Aws, record: StackRecord, certificate_files: Mapping[str, tuple[str, str]] | None = None) -> DeployedStack:
    """The runnable parts of the stack ``record`` describes, as the emulator holds them now."""
    members = _user_group_members(record)
    namespaces = {
        n["Arn"]: n["Name"]
        for page in aws.client("servicediscovery").get_paginator("list_namespaces").paginate()
        for n in page["Namespaces"]
    }
    ecs = aws.client("ecs")
    services = []
    run_by_services: set[str] = set()
    for resource in _of_type(record, ECS_SERVICE):
        cluster = str(resource.state.get("cluster") or resource.inputs.get("cluster"))
        found_all = ecs.describe_services(cluster=cluster, services=[resource.id])["services"]
        if not found_all or found_all[0].get("status") != "ACTIVE":
            raise NotRunnableError(f"ECS service {resource.id} is not active in the emulator")
        found = found_all[0]
        definition = _task_definition(aws, found["taskDefinition"])
        run_by_services.add(definition.arn)
        balancers = found.get("loadBalancers") or []
        services.append(
            EcsService(
                name=found["serviceName"],
                cluster=cluster,
                desired_count=int(found.get("desiredCount") or 0),
                task_definition=definition,
                target_group_arns=tuple(b["targetGroupArn"] for b in balancers if b.get("targetGroupArn")),
                container_port=int(balancers[0]["containerPort"]) if balancers else definition.container.port,
                service_connect=_service_connect(resource.inputs, namespaces),
            )
        )
    one_off = tuple(
        _task_definition(aws, r.state.get("arn") or r.id)
        for r in _of_type(record, TASK_DEFINITION)
        if (r.state.get("arn") or r.id) not in run_by_services
    )
    return DeployedStack(
        stack=record.stack,
        endpoint=record.endpoint,
        account_id=record.account_id,
        region=record.region,
        clusters=tuple(_cluster(aws, r.id) for r in _of_type(record, CLUSTER)),
        caches=tuple(_cache(aws, r.id, members) for r in _of_type(record, REPLICATION_GROUP)),
        services=tuple(services),
        one_off_tasks=one_off,
        load_balancer_arns=tuple(str(r.state.get("arn") or r.id) for r in _of_type(record, LOAD_BALANCER)),
        certificate_files=dict(certificate_files or {}),
    )


def secret_value(aws: Aws, value_from: str) -> str:
    """Resolve an ECS ``secrets[].valueFrom`` against Secrets Manager, as the ECS agent does.

    ``arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>:<version-stage>:<version-id>]``:
    the whole secret string, or one key of its JSON.
    """
    parts = value_from.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager":
        raise NotRunnableError(f"secret {value_from!r}: only Secrets Manager ARNs are resolved locally")
    arn = ":".join(parts[:7])
    json_key, stage, version = [*parts[7:10], "", "", ""][:3]
    request: dict[str, str] = {"SecretId": arn}
    if stage:
        request["VersionStage"] = stage
    if version:
        request["VersionId"] = version
    text = aws.client("secretsmanager").get_secret_value(**request)["SecretString"]
    if not json_key:
        return str(text)
    document = json.loads(text)
    if json_key not in document:
        raise NotRunnableError(f"secret {arn}: no key {json_key!r} (keys: {sorted(document)})")
    return str(document[json_key])
