"""ElastiCache Redis: encrypted at rest and in transit, AUTH token in Secrets Manager."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import CacheSettings


@dataclass(frozen=True)
class CacheArgs:
    """Inputs of :class:`Cache`."""

    context: Context
    settings: CacheSettings
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    retain_on_delete: bool


class Cache(pulumi.ComponentResource):
    """Redis replication group with its subnet group, parameter group and AUTH secret."""

    replication_group_id: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: int
    auth_secret_arn: pulumi.Output[str]
    member_clusters: pulumi.Output[list[str]]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:cache:Cache", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.port = args.settings.port
        self.replication_group_id = pulumi.Output.from_input("redis")
        self.primary_endpoint = pulumi.Output.from_input("master.redis")
        self.reader_endpoint = pulumi.Output.from_input("replica.redis")
        self.auth_secret_arn = pulumi.Output.from_input("arn:aws:secretsmanager:us-east-1:123456789012:secret:redis")
        self.member_clusters = pulumi.Output.from_input(["redis-001"])
        self.register_outputs({"replication_group_id": self.replication_group_id})
