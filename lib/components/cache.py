"""ElastiCache Redis: encrypted at rest and in transit, AUTH token in Secrets Manager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from lib.components.base import Component, Context, child_opts, guarded_opts
from lib.config import CacheSettings, ProtectionSettings
from lib.naming import NameKind

COMPONENT = "cache"

#: Redis AUTH accepts printable ASCII except space, '"', '/' and '@'; these specials are safe
#: in AUTH, in JSON and in a shell, so the token can be pasted into redis-cli when debugging.
AUTH_TOKEN_SPECIALS = "!&#$^<>-"

#: 64 characters: well inside AUTH's 16-128 range, about 380 bits of entropy.
AUTH_TOKEN_LENGTH = 64

#: Secrets Manager recovery windows (days): long where data is protected, short elsewhere so
#: that an ephemeral stack can be recreated under the same name a week later.
RECOVERY_WINDOW_PROTECTED_DAYS = 30
RECOVERY_WINDOW_DAYS = 7

#: Daily snapshot before, and not overlapping, the weekly maintenance window (AWS rejects overlaps).
SNAPSHOT_WINDOW = "02:00-03:00"
MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"

#: Evict only keys that carry a TTL (sessions, rate-limit counters, cached lookups), least recently
#: used first. Keys without a TTL (idempotency records of in-flight payments) are never evicted:
#: when memory runs out, writes fail loudly instead of a payment silently losing its idempotency
#: guard. volatile-lru is also ElastiCache's default; stating it keeps it from drifting.
PARAMETERS: dict[str, str] = {"maxmemory-policy": "volatile-lru"}


def auth_secret_recovery_window(protect: bool) -> int:
    """Recovery window of the AUTH token secret: 30 days when data is protected, else 7."""
    return RECOVERY_WINDOW_PROTECTED_DAYS if protect else RECOVERY_WINDOW_DAYS


def slow_log_group_name(replication_group_id: str) -> str:
    """The CloudWatch log group that receives the replication group's slow log."""
    return f"/aws/elasticache/{replication_group_id}/slow-log"


@dataclass(frozen=True, kw_only=True)
class CacheArgs:
    """Inputs of :class:`Cache`."""

    context: Context
    settings: CacheSettings
    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    protection: ProtectionSettings


class Cache(Component):
    """Redis replication group with its subnet group, parameter group and AUTH secret."""

    replication_group_id: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: int
    auth_secret_arn: pulumi.Output[str]
    member_clusters: pulumi.Output[list[str]]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:cache:Cache", name, None, opts)
        ctx = args.context
        settings = args.settings
        group_id = ctx.name("redis", NameKind.ELASTICACHE_REPLICATION_GROUP)

        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnet-group",
            name=group_id,
            description="Private subnets for Redis (reachable from the services only)",
            subnet_ids=args.subnet_ids,
            tags=ctx.tags(COMPONENT, group_id),
            opts=child_opts(self),
        )

        parameter_group_name = ctx.name("redis-params")
        parameter_group = aws.elasticache.ParameterGroup(
            f"{name}-parameters",
            name=parameter_group_name,
            family=settings.parameter_group_family,
            description="Redis: evict only keys with a TTL",
            parameters=[aws.elasticache.ParameterGroupParameterArgs(name=k, value=v) for k, v in PARAMETERS.items()],
            tags=ctx.tags(COMPONENT, parameter_group_name),
            opts=child_opts(self),
        )

        # Kept in Pulumi state (encrypted as a secret), so it is stable across runs and only
        # changes when this resource is replaced; AUTH allows only some special characters.
        auth_token = random.RandomPassword(
            f"{name}-auth-token",
            length=AUTH_TOKEN_LENGTH,
            special=True,
            override_special=AUTH_TOKEN_SPECIALS,
            min_lower=1,
            min_upper=1,
            min_numeric=1,
            opts=child_opts(self),
        )

        secret_name = ctx.name("redis-auth")
        secret = aws.secretsmanager.Secret(
            f"{name}-auth-secret",
            name=secret_name,
            description="Redis AUTH token of the payments cache (JSON key authToken)",
            kms_key_id=args.data_key_arn,
            recovery_window_in_days=auth_secret_recovery_window(args.protection.protect),
            tags=ctx.tags(COMPONENT, secret_name),
            opts=guarded_opts(self, args.protection),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps({"authToken": auth_token.result}),
            opts=guarded_opts(self, args.protection),
        )

        log_group_name = slow_log_group_name(group_id)
        slow_log = aws.cloudwatch.LogGroup(
            f"{name}-slow-log",
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=ctx.tags(COMPONENT, log_group_name),
            opts=child_opts(self),
        )

        group = aws.elasticache.ReplicationGroup(
            f"{name}-replication-group",
            replication_group_id=group_id,
            description="ScalePayments Redis: sessions, idempotency keys, rate limits",
            engine="redis",
            engine_version=settings.engine_version,
            node_type=settings.node_type,
            num_cache_clusters=settings.node_count,
            automatic_failover_enabled=settings.automatic_failover,
            multi_az_enabled=settings.multi_az,
            port=settings.port,
            subnet_group_name=subnet_group.name,
            security_group_ids=[args.security_group_id],
            parameter_group_name=parameter_group.name,
            at_rest_encryption_enabled=True,
            kms_key_id=args.data_key_arn,
            # AUTH requires TLS; the token never crosses the network in clear text.
            transit_encryption_enabled=True,
            auth_token=auth_token.result,
            # A new token is added alongside the old one, so clients can switch without an outage.
            auth_token_update_strategy="ROTATE",
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window=SNAPSHOT_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            tags=ctx.tags(COMPONENT, group_id),
            opts=guarded_opts(self, args.protection),
        )

        self.port = settings.port
        self.replication_group_id = group.replication_group_id
        self.primary_endpoint = group.primary_endpoint_address
        self.reader_endpoint = group.reader_endpoint_address
        self.auth_secret_arn = secret.arn
        self.member_clusters = group.member_clusters.apply(_as_list)
        self.finish()


def _as_list(members: Sequence[str] | None) -> list[str]:
    """Member cluster ids as a sorted list (AWS returns a set; order must not cause diffs)."""
    return sorted(members or [])
