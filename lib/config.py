"""Environment configuration: the preset table, per-stack overrides and validation.

This is the only module that reads Pulumi config. It turns the stack name and the stack's
config into one frozen :class:`EnvironmentConfig`, validated before any resource is
registered. Components receive plain settings from it and never ask which environment they
are in: an environment difference is a difference between two rows of :data:`PRESETS`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from lib.cidr import CidrPlanError, plan_subnets
from lib.naming import NameKind, Namer, NameTooLongError

CONFIG_NAMESPACE = "scalepayments"


class ConfigError(ValueError):
    """Invalid configuration: the message names the key, the bad value and what is allowed."""


class Environment(StrEnum):
    """The three environments one code base deploys."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


# --- AWS facts that mocks will not check for us (DESIGN.md section 5) -------------------------

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

_CACHE_NODE = re.compile(r"^cache\.(t3|t4g|m5|m6g|m7g|r5|r6g|r7g)\.(micro|small|medium|large|\d*xlarge)$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_SUFFIX = re.compile(r"^[a-z0-9]{1,8}$")
_ARN_ACM = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
_IMAGE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$")


# --- settings, one frozen dataclass per tier ---------------------------------------------------


@dataclass(frozen=True)
class NetworkSettings:
    """VPC shape: CIDR, AZ count, NAT layout and private AWS API endpoints."""

    vpc_cidr: str
    az_count: int
    single_nat_gateway: bool
    interface_endpoints: bool


@dataclass(frozen=True)
class KeySettings:
    """KMS customer-managed keys."""

    deletion_window_days: int


@dataclass(frozen=True)
class ServiceSettings:
    """One ECS service: what it runs, how big it is and where the ALB sends traffic to it."""

    name: str
    short_name: str
    description: str
    image: str
    port: int
    cpu: int
    memory: int
    path_pattern: str
    health_check_path: str


@dataclass(frozen=True)
class ComputeSettings:
    """ECS Fargate services and their autoscaling bounds."""

    services: tuple[ServiceSettings, ...]
    min_tasks: int
    max_tasks: int
    cpu_target_percent: int
    memory_target_percent: int
    requests_per_target: int
    scale_out_cooldown_seconds: int
    scale_in_cooldown_seconds: int


@dataclass(frozen=True)
class DatabaseSettings:
    """Aurora PostgreSQL cluster."""

    instance_class: str
    instance_count: int
    engine_version: str
    parameter_group_family: str
    database_name: str
    master_username: str
    backup_retention_days: int
    preferred_backup_window: str
    preferred_maintenance_window: str
    performance_insights: bool
    monitoring_interval_seconds: int
    deletion_protection: bool
    final_snapshot: bool
    port: int = 5432


@dataclass(frozen=True)
class CacheSettings:
    """ElastiCache Redis replication group."""

    node_type: str
    node_count: int
    automatic_failover: bool
    multi_az: bool
    snapshot_retention_days: int
    engine_version: str
    parameter_group_family: str
    port: int = 6379


@dataclass(frozen=True)
class EdgeSettings:
    """Application Load Balancer, its certificate and the WAF in front of it."""

    certificate_arn: str | None
    domain_name: str | None
    hosted_zone_id: str | None
    self_signed_certificate_fallback: bool
    waf_enabled: bool
    waf_rate_limit: int
    alb_deletion_protection: bool
    access_log_expiration_days: int
    tls_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class ObservabilitySettings:
    """Log retention, alarm thresholds and where alarms go."""

    log_retention_days: int
    alarm_email: str | None
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


@dataclass(frozen=True)
class AccountSecuritySettings:
    """GuardDuty, AWS Config and CloudTrail (one per account and region)."""

    enabled: bool
    manage_account_singletons: bool
    existing_config_recorder_name: str


@dataclass(frozen=True)
class ProtectionSettings:
    """Pulumi-level safety: protect data stores and keys from ``pulumi destroy``."""

    protect: bool
    retain_on_delete: bool


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything the stack needs, validated: one row of the preset table plus overrides."""

    environment: Environment
    suffix: str | None
    region: str
    cost_center: str
    compliance: str
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


# --- the preset table ----------------------------------------------------------------------------

DEFAULT_IMAGE = "nginxinc/nginx-unprivileged:1.27-alpine"


def _services(cpu: int, memory: int) -> tuple[ServiceSettings, ...]:
    """The three services with one Fargate size; images default to a server that answers on /."""
    return (
        ServiceSettings("api", "api", "public REST API", DEFAULT_IMAGE, 8080, cpu, memory, "/api/*", "/"),
        ServiceSettings("payment", "pay", "core payment processing", DEFAULT_IMAGE, 8080, cpu, memory, "/payment/*", "/"),
        ServiceSettings(
            "notification", "notif", "event-driven notifications", DEFAULT_IMAGE, 8080, cpu, memory, "/notification/*", "/"
        ),
    )


PRESETS: dict[Environment, EnvironmentConfig] = {
    Environment.DEV: EnvironmentConfig(
        environment=Environment.DEV,
        suffix=None,
        region="us-east-1",
        cost_center="payments-platform",
        compliance="pci-dss",
        network=NetworkSettings("10.0.0.0/16", az_count=2, single_nat_gateway=True, interface_endpoints=False),
        keys=KeySettings(deletion_window_days=7),
        compute=ComputeSettings(_services(256, 512), 1, 2, 70, 75, 500, 60, 300),
        database=DatabaseSettings(
            instance_class="db.t4g.medium",
            instance_count=1,
            engine_version="16.6",
            parameter_group_family="aurora-postgresql16",
            database_name="payments",
            master_username="scalepay_admin",
            backup_retention_days=1,
            preferred_backup_window="03:00-04:00",
            preferred_maintenance_window="sun:05:00-sun:06:00",
            performance_insights=False,
            monitoring_interval_seconds=0,
            deletion_protection=False,
            final_snapshot=False,
        ),
        cache=CacheSettings("cache.t4g.micro", 1, False, False, 1, "7.1", "redis7"),
        edge=EdgeSettings(None, None, None, True, False, 2000, False, 30),
        observability=ObservabilitySettings(7, None, 85, 85, 2.0, 20, 85, 100, 256 * 1024**2, 0, 85, 85, 100),
        account_security=AccountSecuritySettings(False, True, "default"),
        protection=ProtectionSettings(protect=False, retain_on_delete=False),
    ),
    Environment.STAGING: EnvironmentConfig(
        environment=Environment.STAGING,
        suffix=None,
        region="us-east-1",
        cost_center="payments-platform",
        compliance="pci-dss",
        network=NetworkSettings("10.1.0.0/16", az_count=2, single_nat_gateway=False, interface_endpoints=True),
        keys=KeySettings(deletion_window_days=14),
        compute=ComputeSettings(_services(512, 1024), 2, 4, 65, 75, 800, 60, 300),
        database=DatabaseSettings(
            instance_class="db.r6g.large",
            instance_count=2,
            engine_version="16.6",
            parameter_group_family="aurora-postgresql16",
            database_name="payments",
            master_username="scalepay_admin",
            backup_retention_days=7,
            preferred_backup_window="03:00-04:00",
            preferred_maintenance_window="sun:05:00-sun:06:00",
            performance_insights=True,
            monitoring_interval_seconds=60,
            deletion_protection=False,
            final_snapshot=True,
        ),
        cache=CacheSettings("cache.t4g.small", 2, True, True, 5, "7.1", "redis7"),
        edge=EdgeSettings(None, None, None, False, True, 2000, False, 90),
        observability=ObservabilitySettings(90, None, 80, 80, 1.5, 10, 80, 400, 512 * 1024**2, 1000, 80, 80, 50),
        account_security=AccountSecuritySettings(True, True, "default"),
        protection=ProtectionSettings(protect=False, retain_on_delete=False),
    ),
    Environment.PROD: EnvironmentConfig(
        environment=Environment.PROD,
        suffix=None,
        region="us-east-1",
        cost_center="payments-platform",
        compliance="pci-dss",
        network=NetworkSettings("10.2.0.0/16", az_count=3, single_nat_gateway=False, interface_endpoints=True),
        keys=KeySettings(deletion_window_days=30),
        compute=ComputeSettings(_services(1024, 2048), 3, 10, 60, 70, 1000, 60, 300),
        database=DatabaseSettings(
            instance_class="db.r5.xlarge",
            instance_count=3,
            engine_version="16.6",
            parameter_group_family="aurora-postgresql16",
            database_name="payments",
            master_username="scalepay_admin",
            backup_retention_days=30,
            preferred_backup_window="03:00-04:00",
            preferred_maintenance_window="sun:05:00-sun:06:00",
            performance_insights=True,
            monitoring_interval_seconds=15,
            deletion_protection=True,
            final_snapshot=True,
        ),
        cache=CacheSettings("cache.r6g.large", 3, True, True, 14, "7.1", "redis7"),
        edge=EdgeSettings(None, None, None, False, True, 2000, True, 365),
        observability=ObservabilitySettings(365, None, 75, 75, 1.0, 5, 75, 1000, 1024**3, 500, 75, 75, 10),
        account_security=AccountSecuritySettings(True, True, "default"),
        protection=ProtectionSettings(protect=True, retain_on_delete=True),
    ),
}


# --- overrides from Pulumi config -----------------------------------------------------------------

T = TypeVar("T")


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ConfigError(f"{CONFIG_NAMESPACE}:{key}: '{raw}' is not a boolean; allowed: true or false")


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{CONFIG_NAMESPACE}:{key}: '{raw}' is not an integer") from None


def _float(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{CONFIG_NAMESPACE}:{key}: '{raw}' is not a number") from None


def _str(_key: str, raw: str) -> str:
    return raw


def _opt_str(_key: str, raw: str) -> str | None:
    return raw or None


@dataclass(frozen=True)
class Override:
    """One Pulumi config key that overrides one field of one settings section."""

    key: str
    section: str
    field_name: str
    parse: Callable[[str, str], Any]
    description: str


OVERRIDES: tuple[Override, ...] = (
    Override("costCenter", "", "cost_center", _str, "CostCenter tag value"),
    Override("vpcCidr", "network", "vpc_cidr", _str, "VPC CIDR block (a /16 to /20)"),
    Override("azCount", "network", "az_count", _int, "number of availability zones (2 or 3)"),
    Override("singleNatGateway", "network", "single_nat_gateway", _bool, "one shared NAT gateway instead of one per AZ"),
    Override("interfaceEndpoints", "network", "interface_endpoints", _bool, "private endpoints for ECR, Logs, Secrets Manager"),
    Override("kmsDeletionWindowDays", "keys", "deletion_window_days", _int, "KMS key deletion window (7-30 days)"),
    Override("minTasks", "compute", "min_tasks", _int, "minimum tasks per service"),
    Override("maxTasks", "compute", "max_tasks", _int, "maximum tasks per service"),
    Override("cpuTargetPercent", "compute", "cpu_target_percent", _int, "autoscaling CPU target (%)"),
    Override("memoryTargetPercent", "compute", "memory_target_percent", _int, "autoscaling memory target (%)"),
    Override("requestsPerTarget", "compute", "requests_per_target", _int, "autoscaling ALB requests per target"),
    Override("dbInstanceClass", "database", "instance_class", _str, "Aurora PostgreSQL instance class"),
    Override("dbInstanceCount", "database", "instance_count", _int, "Aurora instances (writer + readers)"),
    Override("dbEngineVersion", "database", "engine_version", _str, "Aurora PostgreSQL engine version"),
    Override("dbMasterUsername", "database", "master_username", _str, "Aurora master user name (not a default)"),
    Override("dbBackupRetentionDays", "database", "backup_retention_days", _int, "Aurora backup retention (1-35 days)"),
    Override("dbPerformanceInsights", "database", "performance_insights", _bool, "Aurora Performance Insights"),
    Override("dbMonitoringInterval", "database", "monitoring_interval_seconds", _int, "enhanced monitoring interval (s)"),
    Override("dbDeletionProtection", "database", "deletion_protection", _bool, "Aurora deletion protection"),
    Override("dbFinalSnapshot", "database", "final_snapshot", _bool, "take a final snapshot on delete"),
    Override("cacheNodeType", "cache", "node_type", _str, "ElastiCache node type"),
    Override("cacheNodeCount", "cache", "node_count", _int, "Redis nodes (primary + replicas)"),
    Override("cacheAutomaticFailover", "cache", "automatic_failover", _bool, "Redis automatic failover"),
    Override("cacheMultiAz", "cache", "multi_az", _bool, "Redis Multi-AZ"),
    Override("cacheSnapshotRetentionDays", "cache", "snapshot_retention_days", _int, "Redis snapshot retention (0-35)"),
    Override("certificateArn", "edge", "certificate_arn", _opt_str, "ACM certificate ARN for the HTTPS listener"),
    Override("domainName", "edge", "domain_name", _opt_str, "domain for a DNS-validated ACM certificate"),
    Override("hostedZoneId", "edge", "hosted_zone_id", _opt_str, "Route 53 hosted zone of domainName"),
    Override("selfSignedCertificateFallback", "edge", "self_signed_certificate_fallback", _bool, "dev only: self-signed cert"),
    Override("wafEnabled", "edge", "waf_enabled", _bool, "WAFv2 web ACL on the ALB"),
    Override("wafRateLimit", "edge", "waf_rate_limit", _int, "requests per 5 minutes per IP before blocking"),
    Override("albDeletionProtection", "edge", "alb_deletion_protection", _bool, "ALB deletion protection"),
    Override("logRetentionDays", "observability", "log_retention_days", _int, "CloudWatch Logs retention (days)"),
    Override("alarmEmail", "observability", "alarm_email", _opt_str, "e-mail address subscribed to alarms"),
    Override("accountSecurityEnabled", "account_security", "enabled", _bool, "GuardDuty, AWS Config, CloudTrail"),
    Override(
        "manageAccountSingletons",
        "account_security",
        "manage_account_singletons",
        _bool,
        "create GuardDuty/Config/CloudTrail (false: rely on the account's)",
    ),
    Override("protectResources", "protection", "protect", _bool, "Pulumi protect on data stores and keys"),
)

#: Per-service keys: ``<service><Suffix>``, e.g. ``paymentImage``, ``apiCpu``.
SERVICE_OVERRIDES: tuple[tuple[str, str, Callable[[str, str], Any]], ...] = (
    ("Image", "image", _str),
    ("Port", "port", _int),
    ("Cpu", "cpu", _int),
    ("Memory", "memory", _int),
)

KNOWN_KEYS: frozenset[str] = frozenset(
    ["environment", "environmentSuffix"]
    + [o.key for o in OVERRIDES]
    + [f"{s.name}{suffix}" for s in PRESETS[Environment.DEV].compute.services for suffix, _, _ in SERVICE_OVERRIDES]
)


def _apply_overrides(base: EnvironmentConfig, raw: Mapping[str, str]) -> EnvironmentConfig:
    """Return ``base`` with every override present in ``raw`` applied (no validation yet)."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for override in OVERRIDES:
        if override.key not in raw:
            continue
        value = override.parse(override.key, raw[override.key])
        if override.section:
            sections.setdefault(override.section, {})[override.field_name] = value
        else:
            top[override.field_name] = value
    services = []
    for service in base.compute.services:
        changes = {
            attr: parse(f"{service.name}{suffix}", raw[f"{service.name}{suffix}"])
            for suffix, attr, parse in SERVICE_OVERRIDES
            if f"{service.name}{suffix}" in raw
        }
        services.append(replace(service, **changes))
    sections.setdefault("compute", {})["services"] = tuple(services)
    for name, changes in sections.items():
        top[name] = replace(getattr(base, name), **changes)
    return replace(base, **top)


# --- validation ---------------------------------------------------------------------------------


def _fail(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{CONFIG_NAMESPACE}:{key}: invalid value {value!r}; allowed: {allowed}")


def validate(cfg: EnvironmentConfig) -> EnvironmentConfig:
    """Check every setting against what AWS accepts; raise ConfigError naming key, value and rule."""
    _validate_network(cfg.network)
    if not 7 <= cfg.keys.deletion_window_days <= 30:
        raise _fail("kmsDeletionWindowDays", cfg.keys.deletion_window_days, "7 to 30 days")
    _validate_compute(cfg.compute)
    _validate_database(cfg.database)
    _validate_cache(cfg.cache)
    _validate_edge(cfg)
    _validate_observability(cfg.observability)
    _validate_names(cfg)
    return cfg


def _validate_network(net: NetworkSettings) -> None:
    try:
        network = ipaddress.ip_network(net.vpc_cidr, strict=True)
    except ValueError:
        raise _fail("vpcCidr", net.vpc_cidr, "an IPv4 network in CIDR form such as 10.0.0.0/16") from None
    if network.version != 4 or not 16 <= network.prefixlen <= 20 or not network.is_private:
        raise _fail("vpcCidr", net.vpc_cidr, "a private (RFC 1918) IPv4 block from /16 to /20")
    if not 2 <= net.az_count <= 6:
        raise _fail("azCount", net.az_count, "2 to 6 availability zones (an ALB needs at least 2)")
    for other in Environment:
        other_cidr = PRESETS[other].network.vpc_cidr
        if other_cidr != net.vpc_cidr and network.overlaps(ipaddress.ip_network(other_cidr)):
            raise _fail("vpcCidr", net.vpc_cidr, f"a block that does not overlap the {other.value} VPC ({other_cidr})")
    try:
        plan_subnets(net.vpc_cidr, net.az_count)
    except CidrPlanError as exc:
        raise _fail("azCount", net.az_count, f"a count the CIDR plan of {net.vpc_cidr} can hold ({exc})") from None


def _validate_compute(compute: ComputeSettings) -> None:
    if compute.min_tasks < 1:
        raise _fail("minTasks", compute.min_tasks, "at least 1")
    if compute.max_tasks < compute.min_tasks:
        raise _fail("maxTasks", compute.max_tasks, f"at least minTasks ({compute.min_tasks})")
    if compute.max_tasks > 100:
        raise _fail("maxTasks", compute.max_tasks, "at most 100")
    for key, value in (("cpuTargetPercent", compute.cpu_target_percent), ("memoryTargetPercent", compute.memory_target_percent)):
        if not 10 <= value <= 95:
            raise _fail(key, value, "10 to 95 percent")
    if compute.requests_per_target < 1:
        raise _fail("requestsPerTarget", compute.requests_per_target, "at least 1")
    for service in compute.services:
        if service.cpu not in FARGATE_MEMORY:
            raise _fail(f"{service.name}Cpu", service.cpu, f"one of {sorted(FARGATE_MEMORY)} CPU units")
        allowed = FARGATE_MEMORY[service.cpu]
        if service.memory not in allowed:
            raise _fail(
                f"{service.name}Memory",
                service.memory,
                f"for {service.cpu} CPU units Fargate offers {allowed[0]}-{allowed[-1]} MiB: {', '.join(map(str, allowed))}",
            )
        if not 1024 <= service.port <= 65535:
            raise _fail(f"{service.name}Port", service.port, "1024 to 65535 (containers run unprivileged)")
        if not _IMAGE.match(service.image):
            raise _fail(f"{service.name}Image", service.image, "a container image reference such as repo/name:tag")


def _validate_database(db: DatabaseSettings) -> None:
    if db.instance_class not in AURORA_POSTGRES_CLASSES:
        smallest = "db.t3.medium or db.t4g.medium"
        raise _fail(
            "dbInstanceClass",
            db.instance_class,
            f"an instance class Aurora PostgreSQL offers (smallest: {smallest}; no micro or small classes)",
        )
    if not 1 <= db.instance_count <= 15:
        raise _fail("dbInstanceCount", db.instance_count, "1 to 15 instances")
    if not re.match(r"^\d+\.\d+$", db.engine_version):
        raise _fail("dbEngineVersion", db.engine_version, "a major.minor Aurora PostgreSQL version such as 16.6")
    if not 1 <= db.backup_retention_days <= 35:
        raise _fail("dbBackupRetentionDays", db.backup_retention_days, "1 to 35 days")
    if db.monitoring_interval_seconds not in MONITORING_INTERVALS:
        raise _fail("dbMonitoringInterval", db.monitoring_interval_seconds, f"one of {list(MONITORING_INTERVALS)}")
    user = db.master_username
    if user.lower() in RESERVED_DB_USERS or not re.match(r"^[a-zA-Z][a-zA-Z0-9_]{0,62}$", user):
        raise _fail(
            "dbMasterUsername",
            user,
            "a letter then letters, digits or underscores (max 63), not a default name such as "
            + ", ".join(sorted(RESERVED_DB_USERS)),
        )


def _validate_cache(cache: CacheSettings) -> None:
    if not _CACHE_NODE.match(cache.node_type):
        raise _fail("cacheNodeType", cache.node_type, "an ElastiCache node type such as cache.t4g.small or cache.r6g.large")
    if not 1 <= cache.node_count <= 6:
        raise _fail("cacheNodeCount", cache.node_count, "1 to 6 nodes (primary + up to 5 replicas)")
    if cache.automatic_failover and cache.node_count < 2:
        raise _fail("cacheAutomaticFailover", True, "true only with cacheNodeCount of at least 2")
    if cache.multi_az and not cache.automatic_failover:
        raise _fail("cacheMultiAz", True, "true only with cacheAutomaticFailover true and at least 2 nodes")
    if not 0 <= cache.snapshot_retention_days <= 35:
        raise _fail("cacheSnapshotRetentionDays", cache.snapshot_retention_days, "0 to 35 days")


def _validate_edge(cfg: EnvironmentConfig) -> None:
    edge = cfg.edge
    if edge.certificate_arn and not _ARN_ACM.match(edge.certificate_arn):
        raise _fail(
            "certificateArn", edge.certificate_arn, "an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
        )
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
    if edge.waf_rate_limit < 10 or edge.waf_rate_limit > 2_000_000_000:
        raise _fail("wafRateLimit", edge.waf_rate_limit, "10 to 2000000000 requests per 5 minutes")


def _validate_observability(obs: ObservabilitySettings) -> None:
    if obs.log_retention_days not in LOG_RETENTION_DAYS:
        raise _fail("logRetentionDays", obs.log_retention_days, f"one of {list(LOG_RETENTION_DAYS)}")
    if obs.alarm_email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", obs.alarm_email):
        raise _fail("alarmEmail", obs.alarm_email, "an e-mail address")


def _validate_names(cfg: EnvironmentConfig) -> None:
    """Build every length-limited name now, so a long suffix fails before any resource exists."""
    namer = cfg.namer
    bounded: list[tuple[str, NameKind]] = [
        ("alb", NameKind.ALB),
        ("redis", NameKind.ELASTICACHE_REPLICATION_GROUP),
        ("aurora", NameKind.RDS_IDENTIFIER),
        ("ecs-execution", NameKind.IAM_ROLE),
        ("rds-monitoring", NameKind.IAM_ROLE),
        ("flow-logs", NameKind.IAM_ROLE),
        ("config-recorder", NameKind.IAM_ROLE),
        ("cloudtrail-logs", NameKind.IAM_ROLE),
    ]
    for service in cfg.compute.services:
        bounded.append((f"{service.short_name}-tg", NameKind.TARGET_GROUP))
        bounded.append((f"{service.name}-task", NameKind.IAM_ROLE))
    try:
        for component, kind in bounded:
            namer.name(component, kind)
        for component in ("alb-logs", "config", "cloudtrail"):
            namer.bucket(component, "0" * 12)
    except NameTooLongError as exc:
        raise ConfigError(f"{CONFIG_NAMESPACE}:environmentSuffix: {cfg.suffix!r} makes a name too long: {exc}") from None


# --- loading -----------------------------------------------------------------------------------------


def build(stack: str, raw: Mapping[str, str], region: str | None = None) -> EnvironmentConfig:
    """Resolve the environment for ``stack`` from plain config values (without namespace).

    Pure: tests and tools call it directly; :func:`load` feeds it from Pulumi config.
    """
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{CONFIG_NAMESPACE}:{unknown[0]}: unknown setting; allowed keys: {', '.join(sorted(KNOWN_KEYS))}")
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


def settings_fields(section: type[Any]) -> list[str]:
    """Field names of a settings dataclass (used by docs and the config reference test)."""
    return [f.name for f in fields(section)]
