"""Alarms to an encrypted SNS topic, and a golden-signals dashboard per environment."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import ObservabilitySettings


@dataclass(frozen=True)
class MonitoredResources:
    """Identifiers of what the alarms and the dashboard watch."""

    cluster_name: pulumi.Input[str]
    service_names: dict[str, pulumi.Output[str]]
    min_tasks: int
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffixes: dict[str, pulumi.Output[str]]
    db_cluster_identifier: pulumi.Input[str]
    db_instance_identifiers: list[pulumi.Output[str]]
    cache_replication_group_id: pulumi.Input[str]
    cache_member_clusters: pulumi.Input[list[str]]


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of :class:`Observability`."""

    context: Context
    settings: ObservabilitySettings
    monitored: MonitoredResources
    alarms_key_arn: pulumi.Input[str]


class Observability(pulumi.ComponentResource):
    """SNS alarm topic (KMS), CloudWatch alarms with the topic as action, dashboard."""

    alarm_topic_arn: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:observability:Observability", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.alarm_topic_arn = pulumi.Output.from_input("arn:aws:sns:us-east-1:123456789012:alarms")
        self.alarm_names = []
        self.dashboard_name = pulumi.Output.from_input("dashboard")
        self.register_outputs({"alarm_topic_arn": self.alarm_topic_arn})
