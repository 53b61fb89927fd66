"""Security and PCI DSS: encryption, TLS, WAF, threat detection, least privilege."""

from __future__ import annotations

import json
from typing import Any

from tests.expectations import EXPECTED
from tests.integration.conftest import AwsClients, Deployed
from tests.integration.support import (
    SERVICES,
    Outputs,
    as_list,
    assert_tls_only_bucket,
    aurora_cluster,
    container_definition,
    expected_statements,
    log_groups_named_for,
    paginate,
    partition_of,
    policy_statements,
    redis_group,
    role_policies,
    stack_log_group_names,
    statements_by_sid,
    trust_policy,
)

#: README "Configuration reference", row ``<service>MaxRequestBodyBytes``: the largest body the WAF lets through per path.
MAX_REQUEST_BODY_BYTES = {"api": 8192, "payment": 1024, "notification": 1024}

#: README "Configuration reference", row ``cloudTrailInsights``: false, false, true.
CLOUDTRAIL_INSIGHTS = {"dev": False, "staging": False, "prod": True}

#: The AWS Config managed rules the program declares (lib/components/account_baseline.py, ``MANAGED_RULES``), each
#: the evidence for one PCI DSS control; each stack names its own ``scalepay-<rule>-<env>``.
CONFIG_RULES = (
    "RDS_STORAGE_ENCRYPTED",
    "RDS_INSTANCE_PUBLIC_ACCESS_CHECK",
    "ELASTICACHE_REPL_GRP_ENCRYPTED_AT_REST",
    "ELASTICACHE_REPL_GRP_ENCRYPTED_IN_TRANSIT",
    "S3_BUCKET_SSL_REQUESTS_ONLY",
    "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED",
    "ALB_HTTP_TO_HTTPS_REDIRECTION_CHECK",
    "ALB_WAF_ENABLED",
    "VPC_FLOW_LOGS_ENABLED",
    "VPC_DEFAULT_SECURITY_GROUP_CLOSED",
    "CLOUDWATCH_LOG_GROUP_ENCRYPTED",
    "CMK_BACKING_KEY_ROTATION_ENABLED",
    "CLOUD_TRAIL_ENABLED",
    "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
    "IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS",
    "GUARDDUTY_ENABLED_CENTRALIZED",
)

#: The WAF's rules in evaluation order (lib/components/load_balancer.py): the per-IP rate limit first, then the
#: per-path body-size rules, then the AWS managed groups, known-bad IPs before request content. Name -> priority.
WAF_RULES = {
    "rate-limit-per-ip": 0,
    "body-size-api": 1,
    "body-size-payment": 2,
    "body-size-notification": 3,
    "AWSManagedRulesAmazonIpReputationList": 40,
    "AWSManagedRulesAnonymousIpList": 50,
    "AWSManagedRulesCommonRuleSet": 60,
    "AWSManagedRulesKnownBadInputsRuleSet": 70,
    "AWSManagedRulesSQLiRuleSet": 80,
}


def _insight_selectors(aws: AwsClients, trail_arn: str) -> list[dict[str, Any]]:
    """The trail's Insights selectors; AWS answers InsightNotEnabledException for a trail without any."""
    client = aws("cloudtrail")
    try:
        selectors: list[dict[str, Any]] = client.get_insight_selectors(TrailName=trail_arn).get("InsightSelectors", [])
    except client.exceptions.InsightNotEnabledException:
        return []
    return selectors


def singleton_owner(o: Outputs) -> str:
    """The environment whose stack owns the account's trail, Config recorder and RDSOSMetrics group.

    A stack reports a trail only where it owns them; in the integration run's shared account that is prod (the most
    protected environment, deployed first), and with one account per environment each owns its own.
    """
    return str(o["environment"]) if o["cloudTrailArn"] else "prod"


def test_aurora_is_encrypted_with_the_data_key(deployed: Deployed) -> None:
    """Stored cardholder data is encrypted at rest with our own key (PCI DSS 3.5)."""
    o, aws = deployed.outputs, deployed.aws
    cluster = aurora_cluster(aws, o)
    assert cluster["StorageEncrypted"] is True
    assert cluster["KmsKeyId"] == o["kmsDataKeyArn"]
    assert cluster["IAMDatabaseAuthenticationEnabled"] is True
    assert cluster["MasterUsername"] not in ("postgres", "admin", "root")


def test_aurora_forces_tls(deployed: Deployed) -> None:
    """Database connections are encrypted in transit: the cluster parameter group forces SSL."""
    o, aws = deployed.outputs, deployed.aws
    group = aurora_cluster(aws, o)["DBClusterParameterGroup"]
    params = aws("rds").describe_db_cluster_parameters(DBClusterParameterGroupName=group, Source="user")["Parameters"]
    assert {p["ParameterName"]: p.get("ParameterValue") for p in params}.get("rds.force_ssl") == "1"


def test_aurora_is_not_public(deployed: Deployed) -> None:
    """No database instance is reachable from the internet."""
    o, aws = deployed.outputs, deployed.aws
    for member in aurora_cluster(aws, o)["DBClusterMembers"]:
        instance = aws("rds").describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])["DBInstances"][0]
        assert instance["PubliclyAccessible"] is False, member["DBInstanceIdentifier"]


def test_redis_is_encrypted_at_rest_and_in_transit(deployed: Deployed) -> None:
    """Idempotency records are encrypted on disk with our key and on the wire; users authenticate with IAM."""
    o, aws = deployed.outputs, deployed.aws
    group = redis_group(aws, o)
    assert group["AtRestEncryptionEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    assert group.get("AuthTokenEnabled") is not True, "no static AUTH token: RBAC users with IAM authentication"
    assert group["UserGroupIds"] == [o["redisUserGroupId"]]
    assert group["KmsKeyId"] == o["kmsDataKeyArn"]
    users = {u["UserId"]: u for u in aws("elasticache").describe_users()["Users"]}
    payment = users[o["redisUserIds"]["payment"]]
    assert payment["Authentication"]["Type"] == "iam"
    assert payment["AccessString"] == "on ~payments:* -@all +@read +@write +@connection -@dangerous"
    assert users[f"scalepay-default-redis-{deployed.env}"]["AccessString"] == "off -@all"


def test_secrets_are_encrypted_with_customer_keys(deployed: Deployed) -> None:
    """The only secret, the Aurora master password, sits in Secrets Manager under this stack's data key and no other."""
    o, aws = deployed.outputs, deployed.aws
    secret = aws("secretsmanager").describe_secret(SecretId=o["auroraSecretArn"])
    data_key_id = o["kmsDataKeyArn"].rsplit("/", 1)[1]
    # The key itself (ARN or id), not an alias that could later be pointed at another environment's key.
    assert secret["KmsKeyId"] in (o["kmsDataKeyArn"], data_key_id)
    assert aws("kms").describe_key(KeyId=secret["KmsKeyId"])["KeyMetadata"]["Arn"] == o["kmsDataKeyArn"]
    # RDS manages (and rotates) it for this cluster, and the cluster reads exactly this secret.
    assert secret["OwningService"] == "rds"
    managed = aurora_cluster(aws, o)["MasterUserSecret"]
    assert (managed["SecretArn"], managed["KmsKeyId"]) == (o["auroraSecretArn"], o["kmsDataKeyArn"])


def test_log_groups_are_encrypted_and_retained(deployed: Deployed) -> None:
    """Every log group of the stack is encrypted with its logs key and kept exactly 7, 90 or 365 days (PCI DSS 10.5.1 in prod)."""
    o, aws = deployed.outputs, deployed.aws
    retention = EXPECTED[deployed.env].log_retention_days
    found = log_groups_named_for(aws, o)
    # Exactly the groups the stack creates: one the stack forgot would be created by AWS, unencrypted and kept forever.
    assert set(found) == stack_log_group_names(o)
    for name, group in sorted(found.items()):
        assert group.get("kmsKeyId") == o["kmsLogsKeyArn"], name
        # Exact: shorter breaks the audit requirement, longer keeps personal data past its purpose (and costs).
        assert group.get("retentionInDays") == retention, name


def test_kms_keys_rotate(deployed: Deployed) -> None:
    """Encryption keys rotate yearly, limiting what one compromised key exposes."""
    o, aws = deployed.outputs, deployed.aws
    for output in ("kmsDataKeyArn", "kmsLogsKeyArn", "kmsAlarmsKeyArn", "kmsAuditKeyArn"):
        key = aws("kms").describe_key(KeyId=o[output])["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER" and key["KeyState"] == "Enabled", output
        assert aws("kms").get_key_rotation_status(KeyId=o[output])["KeyRotationEnabled"] is True, output


def _key_policy(aws: AwsClients, key_arn: str) -> dict[str, dict[str, Any]]:
    return statements_by_sid(json.loads(aws("kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]))


def _account_administers(o: Outputs) -> dict[str, Any]:
    """The statement AWS writes into every key policy: the account administers the key, IAM decides who uses it."""
    return {
        "Sid": "EnableAccountAdministration",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition_of(o['kmsDataKeyArn'])}:iam::{o['accountId']}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def _service_uses_key(sid: str, service: str, action: str | list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A key-policy statement letting one AWS service use the key (in a key policy, ``"Resource": "*"`` is the key itself)."""
    statement = {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service}, "Action": action, "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def test_data_key_is_usable_only_as_iam_allows(deployed: Deployed) -> None:
    """No service principal, other account or wildcard holds a standing grant on the cardholder-data key: IAM alone decides."""
    o, aws = deployed.outputs, deployed.aws
    # Aurora, Redis and Secrets Manager use the key for the calling principal (through grants), so the account
    # statement is the whole policy; the one IAM grant of kms:Decrypt on it is scoped by kms:ViaService
    # (test_migrate_task_decrypts_the_master_secret_only_through_secrets_manager).
    assert _key_policy(aws, o["kmsDataKeyArn"]) == expected_statements(_account_administers(o))


def test_logs_key_serves_only_this_accounts_log_groups(deployed: Deployed) -> None:
    """CloudWatch Logs may use the logs key only for this account's log groups in this region, never another tenant's."""
    o, aws = deployed.outputs, deployed.aws
    partition, region, account = partition_of(o["kmsLogsKeyArn"]), o["region"], o["accountId"]
    assert _key_policy(aws, o["kmsLogsKeyArn"]) == expected_statements(
        _account_administers(o),
        _service_uses_key(
            "AllowCloudWatchLogs",
            f"logs.{region}.amazonaws.com",
            ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            # The encryption context Logs sends is the log group's ARN: only this account's groups qualify.
            {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:*"}},
        ),
    )


def test_alarms_key_lets_cloudwatch_deliver_alarms(deployed: Deployed) -> None:
    """An alarm is never dropped silently: CloudWatch may encrypt to the alarm topic, and SNS may only for this account."""
    o, aws = deployed.outputs, deployed.aws
    assert _key_policy(aws, o["kmsAlarmsKeyArn"]) == expected_statements(
        _account_administers(o),
        # As AWS documents it, without a condition: CloudWatch sends no source account or context to pin.
        _service_uses_key("AllowCloudWatchAlarmsToPublish", "cloudwatch.amazonaws.com", ["kms:Decrypt", "kms:GenerateDataKey*"]),
        _service_uses_key(
            "AllowSnsToUseTheKey",
            "sns.amazonaws.com",
            ["kms:Decrypt", "kms:GenerateDataKey*"],
            {"StringEquals": {"aws:SourceAccount": o["accountId"]}},
        ),
    )


def test_audit_key_serves_only_this_accounts_trail_and_config(deployed: Deployed) -> None:
    """The audit trail's key encrypts only this account's CloudTrail and Config deliveries: no confused deputy writes with it."""
    o, aws = deployed.outputs, deployed.aws
    partition, account = partition_of(o["kmsAuditKeyArn"]), o["accountId"]
    assert _key_policy(aws, o["kmsAuditKeyArn"]) == expected_statements(
        _account_administers(o),
        _service_uses_key(
            "AllowCloudTrailToEncryptLogs",
            "cloudtrail.amazonaws.com",
            "kms:GenerateDataKey*",
            {
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"},
                "StringEquals": {"aws:SourceAccount": account},
            },
        ),
        _service_uses_key("AllowCloudTrailToDescribeKey", "cloudtrail.amazonaws.com", "kms:DescribeKey"),
        _service_uses_key(
            "AllowConfigToEncryptDeliveries",
            "config.amazonaws.com",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            {"StringEquals": {"aws:SourceAccount": account}},
        ),
    )


def _migrate_execution_role(aws: AwsClients, o: Outputs) -> str:
    task = aws("ecs").describe_task_definition(taskDefinition=o["migrateTaskDefinitionArn"])["taskDefinition"]
    return str(task["executionRoleArn"])


def test_task_roles_trust_only_this_accounts_ecs_tasks(deployed: Deployed) -> None:
    """Only ECS tasks of this account can take on a service's identity: no other account's task uses ECS as a confused deputy."""
    o, aws = deployed.outputs, deployed.aws
    roles = [o["taskExecutionRoleArn"], _migrate_execution_role(aws, o), *o["taskRoleArns"].values()]
    expected = expected_statements(
        {
            "Sid": "EcsTasksAssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": o["accountId"]}},
        }
    )
    for role in roles:
        assert statements_by_sid(trust_policy(aws, role)) == expected, role


def test_migrate_task_decrypts_the_master_secret_only_through_secrets_manager(deployed: Deployed) -> None:
    """The one role that reads the master secret gets exactly it, and its key only via Secrets Manager: no raw decrypt of data."""
    o, aws = deployed.outputs, deployed.aws
    partition, region, account = partition_of(o["kmsDataKeyArn"]), o["region"], o["accountId"]
    repository = o["ecrRepositoryUrls"]["migrate"].split("/", 1)[1]
    log_group = o["serviceLogGroupNames"]["migrate"]
    (document,) = role_policies(aws, _migrate_execution_role(aws, o))
    assert statements_by_sid(document) == expected_statements(
        {"Sid": "EcrAuthorizationToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "EcrPull",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            "Resource": f"arn:{partition}:ecr:{region}:{account}:repository/{repository}",
        },
        {
            "Sid": "WriteTaskLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*",
        },
        {
            "Sid": "ReadInjectedSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": o["auroraSecretArn"],
        },
        {
            "Sid": "DecryptSecretsViaSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": o["kmsDataKeyArn"],
            # Without it the role could decrypt anything under the data key directly, not just the secret.
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        },
    )


def test_alb_drops_invalid_headers_and_logs_access(deployed: Deployed) -> None:
    """Request smuggling is blocked and every request is logged to a locked-down bucket."""
    o, aws = deployed.outputs, deployed.aws
    attributes = {
        a["Key"]: a["Value"] for a in aws("elbv2").describe_load_balancer_attributes(LoadBalancerArn=o["albArn"])["Attributes"]
    }
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == o["albAccessLogsBucket"]


def test_access_log_bucket_is_private_and_tls_only(deployed: Deployed) -> None:
    """ALB logs, which hold client IPs and URLs, are never public and only reachable over TLS."""
    o, aws = deployed.outputs, deployed.aws
    s3, bucket = aws("s3"), o["albAccessLogsBucket"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert_tls_only_bucket(s3, bucket, partition_of(o["albArn"]))
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


def test_waf_protects_the_alb(ha_deployed: Deployed) -> None:
    """Card-testing bots and injection attacks are filtered before they reach the API, by rules in the reviewed order."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    acl = aws("wafv2").get_web_acl_for_resource(ResourceArn=o["albArn"])["WebACL"]
    assert acl["ARN"] == o["wafWebAclArn"]
    assert acl["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert {name: r["Priority"] for name, r in rules.items()} == WAF_RULES
    rate = rules["rate-limit-per-ip"]
    assert rate["Action"] == {"Block": {}}
    statement = rate["Statement"]["RateBasedStatement"]
    assert (statement["Limit"], statement["AggregateKeyType"]) == (EXPECTED[ha_deployed.env].waf_rate_limit, "IP")
    for service, limit in MAX_REQUEST_BODY_BYTES.items():
        rule = rules[f"body-size-{service}"]
        assert rule["Action"] == {"Block": {}}, service
        size = rule["Statement"]["AndStatement"]["Statements"][1]["SizeConstraintStatement"]
        assert (size["ComparisonOperator"], size["Size"], size["FieldToMatch"]) == (
            "GT",
            limit,
            {"Body": {"OversizeHandling": "MATCH"}},
        ), service
    for name in WAF_RULES:
        if name.startswith("AWSManagedRules"):
            # "None" keeps each managed group's own block actions; "Count" would only watch the attacks go by.
            assert rules[name]["OverrideAction"] == {"None": {}}, name
            group = rules[name]["Statement"]["ManagedRuleGroupStatement"]
            assert (group["VendorName"], group["Name"]) == ("AWS", name)
            # Only the common set's 8 KB body rule is counted: the per-path body-size rules above decide instead.
            overrides = {(r["Name"], json.dumps(r["ActionToUse"])) for r in group.get("RuleActionOverrides", [])}
            assert overrides == (
                {("SizeRestrictions_BODY", '{"Count": {}}')} if name == "AWSManagedRulesCommonRuleSet" else set()
            )
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in acl["Rules"])


def test_dev_runs_without_waf(all_outputs: dict[str, Outputs]) -> None:
    """Dev keeps costs down: no WAF, GuardDuty or Config there (they run in staging and prod)."""
    dev = all_outputs["dev"]
    assert dev["wafWebAclArn"] == "" and dev["guardDutyDetectorId"] == "" and dev["configRecorderName"] == ""


def test_threat_detection_is_on(ha_deployed: Deployed) -> None:
    """GuardDuty watches the account for compromised credentials and crypto-mining."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    detector = aws("guardduty").get_detector(DetectorId=o["guardDutyDetectorId"])
    assert detector["Status"] == "ENABLED"


def test_config_records_every_change(ha_deployed: Deployed, all_outputs: dict[str, Outputs]) -> None:
    """AWS Config keeps the change history an assessor asks for, and checks each PCI rule continuously for this stack."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    config, owner, account = aws("config"), singleton_owner(o), o["accountId"]
    recorders = config.describe_configuration_recorders(ConfigurationRecorderNames=[o["configRecorderName"]])
    (recorder,) = recorders["ConfigurationRecorders"]
    assert recorder["name"] == f"scalepay-config-recorder-{owner}"
    assert (recorder["recordingGroup"]["allSupported"], recorder["recordingGroup"]["includeGlobalResourceTypes"]) == (True, True)
    assert recorder["roleARN"] == f"arn:{partition_of(o['albArn'])}:iam::{account}:role/scalepay-config-recorder-{owner}"
    status = config.describe_configuration_recorder_status(ConfigurationRecorderNames=[o["configRecorderName"]])
    assert status["ConfigurationRecordersStatus"][0]["recording"] is True
    (channel,) = config.describe_delivery_channels()["DeliveryChannels"]
    assert channel["s3BucketName"] == f"scalepay-config-{owner}-{account}"
    # Snapshots are encrypted with the owner's audit key, the key of the audit trail's bucket.
    assert channel["s3KmsKeyArn"] == all_outputs[owner]["kmsAuditKeyArn"]
    rules = {r["ConfigRuleName"]: r for r in paginate(config, "describe_config_rules", "ConfigRules")}
    own = {name: rule for name, rule in rules.items() if name.endswith(f"-{ha_deployed.env}")}
    expected = {f"scalepay-{rule.lower().replace('_', '-')}-{ha_deployed.env}": rule for rule in CONFIG_RULES}
    assert set(own) == set(expected)
    for name, identifier in expected.items():
        assert own[name]["Source"] == {"Owner": "AWS", "SourceIdentifier": identifier}, name


def test_cloudtrail_records_api_activity(ha_deployed: Deployed, all_outputs: dict[str, Outputs]) -> None:
    """Every API call in every region is recorded, tamper-evident and encrypted with the audit key (PCI DSS 10.2, 10.3)."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    owner = singleton_owner(o)
    # In a shared account the owner's trail records this stack's calls too: it covers the whole account.
    trail_arn = all_outputs[owner]["cloudTrailArn"]
    (trail,) = aws("cloudtrail").describe_trails(trailNameList=[trail_arn])["trailList"]
    assert trail["TrailARN"] == trail_arn
    name, account, region = f"scalepay-cloudtrail-{owner}", o["accountId"], o["region"]
    partition = partition_of(trail_arn)
    assert trail["Name"] == name
    assert trail["S3BucketName"] == f"scalepay-cloudtrail-{owner}-{account}"
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail["KmsKeyId"] == all_outputs[owner]["kmsAuditKeyArn"]
    assert trail["CloudWatchLogsLogGroupArn"] == f"arn:{partition}:logs:{region}:{account}:log-group:/aws/cloudtrail/{name}:*"
    assert trail["CloudWatchLogsRoleArn"] == f"arn:{partition}:iam::{account}:role/scalepay-cloudtrail-logs-{owner}"
    assert aws("cloudtrail").get_trail_status(Name=trail_arn)["IsLogging"] is True
    insights = _insight_selectors(aws, trail_arn)
    expected = ["ApiCallRateInsight", "ApiErrorRateInsight"] if CLOUDTRAIL_INSIGHTS[owner] else []
    assert sorted(i["InsightType"] for i in insights) == expected


def test_execution_role_of_the_services_reads_no_secret(deployed: Deployed) -> None:
    """A leaked service execution credential reads no secret at all: the services hold none."""
    o, aws = deployed.outputs, deployed.aws
    statements = policy_statements(role_policies(aws, o["taskExecutionRoleArn"]))
    assert not [s for s in statements if any(a.startswith(("secretsmanager:", "kms:")) for a in as_list(s["Action"]))]


def test_task_roles_connect_only_as_their_own_data_store_users(deployed: Deployed) -> None:
    """A compromised notification task cannot log in as payment: rds-db:connect names one database user."""
    o, aws = deployed.outputs, deployed.aws
    resource_id = aurora_cluster(aws, o)["DbClusterResourceId"]
    region, account = o["region"], o["accountId"]
    for service, db_user in (("payment", "scalepay_payment"), ("notification", "scalepay_notification")):
        statements = policy_statements(role_policies(aws, o["taskRoleArns"][service]))
        connects = [s for s in statements if "rds-db:connect" in as_list(s["Action"])]
        assert [as_list(s["Resource"]) for s in connects] == [
            [f"arn:aws:rds-db:{region}:{account}:dbuser:{resource_id}/{db_user}"]
        ], service
    api = policy_statements(role_policies(aws, o["taskRoleArns"]["api"]))
    assert not [s for s in api if any(a.startswith(("rds-db:", "elasticache:")) for a in as_list(s["Action"]))]


def test_no_deployed_policy_grants_wildcard_actions(deployed: Deployed) -> None:
    """Least privilege holds in what AWS actually stores, not only in our code."""
    o, aws = deployed.outputs, deployed.aws
    roles = [o["taskExecutionRoleArn"], *o["taskRoleArns"].values()]
    for role in roles:
        for statement in policy_statements(role_policies(aws, role)):
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (role, action)
            if "kms:Decrypt" in as_list(statement["Action"]):
                assert "*" not in as_list(statement["Resource"]), role


def test_containers_are_hardened(deployed: Deployed) -> None:
    """A compromised container cannot write its filesystem or gain host privileges, and it logs centrally."""
    o, aws = deployed.outputs, deployed.aws
    for service in SERVICES:
        container = container_definition(aws, o, service)
        assert container["readonlyRootFilesystem"] is True, service
        assert not container.get("privileged"), service
        assert container["logConfiguration"]["logDriver"] == "awslogs", service
        assert container["logConfiguration"]["options"]["awslogs-group"] == o["serviceLogGroupNames"][service]
        assert container.get("healthCheck"), service


def test_images_are_scanned_and_immutable(deployed: Deployed) -> None:
    """A pushed image cannot be silently replaced, and every push is scanned for CVEs."""
    o, aws = deployed.outputs, deployed.aws
    names = [url.split("/", 1)[1] for url in o["ecrRepositoryUrls"].values()]
    repos = aws("ecr").describe_repositories(repositoryNames=names)["repositories"]
    assert len(repos) == 4  # api, payment, notification and the migrate job
    for repo in repos:
        assert repo["imageTagMutability"] == "IMMUTABLE", repo["repositoryName"]
        assert repo["imageScanningConfiguration"]["scanOnPush"] is True, repo["repositoryName"]
        assert repo["encryptionConfiguration"]["encryptionType"] == "KMS", repo["repositoryName"]


def test_audit_logs_are_locked_archived_and_their_access_logged(ha_deployed: Deployed) -> None:
    """Nobody can alter or delete the audit trail before its retention ends, read it over plain HTTP, or read it
    without the access being logged."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    retention = {"staging": 90, "prod": 365}[ha_deployed.env]
    mode = {"staging": "GOVERNANCE", "prod": "COMPLIANCE"}[ha_deployed.env]
    s3 = aws("s3")
    owner = ha_deployed.env if o["cloudTrailArn"] else "prod"  # a member of a shared account uses the owner's trail
    for component in ("cloudtrail", "config"):
        bucket = f"scalepay-{component}-{owner}-{o['accountId']}"
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled", bucket
        if owner == ha_deployed.env:
            default = lock["Rule"]["DefaultRetention"]
            assert (default["Mode"], default["Days"], default.get("Years", 0)) == (mode, retention, 0), bucket
            (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
            assert rule["Expiration"]["Days"] == retention, bucket
        assert_tls_only_bucket(s3, bucket, partition_of(o["albArn"]))
        logging = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
        assert logging["TargetBucket"] == f"scalepay-audit-access-{owner}-{o['accountId']}", bucket
        assert logging["TargetPrefix"] == f"s3-access/{component}/", bucket


def test_aurora_engine_is_pinned_and_audits_statements(deployed: Deployed) -> None:
    """AWS never upgrades the engine under the stack, and DDL, role changes and writes are audited."""
    o, aws = deployed.outputs, deployed.aws
    cluster = aurora_cluster(aws, o)
    assert cluster["EngineVersion"] == "16.13"
    for member in cluster["DBClusterMembers"]:
        instance = aws("rds").describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])["DBInstances"][0]
        assert instance["AutoMinorVersionUpgrade"] is False, member["DBInstanceIdentifier"]
    parameters = {
        p["ParameterName"]: p.get("ParameterValue")
        for p in aws("rds").describe_db_cluster_parameters(DBClusterParameterGroupName=cluster["DBClusterParameterGroup"])[
            "Parameters"
        ]
    }
    assert "pgaudit" in parameters["shared_preload_libraries"] and parameters["pgaudit.log_parameter"] == "0"
    assert parameters["rds.force_ssl"] == "1"
