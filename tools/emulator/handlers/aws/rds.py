"""aws:rds -- Aurora PostgreSQL: subnet groups, cluster parameter groups, clusters, cluster instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import (
    PULUMI_DESCRIPTION,
    api_params,
    delete_call,
    described,
    drop_none,
    fields,
    given,
    none_when,
    read_by,
    subnet_group,
    tag_list,
)

_NO_SUBNET_GROUP = "DBSubnetGroupNotFoundFault"
_NO_PARAMETER_GROUP = ("DBParameterGroupNotFound", "DBParameterGroupNotFoundFault")
_NO_INSTANCE = ("DBInstanceNotFound", "DBInstanceNotFoundFault")


def _parameters(parameters: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """``parameters`` blocks -> Parameters for Modify*ParameterGroup."""
    return [
        {
            "ParameterName": p["name"],
            "ParameterValue": str(p["value"]),
            "ApplyMethod": p.get("applyMethod") or "immediate",
        }
        for p in parameters
    ]


# --- aws:rds/subnetGroup:SubnetGroup ---------------------------------------------------------------------


def _subnet_group(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeDBSubnetGroups."""
    found = aws.client("rds").describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    return {
        "name": name,
        "arn": found["DBSubnetGroupArn"],
        "vpcId": found.get("VpcId"),
        "subnetIds": [s["SubnetIdentifier"] for s in found.get("Subnets", [])],
        "supportedNetworkTypes": found.get("SupportedNetworkTypes") or ["IPV4"],
    }


def create_subnet_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/subnetGroup:SubnetGroup -> CreateDBSubnetGroup, read back with DescribeDBSubnetGroups."""
    name, params = subnet_group(req, "DBSubnetGroup")
    aws.client("rds").create_db_subnet_group(**params)
    return described(aws, req, name, _subnet_group)


read_subnet_group = read_by(_subnet_group, _NO_SUBNET_GROUP)
delete_subnet_group = delete_call("rds", "delete_db_subnet_group", "DBSubnetGroupName", _NO_SUBNET_GROUP)


# --- aws:rds/clusterParameterGroup:ClusterParameterGroup -------------------------------------------------


def _cluster_parameter_group(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeDBClusterParameterGroups."""
    found = aws.client("rds").describe_db_cluster_parameter_groups(DBClusterParameterGroupName=name)["DBClusterParameterGroups"][
        0
    ]
    return {"name": name, "arn": found["DBClusterParameterGroupArn"], "family": found["DBParameterGroupFamily"]}


def create_cluster_parameter_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/clusterParameterGroup:ClusterParameterGroup -> Create + ModifyDBClusterParameterGroup."""
    rds = aws.client("rds")
    name = req.physical_name("name", 255).lower()
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=name,
        DBParameterGroupFamily=req.get("family"),
        Description=req.get("description", PULUMI_DESCRIPTION),
        Tags=tag_list(req.get("tags")),
    )
    if req.get("parameters"):
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=name, Parameters=_parameters(req.get("parameters")))
    return described(aws, req, name, _cluster_parameter_group)


read_cluster_parameter_group = read_by(_cluster_parameter_group, *_NO_PARAMETER_GROUP)
delete_cluster_parameter_group = delete_call(
    "rds", "delete_db_cluster_parameter_group", "DBClusterParameterGroupName", *_NO_PARAMETER_GROUP
)


# --- aws:rds/cluster:Cluster -----------------------------------------------------------------------------


def _cluster(aws: Aws, identifier: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeDBClusters."""
    found = aws.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    secret = found.get("MasterUserSecret")
    return {
        "clusterIdentifier": identifier,
        "arn": found["DBClusterArn"],
        **fields(found, "Endpoint", "ReaderEndpoint", "Port", "Engine", "EngineVersion"),
        "engineVersionActual": found.get("EngineVersion"),
        "clusterResourceId": found.get("DbClusterResourceId"),
        **fields(found, "HostedZoneId", "StorageEncrypted"),
        "kmsKeyId": found.get("KmsKeyId") or inputs.get("kmsKeyId"),
        **fields(found, "BackupRetentionPeriod", "DeletionProtection", "AvailabilityZones"),
        "clusterMembers": [m["DBInstanceIdentifier"] for m in found.get("DBClusterMembers", [])],
        "masterUserSecrets": [
            {
                "secretArn": secret.get("SecretArn"),
                "secretStatus": secret.get("SecretStatus"),
                "kmsKeyId": secret.get("KmsKeyId"),
            }
        ]
        if secret
        else [],
    }


def create_cluster(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/cluster:Cluster -> CreateDBCluster, read back with DescribeDBClusters.

    With ``manageMasterUserPassword`` RDS creates the master secret in Secrets Manager itself;
    its ARN comes back as ``MasterUserSecret`` and is exported from there.
    """
    identifier = req.physical_name("clusterIdentifier", 63).lower()
    scaling = req.get("serverlessv2ScalingConfiguration")
    params = drop_none(
        {
            "DBClusterIdentifier": identifier,
            **api_params(
                req.inputs,
                "engine",
                "engineVersion",
                "engineMode",
                "databaseName",
                "masterUsername",
                "manageMasterUserPassword",
                "masterUserSecretKmsKeyId",
                "port",
                "storageEncrypted",
                "kmsKeyId",
                "backupRetentionPeriod",
                "preferredBackupWindow",
                "preferredMaintenanceWindow",
                "deletionProtection",
                "copyTagsToSnapshot",
                "storageType",
                "networkType",
            ),
            "MasterUserPassword": req.get("masterPassword"),
            "DBSubnetGroupName": req.get("dbSubnetGroupName"),
            "DBClusterParameterGroupName": req.get("dbClusterParameterGroupName"),
            "VpcSecurityGroupIds": list(req.get("vpcSecurityGroupIds", [])) or None,
            "AvailabilityZones": list(req.get("availabilityZones", [])) or None,
            "EnableCloudwatchLogsExports": list(req.get("enabledCloudwatchLogsExports", [])) or None,
            "EnableIAMDatabaseAuthentication": req.get("iamDatabaseAuthenticationEnabled"),
            "ServerlessV2ScalingConfiguration": drop_none(
                {"MinCapacity": scaling.get("minCapacity"), "MaxCapacity": scaling.get("maxCapacity")}
            )
            if scaling
            else None,
            "Tags": tag_list(req.get("tags")),
        }
    )
    created = aws.client("rds").create_db_cluster(**params)["DBCluster"]
    moto_fixes.managed_master_secret(aws, created)
    return described(aws, req, identifier, _cluster)


read_cluster = read_by(_cluster, "DBClusterNotFoundFault")


@none_when("DBClusterNotFoundFault")
def delete_cluster(aws: Aws, identifier: str, recorded: Mapping[str, Any]) -> None:
    """DeleteDBCluster, with a final snapshot unless ``skipFinalSnapshot`` (the provider's rule).

    Deletion protection is switched off first (ModifyDBCluster), as an operator does before a destroy:
    deleting is the decision. The RDS-managed master secret goes with the cluster, in AWS as in moto;
    the automated backups go too (AWS's default), the final snapshot stays.
    """
    rds = aws.client("rds")
    found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    if found.get("DeletionProtection"):
        rds.modify_db_cluster(DBClusterIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    skip = bool(given(recorded, "skipFinalSnapshot", False))
    snapshot = given(recorded, "finalSnapshotIdentifier")
    if not skip and not snapshot:
        # The API wants one or the other; the provider refuses this combination at plan time.
        raise RuntimeError("DeleteDBCluster: finalSnapshotIdentifier is required unless skipFinalSnapshot")
    rds.delete_db_cluster(
        **drop_none(
            {
                "DBClusterIdentifier": identifier,
                "SkipFinalSnapshot": skip,
                "FinalDBSnapshotIdentifier": None if skip else snapshot,
            }
        )
    )
    moto_fixes.delete_automated_cluster_snapshots(aws, identifier)


# --- aws:rds/clusterInstance:ClusterInstance -------------------------------------------------------------


def _cluster_instance(aws: Aws, identifier: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeDBInstances (+ DescribeDBClusters for the writer flag)."""
    rds = aws.client("rds")
    found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    members = rds.describe_db_clusters(DBClusterIdentifier=found["DBClusterIdentifier"])["DBClusters"][0].get(
        "DBClusterMembers", []
    )
    writer = next((m.get("IsClusterWriter") for m in members if m["DBInstanceIdentifier"] == identifier), None)
    endpoint = found.get("Endpoint") or {}
    return {
        "identifier": identifier,
        "arn": found["DBInstanceArn"],
        "endpoint": endpoint.get("Address"),
        "port": endpoint.get("Port"),
        **fields(found, "DbiResourceId", "AvailabilityZone"),
        "instanceClass": found.get("DBInstanceClass"),
        "engine": found.get("Engine"),
        "engineVersionActual": found.get("EngineVersion"),
        **fields(found, "StorageEncrypted", "KmsKeyId", "MonitoringInterval", "PerformanceInsightsEnabled", "PubliclyAccessible"),
        "writer": writer,
    }


def create_cluster_instance(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/clusterInstance:ClusterInstance -> CreateDBInstance in the cluster, read back with DescribeDBInstances."""
    identifier = req.physical_name("identifier", 63).lower()
    params = drop_none(
        {
            "DBInstanceIdentifier": identifier,
            "DBClusterIdentifier": req.get("clusterIdentifier"),
            "DBInstanceClass": req.get("instanceClass"),
            **api_params(
                req.inputs,
                "engine",
                "engineVersion",
                "availabilityZone",
                "autoMinorVersionUpgrade",
                "monitoringInterval",
                "monitoringRoleArn",
                "performanceInsightsRetentionPeriod",
                "promotionTier",
                "copyTagsToSnapshot",
                "preferredMaintenanceWindow",
            ),
            "DBSubnetGroupName": req.get("dbSubnetGroupName"),
            "DBParameterGroupName": req.get("dbParameterGroupName"),
            "PubliclyAccessible": req.get("publiclyAccessible", False),
            "EnablePerformanceInsights": req.get("performanceInsightsEnabled"),
            "PerformanceInsightsKMSKeyId": req.get("performanceInsightsKmsKeyId"),
            "CACertificateIdentifier": req.get("caCertIdentifier"),
            "Tags": tag_list(req.get("tags")),
        }
    )
    aws.client("rds").create_db_instance(**params)
    return described(aws, req, identifier, _cluster_instance)


read_cluster_instance = read_by(_cluster_instance, *_NO_INSTANCE)
# A cluster member keeps no snapshot of its own: the cluster's storage holds the data.
delete_cluster_instance = delete_call("rds", "delete_db_instance", "DBInstanceIdentifier", *_NO_INSTANCE, SkipFinalSnapshot=True)


RESOURCES = (
    ResourceHandler("aws:rds/subnetGroup:SubnetGroup", create_subnet_group, read_subnet_group, delete_subnet_group),
    ResourceHandler(
        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
        create_cluster_parameter_group,
        read_cluster_parameter_group,
        delete_cluster_parameter_group,
    ),
    ResourceHandler("aws:rds/cluster:Cluster", create_cluster, read_cluster, delete_cluster),
    ResourceHandler(
        "aws:rds/clusterInstance:ClusterInstance", create_cluster_instance, read_cluster_instance, delete_cluster_instance
    ),
)
