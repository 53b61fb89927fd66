"""Security and PCI DSS: encryption, TLS, WAF, threat detection, least privilege."""

from __future__ import annotations

import json

from tests.integration.conftest import Deployed
from tests.integration.support import (
    SERVICES,
    Outputs,
    as_list,
    aurora_cluster,
    container_definition,
    policy_statements,
    redis_group,
    role_policies,
)


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
    """The only secret, the Aurora master password, sits in Secrets Manager under our data key."""
    o, aws = deployed.outputs, deployed.aws
    secret = aws("secretsmanager").describe_secret(SecretId=o["auroraSecretArn"])
    assert secret.get("KmsKeyId") in (o["kmsDataKeyArn"], o["kmsDataKeyArn"].split("/")[-1])


def test_log_groups_are_encrypted_and_retained(deployed: Deployed) -> None:
    """Audit trails are encrypted and kept: a year in prod (PCI DSS 10.5.1)."""
    o, aws = deployed.outputs, deployed.aws
    names = [*o["serviceLogGroupNames"].values(), o["flowLogGroupName"]]
    minimum = {"dev": 1, "staging": 30, "prod": 365}[deployed.env]
    for name in names:
        groups = aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next(g for g in groups if g["logGroupName"] == name)
        assert group.get("kmsKeyId"), name
        assert group["retentionInDays"] >= minimum, name


def test_kms_keys_rotate(deployed: Deployed) -> None:
    """Encryption keys rotate yearly, limiting what one compromised key exposes."""
    o, aws = deployed.outputs, deployed.aws
    for output in ("kmsDataKeyArn", "kmsLogsKeyArn", "kmsAlarmsKeyArn", "kmsAuditKeyArn"):
        key = aws("kms").describe_key(KeyId=o[output])["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER" and key["KeyState"] == "Enabled", output
        assert aws("kms").get_key_rotation_status(KeyId=o[output])["KeyRotationEnabled"] is True, output


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
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        for s in policy["Statement"]
    )
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


def test_waf_protects_the_alb(ha_deployed: Deployed) -> None:
    """Card-testing bots and injection attacks are filtered before they reach the API."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    acl = aws("wafv2").get_web_acl_for_resource(ResourceArn=o["albArn"])["WebACL"]
    assert acl["ARN"] == o["wafWebAclArn"]
    names = {r["Name"] for r in acl["Rules"]}
    statements = json.dumps([r["Statement"] for r in acl["Rules"]], default=str)
    for group in (
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAnonymousIpList",
        "AWSManagedRulesAmazonIpReputationList",
    ):
        assert group in statements, group
    assert {"body-size-api", "body-size-payment", "body-size-notification"} <= names
    assert "RateBasedStatement" in statements, names
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


def test_config_records_every_change(ha_deployed: Deployed) -> None:
    """AWS Config keeps the change history an assessor asks for, and checks PCI rules continuously."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    config = aws("config")
    recorders = config.describe_configuration_recorders(ConfigurationRecorderNames=[o["configRecorderName"]])
    assert recorders["ConfigurationRecorders"][0]["recordingGroup"]["allSupported"] is True
    status = config.describe_configuration_recorder_status(ConfigurationRecorderNames=[o["configRecorderName"]])
    assert status["ConfigurationRecordersStatus"][0]["recording"] is True
    assert config.describe_delivery_channels()["DeliveryChannels"]
    rules = config.describe_config_rules()["ConfigRules"]
    assert len(rules) >= 10


def test_cloudtrail_records_api_activity(ha_deployed: Deployed) -> None:
    """Every API call is recorded, tamper-evident and encrypted (PCI DSS 10.2, 10.3)."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    trail = aws("cloudtrail").describe_trails(trailNameList=[o["cloudTrailArn"]])["trailList"][0]
    assert trail["IsMultiRegionTrail"] is True
    assert trail["LogFileValidationEnabled"] is True
    assert trail.get("KmsKeyId")
    assert trail.get("CloudWatchLogsLogGroupArn")


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
    """Nobody can alter or delete the audit trail before its retention ends, and every read of it is logged."""
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
