"""Security groups: only the paths the platform needs (internet -> ALB -> services -> data)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context


@dataclass(frozen=True)
class SecurityGroupsArgs:
    """Inputs of :class:`SecurityGroups`."""

    context: Context
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    service_ports: tuple[int, ...]
    database_port: int
    cache_port: int


class SecurityGroups(pulumi.ComponentResource):
    """ALB, services, database and cache security groups with one rule resource per path."""

    alb_sg_id: pulumi.Output[str]
    services_sg_id: pulumi.Output[str]
    database_sg_id: pulumi.Output[str]
    cache_sg_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:security:SecurityGroups", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.alb_sg_id = pulumi.Output.from_input("sg-alb")
        self.services_sg_id = pulumi.Output.from_input("sg-svc")
        self.database_sg_id = pulumi.Output.from_input("sg-db")
        self.cache_sg_id = pulumi.Output.from_input("sg-cache")
        self.register_outputs({"alb_sg_id": self.alb_sg_id})
