"""ElastiCache Redis: encrypted at rest and in transit; every client authenticates with IAM as its own user.

No static AUTH token exists: each service that uses Redis has an ElastiCache user with IAM
authentication (Redis 7+) and an access string limited to its own keys, and connects with a
15-minute token signed by its task role (``elasticache:Connect``). Nothing to rotate, nothing in
Secrets Manager or in Pulumi state, and a removed IAM permission takes effect on the next connection.
The ``default`` user every user group must contain is disabled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, DataStoreArgs, child_opts, encrypted_log_group, guarded_opts
from lib.config import CacheSettings
from lib.naming import NameKind
from lib.service_access import DISABLED_DEFAULT_USER_ACCESS

COMPONENT = "cache"

#: Daily snapshot before, and not overlapping, the weekly maintenance window (AWS rejects overlaps).
SNAPSHOT_WINDOW = "02:00-03:00"
MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"

#: Evict only keys that carry a TTL (sessions, rate-limit counters, cached lookups), least recently
#: used first. Keys without a TTL (idempotency records of in-flight payments) are never evicted:
#: when memory runs out, writes fail loudly instead of a payment silently losing its idempotency
#: guard. volatile-lru is also ElastiCache's default; stating it keeps it from drifting.
PARAMETERS: dict[str, str] = {"maxmemory-policy": "volatile-lru"}

#: ElastiCache requires a user named ``default`` in every user group.
DEFAULT_USER_NAME = "default"


def slow_log_group_name(replication_group_id: str) -> str:
    """The CloudWatch log group that receives the replication group's slow log."""
    return f"/aws/elasticache/{replication_group_id}/slow-log"


@dataclass(frozen=True, kw_only=True)
class CacheArgs(DataStoreArgs):
    """Inputs of :class:`Cache`."""

    settings: CacheSettings
    #: service -> access string of its Redis user (see lib/service_access.py).
    clients: Mapping[str, str]


class Cache(Component):
    """Redis replication group with its subnet group, parameter group, IAM-authenticated users and user group."""

    replication_group_id: pulumi.Output[str]
    replication_group_arn: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: int
    member_clusters: pulumi.Output[list[str]]
    user_ids: dict[str, pulumi.Output[str]]
    user_group_id: pulumi.Output[str]

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

        user_group = self._users(ctx, args)

        log_group_name = slow_log_group_name(group_id)
        slow_log = encrypted_log_group(
            f"{name}-slow-log", log_group_name, args, ctx.tags(COMPONENT, log_group_name), child_opts(self)
        )

        group = aws.elasticache.ReplicationGroup(
            f"{name}-replication-group",
            replication_group_id=group_id,
            description="ScalePayments Redis: idempotency keys (IAM-authenticated users, TLS only)",
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
            # IAM authentication requires TLS: tokens and data never cross the network in clear text.
            transit_encryption_enabled=True,
            user_group_ids=[user_group.user_group_id],
            snapshot_retention_limit=settings.snapshot_retention_days,
            snapshot_window=SNAPSHOT_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            # Version policy (README): the engine version is pinned and only moves when the stack says so,
            # so AWS never upgrades it under the stack and `pulumi up` never attempts a downgrade.
            auto_minor_version_upgrade=False,
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
        self.replication_group_arn = group.arn
        self.primary_endpoint = group.primary_endpoint_address
        self.reader_endpoint = group.reader_endpoint_address
        self.member_clusters = group.member_clusters.apply(_as_list)
        self.user_group_id = user_group.user_group_id
        self.finish()

    def _users(self, ctx: Context, args: CacheArgs) -> aws.elasticache.UserGroup:
        """One IAM-authenticated user per client service, the disabled default user, and their user group."""
        # Disabled: a client that skips authentication, or knows no user, gets nothing.
        users = [self._user(ctx, "default", DISABLED_DEFAULT_USER_ACCESS, "no-password-required", DEFAULT_USER_NAME)]
        self.user_ids = {}
        for service, access_string in args.clients.items():
            user = self._user(ctx, service, access_string, "iam")
            self.user_ids[service] = user.user_id
            users.append(user)
        group_name = ctx.name("redis-users", NameKind.ELASTICACHE_USER)
        return aws.elasticache.UserGroup(
            f"{COMPONENT}-user-group",
            user_group_id=group_name,
            engine="redis",
            user_ids=[u.user_id for u in users],
            tags=ctx.tags(COMPONENT, group_name),
            opts=child_opts(self),
        )

    def _user(
        self, ctx: Context, slug: str, access_string: str, authentication: str, user_name: str | None = None
    ) -> aws.elasticache.User:
        """The Redis user ``<slug>-redis`` with ``access_string``; named like its id unless ``user_name`` says otherwise."""
        user_id = ctx.name(f"{slug}-redis", NameKind.ELASTICACHE_USER)
        return aws.elasticache.User(
            f"{COMPONENT}-{slug}-user",
            user_id=user_id,
            # IAM authentication requires the user name to equal the user id.
            user_name=user_name or user_id,
            engine="redis",
            access_string=access_string,
            authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type=authentication),
            tags=ctx.tags(COMPONENT, user_id),
            opts=child_opts(self),
        )


def _as_list(members: Sequence[str] | None) -> list[str]:
    """Member cluster ids as a sorted list (AWS returns a set; order must not cause diffs)."""
    return sorted(members or [])
