"""Aurora PostgreSQL: encrypted, SSL-only, IAM auth, RDS-managed master secret, backed up."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, DataStoreArgs, child_opts, encrypted_log_group, guarded_opts
from lib.config import DatabaseSettings
from lib.iam_policies import service_assume_role_policy
from lib.naming import NameKind

COMPONENT = "database"
ENGINE = aws.rds.EngineType.AURORA_POSTGRESQL

#: The RSA-2048 CA with the longest validity that every Aurora PostgreSQL version supports;
#: pinned so that a change of AWS's default CA never surprises clients that verify the server.
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"

#: AWS-managed policy that lets RDS publish enhanced monitoring metrics to CloudWatch Logs.
ENHANCED_MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"

#: Performance Insights retention in days: 7 is the free tier; longer retention is billed.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7

#: Cluster parameters, applied at once. rds.force_ssl rejects plaintext connections (PCI DSS 4.2.1: strong
#: cryptography in transit); ssl_min_protocol_version refuses TLS < 1.2; connection and disconnection
#: logging gives the audit trail of who reached the data store (PCI DSS 10.2.1).
#:
#: Statement-level audit (PCI DSS 10.2.1, 10.2.2) comes from pgaudit: DDL, role and privilege changes,
#: and every write, logged once per statement with the relation. What never reaches the log: bind
#: parameter values (``pgaudit.log_parameter`` off: the services pass every value as a parameter, so an
#: amount, a token or an idempotency key is never part of the logged text), the catalog noise
#: (``log_catalog`` off), and PostgreSQL's own statement logging (``log_statement = none``), which would
#: log literal values. Card numbers never reach the database at all (the services accept tokens only),
#: and no password is ever set with SQL (the services authenticate with IAM; the master password is
#: managed by RDS), so ROLE statements carry none. The migrate task creates the extension.
CLUSTER_PARAMETERS: dict[str, str] = {
    "rds.force_ssl": "1",
    "ssl_min_protocol_version": "TLSv1.2",
    "log_connections": "1",
    "log_disconnections": "1",
    "log_statement": "none",
    "pgaudit.log": "ddl,role,write",
    "pgaudit.log_parameter": "0",
    "pgaudit.log_catalog": "0",
    "pgaudit.log_relation": "1",
    "pgaudit.log_statement_once": "1",
    "pgaudit.role": "rds_pgaudit",
}

#: Static parameters: they take effect at the next reboot (RDS applies them in the maintenance window).
CLUSTER_STATIC_PARAMETERS: dict[str, str] = {"shared_preload_libraries": "pg_stat_statements,pgaudit"}

#: The account-wide log group RDS enhanced monitoring writes to (fixed by AWS, one per account and region).
ENHANCED_MONITORING_LOG_GROUP = "RDSOSMetrics"


def monitoring_assume_role_policy() -> dict[str, Any]:
    """Trust policy that lets only the RDS enhanced monitoring service assume the role."""
    return service_assume_role_policy("RdsEnhancedMonitoring", "monitoring.rds.amazonaws.com")


def instance_identifier(cluster_identifier: str, index: int) -> str:
    """Identifier of the ``index``-th (0-based) instance: ``<cluster id>-<index + 1>``."""
    return f"{cluster_identifier}-{index + 1}"


def postgresql_log_group_name(cluster_identifier: str) -> str:
    """The log group RDS writes the exported ``postgresql`` log to (fixed by AWS)."""
    return f"/aws/rds/cluster/{cluster_identifier}/postgresql"


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs(DataStoreArgs):
    """Inputs of :class:`Database`."""

    settings: DatabaseSettings
    availability_zones: pulumi.Input[list[str]]
    #: True when this stack owns the account-wide log groups (RDSOSMetrics): the account-singleton owner.
    owns_account_log_groups: bool


class Database(Component):
    """Aurora PostgreSQL cluster, its instances, subnet group and parameter group."""

    cluster_identifier: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    cluster_resource_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: int
    master_secret_arn: pulumi.Output[str]
    instance_identifiers: list[pulumi.Output[str]]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:database:Database", name, None, opts)
        ctx = args.context
        settings = args.settings
        cluster_id = ctx.name("aurora", NameKind.RDS_IDENTIFIER)

        subnet_group_name = ctx.name("aurora", NameKind.RDS_IDENTIFIER)
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnet-group",
            name=subnet_group_name,
            description="Isolated database subnets for Aurora PostgreSQL (no internet route)",
            subnet_ids=args.subnet_ids,
            tags=ctx.tags(COMPONENT, subnet_group_name),
            opts=guarded_opts(self, args.protection),
        )

        parameter_group_name = ctx.name("aurora-pg", NameKind.RDS_IDENTIFIER)
        parameter_group = aws.rds.ClusterParameterGroup(
            f"{name}-cluster-parameters",
            name=parameter_group_name,
            family=settings.parameter_group_family,
            description="Aurora PostgreSQL: TLS only, connection and statement audit logging (pgaudit)",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(name=key, value=value, apply_method="immediate")
                for key, value in CLUSTER_PARAMETERS.items()
            ]
            + [
                aws.rds.ClusterParameterGroupParameterArgs(name=key, value=value, apply_method="pending-reboot")
                for key, value in CLUSTER_STATIC_PARAMETERS.items()
            ],
            tags=ctx.tags(COMPONENT, parameter_group_name),
            opts=child_opts(self),
        )

        # Created before the cluster: otherwise RDS creates the group itself on first export,
        # unencrypted and with infinite retention, and Pulumi could not manage it. Guarded like
        # the data because it is the database audit trail (PCI DSS 10.5.1 keeps it >= 1 year).
        log_group_name = postgresql_log_group_name(cluster_id)
        log_group = encrypted_log_group(
            f"{name}-postgresql-logs",
            log_group_name,
            args,
            ctx.tags(COMPONENT, log_group_name),
            guarded_opts(self, args.protection),
        )

        monitoring_role_arn: pulumi.Output[str] | None = None
        monitoring_depends: list[pulumi.Resource] = []
        if settings.monitoring_interval_seconds > 0 and args.owns_account_log_groups:
            # RDS would create it on the first metric, unencrypted and kept forever; it is one per
            # account and region, so only the stack that owns the account's singletons creates it.
            monitoring_depends.append(
                encrypted_log_group(
                    f"{name}-enhanced-monitoring-logs",
                    ENHANCED_MONITORING_LOG_GROUP,
                    args,
                    ctx.tags(COMPONENT, ENHANCED_MONITORING_LOG_GROUP),
                    child_opts(self),
                )
            )
        if settings.monitoring_interval_seconds > 0:
            role_name = ctx.name("rds-monitoring", NameKind.IAM_ROLE)
            role = aws.iam.Role(
                f"{name}-monitoring-role",
                name=role_name,
                description="Lets RDS publish Aurora enhanced monitoring metrics to CloudWatch Logs",
                assume_role_policy=json.dumps(monitoring_assume_role_policy()),
                tags=ctx.tags(COMPONENT, role_name),
                opts=child_opts(self),
            )
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy",
                role=role.name,
                policy_arn=ENHANCED_MONITORING_POLICY_ARN,
                opts=child_opts(self),
            )
            monitoring_role_arn = role.arn
            # RDS checks the role's permissions when the instance is created; Pulumi only sees the
            # edge to the role, not to the attachment, so the order must be stated.
            monitoring_depends.append(attachment)

        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=cluster_id,
            engine=ENGINE,
            engine_version=settings.engine_version,
            # Version policy (README): pinned, moved only by the stack; never a major upgrade by accident.
            allow_major_version_upgrade=False,
            database_name=settings.database_name,
            master_username=settings.master_username,
            # RDS generates, stores (Secrets Manager, our key) and rotates the master password:
            # it never appears in Pulumi state or config.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.data_key_arn,
            storage_encrypted=True,
            kms_key_id=args.data_key_arn,
            iam_database_authentication_enabled=True,
            db_cluster_parameter_group_name=parameter_group.name,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[args.security_group_id],
            port=settings.port,
            enabled_cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
            backup_retention_period=settings.backup_retention_days,
            preferred_backup_window=settings.preferred_backup_window,
            preferred_maintenance_window=settings.preferred_maintenance_window,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=not settings.final_snapshot,
            final_snapshot_identifier=f"{cluster_id}-final" if settings.final_snapshot else None,
            # Changes wait for the maintenance window instead of restarting a payment database mid-day.
            apply_immediately=False,
            tags=ctx.tags(COMPONENT, cluster_id),
            opts=guarded_opts(self, args.protection, depends_on=[log_group]),
        )

        instances: list[aws.rds.ClusterInstance] = []
        for index in range(settings.instance_count):
            identifier = instance_identifier(cluster_id, index)
            # Spread the writer and readers over the AZs so that a zone outage leaves a reader to promote.
            zone = pulumi.Output.from_input(args.availability_zones).apply(_zone_picker(index))
            instances.append(
                aws.rds.ClusterInstance(
                    f"{name}-instance-{index + 1}",
                    identifier=identifier,
                    cluster_identifier=cluster.id,
                    engine=ENGINE,
                    instance_class=settings.instance_class,
                    availability_zone=zone,
                    publicly_accessible=False,
                    ca_cert_identifier=CA_CERT_IDENTIFIER,
                    # Version policy (README): AWS never upgrades the engine under the stack, so the next
                    # `pulumi up` never tries to take a cluster back to the pinned minor.
                    auto_minor_version_upgrade=False,
                    performance_insights_enabled=settings.performance_insights,
                    performance_insights_kms_key_id=args.data_key_arn if settings.performance_insights else None,
                    performance_insights_retention_period=(
                        PERFORMANCE_INSIGHTS_RETENTION_DAYS if settings.performance_insights else None
                    ),
                    monitoring_interval=settings.monitoring_interval_seconds,
                    monitoring_role_arn=monitoring_role_arn,
                    apply_immediately=False,
                    tags=ctx.tags(COMPONENT, identifier),
                    opts=guarded_opts(self, args.protection, depends_on=monitoring_depends),
                )
            )

        self.port = settings.port
        self.cluster_identifier = cluster.cluster_identifier
        self.cluster_arn = cluster.arn
        self.cluster_resource_id = cluster.cluster_resource_id
        self.endpoint = cluster.endpoint
        self.reader_endpoint = cluster.reader_endpoint
        self.master_secret_arn = cluster.master_user_secrets.apply(_first_secret_arn)
        self.instance_identifiers = [instance.identifier for instance in instances]
        self.finish()


def _zone_picker(index: int) -> Callable[[list[str]], str]:
    """Function choosing the AZ of instance ``index``: round-robin over the stack's zones."""

    def pick(zones: list[str]) -> str:
        return zones[index % len(zones)]

    return pick


def _first_secret_arn(secrets: Sequence[aws.rds.outputs.ClusterMasterUserSecret] | None) -> str:
    """ARN of the RDS-managed master user secret (RDS keeps exactly one per cluster)."""
    if not secrets or not secrets[0].secret_arn:
        # Fail loudly: services would otherwise start with no way to read the database password.
        raise ValueError("the Aurora cluster reports no master user secret; manage_master_user_password must be true")
    return secrets[0].secret_arn
