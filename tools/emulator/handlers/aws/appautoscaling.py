"""aws:appautoscaling -- Application Auto Scaling targets and scaling policies (for the ECS services)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import api_params, described, drop_none, first_or_gone, none_when, read_by, state


def _scalable(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that name a scalable target (of a target, or of a policy): namespace, resource, dimension."""
    return {
        **api_params(inputs, "serviceNamespace", "resourceId", "scalableDimension"),
    }


# --- aws:appautoscaling/target:Target --------------------------------------------------------------------


def _target(aws: Aws, _resource_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeScalableTargets for the namespace, resource and dimension of ``inputs``."""
    namespace, resource_id, dimension = inputs.get("serviceNamespace"), inputs.get("resourceId"), inputs.get("scalableDimension")
    targets = (
        aws.client("application-autoscaling")
        .describe_scalable_targets(ServiceNamespace=namespace, ResourceIds=[resource_id])
        .get("ScalableTargets", [])
    )
    found = first_or_gone((t for t in targets if t["ScalableDimension"] == dimension), f"{namespace} {resource_id} {dimension}")
    return {
        "arn": found.get("ScalableTargetARN"),
        "minCapacity": found["MinCapacity"],
        "maxCapacity": found["MaxCapacity"],
        "roleArn": found.get("RoleARN"),
    }


def create_target(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:appautoscaling/target:Target -> RegisterScalableTarget, read back with DescribeScalableTargets."""
    aws.client("application-autoscaling").register_scalable_target(
        **drop_none(
            {
                **_scalable(req.inputs),
                "MinCapacity": req.get("minCapacity"),
                "MaxCapacity": req.get("maxCapacity"),
                "RoleARN": req.get("roleArn"),
            }
        )
    )
    return described(aws, req, req.get("resourceId"), _target)


read_target = read_by(_target)


@none_when("ObjectNotFoundException")
def delete_target(aws: Aws, resource_id: str, recorded: Mapping[str, Any]) -> None:
    """DeregisterScalableTarget (when it is still registered: AWS answers a missing one with an error)."""
    _target(aws, resource_id, recorded)
    aws.client("application-autoscaling").deregister_scalable_target(**_scalable(recorded))


# --- aws:appautoscaling/policy:Policy --------------------------------------------------------------------


def _metric_dimensions(dimensions: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"Name": d["name"], "Value": d["value"]} for d in dimensions]


def _tracking_params(tracking: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``targetTrackingScalingPolicyConfiguration`` -> the API shape."""
    if not tracking:
        return None
    predefined = tracking.get("predefinedMetricSpecification")
    customized = tracking.get("customizedMetricSpecification")
    return drop_none(
        {
            **api_params(tracking, "targetValue", "disableScaleIn", "scaleInCooldown", "scaleOutCooldown"),
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
                    **api_params(customized, "metricName", "namespace", "statistic", "unit"),
                    "Dimensions": _metric_dimensions(customized.get("dimensions") or []) or None,
                }
            )
            if customized
            else None,
        }
    )


def _bound(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


def _step_params(step: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``stepScalingPolicyConfiguration`` -> the API shape."""
    if not step:
        return None
    return drop_none(
        {
            **api_params(step, "adjustmentType", "cooldown", "metricAggregationType", "minAdjustmentMagnitude"),
            "StepAdjustments": [
                drop_none(
                    {
                        "MetricIntervalLowerBound": _bound(s.get("metricIntervalLowerBound")),
                        "MetricIntervalUpperBound": _bound(s.get("metricIntervalUpperBound")),
                        "ScalingAdjustment": s.get("scalingAdjustment"),
                    }
                )
                for s in step.get("stepAdjustments", [])
            ],
        }
    )


def _policy(aws: Aws, name: str, inputs: Mapping[str, Any], created: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """DescribeScalingPolicies of the resource, by policy name (``created``: PutScalingPolicy's answer, for what it lacks)."""
    policies = (
        aws.client("application-autoscaling")
        .describe_scaling_policies(
            ServiceNamespace=inputs.get("serviceNamespace"), ResourceId=inputs.get("resourceId"), PolicyNames=[name]
        )
        .get("ScalingPolicies", [])
    )
    found = first_or_gone(moto_fixes.scaling_policies_named(policies, name, inputs.get("scalableDimension")), name)
    created = created or {}
    return {
        "arn": found.get("PolicyARN", created.get("PolicyARN")),
        "policyType": found.get("PolicyType"),
        "alarmArns": [a["AlarmARN"] for a in found.get("Alarms", created.get("Alarms", []))],
    }


def create_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:appautoscaling/policy:Policy -> PutScalingPolicy, read back with DescribeScalingPolicies."""
    name = req.get("name")
    response = aws.client("application-autoscaling").put_scaling_policy(
        **drop_none(
            {
                "PolicyName": name,
                **_scalable(req.inputs),
                "PolicyType": req.get("policyType", "StepScaling"),
                "TargetTrackingScalingPolicyConfiguration": _tracking_params(req.get("targetTrackingScalingPolicyConfiguration")),
                "StepScalingPolicyConfiguration": _step_params(req.get("stepScalingPolicyConfiguration")),
            }
        )
    )
    return name, state(req, **_policy(aws, name, req.inputs, response))


read_policy = read_by(_policy)


@none_when("ObjectNotFoundException")
def delete_policy(aws: Aws, name: str, recorded: Mapping[str, Any]) -> None:
    """DeleteScalingPolicy (its target-tracking alarms go with it); only while it exists, as AWS errors otherwise."""
    _policy(aws, name, recorded)
    aws.client("application-autoscaling").delete_scaling_policy(PolicyName=name, **_scalable(recorded))


RESOURCES = (
    ResourceHandler("aws:appautoscaling/target:Target", create_target, read_target, delete_target),
    ResourceHandler("aws:appautoscaling/policy:Policy", create_policy, read_policy, delete_policy),
)
