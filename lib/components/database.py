"""Aurora PostgreSQL: encrypted, SSL-only, IAM auth, RDS-managed master secret, backed up."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import DatabaseSettings


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of :class:`Database`."""

    context: Context
    settings: DatabaseSettings
    subnet_ids: list[pulumi.Output[str]]
    availability_zones: pulumi.Input[list[str]]
    security_group_id: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    retain_on_delete: bool


class Database(pulumi.ComponentResource):
    """Aurora PostgreSQL cluster, its instances, subnet group and parameter group."""

    cluster_identifier: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: int
    master_secret_arn: pulumi.Output[str]
    instance_identifiers: list[pulumi.Output[str]]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:database:Database", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.port = args.settings.port
        self.cluster_identifier = pulumi.Output.from_input("aurora")
        self.cluster_arn = pulumi.Output.from_input("arn:aws:rds:us-east-1:123456789012:cluster:aurora")
        self.endpoint = pulumi.Output.from_input("aurora.cluster")
        self.reader_endpoint = pulumi.Output.from_input("aurora.cluster-ro")
        self.master_secret_arn = pulumi.Output.from_input("arn:aws:secretsmanager:us-east-1:123456789012:secret:db")
        self.instance_identifiers = [pulumi.Output.from_input("aurora-1")]
        self.register_outputs({"cluster_identifier": self.cluster_identifier})
