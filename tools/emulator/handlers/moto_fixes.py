"""Every workaround for a gap or quirk of the emulator (moto 5.2.5), in one place.

Each function names the moto behaviour it works around and the AWS behaviour it stands in for, so
that upgrading moto means reading this file: drop a fix once moto behaves like AWS, and switch the
handler back to the plain API call. Handlers call these by name; no other handler code works around
moto.

Summary (handler -> fix):

* ec2 FlowLog create/read      -> :func:`flow_log_destination`, :func:`flow_log_destination_read`
* ec2 NatGateway delete        -> :func:`release_nat_gateway_interface`
* elasticache ParameterGroup   -> :func:`create_cache_parameter_group` (+ read/delete of the recorded state only)
* elasticache UserGroup        -> :func:`create_cache_user_group` (+ read/delete of the recorded state only)
* elasticache SubnetGroup      -> :func:`delete_cache_subnet_group` (no-op)
* elasticache ReplicationGroup -> :func:`replication_group_node_count`, :func:`replication_group_reader_endpoint`
* appautoscaling Policy        -> :func:`scaling_policies_named`
* rds Cluster create           -> :func:`managed_master_secret`
* rds Cluster delete           -> :func:`delete_automated_cluster_snapshots`
* s3 BucketLogging create      -> :func:`put_bucket_logging`
* cfg Rule read/delete         -> :func:`config_rule`
* cloudwatch LogGroup read     -> :func:`log_group_class`

Two facts moto accepts and then forgets, which the local data plane (``tools/localplane/deployed.py``)
therefore reads from the deployment's state record instead of the emulator: an ECS service's
``serviceConnectConfiguration`` (CreateService ignores it) and the members of an ElastiCache user group
(no user group operations, see :func:`create_cache_user_group`).
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from tools.emulator.engine import Aws
from tools.emulator.handlers.translate import GoneError

# --- EC2 ---------------------------------------------------------------------------------------------------


def flow_log_destination(destination_type: str, destination: str | None) -> dict[str, Any]:
    """CreateFlowLogs destination parameters.

    moto: checks a ``cloud-watch-logs`` destination by ``LogGroupName`` only; given the log group's
    ARN as ``LogDestination`` it records the flow log with DeliverLogsStatus FAILED.
    AWS: accepts either and delivers to the group. So the same request goes by log group name.
    """
    if destination_type == "cloud-watch-logs" and destination:
        return {"LogGroupName": destination.split(":log-group:", 1)[-1].removesuffix(":*")}
    return {"LogDestination": destination}


def flow_log_destination_read(found: Mapping[str, Any], inputs: Mapping[str, Any]) -> str | None:
    """The destination of a flow log read back with DescribeFlowLogs.

    moto: answers no LogDestination for a flow log created by LogGroupName (see :func:`flow_log_destination`).
    AWS: answers the log group's ARN. The recorded input (that ARN) stands in.
    """
    destination = found.get("LogDestination") or inputs.get("logDestination")
    return str(destination) if destination else None


def release_nat_gateway_interface(aws: Aws, gateway: Mapping[str, Any]) -> None:
    """After DeleteNatGateway: disassociate its Elastic IP and delete its network interface.

    moto: DeleteNatGateway marks the gateway deleted but keeps its requester-managed network
    interface, with the Elastic IP still associated to it.
    AWS: deleting a NAT gateway deletes that interface and disassociates the address itself
    (``gateway`` is the gateway as DescribeNatGateways showed it before the delete).
    """
    ec2 = aws.client("ec2")
    for address in gateway.get("NatGatewayAddresses") or []:
        interface_id = address.get("NetworkInterfaceId")
        if not interface_id:
            continue
        if address.get("AllocationId"):
            found = ec2.describe_addresses(AllocationIds=[address["AllocationId"]])["Addresses"]
            for eip in found:
                if eip.get("AssociationId") and eip.get("NetworkInterfaceId") == interface_id:
                    ec2.disassociate_address(AssociationId=eip["AssociationId"])
        interfaces = ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [interface_id]}])
        if interfaces["NetworkInterfaces"]:
            ec2.delete_network_interface(NetworkInterfaceId=interface_id)


# --- ElastiCache -------------------------------------------------------------------------------------------

NO_CACHE_PARAMETER_GROUPS = (
    "moto 5.2.5 implements no Create/Describe/Modify/DeleteCacheParameterGroup: the group exists only in the recorded state"
)
NO_DELETE_CACHE_SUBNET_GROUP = "moto 5.2.5 implements no DeleteCacheSubnetGroup: the group stays in the emulator"
NO_CACHE_USER_GROUPS = (
    "moto 5.2.5 implements no Create/Describe/Modify/DeleteUserGroup: the group exists only in the recorded state"
)


def create_cache_parameter_group(aws: Aws, name: str, family: str | None, parameters: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Stand-in for CreateCacheParameterGroup + ModifyCacheParameterGroup.

    moto: implements none of the cache parameter group operations.
    AWS: creates the group and sets its parameters. The closest real call that records the same fact
    is CreateReplicationGroup with CacheParameterGroupName, which the replication group handler
    makes (moto keeps the name on the member clusters). Here the inputs are checked as the API would
    and the group's ARN is the documented ElastiCache ARN format; nothing else is stated. Read returns
    the recorded state and delete has nothing to call (``NO_CACHE_PARAMETER_GROUPS``).
    """
    if not family:
        raise RuntimeError("CreateCacheParameterGroup: CacheParameterGroupFamily is required")
    for parameter in parameters:
        if not parameter.get("name") or parameter.get("value") is None:
            raise RuntimeError(f"ModifyCacheParameterGroup: invalid parameter {parameter!r}")
    return {"name": name, "family": family, "arn": aws.arn("elasticache", f"parametergroup:{name}")}


def create_cache_user_group(aws: Aws, group_id: str, engine: str | None, user_ids: list[str]) -> dict[str, Any]:
    """Stand-in for CreateUserGroup.

    moto: implements none of the user group operations (CreateReplicationGroup accepts UserGroupIds
    and keeps them, unchecked).
    AWS: creates the group from existing users, one of which must have the user name "default". Here
    those rules are checked against DescribeUsers and the group's ARN is the documented format; read
    returns the recorded state and delete has nothing to call (``NO_CACHE_USER_GROUPS``).
    """
    if not group_id or not engine:
        raise RuntimeError("CreateUserGroup: UserGroupId and Engine are required")
    elasticache = aws.client("elasticache")
    names = [elasticache.describe_users(UserId=user_id)["Users"][0].get("UserName") for user_id in user_ids]
    if "default" not in names:
        raise RuntimeError(f"CreateUserGroup: {group_id} needs a user named 'default' (users: {names})")
    return {
        "userGroupId": group_id,
        "engine": engine,
        "userIds": list(user_ids),
        "arn": aws.arn("elasticache", f"usergroup:{group_id}"),
    }


def delete_cache_subnet_group(_aws: Aws, _name: str, _recorded: Mapping[str, Any]) -> None:
    """Stand-in for DeleteCacheSubnetGroup: nothing to call.

    moto: implements no DeleteCacheSubnetGroup (and DescribeCacheSubnetGroups keeps listing the group).
    AWS: deletes the group once no cluster uses it. See ``NO_DELETE_CACHE_SUBNET_GROUP``.
    """


#: Marks a cache user recorded from its request because moto still holds a deleted one under that id.
READOPTED_CACHE_USER = "__emulatorReadopted"


def cache_user_still_deleting(aws: Aws, user_id: str) -> bool:
    """True when ``user_id`` exists in moto in status ``deleting``.

    moto 5.2.5 never completes DeleteUser (the user stays ``deleting`` forever) and has no ModifyUser; on
    AWS the deletion completes within minutes and the id can be used again. A user re-created under the
    same id after a destroy (destroy, then deploy, in one emulator) is therefore recorded from its
    request instead of created again: :func:`create_user` marks it with :data:`READOPTED_CACHE_USER`.
    """
    try:
        found = aws.client("elasticache").describe_users(UserId=user_id)["Users"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("UserNotFound", "UserNotFoundFault"):
            return False
        raise
    return bool(found) and found[0].get("Status") == "deleting"


def replication_group_node_count(params: Mapping[str, Any]) -> dict[str, Any]:
    """CreateReplicationGroup parameters with the node count moto understands.

    moto: counts the nodes of a cluster-mode-disabled group from ReplicasPerNodeGroup only and
    ignores NumCacheClusters.
    AWS: NumCacheClusters=N makes 1 primary + N-1 replicas; for one shard the two say the same thing,
    so ReplicasPerNodeGroup=N-1 is added when neither shard parameter was given.
    """
    out = dict(params)
    if out.get("NumCacheClusters", 1) > 1 and "NumNodeGroups" not in out and "ReplicasPerNodeGroup" not in out:
        out["ReplicasPerNodeGroup"] = out["NumCacheClusters"] - 1
    return out


def replication_group_reader_endpoint(found: Mapping[str, Any], primary: str | None, reader: str | None) -> str | None:
    """The reader endpoint of a replication group read back with DescribeReplicationGroups.

    moto: keeps the reader endpoint in its model but leaves it out of DescribeReplicationGroups.
    AWS: returns it, named after the primary endpoint ("master.<group domain>" -> "replica.<group domain>").
    """
    if reader is None and primary and primary.startswith("master.") and not found.get("ClusterEnabled"):
        return "replica." + primary.removeprefix("master.")
    return reader


# --- Application Auto Scaling ------------------------------------------------------------------------------


def scaling_policies_named(policies: list[dict[str, Any]], name: str, dimension: str | None) -> list[dict[str, Any]]:
    """The policies of a DescribeScalingPolicies answer that really are ``name`` (on ``dimension``).

    moto: ignores PolicyNames and returns every policy of the resource (the first one is not
    necessarily the one asked for; with three policies per service it usually is not).
    AWS: returns only the named policies. Filtering the answer gives the same result against both.
    """
    return [p for p in policies if p.get("PolicyName") == name and (dimension is None or p.get("ScalableDimension") == dimension)]


# --- AWS Config --------------------------------------------------------------------------------------------


def config_rule(response: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The rule ``name`` in a DescribeConfigRules(ConfigRuleNames=[name]) answer; :class:`GoneError` if absent.

    moto: once the account has no config rule at all, answers an empty list instead of raising.
    AWS: raises NoSuchConfigRuleException for a name it does not know (which the read also handles).
    """
    found = next((r for r in response.get("ConfigRules", []) if r.get("ConfigRuleName") == name), None)
    if found is None:
        raise GoneError(name)
    rule: dict[str, Any] = found
    return rule


# --- RDS ---------------------------------------------------------------------------------------------------


def managed_master_secret(aws: Aws, cluster: Mapping[str, Any]) -> None:
    """After CreateDBCluster with ManageMasterUserPassword: the secret holds the cluster's own master user.

    moto: fills every RDS-managed secret with the same fixed ``{"username": "admin", "password": "P@55w0rd!"}``,
    whatever the cluster's MasterUsername.
    AWS: the secret holds ``{"username": <MasterUsername>, "password": <a generated password>}``. The
    local data plane starts the database with what the secret says, and the migrate task logs in with it,
    so the secret must be the cluster's (``cluster`` is the cluster as DescribeDBClusters shows it).
    """
    secret = (cluster.get("MasterUserSecret") or {}).get("SecretArn")
    if not secret:
        return
    password = secrets.token_urlsafe(30)  # RDS generates 28+ printable characters; URL-safe keeps them quotable
    aws.client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString=json.dumps({"username": cluster["MasterUsername"], "password": password})
    )


def delete_automated_cluster_snapshots(aws: Aws, cluster_identifier: str) -> None:
    """After DeleteDBCluster: delete the automated snapshots the cluster left.

    moto: keeps a deleted cluster's automated snapshot ("rds:<cluster>-<date>") listed for good.
    AWS: DeleteDBCluster removes the automated backups with the cluster (DeleteAutomatedBackups
    defaults to true); only the final snapshot, a manual one, stays.
    """
    rds = aws.client("rds")
    snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster_identifier, SnapshotType="automated")
    for snapshot in snapshots.get("DBClusterSnapshots", []):
        rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotIdentifier"])


# --- S3 ----------------------------------------------------------------------------------------------------

LOGGING_SERVICE = "logging.s3.amazonaws.com"
# Sibling BucketLogging registrations (run concurrently) may share a target bucket whose policy is swapped below.
_LOGGING_POLICY_LOCK = threading.Lock()


def put_bucket_logging(aws: Aws, bucket: str, status: Mapping[str, Any]) -> None:
    """PutBucketLogging, past moto's own check of the target bucket's policy.

    moto: checks that the target bucket's policy lets the logging service write, but crashes (HTTP 500)
    on any statement whose Principal is the string "*" (a deny-insecure-transport statement, say), and
    accepts only a Resource of exactly ``<bucket>/<prefix>*``, ``<bucket>/*`` or ``<bucket>``.
    AWS: any Allow of s3:PutObject to logging.s3.amazonaws.com on a resource pattern covering the prefix.
    So when the policy grants that by AWS's rules, the call is made while the target holds a policy
    moto understands, and the real policy is put back at once; otherwise moto's answer stands.
    """
    s3 = aws.client("s3")
    enabled = status.get("LoggingEnabled")
    if not enabled:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=dict(status))
        return
    target, prefix = str(enabled["TargetBucket"]), str(enabled.get("TargetPrefix") or "")
    with _LOGGING_POLICY_LOCK:
        try:
            original: str | None = s3.get_bucket_policy(Bucket=target)["Policy"]
        except botocore.exceptions.ClientError:
            original = None
        if original is None or not _grants_log_delivery(original, f"arn:{aws.partition}:s3:::{target}/{prefix}"):
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=dict(status))
            return
        understood = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": LOGGING_SERVICE},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:{aws.partition}:s3:::{target}/{prefix}*",
                }
            ],
        }
        s3.put_bucket_policy(Bucket=target, Policy=json.dumps(understood))
        try:
            s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=dict(status))
        finally:
            s3.put_bucket_policy(Bucket=target, Policy=original)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants_log_delivery(policy: str, object_arn_prefix: str) -> bool:
    """Whether ``policy`` allows the S3 logging service to put objects under ``object_arn_prefix`` (IAM wildcards)."""
    for statement in _as_list(json.loads(policy).get("Statement", [])):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service", [])) if isinstance(principal, Mapping) else []
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or LOGGING_SERVICE not in services:
            continue
        if not any(a in ("s3:PutObject", "s3:*", "*") for a in actions):
            continue
        if any(fnmatch.fnmatchcase(f"{object_arn_prefix}log-object", r) for r in _as_list(statement.get("Resource", []))):
            return True
    return False


# --- CloudWatch Logs ---------------------------------------------------------------------------------------


def log_group_class(found: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """The class of a log group read back with DescribeLogGroups.

    moto: leaves logGroupClass out of DescribeLogGroups.
    AWS: always answers it (STANDARD unless the group was created otherwise): the input, or STANDARD.
    """
    return str(found.get("logGroupClass") or inputs.get("logGroupClass") or "STANDARD")
