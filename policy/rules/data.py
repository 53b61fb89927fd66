"""Data guardrails (PCI DSS 4.0 Req 3, 4 and 12.10): stored data is encrypted with our own keys,
travels over TLS only, survives mistakes (deletion protection, backups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.base import (
    DEFAULT_PARAMS,
    Params,
    ResourceRule,
    Rule,
    StackResource,
    StackRule,
    Violation,
    as_int,
    as_list,
    as_map,
    by_type,
    find,
    is_customer_managed_key,
    is_true,
    pci,
)

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECRET = "aws:secretsmanager/secret:Secret"
TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"

#: Aurora's engine default for automated backups when backupRetentionPeriod is not set.
AURORA_DEFAULT_BACKUP_DAYS = 1


def database_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Aurora clusters and RDS instances encrypt storage with a customer-managed KMS key."""
    messages = []
    if not is_true(props.get("storageEncrypted")):
        messages.append(pci("3.5.1", "database storage is not encrypted (storageEncrypted is not true)"))
    if not is_customer_managed_key(props.get("kmsKeyId")):
        messages.append(pci("3.5.1", "database storage is not encrypted with a customer-managed KMS key (kmsKeyId)"))
    return messages


def _ssl_parameter(engine: str) -> tuple[str, frozenset[str]]:
    """The parameter that forces TLS for an engine, and the values that turn it on."""
    if "mysql" in engine:
        return "require_secure_transport", frozenset({"1", "ON", "on", "true"})
    return "rds.force_ssl", frozenset({"1"})


def aurora_ssl_only(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every Aurora cluster references a cluster parameter group that forces TLS (rds.force_ssl=1)."""
    violations = []
    for cluster in by_type(resources, RDS_CLUSTER):
        engine = str(cluster.props.get("engine") or "aurora-postgresql")
        parameter, accepted = _ssl_parameter(engine)
        group_name = cluster.props.get("dbClusterParameterGroupName")
        group = find(resources, group_name, RDS_CLUSTER_PARAMETER_GROUP)
        if group is None:
            problem = (
                "references no cluster parameter group (dbClusterParameterGroupName)"
                if not group_name
                else f"references parameter group '{group_name}' that is not part of this stack"
            )
            violations.append(
                Violation(cluster.name, pci("4.2.1", f"Aurora cluster {problem}; it must set {parameter}=1"), cluster.urn)
            )
            continue
        values = {str(as_map(p).get("name")): str(as_map(p).get("value")) for p in as_list(group.props.get("parameters"))}
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


def redis_encrypted_at_rest_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis replication groups encrypt at rest with a customer-managed KMS key."""
    messages = []
    if not is_true(props.get("atRestEncryptionEnabled")):
        messages.append(pci("3.5.1", "Redis at-rest encryption is off (atRestEncryptionEnabled is not true)"))
    if not is_customer_managed_key(props.get("kmsKeyId")):
        messages.append(pci("3.5.1", "Redis is not encrypted with a customer-managed KMS key (kmsKeyId)"))
    return messages


def redis_transit_encryption(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Redis accepts TLS connections only."""
    if not is_true(props.get("transitEncryptionEnabled")):
        return [pci("4.2.1", "Redis in-transit encryption is off (transitEncryptionEnabled is not true)")]
    if str(props.get("transitEncryptionMode") or "required").lower() != "required":
        return [pci("4.2.1", "Redis accepts unencrypted connections (transitEncryptionMode is not 'required')")]
    return []


def secret_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Secrets Manager secrets are encrypted with a customer-managed KMS key."""
    if not is_customer_managed_key(props.get("kmsKeyId")):
        return [pci("8.3.2", "secret is not encrypted with a customer-managed KMS key (kmsKeyId)")]
    return []


def sns_topic_encrypted_with_cmk(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """SNS topics are encrypted with a customer-managed KMS key."""
    if not is_customer_managed_key(props.get("kmsMasterKeyId")):
        return [pci("3.5.1", "SNS topic is not encrypted with a customer-managed KMS key (kmsMasterKeyId)")]
    return []


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
