"""ElastiCache (Redis): subnet groups, parameter groups, replication groups."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import drop_none, state, tag_list

PULUMI_DESCRIPTION = "Managed by Pulumi"


def subnet_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/subnetGroup:SubnetGroup -> CreateCacheSubnetGroup, read back with DescribeCacheSubnetGroups."""
    ec = aws.client("elasticache")
    name = req.physical_name("name", 255).lower()
    ec.create_cache_subnet_group(
        CacheSubnetGroupName=name,
        CacheSubnetGroupDescription=req.get("description", PULUMI_DESCRIPTION),
        SubnetIds=list(req.get("subnetIds", [])),
        Tags=tag_list(req.get("tags")),
    )
    found = ec.describe_cache_subnet_groups(CacheSubnetGroupName=name)["CacheSubnetGroups"][0]
    return name, state(
        req,
        name=name,
        arn=found.get("ARN"),
        vpcId=found.get("VpcId"),
        subnetIds=[s["SubnetIdentifier"] for s in found.get("Subnets", [])],
    )


def parameter_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/parameterGroup:ParameterGroup.

    The emulator (moto 5.2.5) implements no CreateCacheParameterGroup / ModifyCacheParameterGroup.
    The closest real call that records the same fact is CreateReplicationGroup with
    CacheParameterGroupName, which the replication group handler makes (moto keeps the name on the
    member clusters). Here the inputs are checked as the API would and the group's ARN is the
    documented ElastiCache ARN format; nothing else is stated.
    """
    name = req.physical_name("name", 255).lower()
    family = req.get("family")
    if not family:
        raise RuntimeError("CreateCacheParameterGroup: CacheParameterGroupFamily is required")
    for parameter in req.get("parameters", []):
        if not parameter.get("name") or parameter.get("value") is None:
            raise RuntimeError(f"ModifyCacheParameterGroup: invalid parameter {parameter!r}")
    return name, state(req, name=name, family=family, arn=aws.arn("elasticache", f"parametergroup:{name}"))


def replication_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/replicationGroup:ReplicationGroup -> CreateReplicationGroup, read back with DescribeReplicationGroups."""
    ec = aws.client("elasticache")
    group_id = req.physical_name("replicationGroupId", 40).lower()
    params = drop_none(
        {
            "ReplicationGroupId": group_id,
            "ReplicationGroupDescription": req.get("description", PULUMI_DESCRIPTION),
            "Engine": req.get("engine", "redis"),
            "EngineVersion": req.get("engineVersion"),
            "CacheNodeType": req.get("nodeType"),
            "NumCacheClusters": req.get("numCacheClusters"),
            "NumNodeGroups": req.get("numNodeGroups"),
            "ReplicasPerNodeGroup": req.get("replicasPerNodeGroup"),
            "PreferredCacheClusterAZs": list(req.get("preferredCacheClusterAzs", [])) or None,
            "Port": req.get("port"),
            "CacheParameterGroupName": req.get("parameterGroupName"),
            "CacheSubnetGroupName": req.get("subnetGroupName"),
            "SecurityGroupIds": list(req.get("securityGroupIds", [])) or None,
            "AutomaticFailoverEnabled": req.get("automaticFailoverEnabled"),
            "MultiAZEnabled": req.get("multiAzEnabled"),
            "AtRestEncryptionEnabled": req.get("atRestEncryptionEnabled"),
            "TransitEncryptionEnabled": req.get("transitEncryptionEnabled"),
            "TransitEncryptionMode": req.get("transitEncryptionMode"),
            "AuthToken": req.get("authToken"),
            "KmsKeyId": req.get("kmsKeyId"),
            "SnapshotRetentionLimit": req.get("snapshotRetentionLimit"),
            "SnapshotWindow": req.get("snapshotWindow"),
            "PreferredMaintenanceWindow": req.get("maintenanceWindow"),
            "NotificationTopicArn": req.get("notificationTopicArn"),
            "AutoMinorVersionUpgrade": req.get("autoMinorVersionUpgrade"),
            "DataTieringEnabled": req.get("dataTieringEnabled"),
            "NetworkType": req.get("networkType"),
            "IpDiscovery": req.get("ipDiscovery"),
            "ClusterMode": req.get("clusterMode"),
            "LogDeliveryConfigurations": [
                drop_none(
                    {
                        "LogType": c.get("logType"),
                        "DestinationType": c.get("destinationType"),
                        "LogFormat": c.get("logFormat"),
                        "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": c.get("destination")}}
                        if c.get("destinationType") == "cloudwatch-logs"
                        else {"KinesisFirehoseDetails": {"DeliveryStream": c.get("destination")}},
                    }
                )
                for c in req.get("logDeliveryConfigurations", [])
            ]
            or None,
            "Tags": tag_list(req.get("tags")),
        }
    )
    if params.get("NumCacheClusters", 1) > 1 and "NumNodeGroups" not in params and "ReplicasPerNodeGroup" not in params:
        # moto 5.2.5 counts the nodes of a cluster-mode-disabled group from ReplicasPerNodeGroup only and
        # ignores NumCacheClusters; for one shard the two say the same thing (N nodes = 1 primary + N-1 replicas).
        params["ReplicasPerNodeGroup"] = params["NumCacheClusters"] - 1
    ec.create_replication_group(**params)
    found = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    node_group = (found.get("NodeGroups") or [{}])[0]
    primary = (node_group.get("PrimaryEndpoint") or {}).get("Address")
    reader = (node_group.get("ReaderEndpoint") or {}).get("Address")
    if reader is None and primary and primary.startswith("master.") and not found.get("ClusterEnabled"):
        # moto 5.2.5 keeps the reader endpoint in its model but leaves it out of DescribeReplicationGroups.
        # AWS names it after the primary endpoint ("master.<group domain>" -> "replica.<group domain>").
        reader = "replica." + primary.removeprefix("master.")
    return group_id, state(
        req,
        replicationGroupId=group_id,
        arn=found.get("ARN"),
        memberClusters=found.get("MemberClusters", []),
        primaryEndpointAddress=primary,
        readerEndpointAddress=reader,
        configurationEndpointAddress=(found.get("ConfigurationEndpoint") or {}).get("Address"),
        clusterEnabled=found.get("ClusterEnabled"),
        automaticFailoverEnabled=found.get("AutomaticFailover") in ("enabled", "enabling")
        if found.get("AutomaticFailover")
        else None,
        multiAzEnabled=found.get("MultiAZ") == "enabled" if found.get("MultiAZ") else None,
        atRestEncryptionEnabled=found.get("AtRestEncryptionEnabled"),
        transitEncryptionEnabled=found.get("TransitEncryptionEnabled"),
        kmsKeyId=found.get("KmsKeyId"),
        snapshotRetentionLimit=found.get("SnapshotRetentionLimit"),
        nodeType=found.get("CacheNodeType"),
        engineVersionActual=req.get("engineVersion"),
    )


HANDLERS = {
    "aws:elasticache/subnetGroup:SubnetGroup": subnet_group,
    "aws:elasticache/parameterGroup:ParameterGroup": parameter_group,
    "aws:elasticache/replicationGroup:ReplicationGroup": replication_group,
}
