"""Environment configuration: the preset table, per-stack overrides and validation.

This is the only module that reads Pulumi config. It turns the stack name and the stack's
config into one frozen :class:`EnvironmentConfig`, validated before any resource is
registered. Components receive plain settings from it and never ask which environment they
are in: an environment difference is a difference between two rows of :data:`PRESETS`.

Every overridable setting is declared once, on its field, with :func:`lib.settings.setting`
(config key, help text, allowed values). The override table, the known keys, the generic
validation, ``Pulumi.yaml``'s ``config:`` block and the README's configuration table all come
from those declarations (see :mod:`lib.settings`).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from lib.cidr import CidrPlanError, plan_subnets
from lib.naming import NameKind, Namer, NameTooLongError
from lib.service_access import data_access
from lib.settings import (
    DeclaredSetting,
    Matches,
    OneOf,
    Range,
    Satisfies,
    Setting,
    SettingValueError,
    declared_settings,
    fields_of,
    rule_violation,
    setting,
)

CONFIG_NAMESPACE = "scalepayments"


class ConfigError(ValueError):
    """Invalid configuration: the message names the key, the bad value and what is allowed."""


class Environment(StrEnum):
    """The three environments one code base deploys."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


# --- AWS facts that mocks will not check for us (see the README, "Environments") ----------------

#: Fargate CPU units -> allowed memory (MiB).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}

#: Instance classes AWS offers for Aurora PostgreSQL (no micro or small burstable classes).
AURORA_POSTGRES_CLASSES: frozenset[str] = frozenset(
    ["db.t3.medium", "db.t3.large", "db.t4g.medium", "db.t4g.large", "db.serverless"]
    + [f"db.r5.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")]
    + [f"db.r6g.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")]
    + [
        f"db.r6i.{s}"
        for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge")
    ]
    + [f"db.r7g.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")]
    + [f"db.x2g.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")]
)

#: Retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: Enhanced monitoring intervals RDS accepts (0 = off).
MONITORING_INTERVALS: tuple[int, ...] = (0, 1, 5, 10, 15, 30, 60)

#: PostgreSQL reserved words RDS refuses as a master user name, plus the well-known defaults.
RESERVED_DB_USERS: frozenset[str] = frozenset({"postgres", "admin", "rdsadmin", "root", "user", "public"})

_CACHE_NODE = r"cache\.(t3|t4g|m5|m6g|m7g|r5|r6g|r7g)\.(micro|small|medium|large|\d*xlarge)"
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_SUFFIX = re.compile(r"^[a-z0-9]{1,8}$")
_ARN_ACM = r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+"
_IMAGE = r"[a-zA-Z0-9][a-zA-Z0-9._/:@-]*"
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
_SUBSCRIBER_ARN = (
    r"arn:aws[a-z-]*:(sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+|lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?)"
)
#: A private Amazon ECR image: ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag>|@<digest>]``.
_ECR_PRIVATE_IMAGE = r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+([:@][A-Za-z0-9_.:-]+)?"

#: AWS WAF inspects at most this much of an ALB request body (the limit is fixed for ALBs).
WAF_ALB_BODY_INSPECTION_BYTES = 8192

#: ``dedicated``: one AWS account per environment (the recommended PCI DSS layout); ``shared``: several
#: stacks (staging and prod, or ephemeral copies) in one account, exactly one of which owns the singletons.
ACCOUNT_MODELS: tuple[str, ...] = ("dedicated", "shared")


def _valid_master_username(user: str) -> bool:
    return user.lower() not in RESERVED_DB_USERS and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]{0,62}", user) is not None


# --- settings, one frozen dataclass per tier ---------------------------------------------------
# A value every environment shares is the field's default; the preset rows below name only what differs.

#: Engine versions, pinned with automatic minor upgrades off (see the README's version policy): AWS never
#: moves them under the stack, so `pulumi up` never tries to "downgrade" a cluster AWS upgraded.
#: 16.13 is an Aurora PostgreSQL 16 minor AWS offers (check: aws rds describe-db-engine-versions
#: --engine aurora-postgresql --engine-version 16.13); raise it by changing this line or dbEngineVersion.
AURORA_ENGINE_VERSION = "16.13"
REDIS_ENGINE_VERSION = "7.1"

#: The release of the reference services (services/) the presets run; CI pushes each image with this tag.
IMAGE_TAG = "1.0.0"


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    """VPC shape: CIDR, AZ count, NAT layout and private AWS API endpoints."""

    vpc_cidr: str = setting("vpcCidr", "VPC CIDR block (a private /16 to /20, not overlapping another environment's)")
    az_count: int = setting(
        "azCount", "number of availability zones", Range(2, 6, " availability zones (an ALB needs at least 2)")
    )
    single_nat_gateway: bool = setting("singleNatGateway", "one shared NAT gateway instead of one per AZ")
    interface_endpoints: bool = setting("interfaceEndpoints", "private endpoints for ECR, CloudWatch Logs and Secrets Manager")


@dataclass(frozen=True, kw_only=True)
class KeySettings:
    """KMS customer-managed keys."""

    deletion_window_days: int = setting("kmsDeletionWindowDays", "KMS key deletion window", Range(7, 30, " days"))


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """One ECS service: what it runs, how big it is and where the ALB sends traffic to it.

    The declared fields are per-service settings: ``Image`` is set as ``apiImage``, ``paymentImage``...
    """

    name: str
    short_name: str
    description: str
    image: str | None = setting(
        "Image",
        "container image; unset: the stack's own ECR repository at imageTag",
        Matches(_IMAGE, "a container image reference such as repo/name:tag"),
    )
    port: int = setting("Port", "container port", Range(1024, 65535, " (containers run unprivileged)"))
    cpu: int = setting("Cpu", "Fargate CPU units", OneOf(tuple(FARGATE_MEMORY)))
    memory: int = setting("Memory", "Fargate memory (MiB); must be a size Fargate offers for the CPU")
    max_request_body_bytes: int = setting(
        "MaxRequestBodyBytes",
        "largest request body the WAF and the service accept on the service's path",
        Range(0, WAF_ALB_BODY_INSPECTION_BYTES, " bytes (WAF inspects at most 8 KB of an ALB request body)"),
    )
    path_pattern: str
    health_check_path: str
    #: Paths the container writes while its root filesystem is read-only (each gets a task volume; the
    #: image declares them with VOLUME so Fargate copies their ownership into the volume).
    writable_paths: tuple[str, ...] = ("/tmp",)

    @property
    def path_prefix(self) -> str:
        """``/payment/`` for the path pattern ``/payment/*``: what the WAF body-size rule matches on."""
        return self.path_pattern.removesuffix("*")


@dataclass(frozen=True, kw_only=True)
class ComputeSettings:
    """ECS Fargate services and their autoscaling bounds."""

    services: tuple[ServiceSettings, ...]
    image_tag: str = setting(
        "imageTag",
        "tag of the service images in the stack's ECR repositories (push them before `pulumi up`; see the README)",
        Matches(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "an image tag: letters, digits, '_', '.', '-' (max 128)"),
        default=IMAGE_TAG,
    )
    allow_public_images: bool = setting(
        "allowPublicImages", "dev only: allow <service>Image from a registry other than a private Amazon ECR one"
    )
    wait_for_steady_state: bool = setting(
        "waitForSteadyState",
        "`pulumi up` waits until every service runs its tasks healthy (and fails if they do not start)",
        default=True,
    )
    min_tasks: int = setting("minTasks", "minimum tasks per service", Range(1, None))
    max_tasks: int = setting("maxTasks", "maximum tasks per service (at least minTasks)", Range(None, 100))
    cpu_target_percent: int = setting("cpuTargetPercent", "autoscaling CPU target", Range(10, 95, " percent"))
    memory_target_percent: int = setting("memoryTargetPercent", "autoscaling memory target", Range(10, 95, " percent"))
    requests_per_target: int = setting("requestsPerTarget", "autoscaling target of ALB requests per task", Range(1, None))
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """Aurora PostgreSQL cluster."""

    instance_class: str = setting(
        "dbInstanceClass",
        "Aurora PostgreSQL instance class",
        Satisfies(
            lambda value: value in AURORA_POSTGRES_CLASSES,
            "an instance class Aurora PostgreSQL offers (smallest: db.t3.medium or db.t4g.medium; no micro or small classes)",
        ),
    )
    instance_count: int = setting("dbInstanceCount", "Aurora instances (writer + readers)", Range(1, 15, " instances"))
    engine_version: str = setting(
        "dbEngineVersion",
        "Aurora PostgreSQL engine version, pinned: automatic minor upgrades are off (see the README's version policy)",
        Matches(r"\d+\.\d+", "a major.minor Aurora PostgreSQL version such as 16.13"),
        default=AURORA_ENGINE_VERSION,
    )
    database_name: str = "payments"
    master_username: str = setting(
        "dbMasterUsername",
        "Aurora master user name",
        Satisfies(
            _valid_master_username,
            "a letter then letters, digits or underscores (max 63), not a default name such as "
            + ", ".join(sorted(RESERVED_DB_USERS)),
        ),
        default="scalepay_admin",
    )
    backup_retention_days: int = setting("dbBackupRetentionDays", "Aurora backup retention", Range(1, 35, " days"))
    preferred_backup_window: str = "03:00-04:00"
    preferred_maintenance_window: str = "sun:05:00-sun:06:00"
    performance_insights: bool = setting("dbPerformanceInsights", "Aurora Performance Insights")
    monitoring_interval_seconds: int = setting(
        "dbMonitoringInterval", "enhanced monitoring interval in seconds (0 = off)", OneOf(MONITORING_INTERVALS)
    )
    deletion_protection: bool = setting("dbDeletionProtection", "Aurora deletion protection")
    final_snapshot: bool = setting("dbFinalSnapshot", "take a final snapshot when the cluster is deleted")
    port: int = 5432

    @property
    def parameter_group_family(self) -> str:
        """``aurora-postgresql16`` for 16.x: derived from the version, so the two cannot disagree."""
        return f"aurora-postgresql{self.engine_version.split('.')[0]}"


@dataclass(frozen=True, kw_only=True)
class CacheSettings:
    """ElastiCache Redis replication group."""

    node_type: str = setting(
        "cacheNodeType",
        "ElastiCache node type",
        Matches(_CACHE_NODE, "an ElastiCache node type such as cache.t4g.small or cache.r6g.large"),
    )
    node_count: int = setting(
        "cacheNodeCount", "Redis nodes (primary + replicas)", Range(1, 6, " nodes (primary + up to 5 replicas)")
    )
    automatic_failover: bool = setting("cacheAutomaticFailover", "Redis automatic failover (needs 2+ nodes)")
    multi_az: bool = setting("cacheMultiAz", "Redis Multi-AZ (needs automatic failover)")
    snapshot_retention_days: int = setting("cacheSnapshotRetentionDays", "Redis snapshot retention", Range(0, 35, " days"))
    engine_version: str = setting(
        "cacheEngineVersion",
        "Redis engine version, pinned: automatic minor upgrades are off; 7.0 or later (IAM authentication)",
        Satisfies(
            lambda value: re.fullmatch(r"\d+\.\d+", str(value)) is not None and int(str(value).split(".")[0]) >= 7,
            "a major.minor Redis version of 7.0 or later (IAM authentication needs Redis 7)",
        ),
        default=REDIS_ENGINE_VERSION,
    )
    port: int = 6379

    @property
    def parameter_group_family(self) -> str:
        """``redis7`` for 7.x: derived from the version, so the two cannot disagree."""
        return f"redis{self.engine_version.split('.')[0]}"


@dataclass(frozen=True, kw_only=True)
class EdgeSettings:
    """Application Load Balancer, its certificate and the WAF in front of it."""

    certificate_arn: str | None = setting(
        "certificateArn",
        "ACM certificate ARN for the HTTPS listener",
        Matches(_ARN_ACM, "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"),
        default=None,
    )
    domain_name: str | None = setting(
        "domainName", "domain for a DNS-validated ACM certificate (with hostedZoneId)", default=None
    )
    hosted_zone_id: str | None = setting("hostedZoneId", "Route 53 hosted zone of domainName", default=None)
    self_signed_certificate_fallback: bool = setting(
        "selfSignedCertificateFallback", "dev only: a self-signed certificate when no other is configured"
    )
    waf_enabled: bool = setting("wafEnabled", "WAFv2 web ACL on the ALB")
    waf_rate_limit: int = setting(
        "wafRateLimit",
        "requests per 5 minutes per IP before blocking",
        Range(10, 2_000_000_000, " requests per 5 minutes"),
        default=2000,
    )
    alb_deletion_protection: bool = setting("albDeletionProtection", "ALB deletion protection")
    access_log_expiration_days: int
    tls_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True, kw_only=True)
class ObservabilitySettings:
    """Log retention, alarm thresholds and where alarms go."""

    log_retention_days: int = setting("logRetentionDays", "CloudWatch Logs retention in days", OneOf(LOG_RETENTION_DAYS))
    alarm_email: str | None = setting(
        "alarmEmail", "e-mail address subscribed to alarms", Matches(_EMAIL, "an e-mail address"), default=None
    )
    alarm_https_endpoint: str | None = setting(
        "alarmHttpsEndpoint",
        "HTTPS endpoint subscribed to alarms (a paging service or chat webhook)",
        Matches(r"https://[^\s/$.?#][^\s]*", "an https:// URL"),
        default=None,
    )
    alarm_subscriber_arns: tuple[str, ...] = setting(
        "alarmSubscriberArns",
        "comma-separated ARNs of SQS queues or Lambda functions subscribed to alarms",
        Satisfies(
            lambda arns: all(re.fullmatch(_SUBSCRIBER_ARN, arn) for arn in arns),
            "ARNs of SQS queues (arn:aws:sqs:...) or Lambda functions (arn:aws:lambda:...:function:...)",
        ),
        default=(),
    )
    #: Staging and prod refuse to deploy with nobody to page; dev may (the deploy summary says so).
    require_alarm_subscriber: bool
    cpu_alarm_percent: int
    memory_alarm_percent: int
    response_time_alarm_seconds: float
    http_5xx_alarm_count: int
    db_cpu_alarm_percent: int
    db_connections_alarm: int
    db_freeable_memory_alarm_bytes: int
    db_replica_lag_alarm_ms: int
    redis_cpu_alarm_percent: int
    redis_memory_alarm_percent: int
    redis_evictions_alarm: int


@dataclass(frozen=True, kw_only=True)
class AccountSecuritySettings:
    """GuardDuty, AWS Config and CloudTrail (one per account and region)."""

    enabled: bool = setting("accountSecurityEnabled", "GuardDuty, AWS Config and CloudTrail")
    account_model: str = setting(
        "accountModel",
        "dedicated: this environment has the AWS account to itself; shared: several stacks share the account",
        OneOf(ACCOUNT_MODELS),
        default="dedicated",
    )
    manage_account_singletons: bool = setting(
        "manageAccountSingletons",
        "this stack owns the account's GuardDuty detector, Config recorder, trail and RDSOSMetrics log group "
        "(false: they exist already); set explicitly in every stack of a shared account, true in exactly one",
        default=True,
    )
    cloudtrail_insights: bool = setting("cloudTrailInsights", "CloudTrail Insights (API call and error rate anomalies)")
    existing_config_recorder_name: str = setting(
        "existingConfigRecorderName",
        "name of the account's AWS Config recorder where this stack does not own it (reported as an output)",
        Matches(r"[A-Za-z0-9_.-]{1,256}", "an AWS Config recorder name (letters, digits, '_', '.', '-')"),
        default="default",
    )


@dataclass(frozen=True, kw_only=True)
class ProtectionSettings:
    """Pulumi-level safety: protect data stores and keys from ``pulumi destroy``."""

    protect: bool = setting("protectResources", "Pulumi protect on data stores and keys")
    retain_on_delete: bool


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything the stack needs, validated: one row of the preset table plus overrides."""

    environment: Environment
    suffix: str | None = None
    region: str = "us-east-1"
    cost_center: str = setting("costCenter", "CostCenter tag value", default="payments-platform")
    compliance: str = "pci-dss"
    network: NetworkSettings
    keys: KeySettings
    compute: ComputeSettings
    database: DatabaseSettings
    cache: CacheSettings
    edge: EdgeSettings
    observability: ObservabilitySettings
    account_security: AccountSecuritySettings
    protection: ProtectionSettings
    namer: Namer = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "namer", Namer(self.environment.value, self.suffix))

    @property
    def env(self) -> str:
        """The environment's name (``dev``, ``staging``, ``prod``)."""
        return self.environment.value


#: The settings sections of :class:`EnvironmentConfig`, in the order validation reports them.
SECTIONS: tuple[str, ...] = (
    "network",
    "keys",
    "compute",
    "database",
    "cache",
    "edge",
    "observability",
    "account_security",
    "protection",
)

#: Settings that choose the preset rather than override a field of it (read by :func:`build`).
STACK_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "environment",
        "environment preset: dev, staging or prod; defaults to the stack name",
        OneOf(tuple(e.value for e in Environment)),
    ),
    Setting(
        "environmentSuffix",
        "suffix for ephemeral copies (e.g. pr123)",
        Matches(_SUFFIX.pattern.strip("^$"), "1 to 8 lowercase letters or digits (e.g. pr123)"),
    ),
)


# --- the preset table ----------------------------------------------------------------------------


def _services(cpu: int, memory: int) -> tuple[ServiceSettings, ...]:
    """The three services with one Fargate size, each running its image from the stack's ECR repository.

    Request body limits per public path (enforced by the WAF where there is one, and by the service):
    ``/api/*`` takes payment requests (a few hundred bytes of JSON) up to the 8 KB the WAF can inspect;
    ``/payment/*`` and ``/notification/*`` expose only their health check in public, so 1 KB is ample.
    """

    def service(name: str, short_name: str, description: str, max_body: int) -> ServiceSettings:
        return ServiceSettings(
            name=name,
            short_name=short_name,
            description=description,
            image=None,
            port=8080,
            cpu=cpu,
            memory=memory,
            max_request_body_bytes=max_body,
            path_pattern=f"/{name}/*",
            health_check_path=f"/{name}/health",
        )

    return (
        service("api", "api", "public REST API", WAF_ALB_BODY_INSPECTION_BYTES),
        service("payment", "pay", "core payment processing", 1024),
        service("notification", "notif", "event-driven notifications", 1024),
    )


PRESETS: dict[Environment, EnvironmentConfig] = {
    Environment.DEV: EnvironmentConfig(
        environment=Environment.DEV,
        network=NetworkSettings(vpc_cidr="10.0.0.0/16", az_count=2, single_nat_gateway=True, interface_endpoints=False),
        keys=KeySettings(deletion_window_days=7),
        compute=ComputeSettings(
            services=_services(256, 512),
            allow_public_images=True,
            min_tasks=1,
            max_tasks=2,
            cpu_target_percent=70,
            memory_target_percent=75,
            requests_per_target=500,
        ),
        database=DatabaseSettings(
            instance_class="db.t4g.medium",
            instance_count=1,
            backup_retention_days=1,
            performance_insights=False,
            monitoring_interval_seconds=0,
            deletion_protection=False,
            final_snapshot=False,
        ),
        cache=CacheSettings(
            node_type="cache.t4g.micro",
            node_count=1,
            automatic_failover=False,
            multi_az=False,
            snapshot_retention_days=1,
        ),
        edge=EdgeSettings(
            self_signed_certificate_fallback=True,
            waf_enabled=False,
            alb_deletion_protection=False,
            access_log_expiration_days=30,
        ),
        observability=ObservabilitySettings(
            log_retention_days=7,
            require_alarm_subscriber=False,
            cpu_alarm_percent=85,
            memory_alarm_percent=85,
            response_time_alarm_seconds=2.0,
            http_5xx_alarm_count=20,
            db_cpu_alarm_percent=85,
            db_connections_alarm=100,
            db_freeable_memory_alarm_bytes=256 * 1024**2,
            db_replica_lag_alarm_ms=0,
            redis_cpu_alarm_percent=85,
            redis_memory_alarm_percent=85,
            redis_evictions_alarm=100,
        ),
        account_security=AccountSecuritySettings(enabled=False, cloudtrail_insights=False),
        protection=ProtectionSettings(protect=False, retain_on_delete=False),
    ),
    Environment.STAGING: EnvironmentConfig(
        environment=Environment.STAGING,
        network=NetworkSettings(vpc_cidr="10.1.0.0/16", az_count=2, single_nat_gateway=False, interface_endpoints=True),
        keys=KeySettings(deletion_window_days=14),
        compute=ComputeSettings(
            services=_services(512, 1024),
            allow_public_images=False,
            min_tasks=2,
            max_tasks=4,
            cpu_target_percent=65,
            memory_target_percent=75,
            requests_per_target=800,
        ),
        database=DatabaseSettings(
            instance_class="db.r6g.large",
            instance_count=2,
            backup_retention_days=7,
            performance_insights=True,
            monitoring_interval_seconds=60,
            deletion_protection=False,
            final_snapshot=True,
        ),
        cache=CacheSettings(
            node_type="cache.t4g.small",
            node_count=2,
            automatic_failover=True,
            multi_az=True,
            snapshot_retention_days=5,
        ),
        edge=EdgeSettings(
            self_signed_certificate_fallback=False,
            waf_enabled=True,
            alb_deletion_protection=False,
            access_log_expiration_days=90,
        ),
        observability=ObservabilitySettings(
            log_retention_days=90,
            require_alarm_subscriber=True,
            cpu_alarm_percent=80,
            memory_alarm_percent=80,
            response_time_alarm_seconds=1.5,
            http_5xx_alarm_count=10,
            db_cpu_alarm_percent=80,
            db_connections_alarm=400,
            db_freeable_memory_alarm_bytes=512 * 1024**2,
            db_replica_lag_alarm_ms=1000,
            redis_cpu_alarm_percent=80,
            redis_memory_alarm_percent=80,
            redis_evictions_alarm=50,
        ),
        account_security=AccountSecuritySettings(enabled=True, cloudtrail_insights=False),
        protection=ProtectionSettings(protect=False, retain_on_delete=False),
    ),
    Environment.PROD: EnvironmentConfig(
        environment=Environment.PROD,
        network=NetworkSettings(vpc_cidr="10.2.0.0/16", az_count=3, single_nat_gateway=False, interface_endpoints=True),
        keys=KeySettings(deletion_window_days=30),
        compute=ComputeSettings(
            services=_services(1024, 2048),
            allow_public_images=False,
            min_tasks=3,
            max_tasks=10,
            cpu_target_percent=60,
            memory_target_percent=70,
            requests_per_target=1000,
        ),
        database=DatabaseSettings(
            instance_class="db.r5.xlarge",
            instance_count=3,
            backup_retention_days=30,
            performance_insights=True,
            monitoring_interval_seconds=15,
            deletion_protection=True,
            final_snapshot=True,
        ),
        cache=CacheSettings(
            node_type="cache.r6g.large",
            node_count=3,
            automatic_failover=True,
            multi_az=True,
            snapshot_retention_days=14,
        ),
        edge=EdgeSettings(
            self_signed_certificate_fallback=False,
            waf_enabled=True,
            alb_deletion_protection=True,
            access_log_expiration_days=365,
        ),
        observability=ObservabilitySettings(
            log_retention_days=365,
            require_alarm_subscriber=True,
            cpu_alarm_percent=75,
            memory_alarm_percent=75,
            response_time_alarm_seconds=1.0,
            http_5xx_alarm_count=5,
            db_cpu_alarm_percent=75,
            db_connections_alarm=1000,
            db_freeable_memory_alarm_bytes=1024**3,
            db_replica_lag_alarm_ms=500,
            redis_cpu_alarm_percent=75,
            redis_memory_alarm_percent=75,
            redis_evictions_alarm=10,
        ),
        account_security=AccountSecuritySettings(enabled=True, cloudtrail_insights=True),
        protection=ProtectionSettings(protect=True, retain_on_delete=True),
    ),
}


# --- the override table, derived from the declarations ------------------------------------------

#: Every field-level setting: ``EnvironmentConfig`` fields and those of its sections.
OVERRIDES: tuple[DeclaredSetting, ...] = tuple(declared_settings(EnvironmentConfig, SECTIONS))

#: Per-service settings; the config key is ``<service name><suffix>`` (``apiImage``, ``paymentCpu``).
SERVICE_OVERRIDES: tuple[DeclaredSetting, ...] = tuple(fields_of(ServiceSettings, "services"))

#: The services every preset runs (their names prefix the per-service keys).
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in PRESETS[Environment.DEV].compute.services)

KNOWN_KEYS: frozenset[str] = frozenset(
    [s.key for s in STACK_SETTINGS]
    + [o.key for o in OVERRIDES]
    + [f"{name}{o.key}" for name in SERVICE_NAMES for o in SERVICE_OVERRIDES]
)


def _parse(key: str, declared: DeclaredSetting, raw: str) -> Any:
    try:
        return declared.parse(raw)
    except SettingValueError as exc:
        raise ConfigError(f"{CONFIG_NAMESPACE}:{key}: '{raw}' {exc}") from None


def _apply_overrides(base: EnvironmentConfig, raw: Mapping[str, str]) -> EnvironmentConfig:
    """Return ``base`` with every override present in ``raw`` applied (no validation yet)."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for override in OVERRIDES:
        if override.key not in raw:
            continue
        value = _parse(override.key, override, raw[override.key])
        if override.section:
            sections.setdefault(override.section, {})[override.field_name] = value
        else:
            top[override.field_name] = value
    services = []
    for service in base.compute.services:
        changes = {
            o.field_name: _parse(f"{service.name}{o.key}", o, raw[f"{service.name}{o.key}"])
            for o in SERVICE_OVERRIDES
            if f"{service.name}{o.key}" in raw
        }
        services.append(replace(service, **changes))
    sections.setdefault("compute", {})["services"] = tuple(services)
    for name, changes in sections.items():
        top[name] = replace(getattr(base, name), **changes)
    return replace(base, **top)


# --- validation ---------------------------------------------------------------------------------


def _fail(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{CONFIG_NAMESPACE}:{key}: invalid value {value!r}; allowed: {allowed}")


def _check_rules(cfg: EnvironmentConfig) -> None:
    """Every declared setting against its own rule, in declaration order."""
    for declared in OVERRIDES:
        holder = getattr(cfg, declared.section) if declared.section else cfg
        value = getattr(holder, declared.field_name)
        allowed = rule_violation(declared, value)
        if allowed is not None:
            raise _fail(declared.key, value, allowed)
    for service in cfg.compute.services:
        for declared in SERVICE_OVERRIDES:
            value = getattr(service, declared.field_name)
            allowed = rule_violation(declared, value)
            if allowed is not None:
                raise _fail(f"{service.name}{declared.key}", value, allowed)


def validate(cfg: EnvironmentConfig) -> EnvironmentConfig:
    """Check every setting against what AWS accepts; raise ConfigError naming key, value and rule.

    Single-value rules come from the declarations (:func:`_check_rules`); what follows checks
    values against each other and against the CIDR plan and AWS name limits.
    """
    _check_rules(cfg)
    _validate_network(cfg.network, cfg.environment)
    _validate_compute(cfg.compute)
    _validate_images(cfg)
    _validate_cache(cfg.cache)
    _validate_edge(cfg)
    _validate_alarm_subscribers(cfg)
    _validate_names(cfg)
    return cfg


def _validate_network(net: NetworkSettings, environment: Environment) -> None:
    try:
        network = ipaddress.ip_network(net.vpc_cidr, strict=True)
    except ValueError:
        raise _fail("vpcCidr", net.vpc_cidr, "an IPv4 network in CIDR form such as 10.0.0.0/16") from None
    if network.version != 4 or not 16 <= network.prefixlen <= 20 or not network.is_private:
        raise _fail("vpcCidr", net.vpc_cidr, "a private (RFC 1918) IPv4 block from /16 to /20")
    # Another environment's block (equal or overlapping) would make peering, VPN routes and firewall rules
    # ambiguous; the environment's own preset block, or a part of it, is fine.
    for other in Environment:
        if other is environment:
            continue
        other_cidr = PRESETS[other].network.vpc_cidr
        if network.overlaps(ipaddress.ip_network(other_cidr)):
            raise _fail("vpcCidr", net.vpc_cidr, f"a block that does not overlap the {other.value} VPC ({other_cidr})")
    try:
        plan_subnets(net.vpc_cidr, net.az_count)
    except CidrPlanError as exc:
        raise _fail("azCount", net.az_count, f"a count the CIDR plan of {net.vpc_cidr} can hold ({exc})") from None


def _validate_compute(compute: ComputeSettings) -> None:
    if compute.max_tasks < compute.min_tasks:
        raise _fail("maxTasks", compute.max_tasks, f"at least minTasks ({compute.min_tasks})")
    for service in compute.services:
        allowed = FARGATE_MEMORY[service.cpu]
        if service.memory not in allowed:
            raise _fail(
                f"{service.name}Memory",
                service.memory,
                f"for {service.cpu} CPU units Fargate offers {allowed[0]}-{allowed[-1]} MiB: {', '.join(map(str, allowed))}",
            )


def _validate_images(cfg: EnvironmentConfig) -> None:
    """No image is pulled anonymously from a public registry outside dev (Docker Hub rate-limits such pulls)."""
    compute = cfg.compute
    if compute.allow_public_images and cfg.environment is not Environment.DEV:
        raise _fail("allowPublicImages", True, f"false outside dev ({cfg.env} pulls images from private Amazon ECR only)")
    if compute.allow_public_images:
        return
    for service in compute.services:
        if service.image is not None and re.fullmatch(_ECR_PRIVATE_IMAGE, service.image) is None:
            raise _fail(
                f"{service.name}Image",
                service.image,
                "an image in a private Amazon ECR registry (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>), "
                f"or unset for the stack's own repository; {cfg.env} pulls nothing anonymously from a public registry",
            )


def _validate_alarm_subscribers(cfg: EnvironmentConfig) -> None:
    """Staging and prod refuse to deploy when no one would hear an alarm."""
    obs = cfg.observability
    if obs.require_alarm_subscriber and not (obs.alarm_email or obs.alarm_https_endpoint or obs.alarm_subscriber_arns):
        raise _fail(
            "alarmEmail",
            None,
            "at least one alarm subscriber: alarmEmail, alarmHttpsEndpoint or alarmSubscriberArns "
            f"({cfg.env} refuses to deploy alarms that page nobody)",
        )


def _validate_cache(cache: CacheSettings) -> None:
    if cache.automatic_failover and cache.node_count < 2:
        raise _fail("cacheAutomaticFailover", True, "true only with cacheNodeCount of at least 2")
    if cache.multi_az and not cache.automatic_failover:
        raise _fail("cacheMultiAz", True, "true only with cacheAutomaticFailover true and at least 2 nodes")


def _validate_edge(cfg: EnvironmentConfig) -> None:
    edge = cfg.edge
    if bool(edge.domain_name) != bool(edge.hosted_zone_id):
        raise _fail(
            "domainName" if edge.hosted_zone_id else "hostedZoneId",
            edge.domain_name or edge.hosted_zone_id,
            "domainName and hostedZoneId set together (DNS validation needs both)",
        )
    has_cert = bool(edge.certificate_arn or edge.domain_name)
    if not has_cert and not edge.self_signed_certificate_fallback:
        raise _fail(
            "certificateArn",
            edge.certificate_arn,
            "an ACM certificate ARN, or domainName + hostedZoneId: "
            f"{cfg.env} refuses to deploy HTTPS without a trusted certificate",
        )
    if edge.self_signed_certificate_fallback and cfg.environment is not Environment.DEV:
        raise _fail("selfSignedCertificateFallback", True, "false outside dev (a self-signed certificate is for dev only)")


def _validate_names(cfg: EnvironmentConfig) -> None:
    """Build every length-limited name now, so a long suffix fails before any resource exists."""
    namer = cfg.namer
    bounded: list[tuple[str, NameKind]] = [
        ("alb", NameKind.ALB),
        ("redis", NameKind.ELASTICACHE_REPLICATION_GROUP),
        ("aurora", NameKind.RDS_IDENTIFIER),
        ("ecs-execution", NameKind.IAM_ROLE),
        ("migrate-execution", NameKind.IAM_ROLE),
        ("default-redis", NameKind.ELASTICACHE_USER),
        ("redis-users", NameKind.ELASTICACHE_USER),
        ("rds-monitoring", NameKind.IAM_ROLE),
        ("flow-logs", NameKind.IAM_ROLE),
        ("config-recorder", NameKind.IAM_ROLE),
        ("cloudtrail-logs", NameKind.IAM_ROLE),
    ]
    for service in cfg.compute.services:
        bounded.append((f"{service.short_name}-tg", NameKind.TARGET_GROUP))
        bounded.append((f"{service.name}-task", NameKind.IAM_ROLE))
        if data_access(service.name).cache_access is not None:
            bounded.append((f"{service.name}-redis", NameKind.ELASTICACHE_USER))
    try:
        for component, kind in bounded:
            namer.name(component, kind)
        for component in ("alb-logs", "config", "cloudtrail"):
            namer.bucket(component, "0" * 12)
    except NameTooLongError as exc:
        raise ConfigError(f"{CONFIG_NAMESPACE}:environmentSuffix: {cfg.suffix!r} makes a name too long: {exc}") from None


# --- loading -----------------------------------------------------------------------------------------


def unknown_key_error(key: str) -> ConfigError:
    """The error for a key this program does not know, naming the nearest valid ones."""
    nearest = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(nearest)}?" if nearest else "no setting has a similar name"
    return ConfigError(
        f"{CONFIG_NAMESPACE}:{key}: unknown setting; {hint} (every setting is listed in Pulumi.yaml and the README)"
    )


def _ephemeral_copy(base: EnvironmentConfig) -> EnvironmentConfig:
    """Defaults of an ``environmentSuffix`` copy: destroyable and recreatable at once, in its original's account.

    A copy (a per-pull-request stack, say) shares the account of the environment it copies, so it does not
    own the account singletons, and it must tear down cleanly: no protection, no deletion protection, no
    final snapshot (a second teardown would collide with the first one's snapshot name). Explicit config
    still wins: these are the preset values the overrides start from.
    """
    return replace(
        base,
        protection=replace(base.protection, protect=False, retain_on_delete=False),
        database=replace(base.database, deletion_protection=False, final_snapshot=False),
        edge=replace(base.edge, alb_deletion_protection=False),
        account_security=replace(base.account_security, manage_account_singletons=False),
    )


def build(stack: str, raw: Mapping[str, str], region: str | None = None) -> EnvironmentConfig:
    """Resolve the environment for ``stack`` from plain config values (without namespace).

    Pure: tests and tools call it directly; :func:`load` feeds it from Pulumi config.
    """
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise unknown_key_error(unknown[0])
    env_name = raw.get("environment", stack)
    try:
        environment = Environment(env_name)
    except ValueError:
        allowed = ", ".join(e.value for e in Environment)
        source = "environment" if "environment" in raw else "environment (defaulted from the stack name)"
        raise ConfigError(f"{CONFIG_NAMESPACE}:{source}: invalid value {env_name!r}; allowed: {allowed}") from None
    suffix = raw.get("environmentSuffix") or None
    if suffix is not None and not _SUFFIX.match(suffix):
        raise _fail("environmentSuffix", suffix, "1 to 8 lowercase letters or digits (e.g. pr123)")
    base = replace(PRESETS[environment], suffix=suffix)
    if suffix is not None:
        base = _ephemeral_copy(base)
    if raw.get("accountModel") == "shared" and "manageAccountSingletons" not in raw:
        raise _fail(
            "manageAccountSingletons",
            None,
            "true or false, set explicitly when accountModel is shared: true in exactly one stack of the account "
            "(it owns GuardDuty, AWS Config, CloudTrail and the RDSOSMetrics log group), false in the others",
        )
    if region is not None:
        if not _REGION.match(region):
            raise ConfigError(f"aws:region: invalid value {region!r}; allowed: an AWS region name such as us-east-1")
        base = replace(base, region=region)
    return validate(_apply_overrides(base, raw))


def load() -> EnvironmentConfig:
    """Read the stack's Pulumi config and return the validated environment configuration."""
    import pulumi  # imported here so that the pure functions above need no Pulumi runtime

    config = pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, str] = {}
    for key in sorted(KNOWN_KEYS):
        value = config.get(key)
        if value is not None:
            raw[key] = value if isinstance(value, str) else json.dumps(value)
    # Keys this program does not know (a typo such as "dbInstanceClas") must fail loudly too.
    for full_key in _all_config_keys():
        namespace, _, key = full_key.partition(":")
        if namespace == CONFIG_NAMESPACE and key not in raw:
            raw[key] = str(config.get(key))
    region = pulumi.Config("aws").get("region")
    return build(pulumi.get_stack(), raw, region)


def _all_config_keys() -> list[str]:
    from pulumi.runtime import config as runtime_config

    return list(runtime_config.CONFIG.get().keys())
