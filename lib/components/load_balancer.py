"""Internet-facing ALB: HTTPS with TLS 1.2+, HTTP redirect, path routing, access logs, WAF."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import EdgeSettings, ServiceSettings


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of :class:`LoadBalancer`."""

    context: Context
    settings: EdgeSettings
    services: tuple[ServiceSettings, ...]
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    account_id: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int


@dataclass(frozen=True)
class TargetGroupRef:
    """A service's target group: ARN for the ECS service, ARN suffix for metrics and scaling."""

    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]


class LoadBalancer(pulumi.ComponentResource):
    """ALB, listeners, target groups, listener rules, access-log bucket, certificate and WAF."""

    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    https_listener_arn: pulumi.Output[str]
    http_listener_arn: pulumi.Output[str]
    target_groups: dict[str, TargetGroupRef]
    access_logs_bucket: pulumi.Output[str]
    waf_acl_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:edge:LoadBalancer", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.alb_arn = pulumi.Output.from_input("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1")
        self.alb_arn_suffix = pulumi.Output.from_input("app/x/1")
        self.alb_dns_name = pulumi.Output.from_input("x.elb.amazonaws.com")
        self.https_listener_arn = pulumi.Output.from_input("https")
        self.http_listener_arn = pulumi.Output.from_input("http")
        self.target_groups = {
            s.name: TargetGroupRef(pulumi.Output.from_input(f"tg-{s.name}"), pulumi.Output.from_input(f"targetgroup/{s.name}/1"))
            for s in args.services
        }
        self.access_logs_bucket = pulumi.Output.from_input("logs")
        self.waf_acl_arn = None
        self.register_outputs({"alb_arn": self.alb_arn})
