"""Three-tier VPC: public (ALB), private (services, via NAT) and isolated database subnets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import NetworkSettings


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    context: Context
    settings: NetworkSettings
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int


class Network(pulumi.ComponentResource):
    """VPC, subnets per tier and AZ, IGW, NAT gateways, route tables, flow logs, VPC endpoints."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: pulumi.Output[list[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    nat_gateway_ids: list[pulumi.Output[str]]
    flow_log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:network:Network", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        n = args.settings.az_count
        self.vpc_cidr = args.settings.vpc_cidr
        self.vpc_id = pulumi.Output.from_input("vpc-scaffold")
        self.availability_zones = pulumi.Output.from_input([f"us-east-1{c}" for c in "abc"[:n]])
        self.public_subnet_ids = [pulumi.Output.from_input(f"subnet-pub{i}") for i in range(n)]
        self.private_subnet_ids = [pulumi.Output.from_input(f"subnet-prv{i}") for i in range(n)]
        self.database_subnet_ids = [pulumi.Output.from_input(f"subnet-db{i}") for i in range(n)]
        self.nat_gateway_ids = [pulumi.Output.from_input("nat-0")]
        self.flow_log_group_name = pulumi.Output.from_input("flow")
        self.register_outputs({"vpc_id": self.vpc_id})
