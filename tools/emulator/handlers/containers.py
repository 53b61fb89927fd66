"""ECR and ECS (Fargate): repositories, lifecycle policies, clusters, task definitions, services; and
Application Auto Scaling targets and policies for the services."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list


def _ecs_tags(req: Request) -> list[dict[str, str]]:
    """ECS takes lower-case ``key``/``value`` tags."""
    return tag_list(req.get("tags"), "key", "value")


def repository(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecr/repository:Repository -> CreateRepository, read back with DescribeRepositories."""
    ecr = aws.client("ecr")
    name = req.physical_name("name", 256).lower()
    scanning = req.get("imageScanningConfiguration") or {}
    encryption = (req.get("encryptionConfigurations") or [{}])[0]
    ecr.create_repository(
        **drop_none(
            {
                "repositoryName": name,
                "imageTagMutability": req.get("imageTagMutability"),
                "imageScanningConfiguration": {"scanOnPush": bool(scanning.get("scanOnPush"))} if scanning else None,
                "encryptionConfiguration": drop_none(
                    {"encryptionType": encryption.get("encryptionType"), "kmsKey": encryption.get("kmsKey") or None}
                )
                if encryption
                else None,
                "tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    found = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    found_encryption = found.get("encryptionConfiguration") or {}
    return name, state(
        req,
        name=name,
        arn=found["repositoryArn"],
        registryId=found["registryId"],
        repositoryUrl=found["repositoryUri"],
        imageTagMutability=found.get("imageTagMutability"),
        imageScanningConfiguration={"scanOnPush": found.get("imageScanningConfiguration", {}).get("scanOnPush", False)},
        encryptionConfigurations=[
            {"encryptionType": found_encryption.get("encryptionType"), "kmsKey": found_encryption.get("kmsKey", "")}
        ]
        if found_encryption
        else None,
    )


def lifecycle_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecr/lifecyclePolicy:LifecyclePolicy -> PutLifecyclePolicy, read back with GetLifecyclePolicy."""
    ecr = aws.client("ecr")
    name = req.get("repository")
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=as_json(req.get("policy")))
    found = ecr.get_lifecycle_policy(repositoryName=name)
    return name, state(req, registryId=found["registryId"], policy=found["lifecyclePolicyText"])


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


def cluster(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/cluster:Cluster -> CreateCluster, read back with DescribeClusters."""
    ecs = aws.client("ecs")
    name = req.physical_name("name", 255)
    configuration = req.get("configuration") or {}
    execute = configuration.get("executeCommandConfiguration")
    ecs.create_cluster(
        **drop_none(
            {
                "clusterName": name,
                "settings": [{"name": s["name"], "value": s["value"]} for s in req.get("settings", [])] or None,
                "configuration": {"executeCommandConfiguration": _execute_command_configuration(execute)} if execute else None,
                "tags": _ecs_tags(req) or None,
            }
        )
    )
    found = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    return found["clusterArn"], state(
        req,
        name=found["clusterName"],
        arn=found["clusterArn"],
        settings=[{"name": s["name"], "value": s["value"]} for s in found.get("settings", [])] or req.get("settings"),
    )


def cluster_capacity_providers(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/clusterCapacityProviders:ClusterCapacityProviders -> PutClusterCapacityProviders."""
    ecs = aws.client("ecs")
    name = req.get("clusterName")
    ecs.put_cluster_capacity_providers(
        cluster=name,
        capacityProviders=list(req.get("capacityProviders", [])),
        defaultCapacityProviderStrategy=[
            drop_none({"capacityProvider": s["capacityProvider"], "weight": s.get("weight"), "base": s.get("base")})
            for s in req.get("defaultCapacityProviderStrategies", [])
        ],
    )
    found = ecs.describe_clusters(clusters=[name])["clusters"][0]
    return name, state(
        req,
        capacityProviders=found.get("capacityProviders", []),
        defaultCapacityProviderStrategies=[
            {"capacityProvider": s["capacityProvider"], "weight": s.get("weight", 0), "base": s.get("base", 0)}
            for s in found.get("defaultCapacityProviderStrategy", [])
        ],
    )


def task_definition(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/taskDefinition:TaskDefinition -> RegisterTaskDefinition, read back with DescribeTaskDefinition."""
    ecs = aws.client("ecs")
    containers = req.get("containerDefinitions")
    runtime = req.get("runtimePlatform") or {}
    storage = req.get("ephemeralStorage") or {}
    registered = ecs.register_task_definition(
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
    found = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
    arn = found["taskDefinitionArn"]
    return found["family"], state(
        req,
        arn=arn,
        arnWithoutRevision=arn.rsplit(":", 1)[0],
        revision=found["revision"],
        family=found["family"],
        containerDefinitions=json.dumps(found["containerDefinitions"]),
        cpu=found.get("cpu"),
        memory=found.get("memory"),
        networkMode=found.get("networkMode"),
        taskRoleArn=found.get("taskRoleArn"),
        executionRoleArn=found.get("executionRoleArn"),
        requiresCompatibilities=found.get("requiresCompatibilities"),
    )


def service(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecs/service:Service -> CreateService, read back with DescribeServices."""
    ecs = aws.client("ecs")
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
    ecs.create_service(**params)
    found = ecs.describe_services(cluster=req.get("cluster"), services=[name])["services"][0]
    return found["serviceArn"], state(
        req,
        name=found["serviceName"],
        arn=found["serviceArn"],
        cluster=found.get("clusterArn", req.get("cluster")),
        desiredCount=found.get("desiredCount"),
        launchType=found.get("launchType") or req.get("launchType"),
        taskDefinition=found.get("taskDefinition"),
    )


def scalable_target(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:appautoscaling/target:Target -> RegisterScalableTarget, read back with DescribeScalableTargets."""
    aas = aws.client("application-autoscaling")
    namespace, resource_id, dimension = req.get("serviceNamespace"), req.get("resourceId"), req.get("scalableDimension")
    aas.register_scalable_target(
        **drop_none(
            {
                "ServiceNamespace": namespace,
                "ResourceId": resource_id,
                "ScalableDimension": dimension,
                "MinCapacity": req.get("minCapacity"),
                "MaxCapacity": req.get("maxCapacity"),
                "RoleARN": req.get("roleArn"),
            }
        )
    )
    found = next(
        t
        for t in aas.describe_scalable_targets(ServiceNamespace=namespace, ResourceIds=[resource_id])["ScalableTargets"]
        if t["ScalableDimension"] == dimension
    )
    return resource_id, state(
        req,
        arn=found.get("ScalableTargetARN"),
        minCapacity=found["MinCapacity"],
        maxCapacity=found["MaxCapacity"],
        roleArn=found.get("RoleARN"),
    )


def _metric_dimensions(dimensions: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"Name": d["name"], "Value": d["value"]} for d in dimensions]


def scaling_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:appautoscaling/policy:Policy -> PutScalingPolicy, read back with DescribeScalingPolicies."""
    aas = aws.client("application-autoscaling")
    name = req.get("name")
    tracking = req.get("targetTrackingScalingPolicyConfiguration")
    step = req.get("stepScalingPolicyConfiguration")
    tracking_params = None
    if tracking:
        predefined = tracking.get("predefinedMetricSpecification")
        customized = tracking.get("customizedMetricSpecification")
        tracking_params = drop_none(
            {
                "TargetValue": tracking.get("targetValue"),
                "DisableScaleIn": tracking.get("disableScaleIn"),
                "ScaleInCooldown": tracking.get("scaleInCooldown"),
                "ScaleOutCooldown": tracking.get("scaleOutCooldown"),
                "PredefinedMetricSpecification": drop_none(
                    {
                        "PredefinedMetricType": predefined.get("predefinedMetricType"),
                        "ResourceLabel": predefined.get("resourceLabel"),
                    }
                )
                if predefined
                else None,
                "CustomizedMetricSpecification": drop_none(
                    {
                        "MetricName": customized.get("metricName"),
                        "Namespace": customized.get("namespace"),
                        "Statistic": customized.get("statistic"),
                        "Unit": customized.get("unit"),
                        "Dimensions": _metric_dimensions(customized.get("dimensions") or []) or None,
                    }
                )
                if customized
                else None,
            }
        )
    step_params = None
    if step:
        step_params = drop_none(
            {
                "AdjustmentType": step.get("adjustmentType"),
                "Cooldown": step.get("cooldown"),
                "MetricAggregationType": step.get("metricAggregationType"),
                "MinAdjustmentMagnitude": step.get("minAdjustmentMagnitude"),
                "StepAdjustments": [
                    drop_none(
                        {
                            "MetricIntervalLowerBound": float(s["metricIntervalLowerBound"])
                            if s.get("metricIntervalLowerBound") not in (None, "")
                            else None,
                            "MetricIntervalUpperBound": float(s["metricIntervalUpperBound"])
                            if s.get("metricIntervalUpperBound") not in (None, "")
                            else None,
                            "ScalingAdjustment": s.get("scalingAdjustment"),
                        }
                    )
                    for s in step.get("stepAdjustments", [])
                ],
            }
        )
    response = aas.put_scaling_policy(
        **drop_none(
            {
                "PolicyName": name,
                "ServiceNamespace": req.get("serviceNamespace"),
                "ResourceId": req.get("resourceId"),
                "ScalableDimension": req.get("scalableDimension"),
                "PolicyType": req.get("policyType", "StepScaling"),
                "TargetTrackingScalingPolicyConfiguration": tracking_params,
                "StepScalingPolicyConfiguration": step_params,
            }
        )
    )
    found = next(
        p
        for p in aas.describe_scaling_policies(
            ServiceNamespace=req.get("serviceNamespace"), ResourceId=req.get("resourceId"), PolicyNames=[name]
        )["ScalingPolicies"]
    )
    return name, state(
        req,
        arn=found.get("PolicyARN", response["PolicyARN"]),
        policyType=found.get("PolicyType"),
        alarmArns=[a["AlarmARN"] for a in found.get("Alarms", response.get("Alarms", []))],
    )


HANDLERS = {
    "aws:ecr/repository:Repository": repository,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": lifecycle_policy,
    "aws:ecs/cluster:Cluster": cluster,
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": cluster_capacity_providers,
    "aws:ecs/taskDefinition:TaskDefinition": task_definition,
    "aws:ecs/service:Service": service,
    "aws:appautoscaling/target:Target": scalable_target,
    "aws:appautoscaling/policy:Policy": scaling_policy,
}
