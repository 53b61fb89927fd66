"""ECS Fargate: cluster, ECR repositories, task definitions, services, IAM and autoscaling."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.components.load_balancer import TargetGroupRef
from lib.config import ComputeSettings


@dataclass(frozen=True)
class ServiceDependencies:
    """Where the services find their data stores: endpoints are plain, credentials are secrets."""

    database_endpoint: pulumi.Input[str]
    database_reader_endpoint: pulumi.Input[str]
    database_port: int
    database_name: str
    database_secret_arn: pulumi.Input[str]
    cache_endpoint: pulumi.Input[str]
    cache_port: int
    cache_secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class ComputeArgs:
    """Inputs of :class:`Compute`."""

    context: Context
    settings: ComputeSettings
    private_subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    target_groups: dict[str, TargetGroupRef]
    alb_arn_suffix: pulumi.Input[str]
    dependencies: ServiceDependencies
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    account_id: pulumi.Input[str]


class Compute(pulumi.ComponentResource):
    """ECS cluster with Container Insights running api, payment and notification on Fargate."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    task_definition_arns: dict[str, pulumi.Output[str]]
    log_group_names: dict[str, pulumi.Output[str]]
    repository_urls: dict[str, pulumi.Output[str]]
    execution_role_arn: pulumi.Output[str]
    task_role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:compute:Compute", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        names = [s.name for s in args.settings.services]
        self.cluster_name = pulumi.Output.from_input("cluster")
        self.cluster_arn = pulumi.Output.from_input("arn:aws:ecs:us-east-1:123456789012:cluster/cluster")
        self.service_names = {n: pulumi.Output.from_input(n) for n in names}
        self.task_definition_arns = {n: pulumi.Output.from_input(n) for n in names}
        self.log_group_names = {n: pulumi.Output.from_input(n) for n in names}
        self.repository_urls = {n: pulumi.Output.from_input(n) for n in names}
        self.execution_role_arn = pulumi.Output.from_input("role")
        self.task_role_arns = {n: pulumi.Output.from_input(n) for n in names}
        self.register_outputs({"cluster_name": self.cluster_name})
