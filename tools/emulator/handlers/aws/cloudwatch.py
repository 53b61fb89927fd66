"""aws:cloudwatch -- CloudWatch Logs log groups and resource policies; CloudWatch alarms and dashboards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import (
    api_params,
    as_json,
    delete_call,
    described,
    drop_none,
    fields,
    first_or_gone,
    none_when,
    read_by,
    tag_list,
)

_LOGS_NOT_FOUND = "ResourceNotFoundException"
_NO_DASHBOARD = ("ResourceNotFound", "DashboardNotFoundError")

# --- aws:cloudwatch/logGroup:LogGroup ------------------------------------------------------------------


def _log_group(aws: Aws, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeLogGroups by name prefix, then the exact name."""
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    found = first_or_gone((g for g in groups if g["logGroupName"] == name), name)
    return {
        "name": name,
        # The provider strips the ":*" suffix DescribeLogGroups puts on the ARN.
        "arn": found["arn"].removesuffix(":*"),
        "retentionInDays": found.get("retentionInDays", 0),
        "kmsKeyId": found.get("kmsKeyId", inputs.get("kmsKeyId", "")),
        "logGroupClass": moto_fixes.log_group_class(found, inputs),
    }


def create_log_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/logGroup:LogGroup -> CreateLogGroup + PutRetentionPolicy, read back with DescribeLogGroups."""
    logs = aws.client("logs")
    name = req.physical_name("name", 512)
    logs.create_log_group(
        **drop_none(
            {
                "logGroupName": name,
                "kmsKeyId": req.get("kmsKeyId"),
                "logGroupClass": req.get("logGroupClass"),
                "tags": req.get("tags") or None,
            }
        )
    )
    if req.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(req.get("retentionInDays")))
    return described(aws, req, name, _log_group)


read_log_group = read_by(_log_group, _LOGS_NOT_FOUND)
# Its streams and events go with it.
delete_log_group = delete_call("logs", "delete_log_group", "logGroupName", _LOGS_NOT_FOUND)


# --- aws:cloudwatch/logResourcePolicy:LogResourcePolicy ------------------------------------------------


def _log_resource_policy(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeResourcePolicies."""
    policies = aws.client("logs").describe_resource_policies()["resourcePolicies"]
    found = first_or_gone((p for p in policies if p["policyName"] == name), name)
    return {"policyName": name, "policyDocument": found["policyDocument"]}


def create_log_resource_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/logResourcePolicy:LogResourcePolicy -> PutResourcePolicy, read back with DescribeResourcePolicies."""
    name = req.get("policyName")
    aws.client("logs").put_resource_policy(policyName=name, policyDocument=as_json(req.get("policyDocument")))
    return described(aws, req, name, _log_resource_policy)


read_log_resource_policy = read_by(_log_resource_policy)
delete_log_resource_policy = delete_call("logs", "delete_resource_policy", "policyName", _LOGS_NOT_FOUND)


# --- aws:cloudwatch/metricAlarm:MetricAlarm ------------------------------------------------------------


def _dimensions(dimensions: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Name": k, "Value": str(v)} for k, v in (dimensions or {}).items()]


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    metric = query.get("metric")
    return drop_none(
        {
            **api_params(query, "id", "expression", "label", "returnData", "period", "accountId"),
            "MetricStat": drop_none(
                {
                    "Metric": drop_none(
                        {
                            "MetricName": metric.get("metricName"),
                            "Namespace": metric.get("namespace"),
                            "Dimensions": _dimensions(metric.get("dimensions")) or None,
                        }
                    ),
                    **api_params(metric, "period", "stat", "unit"),
                }
            )
            if metric
            else None,
        }
    )


def _metric_alarm(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeAlarms by name."""
    found = first_or_gone(aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"], name)
    return {
        "name": name,
        "arn": found["AlarmArn"],
        **fields(found, "Threshold", "ComparisonOperator", "EvaluationPeriods"),
        "alarmActions": found.get("AlarmActions", []),
        "okActions": found.get("OKActions", []),
    }


def create_metric_alarm(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/metricAlarm:MetricAlarm -> PutMetricAlarm, read back with DescribeAlarms."""
    name = req.physical_name("name", 255)
    aws.client("cloudwatch").put_metric_alarm(
        **drop_none(
            {
                "AlarmName": name,
                **api_params(
                    req.inputs,
                    "alarmDescription",
                    "actionsEnabled",
                    "metricName",
                    "namespace",
                    "statistic",
                    "extendedStatistic",
                    "period",
                    "unit",
                    "evaluationPeriods",
                    "datapointsToAlarm",
                    "threshold",
                    "thresholdMetricId",
                    "comparisonOperator",
                    "treatMissingData",
                ),
                "AlarmActions": list(req.get("alarmActions", [])) or None,
                "OKActions": list(req.get("okActions", [])) or None,
                "InsufficientDataActions": list(req.get("insufficientDataActions", [])) or None,
                "Dimensions": _dimensions(req.get("dimensions")) or None,
                "EvaluateLowSampleCountPercentile": req.get("evaluateLowSampleCountPercentiles"),
                "Metrics": [_metric_query(q) for q in req.get("metricQueries", [])] or None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    return described(aws, req, name, _metric_alarm)


read_metric_alarm = read_by(_metric_alarm)


@none_when("ResourceNotFound")
def delete_metric_alarm(aws: Aws, name: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteAlarms (deleting an alarm that does not exist is not an error in the API)."""
    aws.client("cloudwatch").delete_alarms(AlarmNames=[name])


# --- aws:cloudwatch/dashboard:Dashboard ----------------------------------------------------------------


def _dashboard(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetDashboard."""
    found = aws.client("cloudwatch").get_dashboard(DashboardName=name)
    return {"dashboardArn": found["DashboardArn"], "dashboardBody": found["DashboardBody"]}


def create_dashboard(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/dashboard:Dashboard -> PutDashboard, read back with GetDashboard."""
    name = req.get("dashboardName")
    response = aws.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=as_json(req.get("dashboardBody")))
    if response.get("DashboardValidationMessages"):
        raise RuntimeError(f"PutDashboard: {response['DashboardValidationMessages']}")
    return described(aws, req, name, _dashboard)


read_dashboard = read_by(_dashboard, *_NO_DASHBOARD)


@none_when(*_NO_DASHBOARD)
def delete_dashboard(aws: Aws, name: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteDashboards."""
    aws.client("cloudwatch").delete_dashboards(DashboardNames=[name])


RESOURCES = (
    ResourceHandler("aws:cloudwatch/logGroup:LogGroup", create_log_group, read_log_group, delete_log_group),
    ResourceHandler(
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        create_log_resource_policy,
        read_log_resource_policy,
        delete_log_resource_policy,
    ),
    ResourceHandler("aws:cloudwatch/metricAlarm:MetricAlarm", create_metric_alarm, read_metric_alarm, delete_metric_alarm),
    ResourceHandler("aws:cloudwatch/dashboard:Dashboard", create_dashboard, read_dashboard, delete_dashboard),
)
