"""Observability: SNS topics, policies and subscriptions; CloudWatch alarms and dashboards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list

# Topic inputs that are plain topic attributes (input name -> attribute name).
_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
    "fifoTopic": "FifoTopic",
    "contentBasedDeduplication": "ContentBasedDeduplication",
}


def topic(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topic:Topic -> CreateTopic, read back with GetTopicAttributes."""
    sns = aws.client("sns")
    name = req.physical_name("name", 256)
    attributes = {
        attr: str(req.get(key)).lower() if isinstance(req.get(key), bool) else str(req.get(key))
        for key, attr in _TOPIC_ATTRIBUTES.items()
        if req.get(key) is not None
    }
    if req.get("policy"):
        attributes["Policy"] = as_json(req.get("policy"))
    arn = sns.create_topic(
        **drop_none({"Name": name, "Attributes": attributes or None, "Tags": tag_list(req.get("tags")) or None})
    )["TopicArn"]
    found = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    return arn, state(
        req,
        name=name,
        arn=found.get("TopicArn", arn),
        owner=found.get("Owner"),
        kmsMasterKeyId=found.get("KmsMasterKeyId"),
        policy=found.get("Policy"),
        displayName=found.get("DisplayName"),
    )


def topic_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topicPolicy:TopicPolicy -> SetTopicAttributes(Policy), read back with GetTopicAttributes."""
    sns = aws.client("sns")
    arn = req.get("arn")
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=as_json(req.get("policy")))
    found = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    return arn, state(req, owner=found.get("Owner"), policy=found.get("Policy"))


_SUBSCRIPTION_ATTRIBUTES = {
    "rawMessageDelivery": "RawMessageDelivery",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "redrivePolicy": "RedrivePolicy",
    "deliveryPolicy": "DeliveryPolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def topic_subscription(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topicSubscription:TopicSubscription -> Subscribe, read back with GetSubscriptionAttributes."""
    sns = aws.client("sns")
    attributes = {
        attr: str(req.get(key)).lower()
        if isinstance(req.get(key), bool)
        else as_json(req.get(key))
        if key.endswith("Policy")
        else str(req.get(key))
        for key, attr in _SUBSCRIPTION_ATTRIBUTES.items()
        if req.get(key) is not None
    }
    arn = sns.subscribe(
        **drop_none(
            {
                "TopicArn": req.get("topic"),
                "Protocol": req.get("protocol"),
                "Endpoint": req.get("endpoint"),
                "Attributes": attributes or None,
                "ReturnSubscriptionArn": True,
            }
        )
    )["SubscriptionArn"]
    found = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    return arn, state(
        req,
        arn=arn,
        ownerId=found.get("Owner"),
        pendingConfirmation=found.get("PendingConfirmation") == "true",
        confirmationWasAuthenticated=found.get("ConfirmationWasAuthenticated") == "true",
    )


def _dimensions(dimensions: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Name": k, "Value": str(v)} for k, v in (dimensions or {}).items()]


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    metric = query.get("metric")
    return drop_none(
        {
            "Id": query.get("id"),
            "Expression": query.get("expression"),
            "Label": query.get("label"),
            "ReturnData": query.get("returnData"),
            "Period": query.get("period"),
            "AccountId": query.get("accountId"),
            "MetricStat": drop_none(
                {
                    "Metric": drop_none(
                        {
                            "MetricName": metric.get("metricName"),
                            "Namespace": metric.get("namespace"),
                            "Dimensions": _dimensions(metric.get("dimensions")) or None,
                        }
                    ),
                    "Period": metric.get("period"),
                    "Stat": metric.get("stat"),
                    "Unit": metric.get("unit"),
                }
            )
            if metric
            else None,
        }
    )


def metric_alarm(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/metricAlarm:MetricAlarm -> PutMetricAlarm, read back with DescribeAlarms."""
    cw = aws.client("cloudwatch")
    name = req.physical_name("name", 255)
    cw.put_metric_alarm(
        **drop_none(
            {
                "AlarmName": name,
                "AlarmDescription": req.get("alarmDescription"),
                "ActionsEnabled": req.get("actionsEnabled"),
                "AlarmActions": list(req.get("alarmActions", [])) or None,
                "OKActions": list(req.get("okActions", [])) or None,
                "InsufficientDataActions": list(req.get("insufficientDataActions", [])) or None,
                "MetricName": req.get("metricName"),
                "Namespace": req.get("namespace"),
                "Statistic": req.get("statistic"),
                "ExtendedStatistic": req.get("extendedStatistic"),
                "Dimensions": _dimensions(req.get("dimensions")) or None,
                "Period": req.get("period"),
                "Unit": req.get("unit"),
                "EvaluationPeriods": req.get("evaluationPeriods"),
                "DatapointsToAlarm": req.get("datapointsToAlarm"),
                "Threshold": req.get("threshold"),
                "ThresholdMetricId": req.get("thresholdMetricId"),
                "ComparisonOperator": req.get("comparisonOperator"),
                "TreatMissingData": req.get("treatMissingData"),
                "EvaluateLowSampleCountPercentile": req.get("evaluateLowSampleCountPercentiles"),
                "Metrics": [_metric_query(q) for q in req.get("metricQueries", [])] or None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    found = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return name, state(
        req,
        name=name,
        arn=found["AlarmArn"],
        threshold=found.get("Threshold"),
        comparisonOperator=found.get("ComparisonOperator"),
        evaluationPeriods=found.get("EvaluationPeriods"),
        alarmActions=found.get("AlarmActions", []),
        okActions=found.get("OKActions", []),
    )


def dashboard(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/dashboard:Dashboard -> PutDashboard, read back with GetDashboard."""
    cw = aws.client("cloudwatch")
    name = req.get("dashboardName")
    response = cw.put_dashboard(DashboardName=name, DashboardBody=as_json(req.get("dashboardBody")))
    if response.get("DashboardValidationMessages"):
        raise RuntimeError(f"PutDashboard: {response['DashboardValidationMessages']}")
    found = cw.get_dashboard(DashboardName=name)
    return name, state(req, dashboardArn=found["DashboardArn"], dashboardBody=found["DashboardBody"])


HANDLERS = {
    "aws:sns/topic:Topic": topic,
    "aws:sns/topicPolicy:TopicPolicy": topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": topic_subscription,
    "aws:cloudwatch/metricAlarm:MetricAlarm": metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": dashboard,
}
