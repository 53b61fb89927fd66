"""TapStack: the ScalePayments platform, composed from its components in dependency order.

Reads like the architecture diagram: keys -> network -> security groups -> data tier ->
edge -> compute -> observability -> account security. Every setting arrives in one validated
:class:`~lib.config.EnvironmentConfig`; components get plain values and Outputs, never the
environment's name to branch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws

from lib.components.account_baseline import AccountBaseline, AccountBaselineArgs
from lib.components.base import Context
from lib.components.cache import Cache, CacheArgs
from lib.components.compute import Compute, ComputeArgs, ServiceDependencies
from lib.components.database import Database, DatabaseArgs
from lib.components.keys import Keys, KeysArgs
from lib.components.load_balancer import LoadBalancer, LoadBalancerArgs
from lib.components.network import Network, NetworkArgs
from lib.components.observability import MonitoredResources, Observability, ObservabilityArgs
from lib.components.security_groups import SecurityGroups, SecurityGroupsArgs
from lib.config import EnvironmentConfig, ProtectionSettings
from lib.service_access import cache_clients


@dataclass(frozen=True, kw_only=True)
class TapStackArgs:
    """Inputs of :class:`TapStack`: the validated configuration of one environment."""

    config: EnvironmentConfig


class _StatefulArgs(TypedDict):
    """What every component that keeps data and writes logs takes alike: the stack's context, the logs key and
    retention for its log groups, and the environment's protection of what it stores (passed as ``**stateful``)."""

    context: Context
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    protection: ProtectionSettings


class TapStack(pulumi.ComponentResource):
    """The whole platform for one environment; ``outputs`` holds what the stack exports."""

    outputs: dict[str, Any]

    def __init__(self, name: str, args: TapStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:stack:TapStack", name, None, opts)
        cfg = args.config
        ctx = Context(
            namer=cfg.namer,
            environment=cfg.env,
            cost_center=cfg.cost_center,
            compliance=cfg.compliance,
            region=cfg.region,
        )
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        protection = cfg.protection

        keys = Keys(
            "keys",
            KeysArgs(
                context=ctx,
                account_id=account_id,
                deletion_window_days=cfg.keys.deletion_window_days,
                protection=protection,
            ),
            child,
        )
        stateful = _StatefulArgs(
            context=ctx,
            logs_key_arn=keys.logs_key_arn,
            log_retention_days=cfg.observability.log_retention_days,
            protection=protection,
        )
        network = Network(
            "network",
            NetworkArgs(
                context=ctx,
                settings=cfg.network,
                logs_key_arn=keys.logs_key_arn,
                log_retention_days=cfg.observability.log_retention_days,
            ),
            child,
        )
        security_groups = SecurityGroups(
            "security-groups",
            SecurityGroupsArgs(
                context=ctx,
                vpc_id=network.vpc_id,
                vpc_cidr=network.vpc_cidr,
                service_ports=tuple(sorted({s.port for s in cfg.compute.services})),
                database_port=cfg.database.port,
                cache_port=cfg.cache.port,
            ),
            child,
        )
        database = Database(
            "database",
            DatabaseArgs(
                **stateful,
                settings=cfg.database,
                subnet_ids=network.database_subnet_ids,
                availability_zones=network.availability_zones,
                security_group_id=security_groups.database_sg_id,
                data_key_arn=keys.data_key_arn,
                owns_account_log_groups=cfg.account_security.manage_account_singletons,
            ),
            child,
        )
        cache = Cache(
            "cache",
            CacheArgs(
                **stateful,
                settings=cfg.cache,
                # The cache holds session and idempotency data: it lives with the database in the
                # isolated tier (private, and no route to the internet, not even through NAT).
                subnet_ids=network.database_subnet_ids,
                security_group_id=security_groups.cache_sg_id,
                data_key_arn=keys.data_key_arn,
                clients=cache_clients([s.name for s in cfg.compute.services]),
            ),
            child,
        )
        edge = LoadBalancer(
            "edge",
            LoadBalancerArgs(
                **stateful,
                settings=cfg.edge,
                services=cfg.compute.services,
                vpc_id=network.vpc_id,
                public_subnet_ids=network.public_subnet_ids,
                security_group_id=security_groups.alb_sg_id,
                account_id=account_id,
            ),
            child,
        )
        compute = Compute(
            "compute",
            ComputeArgs(
                **stateful,
                settings=cfg.compute,
                private_subnet_ids=network.private_subnet_ids,
                security_group_id=security_groups.services_sg_id,
                target_groups=edge.target_groups,
                listener_rules=edge.listener_rules,
                alb_arn_suffix=edge.alb_arn_suffix,
                dependencies=ServiceDependencies(
                    database_endpoint=database.endpoint,
                    database_port=database.port,
                    database_name=cfg.database.database_name,
                    database_cluster_resource_id=database.cluster_resource_id,
                    database_master_secret_arn=database.master_secret_arn,
                    cache_endpoint=cache.primary_endpoint,
                    cache_port=cache.port,
                    cache_replication_group_id=cache.replication_group_id,
                    cache_replication_group_arn=cache.replication_group_arn,
                    cache_user_ids=cache.user_ids,
                ),
                data_key_arn=keys.data_key_arn,
                account_id=account_id,
            ),
            child,
        )
        observability = Observability(
            "observability",
            ObservabilityArgs(
                context=ctx,
                settings=cfg.observability,
                monitored=MonitoredResources(
                    cluster_name=compute.cluster_name,
                    service_names=compute.service_names,
                    min_tasks=cfg.compute.min_tasks,
                    alb_arn_suffix=edge.alb_arn_suffix,
                    target_group_arn_suffixes={k: v.arn_suffix for k, v in edge.target_groups.items()},
                    db_cluster_identifier=database.cluster_identifier,
                    db_instance_identifiers=database.instance_identifiers,
                    cache_replication_group_id=cache.replication_group_id,
                    cache_member_clusters=cache.member_clusters,
                ),
                alarms_key_arn=keys.alarms_key_arn,
            ),
            child,
        )
        baseline: AccountBaseline | None = None
        if cfg.account_security.enabled:
            baseline = AccountBaseline(
                "account-baseline",
                AccountBaselineArgs(
                    **stateful,
                    settings=cfg.account_security,
                    account_id=account_id,
                    audit_key_arn=keys.audit_key_arn,
                ),
                child,
            )

        self.outputs = {
            "accountId": account_id,
            "region": cfg.region,
            "environment": cfg.env,
            "environmentSuffix": cfg.suffix or "",
            "vpcId": network.vpc_id,
            "vpcCidr": network.vpc_cidr,
            "availabilityZones": network.availability_zones,
            "publicSubnetIds": network.public_subnet_ids,
            "privateSubnetIds": network.private_subnet_ids,
            "databaseSubnetIds": network.database_subnet_ids,
            "natGatewayIds": network.nat_gateway_ids,
            "flowLogGroupName": network.flow_log_group_name,
            "albSecurityGroupId": security_groups.alb_sg_id,
            "servicesSecurityGroupId": security_groups.services_sg_id,
            "databaseSecurityGroupId": security_groups.database_sg_id,
            "cacheSecurityGroupId": security_groups.cache_sg_id,
            "albArn": edge.alb_arn,
            "albDnsName": edge.alb_dns_name,
            "httpsListenerArn": edge.https_listener_arn,
            "httpListenerArn": edge.http_listener_arn,
            "targetGroupArns": {k: v.arn for k, v in edge.target_groups.items()},
            "albAccessLogsBucket": edge.access_logs_bucket,
            "wafWebAclArn": edge.waf_acl_arn if edge.waf_acl_arn is not None else "",
            "ecsClusterName": compute.cluster_name,
            "ecsClusterArn": compute.cluster_arn,
            "serviceNames": compute.service_names,
            "taskDefinitionArns": compute.task_definition_arns,
            "migrateTaskDefinitionArn": compute.migrate_task_definition_arn,
            "serviceImages": compute.images,
            "serviceConnectNamespace": compute.service_connect_namespace_name,
            "serviceConnectNamespaceArn": compute.service_connect_namespace_arn,
            "serviceLogGroupNames": compute.log_group_names,
            "ecrRepositoryUrls": compute.repository_urls,
            "taskExecutionRoleArn": compute.execution_role_arn,
            "taskRoleArns": compute.task_role_arns,
            "auroraClusterIdentifier": database.cluster_identifier,
            "auroraClusterArn": database.cluster_arn,
            "auroraWriterEndpoint": database.endpoint,
            "auroraReaderEndpoint": database.reader_endpoint,
            "auroraPort": database.port,
            "auroraSecretArn": database.master_secret_arn,
            "auroraClusterResourceId": database.cluster_resource_id,
            "auroraDatabaseName": cfg.database.database_name,
            "auroraInstanceIdentifiers": database.instance_identifiers,
            "redisReplicationGroupId": cache.replication_group_id,
            "redisPrimaryEndpoint": cache.primary_endpoint,
            "redisReaderEndpoint": cache.reader_endpoint,
            "redisPort": cache.port,
            "redisUserIds": cache.user_ids,
            "redisUserGroupId": cache.user_group_id,
            "redisReplicationGroupArn": cache.replication_group_arn,
            "kmsDataKeyArn": keys.data_key_arn,
            "kmsLogsKeyArn": keys.logs_key_arn,
            "kmsAlarmsKeyArn": keys.alarms_key_arn,
            "kmsAuditKeyArn": keys.audit_key_arn,
            "alarmTopicArn": observability.alarm_topic_arn,
            "dashboardName": observability.dashboard_name,
            "guardDutyDetectorId": baseline.guardduty_detector_id if baseline else "",
            "configRecorderName": baseline.config_recorder_name if baseline else "",
            "cloudTrailArn": (baseline.cloudtrail_arn if baseline and baseline.cloudtrail_arn is not None else ""),
        }
        self.register_outputs(self.outputs)
