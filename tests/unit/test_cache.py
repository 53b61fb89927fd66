"""ElastiCache Redis requirements, per environment, on the real program under Pulumi mocks.

Per-environment values (node type and count, failover and Multi-AZ, snapshot and log retention,
protection) come from the README's environment table through tests/expectations.py, never from the
preset table the program reads; the rest are requirements of every environment: encryption at rest
(data key) and in transit, IAM-authenticated users (no static AUTH token anywhere), placement on the
isolated data subnets.
"""

from __future__ import annotations

import re
from typing import Any

from lib import config as cfg
from lib.components.cache import MAINTENANCE_WINDOW, SNAPSHOT_WINDOW, slow_log_group_name
from tests.expectations import EXPECTED
from tools.evaluate import Evaluation, Registration, default_config, evaluate

COMPONENT = "scalepayments:cache:Cache"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:elasticache/parameterGroup:ParameterGroup"
USER = "aws:elasticache/user:User"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

#: Pinned engine (README, "Version policy"); IAM authentication needs Redis 7 or later.
ENGINE_VERSION = "7.1"


def single(stack: Evaluation, type_: str) -> Registration:
    found = [r for r in stack.of_type(type_) if r.component == COMPONENT]
    assert len(found) == 1, f"expected one {type_} in the cache component, found {[r.name for r in found]}"
    return found[0]


def group(stack: Evaluation) -> Registration:
    return single(stack, GROUP)


def is_secret(value: Any) -> bool:
    """True if the mock monitor received ``value`` marked secret (a signature envelope)."""
    return isinstance(value, dict) and "value" in value and len(value) == 2


def plain(value: Any) -> Any:
    """Unwrap a secret-marked input."""
    return value["value"] if is_secret(value) else value


# --- size and availability ----------------------------------------------------------------------


def test_node_type_and_count(stack: Evaluation) -> None:
    g = group(stack)
    expected = EXPECTED[stack.stack]
    nodes = g.inputs["numCacheClusters"]
    assert nodes == expected.cache_node_count, f"{g.name}: numCacheClusters {nodes} in {stack.stack}"
    node_type = g.inputs["nodeType"]
    assert node_type == expected.cache_node_type, f"{g.name}: nodeType {node_type}, expected {expected.cache_node_type}"
    assert g.inputs["engine"] == "redis", f"{g.name}: engine {g.inputs['engine']}"
    assert g.inputs["engineVersion"] == ENGINE_VERSION, f"{g.name}: engineVersion {g.inputs['engineVersion']}"


def test_failover_and_multi_az(stack: Evaluation) -> None:
    g = group(stack)
    expected = EXPECTED[stack.stack]
    assert g.inputs["automaticFailoverEnabled"] is expected.cache_automatic_failover, f"{g.name}: automaticFailoverEnabled"
    assert g.inputs["multiAzEnabled"] is expected.cache_multi_az, f"{g.name}: multiAzEnabled in {stack.stack}"
    if g.inputs["multiAzEnabled"]:
        # AWS rejects Multi-AZ without failover and a replica.
        assert g.inputs["automaticFailoverEnabled"] and g.inputs["numCacheClusters"] >= 2, f"{g.name}: Multi-AZ invalid"


def test_replication_group_id_within_aws_rules(stack: Evaluation) -> None:
    g = group(stack)
    gid = g.inputs["replicationGroupId"]
    assert gid == f"scalepay-redis-{stack.stack}", f"{g.name}: replicationGroupId {gid}"
    assert len(gid) <= 40, f"{g.name}: {gid} is {len(gid)} characters; AWS allows 40"
    assert re.fullmatch(r"[a-z][a-z0-9-]*", gid) and "--" not in gid and not gid.endswith("-"), f"{g.name}: {gid}"
    assert stack.outputs["redisReplicationGroupId"] == gid


# --- encryption and AUTH ----------------------------------------------------------------------------


def test_encryption_at_rest_with_data_key_and_in_transit(stack: Evaluation) -> None:
    g = group(stack)
    assert g.inputs["atRestEncryptionEnabled"] is True, f"{g.name}: not encrypted at rest"
    assert g.inputs["kmsKeyId"] == stack.outputs["kmsDataKeyArn"], f"{g.name}: kmsKeyId is not the data key"
    assert g.inputs["transitEncryptionEnabled"] is True, f"{g.name}: no TLS in transit"


def test_no_static_auth_token_exists(stack: Evaluation) -> None:
    """Issue #8.7: no AUTH token to leak or rotate: not on the group, not in Secrets Manager, not in state."""
    g = group(stack)
    assert "authToken" not in g.inputs and "authTokenUpdateStrategy" not in g.inputs, g.name
    assert [r.name for r in stack.registrations if r.type.startswith("random:")] == []
    assert [r.name for r in stack.of_type("aws:secretsmanager/secret:Secret") if r.component == COMPONENT] == []
    assert "redisAuthSecretArn" not in stack.outputs


def test_clients_authenticate_with_iam_as_their_own_users(stack: Evaluation) -> None:
    users = {r.inputs["userId"]: r for r in stack.of_type(USER) if r.component == COMPONENT}
    env = stack.stack
    payment = users[f"scalepay-payment-redis-{env}"]
    assert payment.inputs["userName"] == payment.inputs["userId"], "IAM authentication needs user name == user id"
    assert payment.inputs["authenticationMode"] == {"type": "iam"}
    # Its own key space only, and none of the dangerous commands (FLUSHALL, KEYS, CONFIG...) even there.
    assert payment.inputs["accessString"] == "on ~payments:* -@all +@read +@write +@connection -@dangerous"
    default = users[f"scalepay-default-redis-{env}"]
    assert default.inputs["userName"] == "default" and default.inputs["accessString"] == "off -@all", "default user enabled"
    assert set(users) == {f"scalepay-payment-redis-{env}", f"scalepay-default-redis-{env}"}, "only payment uses Redis"
    user_group = single(stack, USER_GROUP)
    assert sorted(user_group.inputs["userIds"]) == sorted(users), user_group.name
    assert group(stack).inputs["userGroupIds"] == [user_group.inputs["userGroupId"]]
    assert stack.outputs["redisUserIds"] == {"payment": f"scalepay-payment-redis-{env}"}


# --- backups, maintenance, parameters ------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def test_snapshots_and_maintenance(stack: Evaluation) -> None:
    g = group(stack)
    retention = g.inputs["snapshotRetentionLimit"]
    expected = EXPECTED[stack.stack].cache_snapshot_retention_days
    assert retention == expected, f"{g.name}: snapshotRetentionLimit {retention} in {stack.stack}, expected {expected}"
    # Version policy (issue #8.3): the engine moves only when the stack says so.
    assert g.inputs["autoMinorVersionUpgrade"] is False, f"{g.name}: AWS must not upgrade the engine"
    assert g.inputs["applyImmediately"] is False, f"{g.name}: changes must wait for the maintenance window"
    # AWS rejects a snapshot window that overlaps the maintenance window (both at least 60 minutes).
    snap_start, snap_end = map(_minutes, g.inputs["snapshotWindow"].split("-"))
    maint = g.inputs["maintenanceWindow"].split("-")
    maint_start, maint_end = _minutes(maint[0].split(":", 1)[1]), _minutes(maint[1].split(":", 1)[1])
    assert snap_end - snap_start >= 60 and maint_end - maint_start >= 60, f"{g.name}: windows shorter than 60 minutes"
    assert snap_end <= maint_start or maint_end <= snap_start, f"{g.name}: snapshot window overlaps maintenance"


def test_parameter_group_matches_engine(stack: Evaluation) -> None:
    pg = single(stack, PARAMETER_GROUP)
    g = group(stack)
    major = g.inputs["engineVersion"].split(".")[0]
    assert pg.inputs["family"] == f"redis{major}", f"{pg.name}: family {pg.inputs['family']} vs engine {major}"
    params = {p["name"]: p["value"] for p in pg.inputs["parameters"]}
    assert params.get("maxmemory-policy") == "volatile-lru", f"{pg.name}: maxmemory-policy {params.get('maxmemory-policy')}"
    assert g.inputs["parameterGroupName"] == pg.inputs["name"], f"{g.name}: parameterGroupName"


# --- placement, logs, protection, outputs ----------------------------------------------------------


def test_subnet_group_on_isolated_data_subnets(stack: Evaluation) -> None:
    """Redis sits in the data tier: private, and with no route to the internet (not even via NAT)."""
    sg = single(stack, SUBNET_GROUP)
    assert sg.inputs["subnetIds"] == stack.outputs["databaseSubnetIds"], f"{sg.name}: not the isolated data subnets"
    assert not set(sg.inputs["subnetIds"]) & set(stack.outputs["publicSubnetIds"]), f"{sg.name}: includes public subnets"
    assert not set(sg.inputs["subnetIds"]) & set(stack.outputs["privateSubnetIds"]), f"{sg.name}: includes NAT-routed subnets"
    g = group(stack)
    assert g.inputs["subnetGroupName"] == sg.inputs["name"], f"{g.name}: subnetGroupName"
    assert g.inputs["securityGroupIds"] == [stack.outputs["cacheSecurityGroupId"]], f"{g.name}: security groups"
    assert g.inputs["port"] == 6379 and stack.outputs["redisPort"] == 6379, f"{g.name}: port {g.inputs['port']}"


def test_slow_log_to_encrypted_log_group(stack: Evaluation) -> None:
    g = group(stack)
    lg = single(stack, LOG_GROUP)
    [delivery] = g.inputs["logDeliveryConfigurations"]
    assert delivery["logType"] == "slow-log" and delivery["destinationType"] == "cloudwatch-logs", f"{g.name}: {delivery}"
    assert delivery["destination"] == lg.inputs["name"], f"{g.name}: slow log goes to {delivery['destination']}"
    assert lg.inputs["kmsKeyId"] == stack.outputs["kmsLogsKeyArn"], f"{lg.name}: not encrypted with the logs key"
    retention = lg.inputs["retentionInDays"]
    assert retention == EXPECTED[stack.stack].log_retention_days, f"{lg.name}: retention {retention}"
    assert retention in cfg.LOG_RETENTION_DAYS, f"{lg.name}: retention {retention} not accepted by CloudWatch"


def test_protect_and_retain_on_delete(stack: Evaluation) -> None:
    expected = EXPECTED[stack.stack]
    for r in (group(stack),):
        assert r.protect is expected.protect, f"{r.name}: protect={r.protect}, expected {expected.protect} in {stack.stack}"
        assert r.retain_on_delete is expected.retain_on_delete, (
            f"{r.name}: retain_on_delete={r.retain_on_delete} in {stack.stack}"
        )


def test_endpoints_exported(stack: Evaluation) -> None:
    g = group(stack)
    assert stack.outputs["redisPrimaryEndpoint"] == g.state["primaryEndpointAddress"], "redisPrimaryEndpoint"
    assert stack.outputs["redisReaderEndpoint"] == g.state["readerEndpointAddress"], "redisReaderEndpoint"


def test_every_taggable_resource_is_tagged(stack: Evaluation) -> None:
    for type_ in (GROUP, SUBNET_GROUP, PARAMETER_GROUP, USER_GROUP, LOG_GROUP):
        r = single(stack, type_)
        tags = r.inputs.get("tags", {})
        assert tags.get("Environment") == stack.stack and tags.get("Component") == "cache", f"{r.name}: tags {tags}"


def test_settings_not_environment_drive_the_shape() -> None:
    config = default_config("staging") | {
        "scalepayments:cacheNodeCount": "4",
        "scalepayments:protectResources": "true",
        "scalepayments:environmentSuffix": "pr1234",
    }
    stack = evaluate("staging", config)
    g = group(stack)
    assert g.inputs["numCacheClusters"] == 4, f"{g.name}: numCacheClusters"
    gid = g.inputs["replicationGroupId"]
    assert gid == "scalepay-redis-staging-pr1234" and len(gid) <= 40, f"{g.name}: {gid}"
    assert g.protect, f"{g.name}: protectResources=true ignored"
    users = [r.inputs["userId"] for r in stack.of_type(USER)]
    assert all(u.endswith("-staging-pr1234") and len(u) <= 40 for u in users), users


# --- pure helpers -------------------------------------------------------------------------------------


def test_log_group_name() -> None:
    assert slow_log_group_name("scalepay-redis-dev") == "/aws/elasticache/scalepay-redis-dev/slow-log"


def test_default_windows_do_not_overlap() -> None:
    start, end = SNAPSHOT_WINDOW.split("-")
    assert _minutes(end) <= _minutes(MAINTENANCE_WINDOW.split("-")[0].split(":", 1)[1])
    assert _minutes(end) - _minutes(start) >= 60
