"""RDS (Aurora PostgreSQL): subnet groups, parameter groups, clusters, cluster instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import drop_none, state, tag_list

PULUMI_DESCRIPTION = "Managed by Pulumi"


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


def subnet_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/subnetGroup:SubnetGroup -> CreateDBSubnetGroup, read back with DescribeDBSubnetGroups."""
    rds = aws.client("rds")
    name = req.physical_name("name", 255).lower()
    rds.create_db_subnet_group(
        DBSubnetGroupName=name,
        DBSubnetGroupDescription=req.get("description", PULUMI_DESCRIPTION),
        SubnetIds=list(req.get("subnetIds", [])),
        Tags=tag_list(req.get("tags")),
    )
    found = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    return name, state(
        req,
        name=name,
        arn=found["DBSubnetGroupArn"],
        vpcId=found.get("VpcId"),
        subnetIds=[s["SubnetIdentifier"] for s in found.get("Subnets", [])],
        supportedNetworkTypes=found.get("SupportedNetworkTypes") or ["IPV4"],
    )


def cluster_parameter_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    found = rds.describe_db_cluster_parameter_groups(DBClusterParameterGroupName=name)["DBClusterParameterGroups"][0]
    return name, state(req, name=name, arn=found["DBClusterParameterGroupArn"], family=found["DBParameterGroupFamily"])


def cluster(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/cluster:Cluster -> CreateDBCluster, read back with DescribeDBClusters.

    With ``manageMasterUserPassword`` RDS creates the master secret in Secrets Manager itself;
    its ARN comes back as ``MasterUserSecret`` and is exported from there.
    """
    rds = aws.client("rds")
    identifier = req.physical_name("clusterIdentifier", 63).lower()
    scaling = req.get("serverlessv2ScalingConfiguration")
    params = drop_none(
        {
            "DBClusterIdentifier": identifier,
            "Engine": req.get("engine"),
            "EngineVersion": req.get("engineVersion"),
            "EngineMode": req.get("engineMode"),
            "DatabaseName": req.get("databaseName"),
            "MasterUsername": req.get("masterUsername"),
            "MasterUserPassword": req.get("masterPassword"),
            "ManageMasterUserPassword": req.get("manageMasterUserPassword"),
            "MasterUserSecretKmsKeyId": req.get("masterUserSecretKmsKeyId"),
            "Port": req.get("port"),
            "DBSubnetGroupName": req.get("dbSubnetGroupName"),
            "DBClusterParameterGroupName": req.get("dbClusterParameterGroupName"),
            "VpcSecurityGroupIds": list(req.get("vpcSecurityGroupIds", [])) or None,
            "AvailabilityZones": list(req.get("availabilityZones", [])) or None,
            "StorageEncrypted": req.get("storageEncrypted"),
            "KmsKeyId": req.get("kmsKeyId"),
            "BackupRetentionPeriod": req.get("backupRetentionPeriod"),
            "PreferredBackupWindow": req.get("preferredBackupWindow"),
            "PreferredMaintenanceWindow": req.get("preferredMaintenanceWindow"),
            "DeletionProtection": req.get("deletionProtection"),
            "CopyTagsToSnapshot": req.get("copyTagsToSnapshot"),
            "EnableCloudwatchLogsExports": list(req.get("enabledCloudwatchLogsExports", [])) or None,
            "EnableIAMDatabaseAuthentication": req.get("iamDatabaseAuthenticationEnabled"),
            "StorageType": req.get("storageType"),
            "NetworkType": req.get("networkType"),
            "ServerlessV2ScalingConfiguration": drop_none(
                {"MinCapacity": scaling.get("minCapacity"), "MaxCapacity": scaling.get("maxCapacity")}
            )
            if scaling
            else None,
            "Tags": tag_list(req.get("tags")),
        }
    )
    rds.create_db_cluster(**params)
    found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    secret = found.get("MasterUserSecret")
    return identifier, state(
        req,
        clusterIdentifier=identifier,
        arn=found["DBClusterArn"],
        endpoint=found.get("Endpoint"),
        readerEndpoint=found.get("ReaderEndpoint"),
        port=found.get("Port"),
        engine=found.get("Engine"),
        engineVersion=found.get("EngineVersion"),
        engineVersionActual=found.get("EngineVersion"),
        clusterResourceId=found.get("DbClusterResourceId"),
        hostedZoneId=found.get("HostedZoneId"),
        storageEncrypted=found.get("StorageEncrypted"),
        kmsKeyId=found.get("KmsKeyId") or req.get("kmsKeyId"),
        backupRetentionPeriod=found.get("BackupRetentionPeriod"),
        deletionProtection=found.get("DeletionProtection"),
        availabilityZones=found.get("AvailabilityZones"),
        clusterMembers=[m["DBInstanceIdentifier"] for m in found.get("DBClusterMembers", [])],
        masterUserSecrets=[
            {
                "secretArn": secret.get("SecretArn"),
                "secretStatus": secret.get("SecretStatus"),
                "kmsKeyId": secret.get("KmsKeyId"),
            }
        ]
        if secret
        else [],
    )


def cluster_instance(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:rds/clusterInstance:ClusterInstance -> CreateDBInstance in the cluster, read back with DescribeDBInstances."""
    rds = aws.client("rds")
    identifier = req.physical_name("identifier", 63).lower()
    params = drop_none(
        {
            "DBInstanceIdentifier": identifier,
            "DBClusterIdentifier": req.get("clusterIdentifier"),
            "DBInstanceClass": req.get("instanceClass"),
            "Engine": req.get("engine"),
            "EngineVersion": req.get("engineVersion"),
            "AvailabilityZone": req.get("availabilityZone"),
            "DBSubnetGroupName": req.get("dbSubnetGroupName"),
            "DBParameterGroupName": req.get("dbParameterGroupName"),
            "PubliclyAccessible": req.get("publiclyAccessible", False),
            "AutoMinorVersionUpgrade": req.get("autoMinorVersionUpgrade"),
            "MonitoringInterval": req.get("monitoringInterval"),
            "MonitoringRoleArn": req.get("monitoringRoleArn"),
            "EnablePerformanceInsights": req.get("performanceInsightsEnabled"),
            "PerformanceInsightsKMSKeyId": req.get("performanceInsightsKmsKeyId"),
            "PerformanceInsightsRetentionPeriod": req.get("performanceInsightsRetentionPeriod"),
            "PromotionTier": req.get("promotionTier"),
            "CACertificateIdentifier": req.get("caCertIdentifier"),
            "CopyTagsToSnapshot": req.get("copyTagsToSnapshot"),
            "PreferredMaintenanceWindow": req.get("preferredMaintenanceWindow"),
            "Tags": tag_list(req.get("tags")),
        }
    )
    rds.create_db_instance(**params)
    found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    members = rds.describe_db_clusters(DBClusterIdentifier=found["DBClusterIdentifier"])["DBClusters"][0].get(
        "DBClusterMembers", []
    )
    writer = next((m.get("IsClusterWriter") for m in members if m["DBInstanceIdentifier"] == identifier), None)
    endpoint = found.get("Endpoint") or {}
    return identifier, state(
        req,
        identifier=identifier,
        arn=found["DBInstanceArn"],
        endpoint=endpoint.get("Address"),
        port=endpoint.get("Port"),
        dbiResourceId=found.get("DbiResourceId"),
        availabilityZone=found.get("AvailabilityZone"),
        instanceClass=found.get("DBInstanceClass"),
        engine=found.get("Engine"),
        engineVersionActual=found.get("EngineVersion"),
        storageEncrypted=found.get("StorageEncrypted"),
        kmsKeyId=found.get("KmsKeyId"),
        monitoringInterval=found.get("MonitoringInterval"),
        performanceInsightsEnabled=found.get("PerformanceInsightsEnabled"),
        publiclyAccessible=found.get("PubliclyAccessible"),
        writer=writer,
    )


HANDLERS = {
    "aws:rds/subnetGroup:SubnetGroup": subnet_group,
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": cluster_parameter_group,
    "aws:rds/cluster:Cluster": cluster,
    "aws:rds/clusterInstance:ClusterInstance": cluster_instance,
}
