"""What the integration scenarios share: typed access to a deployed environment, AWS reads, policy comparison.

Expected per-environment values come from ``tests/expectations.py`` (``EXPECTED[env]``, parsed from the README's
"### Environments" table), independently of ``lib/config.py``: a preset changed by mistake fails a scenario
instead of moving the expectation. Values the table does not state are local constants in the scenario modules,
each naming the README passage (or the program's declaration) it comes from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from tests.integration.conftest import AwsClients

Outputs = dict[str, Any]
ClientsFor = Callable[[str], AwsClients]

SERVICES = ("api", "payment", "notification")
PATHS = {"api": "/api/*", "payment": "/payment/*", "notification": "/notification/*"}

#: Where a resource may name "*": actions AWS authorizes on no resource at all (ecr:GetAuthorizationToken returns
#: a registry-wide token; cloudwatch:PutMetricData is scoped by its namespace condition instead).
RESOURCELESS_ACTIONS = frozenset({"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"})

#: Actions that reach data (a database login, a Redis login, a secret's value, a key's plaintext): a wildcard
#: in their resource would hand another environment's data to this one in a shared account.
DATA_PLANE_ACTION = re.compile(
    r"^(rds-db:connect|elasticache:Connect|secretsmanager:GetSecretValue|kms:(Decrypt|GenerateDataKey.*|ReEncrypt.*))$"
)


def sg_rules(aws: AwsClients, group_id: str) -> list[dict[str, Any]]:
    return aws("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def aurora_cluster(aws: AwsClients, o: Outputs) -> dict[str, Any]:
    return aws("rds").describe_db_clusters(DBClusterIdentifier=o["auroraClusterIdentifier"])["DBClusters"][0]


def redis_group(aws: AwsClients, o: Outputs) -> dict[str, Any]:
    groups = aws("elasticache").describe_replication_groups(ReplicationGroupId=o["redisReplicationGroupId"])
    return groups["ReplicationGroups"][0]


def describe_listener(aws: AwsClients, arn: str) -> dict[str, Any]:
    return aws("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"][0]


def ecs_services(aws: AwsClients, o: Outputs) -> list[dict[str, Any]]:
    names = [o["serviceNames"][s] for s in SERVICES]
    return aws("ecs").describe_services(cluster=o["ecsClusterName"], services=names)["services"]


def container_definition(aws: AwsClients, o: Outputs, service: str) -> dict[str, Any]:
    task = aws("ecs").describe_task_definition(taskDefinition=o["taskDefinitionArns"][service])["taskDefinition"]
    return task["containerDefinitions"][0]


def _document(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it: a dict (boto3 decodes it) or URL-encoded JSON."""
    document: dict[str, Any] = json.loads(unquote(value)) if isinstance(value, str) else value
    return document


def role_policies(aws: AwsClients, role_arn: str) -> list[dict[str, Any]]:
    """The inline policy documents of a role."""
    iam = aws("iam")
    role = role_arn.split("/")[-1]
    return [
        _document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]


def trust_policy(aws: AwsClients, role_arn: str) -> dict[str, Any]:
    """The trust (assume-role) policy of a role, as IAM stores it."""
    return _document(aws("iam").get_role(RoleName=role_arn.split("/")[-1])["Role"]["AssumeRolePolicyDocument"])


def policy_statements(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for document in documents:
        statements = document["Statement"]
        result.extend(statements if isinstance(statements, list) else [statements])
    return result


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def partition_of(arn: str) -> str:
    """``aws`` for ``arn:aws:...``: expected ARNs and principals are built in the partition the stack runs in."""
    return arn.split(":")[1]


def arn_suffix(arn: str) -> str:
    """What CloudWatch names a load balancer or target group by: ``app/<name>/<id>``, ``targetgroup/<name>/<id>``."""
    resource = arn.split(":", 5)[5]
    return resource.removeprefix("loadbalancer/")


# --- policies, compared statement by statement ----------------------------------------------------------------


def _sorted_strings(value: Any) -> list[str]:
    return sorted(str(v) for v in as_list(value))


def normalized_statement(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement in one canonical form: IAM accepts a string or a list for actions, resources, principals and
    condition values, and does not keep their order; two statements granting the same thing compare equal."""
    result: dict[str, Any] = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction", "Resource", "NotResource"):
            result[key] = _sorted_strings(value)
        elif key in ("Principal", "NotPrincipal"):
            result[key] = value if value == "*" else {kind: _sorted_strings(ids) for kind, ids in value.items()}
        elif key == "Condition":
            result[key] = {op: {k: _sorted_strings(v) for k, v in pairs.items()} for op, pairs in value.items()}
        else:
            result[key] = value
    return result


def statements_by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements of a policy, normalized, keyed by Sid (each must have a distinct one to be compared)."""
    statements = [normalized_statement(s) for s in as_list(document["Statement"])]
    by_sid = {str(s.get("Sid")): s for s in statements}
    assert len(by_sid) == len(statements), f"statements without distinct Sids: {statements}"
    return by_sid


def expected_statements(*statements: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements a scenario expects, in the form :func:`statements_by_sid` returns."""
    return statements_by_sid({"Statement": list(statements)})


def assert_tls_only_bucket(s3: Any, bucket: str, partition: str) -> None:
    """The bucket's policy denies every S3 action over plain HTTP on the bucket *and* its objects (PCI DSS 4.2.1).

    Compared statement for statement: a deny that names only the bucket ARN leaves every object readable over
    HTTP, and a ``Condition`` on another key denies nothing.
    """
    arn = f"arn:{partition}:s3:::{bucket}"
    statements = statements_by_sid(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))
    assert "DenyInsecureTransport" in statements, f"{bucket}: no DenyInsecureTransport statement"
    assert (
        statements["DenyInsecureTransport"]
        == expected_statements(
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )["DenyInsecureTransport"]
    ), bucket


# --- what one stack owns, read back from AWS --------------------------------------------------------------------


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list call (``describe_log_groups``, ``list_roles``, ...)."""
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def name_token(o: Outputs) -> str:
    """What every physical name of the stack ends with (``scalepay-<component>-<token>``): env[-suffix]."""
    return "-".join(part for part in (o["environment"], o["environmentSuffix"]) if part)


def stack_log_group_names(o: Outputs) -> set[str]:
    """The log groups the stack creates for itself (the account's RDSOSMetrics group is not one of them)."""
    token = name_token(o)
    names = {
        *o["serviceLogGroupNames"].values(),
        o["flowLogGroupName"],
        f"/aws/ecs/containerinsights/{o['ecsClusterName']}/performance",
        f"/aws/rds/cluster/{o['auroraClusterIdentifier']}/postgresql",
        f"/aws/elasticache/{o['redisReplicationGroupId']}/slow-log",
    }
    if o["wafWebAclArn"]:
        names.add(f"aws-waf-logs-scalepay-{token}")
    if o["cloudTrailArn"]:
        names.add(f"/aws/cloudtrail/{o['cloudTrailArn'].rsplit('/', 1)[1]}")
    return names


def log_groups_named_for(aws: AwsClients, o: Outputs) -> dict[str, dict[str, Any]]:
    """Every log group in the account whose name carries the stack's ``scalepay-...-<env>`` name, by name."""
    pattern = re.compile(rf"scalepay(-[a-z0-9-]+)?-{re.escape(name_token(o))}(/|$)")
    return {
        g["logGroupName"]: g
        for g in paginate(aws("logs"), "describe_log_groups", "logGroups")
        if pattern.search(g["logGroupName"])
    }


def stack_role_arns(aws: AwsClients, o: Outputs) -> set[str]:
    """The IAM roles the stack's resources run as (tasks, flow logs, enhanced monitoring, Config, CloudTrail),
    found from the resources themselves, plus any other role named ``scalepay-...-<env>``."""
    ecs = aws("ecs")
    roles: set[str] = set()
    for arn in [*o["taskDefinitionArns"].values(), o["migrateTaskDefinitionArn"]]:
        task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        roles.update(r for r in (task.get("taskRoleArn"), task.get("executionRoleArn")) if r)
    for flow_log in aws("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [o["vpcId"]]}])["FlowLogs"]:
        roles.add(flow_log["DeliverLogsPermissionArn"])
    for instance in o["auroraInstanceIdentifiers"]:
        described = aws("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        if described.get("MonitoringRoleArn"):
            roles.add(described["MonitoringRoleArn"])
    if o["cloudTrailArn"]:
        trail = aws("cloudtrail").describe_trails(trailNameList=[o["cloudTrailArn"]])["trailList"][0]
        roles.add(trail["CloudWatchLogsRoleArn"])
        recorders = aws("config").describe_configuration_recorders(ConfigurationRecorderNames=[o["configRecorderName"]])
        roles.add(recorders["ConfigurationRecorders"][0]["roleARN"])
    pattern = re.compile(rf"^scalepay-[a-z0-9-]+-{re.escape(name_token(o))}$")
    roles.update(r["Arn"] for r in paginate(aws("iam"), "list_roles", "Roles") if pattern.match(r["RoleName"]))
    return roles


def key_ids(o: Outputs) -> dict[str, str]:
    """The stack's four KMS keys: output name -> key id."""
    return {name: o[name].rsplit("/", 1)[1] for name in ("kmsDataKeyArn", "kmsLogsKeyArn", "kmsAlarmsKeyArn", "kmsAuditKeyArn")}


def named_resources(aws: AwsClients, o: Outputs) -> dict[str, set[str]]:
    """The physical names (and ids) of what the stack runs on, read from the deployed resources, by kind.

    Each name is read where the running system uses it (the log group a container writes to, the role a task
    assumes, the key that encrypts the database), so two environments sharing a resource show up as one name in
    both, whatever their outputs say.
    """
    ecs = aws("ecs")
    found: dict[str, set[str]] = {}

    def add(kind: str, values: Iterable[str | None]) -> None:
        found.setdefault(kind, set()).update(v for v in values if v)

    cluster = aurora_cluster(aws, o)
    group = redis_group(aws, o)
    add("ECS cluster", [c["clusterName"] for c in ecs.describe_clusters(clusters=[o["ecsClusterArn"]])["clusters"]])
    services = ecs_services(aws, o)
    add("ECS cluster", [s["clusterArn"].rsplit("/", 1)[1] for s in services])
    add("ECS service", [s["serviceName"] for s in services])
    for arn in [*o["taskDefinitionArns"].values(), o["migrateTaskDefinitionArn"]]:
        task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        add("task definition family", [task["family"]])
        add("IAM role", [r.rsplit("/", 1)[1] for r in (task.get("taskRoleArn"), task.get("executionRoleArn")) if r])
        for container in task["containerDefinitions"]:
            add("log group", [container["logConfiguration"]["options"]["awslogs-group"]])
            add("ECR repository", [container["image"].split("/", 1)[1].rsplit(":", 1)[0]])
    add("IAM role", [arn.rsplit("/", 1)[1] for arn in stack_role_arns(aws, o)])
    add("log group", stack_log_group_names(o))
    add(
        "log group",
        [
            f["LogGroupName"]
            for f in aws("ec2").describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [o["vpcId"]]}])["FlowLogs"]
        ],
    )
    add("ECR repository", [url.split("/", 1)[1] for url in o["ecrRepositoryUrls"].values()])
    attributes = {
        a["Key"]: a["Value"] for a in aws("elbv2").describe_load_balancer_attributes(LoadBalancerArn=o["albArn"])["Attributes"]
    }
    add("S3 bucket", [attributes["access_logs.s3.bucket"]])
    add(
        "load balancer",
        [b["LoadBalancerName"] for b in aws("elbv2").describe_load_balancers(LoadBalancerArns=[o["albArn"]])["LoadBalancers"]],
    )
    target_groups = aws("elbv2").describe_target_groups(TargetGroupArns=list(o["targetGroupArns"].values()))["TargetGroups"]
    add("target group", [g["TargetGroupName"] for g in target_groups])
    add("Aurora cluster", [cluster["DBClusterIdentifier"]])
    add("Aurora instance", [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]])
    add("DB subnet group", [cluster["DBSubnetGroup"]])
    add("DB cluster parameter group", [cluster["DBClusterParameterGroup"]])
    add("secret", [cluster["MasterUserSecret"]["SecretArn"]])
    add("Redis replication group", [group["ReplicationGroupId"]])
    add("Redis node", group["MemberClusters"])
    add("Redis user", o["redisUserIds"].values())
    add("Redis user group", group["UserGroupIds"])
    # The keys the data actually sits under, besides the stack's own four: a shared key would show up here.
    add("KMS key", key_ids(o).values())
    add(
        "KMS key",
        [k.rsplit("/", 1)[1] for k in (cluster["KmsKeyId"], group["KmsKeyId"], cluster["MasterUserSecret"]["KmsKeyId"])],
    )
    topic = aws("sns").get_topic_attributes(TopicArn=o["alarmTopicArn"])["Attributes"]
    add("KMS key", [topic["KmsMasterKeyId"].rsplit("/", 1)[1]])
    add("SNS topic", [o["alarmTopicArn"].rsplit(":", 1)[1]])
    own_keys = found["KMS key"]
    add(
        "KMS alias", [a["AliasName"] for a in paginate(aws("kms"), "list_aliases", "Aliases") if a.get("TargetKeyId") in own_keys]
    )
    groups = aws("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [o["vpcId"]]}])["SecurityGroups"]
    add("security group", [g["GroupName"] for g in groups if g["GroupName"] != "default"])
    add("VPC", [o["vpcId"]])
    add("Service Connect namespace", [o["serviceConnectNamespace"]])
    add("dashboard", [o["dashboardName"]])
    if o["wafWebAclArn"]:
        add("WAF web ACL", [o["wafWebAclArn"].split("/")[-2]])
    if o["cloudTrailArn"]:
        trail = aws("cloudtrail").describe_trails(trailNameList=[o["cloudTrailArn"]])["trailList"][0]
        add("S3 bucket", [trail["S3BucketName"]])
        add("log group", [trail["CloudWatchLogsLogGroupArn"].split(":log-group:", 1)[1].removesuffix(":*")])
        add("S3 bucket", [c["s3BucketName"] for c in aws("config").describe_delivery_channels()["DeliveryChannels"]])
    return found
