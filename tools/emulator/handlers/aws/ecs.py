"""aws:ecs -- Fargate clusters, their capacity providers, task definitions and services."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import (
    GoneError,
    delete_call,
    described,
    drop_none,
    fields,
    first_or_gone,
    given,
    none_when,
    read_by,
    refreshed,
    state,
    tag_list,
)

# DeleteCluster/DeleteService leave the resource listed as INACTIVE (AWS and moto alike); the provider treats it as gone.
_INACTIVE = "INACTIVE"
_NO_CLUSTER = "ClusterNotFoundException"


def _ecs_tags(req: Request) -> list[dict[str, str]]:
    """ECS takes lower-case ``key``/``value`` tags."""
    return tag_list(req.get("tags"), "key", "value")


def _execute_command_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    """``configuration.executeCommandConfiguration`` -> the API shape."""
    log = config.get("logConfiguration") or {}
    return drop_none(
        {
            "kmsKeyId": config.get("kmsKeyId"),
            "logging": config.get("logging"),
            "logConfiguration": drop_none(
                {
                    "cloudWatchLogGroupName": log.get("cloudWatchLogGroupName"),
                    "cloudWatchEncryptionEnabled": log.get("cloudWatchEncryptionEnabled"),
                    "s3BucketName": log.get("s3BucketName"),
                    "s3EncryptionEnabled": log.get("s3EncryptionEnabled"),
                    "s3KeyPrefix": log.get("s3KeyPrefix"),
                }
            )
            or None,
        }
    )


def _active_cluster(aws: Aws, cluster: str, include: list[str] | None = None) -> dict[str, Any]:
    """DescribeClusters for one cluster (name or ARN); :class:`GoneError` when it is missing or INACTIVE."""
    found = aws.client("ecs").describe_clusters(clusters=[cluster], **({"include": include} if include else {}))["clusters"]
    active: dict[str, Any] = first_or_gone((c for c in found if c.get("status") != _INACTIVE), cluster)
    return active


# --- aws:ecs/cluster:Cluster -----------------------------------------------------------------------------


def _cluster(aws: Aws, cluster: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeClusters; an INACTIVE (deleted) cluster is gone."""
    found = _active_cluster(aws, cluster, ["SETTINGS", "CONFIGURATIONS"])
    return {
        "name": found["clusterName"],
        "arn": found["clusterArn"],
        "settings": [{"name": s["name"], "value": s["value"]} for s in found.get("settings", [])] or inputs.get("settings"),
    }


def create_cluster(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/cluster:Cluster -> CreateCluster, read back with DescribeClusters."""
    name = req.physical_name("name", 255)
    configuration = req.get("configuration") or {}
    execute = configuration.get("executeCommandConfiguration")
    aws.client("ecs").create_cluster(
        **drop_none(
            {
                "clusterName": name,
                "settings": [{"name": s["name"], "value": s["value"]} for s in req.get("settings", [])] or None,
                "configuration": {"executeCommandConfiguration": _execute_command_configuration(execute)} if execute else None,
                "tags": _ecs_tags(req) or None,
            }
        )
    )
    computed = _cluster(aws, name, req.inputs)
    return computed["arn"], state(req, **computed)


read_cluster = read_by(_cluster, _NO_CLUSTER)
# Only while it is active. AWS refuses while services are active; those are resources deleted before it.
delete_cluster = delete_call("ecs", "delete_cluster", "cluster", _NO_CLUSTER, exists=_cluster)


# --- aws:ecs/clusterCapacityProviders:ClusterCapacityProviders --------------------------------------------


def _capacity_providers(aws: Aws, cluster: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeClusters of the cluster (the id is its name); gone with the cluster."""
    found = _active_cluster(aws, cluster)
    return {
        "capacityProviders": found.get("capacityProviders", []),
        "defaultCapacityProviderStrategies": [
            {"capacityProvider": s["capacityProvider"], "weight": s.get("weight", 0), "base": s.get("base", 0)}
            for s in found.get("defaultCapacityProviderStrategy", [])
        ],
    }


def create_cluster_capacity_providers(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/clusterCapacityProviders:ClusterCapacityProviders -> PutClusterCapacityProviders."""
    name = req.get("clusterName")
    aws.client("ecs").put_cluster_capacity_providers(
        cluster=name,
        capacityProviders=list(req.get("capacityProviders", [])),
        defaultCapacityProviderStrategy=[
            drop_none({"capacityProvider": s["capacityProvider"], "weight": s.get("weight"), "base": s.get("base")})
            for s in req.get("defaultCapacityProviderStrategies", [])
        ],
    )
    return described(aws, req, name, _capacity_providers)


read_cluster_capacity_providers = read_by(_capacity_providers, _NO_CLUSTER)
# PutClusterCapacityProviders with empty lists, as the provider does: the association has no delete call.
delete_cluster_capacity_providers = delete_call(
    "ecs",
    "put_cluster_capacity_providers",
    "cluster",
    _NO_CLUSTER,
    exists=_capacity_providers,
    capacityProviders=[],
    defaultCapacityProviderStrategy=[],
)


# --- aws:ecs/taskDefinition:TaskDefinition ---------------------------------------------------------------


def _task_definition(aws: Aws, task_definition: str) -> dict[str, Any]:
    found = aws.client("ecs").describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    if found.get("status") == _INACTIVE:
        raise GoneError(task_definition)
    arn = found["taskDefinitionArn"]
    return {
        "arn": arn,
        "arnWithoutRevision": arn.rsplit(":", 1)[0],
        "revision": found["revision"],
        "family": found["family"],
        "containerDefinitions": json.dumps(found["containerDefinitions"]),
        **fields(found, "cpu", "memory", "networkMode", "taskRoleArn", "executionRoleArn", "requiresCompatibilities"),
    }


def create_task_definition(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/taskDefinition:TaskDefinition -> RegisterTaskDefinition, read back with DescribeTaskDefinition."""
    containers = req.get("containerDefinitions")
    runtime = req.get("runtimePlatform") or {}
    storage = req.get("ephemeralStorage") or {}
    registered = aws.client("ecs").register_task_definition(
        **drop_none(
            {
                "family": req.get("family"),
                "containerDefinitions": json.loads(containers) if isinstance(containers, str) else containers,
                "taskRoleArn": req.get("taskRoleArn"),
                "executionRoleArn": req.get("executionRoleArn"),
                "networkMode": req.get("networkMode"),
                "requiresCompatibilities": list(req.get("requiresCompatibilities", [])) or None,
                "cpu": str(req.get("cpu")) if req.get("cpu") else None,
                "memory": str(req.get("memory")) if req.get("memory") else None,
                "pidMode": req.get("pidMode"),
                "ipcMode": req.get("ipcMode"),
                "volumes": [
                    {"name": v["name"], **({"host": {"sourcePath": v["hostPath"]}} if v.get("hostPath") else {})}
                    for v in req.get("volumes", [])
                ]
                or None,
                "runtimePlatform": drop_none(
                    {
                        "cpuArchitecture": runtime.get("cpuArchitecture"),
                        "operatingSystemFamily": runtime.get("operatingSystemFamily"),
                    }
                )
                if runtime
                else None,
                "ephemeralStorage": {"sizeInGiB": storage["sizeInGib"]} if storage.get("sizeInGib") else None,
                "tags": _ecs_tags(req) or None,
            }
        )
    )["taskDefinition"]
    computed = _task_definition(aws, registered["taskDefinitionArn"])
    # The provider's id is the family; the revision is found again through the recorded ARN.
    return computed["family"], state(req, **computed)


@none_when("ClientException")
def read_task_definition(aws: Aws, _family: str, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeTaskDefinition of the recorded revision; an INACTIVE (deregistered) one is gone."""
    return refreshed(recorded, **_task_definition(aws, recorded["arn"]))


@none_when("ClientException")
def delete_task_definition(aws: Aws, _family: str, recorded: Mapping[str, Any]) -> None:
    """DeregisterTaskDefinition of the recorded revision (the provider's delete; ``skipDestroy`` keeps it)."""
    if given(recorded, "skipDestroy", False):
        return
    _task_definition(aws, recorded["arn"])
    aws.client("ecs").deregister_task_definition(taskDefinition=recorded["arn"])


# --- aws:ecs/service:Service -----------------------------------------------------------------------------


def _service(aws: Aws, service: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeServices in the service's cluster; an INACTIVE (deleted) service is gone."""
    found_all = aws.client("ecs").describe_services(cluster=inputs.get("cluster"), services=[service])["services"]
    found = first_or_gone((s for s in found_all if s.get("status") != _INACTIVE), service)
    return {
        "name": found["serviceName"],
        "arn": found["serviceArn"],
        "cluster": found.get("clusterArn", inputs.get("cluster")),
        "desiredCount": found.get("desiredCount"),
        "launchType": found.get("launchType") or inputs.get("launchType"),
        "taskDefinition": found.get("taskDefinition"),
    }


def create_service(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/service:Service -> CreateService, read back with DescribeServices."""
    name = req.physical_name("name", 255)
    network = req.get("networkConfiguration") or {}
    breaker = req.get("deploymentCircuitBreaker") or {}
    deployment = drop_none(
        {
            "deploymentCircuitBreaker": {"enable": bool(breaker.get("enable")), "rollback": bool(breaker.get("rollback"))}
            if breaker
            else None,
            "maximumPercent": req.get("deploymentMaximumPercent"),
            "minimumHealthyPercent": req.get("deploymentMinimumHealthyPercent"),
        }
    )
    controller = req.get("deploymentController") or {}
    params = drop_none(
        {
            "cluster": req.get("cluster"),
            "serviceName": name,
            "taskDefinition": req.get("taskDefinition"),
            "desiredCount": req.get("desiredCount"),
            "launchType": req.get("launchType"),
            "platformVersion": req.get("platformVersion"),
            "schedulingStrategy": req.get("schedulingStrategy"),
            "capacityProviderStrategy": [
                drop_none({"capacityProvider": s["capacityProvider"], "weight": s.get("weight"), "base": s.get("base")})
                for s in req.get("capacityProviderStrategies", [])
            ]
            or None,
            "networkConfiguration": {
                "awsvpcConfiguration": drop_none(
                    {
                        "subnets": list(network.get("subnets", [])),
                        "securityGroups": list(network.get("securityGroups", [])) or None,
                        "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED",
                    }
                )
            }
            if network
            else None,
            "loadBalancers": [
                drop_none(
                    {
                        "targetGroupArn": lb.get("targetGroupArn"),
                        "containerName": lb.get("containerName"),
                        "containerPort": lb.get("containerPort"),
                        "loadBalancerName": lb.get("elbName"),
                    }
                )
                for lb in req.get("loadBalancers", [])
            ]
            or None,
            "healthCheckGracePeriodSeconds": req.get("healthCheckGracePeriodSeconds"),
            "deploymentConfiguration": deployment or None,
            "deploymentController": {"type": controller["type"]} if controller.get("type") else None,
            "enableExecuteCommand": req.get("enableExecuteCommand"),
            "enableECSManagedTags": req.get("enableEcsManagedTags"),
            "propagateTags": req.get("propagateTags"),
            "tags": _ecs_tags(req) or None,
        }
    )
    aws.client("ecs").create_service(**params)
    computed = _service(aws, name, req.inputs)
    return computed["arn"], state(req, **computed)


read_service = read_by(_service, _NO_CLUSTER, "ServiceNotFoundException")


@none_when(_NO_CLUSTER, "ServiceNotFoundException", "ServiceNotActiveException")
def delete_service(aws: Aws, arn: str, recorded: Mapping[str, Any]) -> None:
    """Scale to 0 (UpdateService), then DeleteService with force, as the provider does."""
    ecs = aws.client("ecs")
    _service(aws, arn, recorded)
    ecs.update_service(cluster=recorded["cluster"], service=arn, desiredCount=0)
    ecs.delete_service(cluster=recorded["cluster"], service=arn, force=True)


RESOURCES = (
    ResourceHandler("aws:ecs/cluster:Cluster", create_cluster, read_cluster, delete_cluster),
    ResourceHandler(
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        create_cluster_capacity_providers,
        read_cluster_capacity_providers,
        delete_cluster_capacity_providers,
    ),
    ResourceHandler(
        "aws:ecs/taskDefinition:TaskDefinition", create_task_definition, read_task_definition, delete_task_definition
    ),
    ResourceHandler("aws:ecs/service:Service", create_service, read_service, delete_service),
)
