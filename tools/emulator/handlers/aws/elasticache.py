"""aws:elasticache -- Redis subnet groups, parameter groups, users, user groups, replication groups.

moto 5.2.5 lacks some of these operations; the stand-ins are in :mod:`tools.emulator.handlers.moto_fixes`
(parameter groups and user groups entirely, subnet group deletion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import (
    PULUMI_DESCRIPTION,
    GoneError,
    api_params,
    delete_call,
    delete_nothing,
    described,
    drop_none,
    fields,
    none_when,
    read_by,
    read_recorded,
    refreshed,
    state,
    subnet_group,
    tag_list,
)

_NO_USER = ("UserNotFound", "UserNotFoundFault")
_NO_REPLICATION_GROUP = "ReplicationGroupNotFoundFault"

# --- aws:elasticache/subnetGroup:SubnetGroup -------------------------------------------------------------


def _subnet_group(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeCacheSubnetGroups."""
    found = aws.client("elasticache").describe_cache_subnet_groups(CacheSubnetGroupName=name)["CacheSubnetGroups"][0]
    return {
        "name": name,
        "arn": found.get("ARN"),
        "vpcId": found.get("VpcId"),
        "subnetIds": [s["SubnetIdentifier"] for s in found.get("Subnets", [])],
    }


def create_subnet_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/subnetGroup:SubnetGroup -> CreateCacheSubnetGroup, read back with DescribeCacheSubnetGroups."""
    name, params = subnet_group(req, "CacheSubnetGroup")
    aws.client("elasticache").create_cache_subnet_group(**params)
    return described(aws, req, name, _subnet_group)


read_subnet_group = read_by(_subnet_group, "CacheSubnetGroupNotFoundFault")


# --- aws:elasticache/parameterGroup:ParameterGroup (a stand-in: moto 5.2.5 has none of its API) ------------


def create_parameter_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/parameterGroup:ParameterGroup -> :func:`moto_fixes.create_cache_parameter_group`."""
    name = req.physical_name("name", 255).lower()
    return name, state(req, **moto_fixes.create_cache_parameter_group(aws, name, req.get("family"), req.get("parameters", [])))


# --- aws:elasticache/user:User ---------------------------------------------------------------------------


def _user(aws: Aws, user_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeUsers; a user being deleted is gone."""
    found = aws.client("elasticache").describe_users(UserId=user_id)["Users"][0]
    if found.get("Status") == "deleting":
        raise GoneError(user_id)  # as for the provider: a user being deleted is gone
    authentication = found.get("Authentication") or {}
    return {
        "userId": found["UserId"],
        "userName": found.get("UserName"),
        "arn": found.get("ARN"),
        **fields(found, "Engine", "AccessString"),
        "authenticationMode": drop_none(
            {"type": authentication.get("Type"), "passwordCount": authentication.get("PasswordCount")}
        )
        or None,
    }


def create_user(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/user:User -> CreateUser, read back with DescribeUsers."""
    mode = req.get("authenticationMode") or {}
    user_id = req.get("userId")
    if moto_fixes.cache_user_still_deleting(aws, user_id):
        arn = aws.arn("elasticache", f"user:{user_id}")
        return user_id, state(req, arn=arn, **{moto_fixes.READOPTED_CACHE_USER: True})
    aws.client("elasticache").create_user(
        **drop_none(
            {
                "UserId": user_id,
                **api_params(req.inputs, "userName", "engine", "accessString", "noPasswordRequired"),
                "Passwords": list(req.get("passwords", [])) or None,
                "AuthenticationMode": drop_none(
                    {"Type": mode.get("type"), "Passwords": list(mode.get("passwords") or []) or None}
                )
                or None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    return described(aws, req, user_id, _user)


@none_when(*_NO_USER)
def read_user(aws: Aws, user_id: str, recorded: Mapping[str, Any]) -> dict[str, Any] | None:
    """DescribeUsers; a user being deleted is gone (unless it is a re-adopted one, see moto_fixes)."""
    if recorded.get(moto_fixes.READOPTED_CACHE_USER):
        return dict(recorded) if moto_fixes.cache_user_still_deleting(aws, user_id) else None
    return refreshed(recorded, **_user(aws, user_id, recorded))


@none_when(*_NO_USER)
def delete_user(aws: Aws, user_id: str, recorded: Mapping[str, Any]) -> None:
    """DeleteUser (only while it is not already being deleted)."""
    if recorded.get(moto_fixes.READOPTED_CACHE_USER):
        return  # moto still holds the earlier, deleted user under this id (see moto_fixes)
    _user(aws, user_id, recorded)
    aws.client("elasticache").delete_user(UserId=user_id)


# --- aws:elasticache/userGroup:UserGroup (a stand-in: moto 5.2.5 has none of its API) ----------------------


def create_user_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/userGroup:UserGroup -> :func:`moto_fixes.create_cache_user_group`."""
    group_id = req.get("userGroupId")
    return group_id, state(req, **moto_fixes.create_cache_user_group(aws, group_id, req.get("engine"), req.get("userIds", [])))


# --- aws:elasticache/replicationGroup:ReplicationGroup ---------------------------------------------------


def _replication_group(aws: Aws, group_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeReplicationGroups; a group being deleted is gone."""
    found = aws.client("elasticache").describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    if found.get("Status") == "deleting":
        # The provider treats a group being deleted as gone. (moto 5.2.5 lists it as "deleting" for good;
        # AWS drops it after a few minutes, which is all the difference there is for read and delete.)
        raise GoneError(group_id)
    node_group = (found.get("NodeGroups") or [{}])[0]
    primary = (node_group.get("PrimaryEndpoint") or {}).get("Address")
    reader = (node_group.get("ReaderEndpoint") or {}).get("Address")
    return {
        "replicationGroupId": group_id,
        "arn": found.get("ARN"),
        "memberClusters": found.get("MemberClusters", []),
        "primaryEndpointAddress": primary,
        "readerEndpointAddress": moto_fixes.replication_group_reader_endpoint(found, primary, reader),
        "configurationEndpointAddress": (found.get("ConfigurationEndpoint") or {}).get("Address"),
        "clusterEnabled": found.get("ClusterEnabled"),
        "automaticFailoverEnabled": found.get("AutomaticFailover") in ("enabled", "enabling")
        if found.get("AutomaticFailover")
        else None,
        "multiAzEnabled": found.get("MultiAZ") == "enabled" if found.get("MultiAZ") else None,
        **fields(found, "AtRestEncryptionEnabled", "TransitEncryptionEnabled", "KmsKeyId", "SnapshotRetentionLimit"),
        "nodeType": found.get("CacheNodeType"),
        "engineVersionActual": inputs.get("engineVersion"),
    }


def create_replication_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:elasticache/replicationGroup:ReplicationGroup -> CreateReplicationGroup, read back with DescribeReplicationGroups."""
    group_id = req.physical_name("replicationGroupId", 40).lower()
    params = drop_none(
        {
            "ReplicationGroupId": group_id,
            "ReplicationGroupDescription": req.get("description", PULUMI_DESCRIPTION),
            "Engine": req.get("engine", "redis"),
            **api_params(
                req.inputs,
                "engineVersion",
                "numCacheClusters",
                "numNodeGroups",
                "replicasPerNodeGroup",
                "port",
                "automaticFailoverEnabled",
                "atRestEncryptionEnabled",
                "transitEncryptionEnabled",
                "transitEncryptionMode",
                "authToken",
                "kmsKeyId",
                "snapshotRetentionLimit",
                "snapshotWindow",
                "notificationTopicArn",
                "autoMinorVersionUpgrade",
                "dataTieringEnabled",
                "networkType",
                "ipDiscovery",
                "clusterMode",
            ),
            "CacheNodeType": req.get("nodeType"),
            "PreferredCacheClusterAZs": list(req.get("preferredCacheClusterAzs", [])) or None,
            "CacheParameterGroupName": req.get("parameterGroupName"),
            "CacheSubnetGroupName": req.get("subnetGroupName"),
            "SecurityGroupIds": list(req.get("securityGroupIds", [])) or None,
            "MultiAZEnabled": req.get("multiAzEnabled"),
            "UserGroupIds": list(req.get("userGroupIds", [])) or None,
            "PreferredMaintenanceWindow": req.get("maintenanceWindow"),
            "LogDeliveryConfigurations": [
                drop_none(
                    {
                        **api_params(c, "logType", "destinationType", "logFormat"),
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
    aws.client("elasticache").create_replication_group(**moto_fixes.replication_group_node_count(params))
    return described(aws, req, group_id, _replication_group)


read_replication_group = read_by(_replication_group, _NO_REPLICATION_GROUP)
# Only while it is not already being deleted, which the API refuses.
delete_replication_group = delete_call(
    "elasticache", "delete_replication_group", "ReplicationGroupId", _NO_REPLICATION_GROUP, exists=_replication_group
)


RESOURCES = (
    ResourceHandler(
        "aws:elasticache/subnetGroup:SubnetGroup",
        create_subnet_group,
        read_subnet_group,
        moto_fixes.delete_cache_subnet_group,
        retained=moto_fixes.NO_DELETE_CACHE_SUBNET_GROUP,
    ),
    ResourceHandler(
        "aws:elasticache/parameterGroup:ParameterGroup",
        create_parameter_group,
        read_recorded,
        delete_nothing,
        retained=moto_fixes.NO_CACHE_PARAMETER_GROUPS,
    ),
    ResourceHandler("aws:elasticache/user:User", create_user, read_user, delete_user),
    ResourceHandler(
        "aws:elasticache/userGroup:UserGroup",
        create_user_group,
        read_recorded,
        delete_nothing,
        retained=moto_fixes.NO_CACHE_USER_GROUPS,
    ),
    ResourceHandler(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        create_replication_group,
        read_replication_group,
        delete_replication_group,
    ),
)
