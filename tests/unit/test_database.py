"""Aurora PostgreSQL requirements, per environment, on the real program under Pulumi mocks.

Per-environment values (instance class and count, backups and windows, Performance Insights and
enhanced monitoring, deletion protection, final snapshot, log retention, protection) come from the
README's environment table through tests/expectations.py, never from the preset table the program
reads; the rest are requirements of every environment: encryption with the data key, TLS-only
parameters, audit log export.
"""

from __future__ import annotations

import json

from lib import config as cfg
from lib.components.database import (
    ENHANCED_MONITORING_POLICY_ARN,
    instance_identifier,
    monitoring_assume_role_policy,
    postgresql_log_group_name,
)
from tests.expectations import EXPECTED
from tools.evaluate import Evaluation, Registration, default_config, evaluate

COMPONENT = "scalepayments:database:Database"
CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

#: The database the services connect to (their task definitions name it as DB_NAME; test_compute checks that side).
DATABASE_NAME = "payments"


def mine(stack: Evaluation, type_: str) -> list[Registration]:
    """Registrations of ``type_`` that belong to the database component."""
    return [r for r in stack.of_type(type_) if r.component == COMPONENT]


def cluster(stack: Evaluation) -> Registration:
    found = mine(stack, CLUSTER)
    assert len(found) == 1, f"expected one Aurora cluster, found {[r.name for r in found]}"
    return found[0]


def instances(stack: Evaluation) -> list[Registration]:
    return sorted(mine(stack, INSTANCE), key=lambda r: r.inputs["identifier"])


def single(stack: Evaluation, type_: str) -> Registration:
    found = mine(stack, type_)
    assert len(found) == 1, f"expected one {type_} in the database component, found {[r.name for r in found]}"
    return found[0]


# --- engine, size, placement ----------------------------------------------------------------------


#: The pinned engine version (README, "Version policy"): an Aurora PostgreSQL 16 minor AWS offers.
PINNED_ENGINE_VERSION = "16.13"


def test_engine_version_and_parameter_family(stack: Evaluation) -> None:
    c = cluster(stack)
    assert c.inputs["engine"] == "aurora-postgresql", f"{c.name}: engine {c.inputs['engine']}"
    assert c.inputs["engineVersion"] == PINNED_ENGINE_VERSION, f"{c.name}: engineVersion {c.inputs['engineVersion']}"
    major = c.inputs["engineVersion"].split(".")[0]
    pg = single(stack, PARAMETER_GROUP)
    # The parameter group family must match the engine's major version or AWS rejects the cluster.
    assert pg.inputs["family"] == f"aurora-postgresql{major}", f"{pg.name}: family {pg.inputs['family']} vs engine {major}"
    for inst in instances(stack):
        assert inst.inputs["engine"] == "aurora-postgresql", f"{inst.name}: engine {inst.inputs['engine']}"


def test_instance_class_and_count(stack: Evaluation) -> None:
    expected = EXPECTED[stack.stack]
    insts = instances(stack)
    count = expected.db_instance_count
    assert len(insts) == count, f"{stack.stack}: {len(insts)} Aurora instances, expected {count}"
    for inst in insts:
        klass = inst.inputs["instanceClass"]
        assert klass in cfg.AURORA_POSTGRES_CLASSES, f"{inst.name}: {klass} is not offered for Aurora PostgreSQL"
        assert "micro" not in klass and "small" not in klass, f"{inst.name}: {klass} is rejected by Aurora PostgreSQL"
        assert klass == expected.db_instance_class, f"{inst.name}: instanceClass {klass}, expected {expected.db_instance_class}"


def test_instances_spread_over_azs_with_stable_identifiers(stack: Evaluation) -> None:
    cluster_id = cluster(stack).inputs["clusterIdentifier"]
    azs = stack.outputs["availabilityZones"]
    insts = instances(stack)
    for index, inst in enumerate(insts):
        assert inst.inputs["identifier"] == f"{cluster_id}-{index + 1}", f"{inst.name}: identifier {inst.inputs['identifier']}"
        assert len(inst.inputs["identifier"]) <= 63, f"{inst.name}: identifier longer than RDS allows"
        assert inst.inputs["availabilityZone"] == azs[index % len(azs)], f"{inst.name}: AZ {inst.inputs['availabilityZone']}"
        assert inst.inputs["clusterIdentifier"] == cluster(stack).state["id"], f"{inst.name}: not in the cluster"
    used = {inst.inputs["availabilityZone"] for inst in insts}
    assert len(used) == min(len(insts), len(azs)), f"{stack.stack}: instances share AZs needlessly: {sorted(used)}"
    assert stack.outputs["auroraInstanceIdentifiers"] == [i.inputs["identifier"] for i in insts]


def test_cluster_identifier_follows_convention(stack: Evaluation) -> None:
    c = cluster(stack)
    cid = c.inputs["clusterIdentifier"]
    assert cid == f"scalepay-aurora-{stack.stack}", f"{c.name}: clusterIdentifier {cid}"
    assert stack.outputs["auroraClusterIdentifier"] == cid


# --- backups and deletion -------------------------------------------------------------------------


def test_backup_retention_and_windows(stack: Evaluation) -> None:
    c = cluster(stack)
    expected = EXPECTED[stack.stack]
    assert c.inputs["backupRetentionPeriod"] == expected.db_backup_retention_days, (
        f"{c.name}: backupRetentionPeriod {c.inputs['backupRetentionPeriod']}"
    )
    assert c.inputs["preferredBackupWindow"] == expected.db_backup_window, f"{c.name}: backup window"
    assert c.inputs["preferredMaintenanceWindow"] == expected.db_maintenance_window, f"{c.name}: maintenance window"
    assert c.inputs["copyTagsToSnapshot"] is True, f"{c.name}: snapshots must carry the tags"


def test_deletion_protection_and_final_snapshot(stack: Evaluation) -> None:
    c = cluster(stack)
    expected = EXPECTED[stack.stack]
    assert c.inputs["deletionProtection"] is expected.db_deletion_protection, f"{c.name}: deletionProtection"
    if expected.db_final_snapshot:
        assert c.inputs["skipFinalSnapshot"] is False, f"{c.name}: final snapshot skipped"
        assert c.inputs["finalSnapshotIdentifier"] == f"{c.inputs['clusterIdentifier']}-final", (
            f"{c.name}: finalSnapshotIdentifier {c.inputs.get('finalSnapshotIdentifier')}"
        )
    else:
        assert c.inputs["skipFinalSnapshot"] is True, f"{c.name}: dev must not leave snapshots behind"
        assert "finalSnapshotIdentifier" not in c.inputs, f"{c.name}: finalSnapshotIdentifier set while skipping"


def test_protect_and_retain_on_delete(stack: Evaluation) -> None:
    expected = EXPECTED[stack.stack]
    guarded = [cluster(stack), *instances(stack), single(stack, SUBNET_GROUP)]
    for r in guarded:
        assert r.protect is expected.protect, f"{r.name}: protect={r.protect}, expected {expected.protect} in {stack.stack}"
        assert r.retain_on_delete is expected.retain_on_delete, (
            f"{r.name}: retain_on_delete={r.retain_on_delete} in {stack.stack}"
        )


# --- encryption, credentials, authentication -------------------------------------------------------


def test_storage_encrypted_with_data_key(stack: Evaluation) -> None:
    c = cluster(stack)
    data_key = stack.outputs["kmsDataKeyArn"]
    assert c.inputs["storageEncrypted"] is True, f"{c.name}: storage not encrypted"
    assert c.inputs["kmsKeyId"] == data_key, f"{c.name}: kmsKeyId {c.inputs.get('kmsKeyId')} is not the data key"


def test_master_password_managed_by_rds_in_secrets_manager(stack: Evaluation) -> None:
    c = cluster(stack)
    assert c.inputs["manageMasterUserPassword"] is True, f"{c.name}: master password not managed by RDS"
    assert "masterPassword" not in c.inputs, f"{c.name}: a master password must never be in config or state"
    assert c.inputs["masterUserSecretKmsKeyId"] == stack.outputs["kmsDataKeyArn"], f"{c.name}: secret not on the data key"
    expected_arn = c.state["masterUserSecrets"][0]["secretArn"]
    assert stack.outputs["auroraSecretArn"] == expected_arn, "auroraSecretArn is not the RDS-managed secret"


def test_non_default_master_username(stack: Evaluation) -> None:
    c = cluster(stack)
    user = c.inputs["masterUsername"]
    assert user.lower() not in cfg.RESERVED_DB_USERS, f"{c.name}: default master user name {user!r}"
    assert c.inputs["databaseName"] == DATABASE_NAME, f"{c.name}: databaseName"


def test_iam_database_authentication(stack: Evaluation) -> None:
    c = cluster(stack)
    assert c.inputs["iamDatabaseAuthenticationEnabled"] is True, f"{c.name}: IAM database authentication off"


def test_parameter_group_forces_tls_and_logs_connections(stack: Evaluation) -> None:
    pg = single(stack, PARAMETER_GROUP)
    params = {p["name"]: p["value"] for p in pg.inputs["parameters"]}
    assert params.get("rds.force_ssl") == "1", f"{pg.name}: rds.force_ssl={params.get('rds.force_ssl')}"
    assert params.get("log_connections") == "1", f"{pg.name}: log_connections={params.get('log_connections')}"
    assert params.get("log_disconnections") == "1", f"{pg.name}: log_disconnections={params.get('log_disconnections')}"
    assert params.get("ssl_min_protocol_version") in ("TLSv1.2", "TLSv1.3"), f"{pg.name}: TLS minimum version"
    c = cluster(stack)
    assert c.inputs["dbClusterParameterGroupName"] == pg.inputs["name"], f"{c.name}: not using {pg.inputs['name']}"


def test_statement_audit_logging_keeps_values_and_secrets_out_of_the_log(stack: Evaluation) -> None:
    """pgaudit logs DDL, role changes and writes (PCI DSS 10.2), never bind parameters or raw statements."""
    pg = single(stack, PARAMETER_GROUP)
    params = {p["name"]: (p["value"], p["applyMethod"]) for p in pg.inputs["parameters"]}
    assert "pgaudit" in params["shared_preload_libraries"][0].split(","), "pgaudit is not loaded"
    # A static parameter: set for the next reboot (maintenance window), never forcing one mid-day.
    assert params["shared_preload_libraries"][1] == "pending-reboot"
    assert params["pgaudit.log"][0] == "ddl,role,write"
    assert params["pgaudit.log_parameter"][0] == "0", "bind parameter values (amounts, tokens) would be logged"
    assert params["log_statement"][0] == "none", "PostgreSQL statement logging would log literal values"
    assert params["pgaudit.role"][0] == "rds_pgaudit"


def test_enhanced_monitoring_log_group_is_created_encrypted_where_monitoring_is_on(stack: Evaluation) -> None:
    """RDS would create RDSOSMetrics unencrypted and kept forever; the account's singleton owner creates it first."""
    groups = {g.inputs["name"]: g for g in mine(stack, LOG_GROUP)}
    if not EXPECTED[stack.stack].enhanced_monitoring:
        assert "RDSOSMetrics" not in groups
        return
    group = groups["RDSOSMetrics"]
    assert group.inputs["kmsKeyId"] == stack.outputs["kmsLogsKeyArn"]
    assert group.inputs["retentionInDays"] == EXPECTED[stack.stack].log_retention_days
    for inst in instances(stack):
        assert group.urn in inst.depends_on, f"{inst.name} could start publishing before RDSOSMetrics exists"


# --- network placement ----------------------------------------------------------------------------


def test_subnet_group_on_database_subnets_and_private(stack: Evaluation) -> None:
    sg = single(stack, SUBNET_GROUP)
    assert sg.inputs["subnetIds"] == stack.outputs["databaseSubnetIds"], f"{sg.name}: not the database subnets"
    assert not set(sg.inputs["subnetIds"]) & set(stack.outputs["privateSubnetIds"] + stack.outputs["publicSubnetIds"]), (
        f"{sg.name}: database subnet group includes routable subnets"
    )
    c = cluster(stack)
    assert c.inputs["dbSubnetGroupName"] == sg.inputs["name"], f"{c.name}: dbSubnetGroupName"
    assert c.inputs["vpcSecurityGroupIds"] == [stack.outputs["databaseSecurityGroupId"]], f"{c.name}: security groups"
    assert c.inputs["port"] == 5432 and stack.outputs["auroraPort"] == 5432, f"{c.name}: port {c.inputs['port']}"
    for inst in instances(stack):
        assert inst.inputs["publiclyAccessible"] is False, f"{inst.name}: publicly accessible"


def test_maintenance_is_scheduled_and_tls_ca_pinned(stack: Evaluation) -> None:
    c = cluster(stack)
    assert c.inputs["applyImmediately"] is False, f"{c.name}: changes must wait for the maintenance window"
    assert c.inputs["allowMajorVersionUpgrade"] is False, f"{c.name}: a major upgrade must be a deliberate change"
    for inst in instances(stack):
        # Version policy (issue #8.3): AWS upgrading the minor under the stack makes the next `pulumi up`
        # attempt a downgrade and fail; the pinned version moves only when the stack says so.
        assert inst.inputs["autoMinorVersionUpgrade"] is False, f"{inst.name}: AWS must not upgrade the engine"
        assert inst.inputs["applyImmediately"] is False, f"{inst.name}: applyImmediately"
        assert inst.inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1", f"{inst.name}: CA {inst.inputs.get('caCertIdentifier')}"


# --- logs and monitoring --------------------------------------------------------------------------


def test_postgresql_log_export_to_our_encrypted_log_group(stack: Evaluation) -> None:
    c = cluster(stack)
    assert "postgresql" in c.inputs["enabledCloudwatchLogsExports"], f"{c.name}: postgresql log not exported"
    lg = stack.named("database-postgresql-logs")
    assert lg.inputs["name"] == f"/aws/rds/cluster/{c.inputs['clusterIdentifier']}/postgresql", f"{lg.name}: name"
    retention = lg.inputs["retentionInDays"]
    assert retention == EXPECTED[stack.stack].log_retention_days, f"{lg.name}: retention {retention}"
    assert retention in cfg.LOG_RETENTION_DAYS, f"{lg.name}: retention {retention} not accepted by CloudWatch"
    assert lg.inputs["kmsKeyId"] == stack.outputs["kmsLogsKeyArn"], f"{lg.name}: not encrypted with the logs key"
    # The group must exist before RDS first writes to it, or RDS creates its own (unencrypted, kept forever).
    assert lg.urn in c.depends_on, f"{c.name}: does not depend on {lg.name}"


def test_performance_insights_and_enhanced_monitoring(stack: Evaluation) -> None:
    expected = EXPECTED[stack.stack]
    roles = mine(stack, ROLE)
    data_key = stack.outputs["kmsDataKeyArn"]
    for inst in instances(stack):
        assert inst.inputs["performanceInsightsEnabled"] is expected.db_performance_insights, f"{inst.name}: PI"
        if expected.db_performance_insights:
            assert inst.inputs["performanceInsightsKmsKeyId"] == data_key, f"{inst.name}: PI not on the data key"
            assert inst.inputs["performanceInsightsRetentionPeriod"] == 7, f"{inst.name}: PI retention"
        else:
            assert "performanceInsightsKmsKeyId" not in inst.inputs, f"{inst.name}: PI key set with PI off"
        interval = inst.inputs.get("monitoringInterval", 0)
        assert interval == expected.db_monitoring_interval_seconds, (
            f"{inst.name}: monitoringInterval {interval} in {stack.stack}, expected {expected.db_monitoring_interval_seconds}"
        )
        assert interval in cfg.MONITORING_INTERVALS, f"{inst.name}: monitoringInterval {interval} not accepted by RDS"
        if expected.enhanced_monitoring:
            assert len(roles) == 1, f"{stack.stack}: expected one monitoring role, found {[r.name for r in roles]}"
            assert inst.inputs["monitoringRoleArn"] == roles[0].state["arn"], f"{inst.name}: monitoringRoleArn"
        else:
            assert "monitoringRoleArn" not in inst.inputs, f"{inst.name}: monitoring role without monitoring"
    if not expected.enhanced_monitoring:
        assert roles == [], f"{stack.stack}: monitoring role created with monitoring off: {[r.name for r in roles]}"
        return
    role = roles[0]
    assert len(role.inputs["name"]) <= 64, f"{role.name}: role name too long"
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust == monitoring_assume_role_policy(), f"{role.name}: trust policy {trust}"
    attachment = single(stack, ATTACHMENT)
    assert attachment.inputs["policyArn"] == ENHANCED_MONITORING_POLICY_ARN, f"{attachment.name}: policy"
    assert attachment.inputs["role"] == role.inputs["name"], f"{attachment.name}: attached to {attachment.inputs['role']}"
    for inst in instances(stack):
        assert attachment.urn in inst.depends_on, f"{inst.name}: created before its monitoring policy is attached"


def test_every_taggable_resource_is_tagged(stack: Evaluation) -> None:
    for r in [
        cluster(stack),
        *instances(stack),
        *mine(stack, LOG_GROUP),
        *(single(stack, t) for t in (SUBNET_GROUP, PARAMETER_GROUP)),
    ]:
        tags = r.inputs.get("tags", {})
        assert tags.get("Environment") == stack.stack and tags.get("Component") == "database", f"{r.name}: tags {tags}"
        assert tags.get("Compliance") == "pci-dss", f"{r.name}: Compliance tag {tags.get('Compliance')}"


# --- the settings, not the environment name, drive the shape ----------------------------------------


def test_settings_not_environment_drive_monitoring_and_snapshots() -> None:
    config = default_config("dev") | {
        "scalepayments:dbPerformanceInsights": "true",
        "scalepayments:dbMonitoringInterval": "30",
        "scalepayments:dbFinalSnapshot": "true",
        "scalepayments:dbInstanceCount": "3",
        "scalepayments:environmentSuffix": "pr42",
    }
    stack = evaluate("dev", config)
    c = cluster(stack)
    assert c.inputs["clusterIdentifier"] == "scalepay-aurora-dev-pr42", f"{c.name}: suffix missing"
    assert c.inputs["finalSnapshotIdentifier"] == "scalepay-aurora-dev-pr42-final", f"{c.name}: final snapshot"
    insts = instances(stack)
    assert [i.inputs["identifier"] for i in insts] == [f"scalepay-aurora-dev-pr42-{n}" for n in (1, 2, 3)]
    # Three instances over dev's two AZs: round-robin, the third back in the first zone.
    azs = stack.outputs["availabilityZones"]
    assert [i.inputs["availabilityZone"] for i in insts] == [azs[0], azs[1], azs[0]]
    assert len(mine(stack, ROLE)) == 1, "monitoring role missing with dbMonitoringInterval=30"
    for inst in insts:
        assert inst.inputs["monitoringInterval"] == 30, f"{inst.name}: monitoringInterval"
        assert inst.inputs["performanceInsightsEnabled"] is True, f"{inst.name}: PI off"


# --- pure helpers -------------------------------------------------------------------------------------


def test_monitoring_trust_policy_is_narrow() -> None:
    policy = monitoring_assume_role_policy()
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert "*" not in json.dumps(policy)


def test_naming_helpers() -> None:
    assert instance_identifier("scalepay-aurora-prod", 0) == "scalepay-aurora-prod-1"
    assert instance_identifier("scalepay-aurora-prod", 2) == "scalepay-aurora-prod-3"
    assert postgresql_log_group_name("scalepay-aurora-dev") == "/aws/rds/cluster/scalepay-aurora-dev/postgresql"
