"""Data guardrails (PCI DSS 4.0 Req 3, 4, 6.5, 10.2 and 12.10): stored data is encrypted with our own
keys, travels over TLS only, survives mistakes (deletion protection, backups); engines change only when
the stack says so, and the database keeps a statement-level audit trail without logging values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, StackResource, StackRule, Violation, pci
from policy.rules.readers import as_int, as_list, as_map, by_type, find, is_customer_managed_key, is_false, is_true

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECRET = "aws:secretsmanager/secret:Secret"
TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"

#: Aurora's engine default for automated backups when backupRetentionPeriod is not set.
AURORA_DEFAULT_BACKUP_DAYS = 1

#: The engine ``aurora-ssl-only`` assumes when a cluster names none; the audit rule does the same.
DEFAULT_AURORA_ENGINE = "aurora-postgresql"
#: pgaudit statement classes that must be logged: schema changes and role/privilege changes (PCI DSS 10.2.1.2,
#: 10.2.1.5, 10.2.2).
PGAUDIT_REQUIRED_CLASSES: tuple[str, ...] = ("ddl", "role")
#: Values of a PostgreSQL boolean parameter that turn it off (RDS takes 0/1; PostgreSQL also reads off/false).
POSTGRES_OFF: frozenset[str] = frozenset({"0", "off", "false"})


def _unless_cmk(props: Mapping[str, Any], subject: str, key: str = "kmsKeyId", requirement: str = "3.5.1") -> list[str]:
    """The finding ``<subject> is not encrypted with a customer-managed KMS key (<key>)``, unless ``props[key]`` names one."""
    if is_customer_managed_key(props.get(key)):
        return []
    return [pci(requirement, f"{subject} is not encrypted with a customer-managed KMS key ({key})")]


def _encrypted_at_rest(props: Mapping[str, Any], switch: str, switched_off: str, subject: str) -> list[str]:
    """Encryption at rest is switched on by the boolean property ``switch`` and uses a customer-managed KMS key."""
    off = [] if is_true(props.get(switch)) else [pci("3.5.1", f"{switched_off} ({switch} is not true)")]
    return off + _unless_cmk(props, subject)


def database_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Aurora clusters and RDS instances encrypt storage with a customer-managed KMS key."""
    return _encrypted_at_rest(props, "storageEncrypted", "database storage is not encrypted", "database storage")


def _ssl_parameter(engine: str) -> tuple[str, frozenset[str]]:
    """The parameter that forces TLS for an engine, and the values that turn it on."""
    if "mysql" in engine:
        return "require_secure_transport", frozenset({"1", "ON", "on", "true"})
    return "rds.force_ssl", frozenset({"1"})


def _parameter_values(group: StackResource) -> dict[str, str]:
    """A (cluster) parameter group's ``parameters`` as name -> value."""
    return {str(as_map(p).get("name")): str(as_map(p).get("value")) for p in as_list(group.props.get("parameters"))}


def _cluster_parameter_group(resources: Sequence[StackResource], cluster: StackResource) -> tuple[StackResource | None, str]:
    """The cluster parameter group ``cluster`` references, or None and what is wrong with the reference."""
    group_name = cluster.props.get("dbClusterParameterGroupName")
    group = find(resources, group_name, RDS_CLUSTER_PARAMETER_GROUP)
    if group is not None:
        return group, ""
    if not group_name:
        return None, "references no cluster parameter group (dbClusterParameterGroupName)"
    return None, f"references parameter group '{group_name}' that is not part of this stack"


def aurora_ssl_only(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every Aurora cluster references a cluster parameter group that forces TLS (rds.force_ssl=1)."""
    violations = []
    for cluster in by_type(resources, RDS_CLUSTER):
        engine = str(cluster.props.get("engine") or DEFAULT_AURORA_ENGINE)
        parameter, accepted = _ssl_parameter(engine)
        group, problem = _cluster_parameter_group(resources, cluster)
        if group is None:
            violations.append(
                Violation(cluster.name, pci("4.2.1", f"Aurora cluster {problem}; it must set {parameter}=1"), cluster.urn)
            )
            continue
        values = _parameter_values(group)
        if values.get(parameter) not in accepted:
            violations.append(
                Violation(
                    cluster.name,
                    pci(
                        "4.2.1",
                        f"cluster parameter group '{group.name}' sets {parameter}={values.get(parameter, '<unset>')}; "
                        "it must be 1 so the database refuses unencrypted connections",
                    ),
                    cluster.urn,
                )
            )
    return violations


def _items(value: str | None) -> list[str]:
    """A comma-separated parameter value as lower-case items (``"pg_stat_statements, pgaudit"`` -> 2 items)."""
    return [item.strip().lower() for item in (value or "").split(",") if item.strip()]


def _pgaudit_logs(classes: list[str], wanted: str) -> bool:
    """True when a ``pgaudit.log`` value includes class ``wanted`` (named or via ``all``, and not ``-wanted``)."""
    return (wanted in classes or "all" in classes) and f"-{wanted}" not in classes


def _audit_problems(group: StackResource) -> list[str]:
    """What a cluster parameter group lacks for pgaudit statement logging without bind values."""
    values = _parameter_values(group)
    problems = []
    libraries = values.get("shared_preload_libraries")
    if "pgaudit" not in _items(libraries):
        problems.append(
            f"cluster parameter group '{group.name}' does not load pgaudit "
            f"(shared_preload_libraries={libraries or '<unset>'}); it must include pgaudit"
        )
    classes = values.get("pgaudit.log")
    if not all(_pgaudit_logs(_items(classes), wanted) for wanted in PGAUDIT_REQUIRED_CLASSES):
        problems.append(
            f"cluster parameter group '{group.name}' sets pgaudit.log={classes or '<unset>'}; "
            f"it must include {' and '.join(PGAUDIT_REQUIRED_CLASSES)}"
        )
    log_parameter = values.get("pgaudit.log_parameter")
    if str(log_parameter).strip().lower() not in POSTGRES_OFF:
        problems.append(
            f"cluster parameter group '{group.name}' sets pgaudit.log_parameter={log_parameter or '<unset>'}; "
            "it must be 0 so that bind parameter values (which may carry sensitive data) are not logged"
        )
    return problems


def aurora_audit_logging(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every Aurora PostgreSQL cluster's parameter group loads pgaudit, logs DDL and role changes, not bind values."""
    violations = []
    for cluster in by_type(resources, RDS_CLUSTER):
        if str(cluster.props.get("engine") or DEFAULT_AURORA_ENGINE) != "aurora-postgresql":
            continue
        group, problem = _cluster_parameter_group(resources, cluster)
        if group is None:
            violations.append(
                Violation(
                    cluster.name,
                    pci("10.2.1", f"Aurora cluster {problem}; it must load and configure pgaudit"),
                    cluster.urn,
                )
            )
            continue
        violations.extend(Violation(cluster.name, pci("10.2.1", p), cluster.urn) for p in _audit_problems(group))
    return violations


def engine_version_pinned(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Database and cache engines change only when the stack says so.

    The provider defaults ``autoMinorVersionUpgrade`` to true: AWS then upgrades the engine in a
    maintenance window, the stack still names the old version, and the next ``pulumi up`` tries a
    downgrade that AWS refuses, blocking every later (security) change. A major upgrade is a
    planned, tested change (PCI DSS 6.5.1), never a side effect.
    """
    messages = []
    if resource_type == RDS_CLUSTER:
        if not props.get("engineVersion"):
            messages.append(pci("6.5.1", "Aurora cluster does not pin its engine version (engineVersion)"))
        if is_true(props.get("allowMajorVersionUpgrade")):
            messages.append(
                pci("6.5.1", "Aurora cluster allows major engine version upgrades (allowMajorVersionUpgrade is true)")
            )
        return messages
    kind = "Redis replication group" if resource_type == REPLICATION_GROUP else "database instance"
    if not is_false(props.get("autoMinorVersionUpgrade")):
        messages.append(pci("6.5.1", f"{kind} lets AWS upgrade its engine minor version (autoMinorVersionUpgrade is not false)"))
    if resource_type == REPLICATION_GROUP and not props.get("engineVersion"):
        messages.append(pci("6.5.1", "Redis replication group does not pin its engine version (engineVersion)"))
    return messages


def redis_encrypted_at_rest_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis replication groups encrypt at rest with a customer-managed KMS key."""
    return _encrypted_at_rest(props, "atRestEncryptionEnabled", "Redis at-rest encryption is off", "Redis")


def redis_transit_encryption(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis accepts TLS connections only."""
    if not is_true(props.get("transitEncryptionEnabled")):
        return [pci("4.2.1", "Redis in-transit encryption is off (transitEncryptionEnabled is not true)")]
    if str(props.get("transitEncryptionMode") or "required").lower() != "required":
        return [pci("4.2.1", "Redis accepts unencrypted connections (transitEncryptionMode is not 'required')")]
    return []


def secret_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Secrets Manager secrets are encrypted with a customer-managed KMS key."""
    return _unless_cmk(props, "secret", requirement="8.3.2")


def sns_topic_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """SNS topics are encrypted with a customer-managed KMS key."""
    return _unless_cmk(props, "SNS topic", key="kmsMasterKeyId")


def kms_key_rotation(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Symmetric encryption keys rotate automatically (asymmetric and HMAC keys cannot)."""
    spec = str(props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT")
    usage = str(props.get("keyUsage") or "ENCRYPT_DECRYPT")
    if spec == "SYMMETRIC_DEFAULT" and usage == "ENCRYPT_DECRYPT" and not is_true(props.get("enableKeyRotation")):
        return [pci("3.7.4", "KMS key does not rotate automatically (enableKeyRotation is not true)")]
    return []


def aurora_deletion_protection(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Aurora clusters cannot be deleted by accident (where the environment requires it)."""
    if params.require_deletion_protection and not is_true(props.get("deletionProtection")):
        return [pci("12.10.1", "Aurora cluster has no deletion protection (deletionProtection is not true)")]
    return []


def aurora_backup_retention(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Aurora keeps automated backups for at least the environment's minimum number of days."""
    days = as_int(props.get("backupRetentionPeriod"))
    if days is None:
        days = AURORA_DEFAULT_BACKUP_DAYS
    if days < params.min_backup_retention_days:
        return [
            pci(
                "12.10.1",
                f"Aurora keeps backups for {days} days (backupRetentionPeriod); "
                f"at least {params.min_backup_retention_days} are required",
            )
        ]
    return []


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "database-encrypted-with-cmk",
        "data",
        "3.5.1",
        "Aurora and RDS storage is encrypted with a customer-managed KMS key.",
        (RDS_CLUSTER, RDS_INSTANCE),
        database_encrypted_with_cmk,
    ),
    StackRule(
        "aurora-ssl-only",
        "data",
        "4.2.1",
        "Aurora clusters use a parameter group that forces TLS (rds.force_ssl=1).",
        (RDS_CLUSTER,),
        aurora_ssl_only,
    ),
    StackRule(
        "aurora-audit-logging",
        "data",
        "10.2.1",
        "Aurora PostgreSQL loads pgaudit, logs DDL and role changes, and never logs bind parameter values.",
        (RDS_CLUSTER,),
        aurora_audit_logging,
    ),
    ResourceRule(
        "engine-version-pinned",
        "data",
        "6.5.1",
        "Aurora and Redis engine versions are pinned: no automatic minor or major upgrades.",
        (RDS_CLUSTER, RDS_CLUSTER_INSTANCE, REPLICATION_GROUP),
        engine_version_pinned,
    ),
    ResourceRule(
        "redis-encrypted-at-rest-with-cmk",
        "data",
        "3.5.1",
        "Redis encrypts data at rest with a customer-managed KMS key.",
        (REPLICATION_GROUP,),
        redis_encrypted_at_rest_with_cmk,
    ),
    ResourceRule(
        "redis-transit-encryption",
        "data",
        "4.2.1",
        "Redis requires TLS for every connection.",
        (REPLICATION_GROUP,),
        redis_transit_encryption,
    ),
    ResourceRule(
        "secret-encrypted-with-cmk",
        "data",
        "8.3.2",
        "Secrets Manager secrets are encrypted with a customer-managed KMS key.",
        (SECRET,),
        secret_encrypted_with_cmk,
    ),
    ResourceRule(
        "sns-topic-encrypted-with-cmk",
        "data",
        "3.5.1",
        "SNS topics are encrypted with a customer-managed KMS key.",
        (TOPIC,),
        sns_topic_encrypted_with_cmk,
    ),
    ResourceRule(
        "kms-key-rotation",
        "data",
        "3.7.4",
        "Symmetric KMS keys rotate automatically.",
        (KMS_KEY,),
        kms_key_rotation,
    ),
    ResourceRule(
        "aurora-deletion-protection",
        "data",
        "12.10.1",
        "Aurora clusters have deletion protection.",
        (RDS_CLUSTER,),
        aurora_deletion_protection,
        ("require_deletion_protection",),
    ),
    ResourceRule(
        "aurora-backup-retention",
        "data",
        "12.10.1",
        "Aurora keeps automated backups for the minimum number of days.",
        (RDS_CLUSTER,),
        aurora_backup_retention,
        ("min_backup_retention_days",),
    ),
)
