"""Every PCI DSS rule of policy/rules, called directly: a compliant case and violating cases with exact messages.

Resource rules take (type, camelCase props, params); JSON documents are JSON strings as the
provider receives them. Each case starts from a compliant factory and applies one mutation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from policy.enforcement import ENVIRONMENT_PARAMS
from policy.rules import ALL_RULES, compute, data, edge, identity, logging, network
from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, StackResource, StackRule

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1111-2222"
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scalepay-api-prod:1.0.0"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def pci(req: str, text: str) -> str:
    return f"PCI DSS 4.0 Req {req}: {text}"


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``changes``; a value of ``...`` removes the key."""
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# --- compliant factories -----------------------------------------------------------------------

AURORA = {
    "engine": "aurora-postgresql",
    "storageEncrypted": True,
    "kmsKeyId": KEY_ARN,
    "iamDatabaseAuthenticationEnabled": True,
    "masterUsername": "scalepay_admin",
    "deletionProtection": True,
    "backupRetentionPeriod": 30,
    "dbClusterParameterGroupName": "scalepay-aurora-prod",
    "engineVersion": "16.13",
    "allowMajorVersionUpgrade": False,
}
REDIS = {
    "atRestEncryptionEnabled": True,
    "kmsKeyId": KEY_ARN,
    "transitEncryptionEnabled": True,
    "transitEncryptionMode": "required",
    "authToken": "x" * 32,
    "engineVersion": "7.1",
    "autoMinorVersionUpgrade": False,
}
#: Redis as the platform runs it: RBAC user group (IAM-authenticated users), no static AUTH token.
REDIS_RBAC = with_(REDIS, authToken=..., userGroupIds=["scalepay-redis-users-prod"])


def container(**changes: Any) -> dict[str, Any]:
    base = {
        "name": "api",
        "image": ECR_IMAGE,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": "scratch-tmp", "containerPath": "/tmp", "readOnly": False}],
        "privileged": False,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/api", "awslogs-region": "us-east-1"}},
        "environment": [{"name": "DB_HOST", "value": "db"}, {"name": "DB_SECRET_ARN", "value": SECRET_ARN}],
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": f"{SECRET_ARN}:password::"}],
    }
    return with_(base, **changes)


def task(*containers: dict[str, Any], volumes: tuple[str, ...] = ("scratch-tmp",)) -> dict[str, Any]:
    return {
        "family": "api",
        "containerDefinitions": json.dumps(list(containers or [container()])),
        "volumes": [{"name": name} for name in volumes],
    }


def policy_doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


WEB_ONLY = "only TCP 80 and 443 (the load balancer listeners) may be open to the internet"
ADMIN_ATTACHED = (
    "administrator policy 'arn:aws:iam::aws:policy/AdministratorAccess' is attached; grant a least-privilege policy instead"
)
READ_SECRET = {"Sid": "ReadDbSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": SECRET_ARN}
DECRYPT_KEY = {"Sid": "DecryptData", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN}


def managed_group(name: str, override: str = "none", vendor: str = "AWS", priority: int = 10) -> dict[str, Any]:
    """A web ACL rule running an AWS managed rule group (camelCase, as the ``rules`` input spells it)."""
    return {
        "name": name,
        "priority": priority,
        "overrideAction": {override: {}},
        "statement": {"managedRuleGroupStatement": {"name": name, "vendorName": vendor}},
        "visibilityConfig": {"cloudwatchMetricsEnabled": True, "sampledRequestsEnabled": True, "metricName": name},
    }


RATE_LIMIT = {
    "name": "rate-limit-per-ip",
    "priority": 0,
    "action": {"block": {}},
    "statement": {"rateBasedStatement": {"limit": 2000, "aggregateKeyType": "IP"}},
}
BASELINE_GROUPS = [
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
]


def web_acl(*rules: dict[str, Any]) -> dict[str, Any]:
    """A web ACL with ``rules``; by default the rate limit and the four baseline groups, all blocking."""
    chosen = (
        list(rules) if rules else [RATE_LIMIT, *(managed_group(g, priority=10 * i) for i, g in enumerate(BASELINE_GROUPS, 1))]
    )
    return {"scope": "REGIONAL", "defaultAction": {"allow": {}}, "rules": chosen}


def pascal(value: Any) -> Any:
    """``value`` with PascalCase keys: the WAF API format that ``ruleJson`` takes."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return value


SCRATCH = "it cannot write temporary files"


@dataclass(frozen=True)
class Case:
    """One call of a resource rule and the exact messages it must return."""

    check: Callable[..., list[str]]
    resource_type: str
    props: dict[str, Any]
    expected: list[str]
    params: Params = field(default=DEFAULT_PARAMS)


@dataclass(frozen=True)
class Example:
    """One input of a resource rule and the exact messages it must return (a :class:`Case` without the rule)."""

    props: dict[str, Any]
    expected: list[str]
    params: Params = field(default=DEFAULT_PARAMS)
    #: The resource type the rule is called with, where it is not its subject's usual one (rules of several types).
    resource_type: str = ""


@dataclass(frozen=True)
class Subject:
    """A resource rule under test: its case-id prefix, its function and the resource type it is usually called with."""

    prefix: str
    check: Callable[..., list[str]]
    resource_type: str


#: The examples of each resource rule, listed under the rule so that its function and usual type are named once.
EXAMPLES: dict[Subject, dict[str, Example]] = {
    # network
    Subject("sg-web-ports", network.security_group_internet_ingress_web_ports_only, network.INGRESS_RULE): {
        "alb-https-ok": Example({"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 443.0, "toPort": 443.0}, []),
        "internal-ssh-ok": Example({"cidrIpv4": "10.0.0.0/16", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22}, []),
        "ssh-from-internet": Example(
            {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22},
            [
                pci(
                    "1.3.1",
                    "ingress from 0.0.0.0/0 allows protocol tcp ports 22-22; " + WEB_ONLY,
                )
            ],
        ),
        "range-covering-443": Example(
            {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "protocol": "tcp", "fromPort": 0, "toPort": 65535},
            [
                pci(
                    "1.3.1",
                    "ingress from 0.0.0.0/0 allows protocol tcp ports 0-65535; " + WEB_ONLY,
                )
            ],
            resource_type=network.SECURITY_GROUP_RULE,
        ),
        "inline-ipv6-all": Example(
            {"ingress": [{"ipv6CidrBlocks": ["::/0"], "protocol": "-1", "fromPort": 0, "toPort": 0}]},
            [
                pci(
                    "1.3.1",
                    "ingress from ::/0 allows protocol -1 ports 0-0; " + WEB_ONLY,
                )
            ],
            resource_type=network.SECURITY_GROUP,
        ),
    },
    Subject("subnet", network.subnet_no_public_ip_on_launch, network.SUBNET): {
        "private-ok": Example({"mapPublicIpOnLaunch": False}, []),
        "public-ip": Example(
            {"mapPublicIpOnLaunch": True}, [pci("1.4.2", "subnet assigns public IPs on launch (mapPublicIpOnLaunch is true)")]
        ),
    },
    Subject("rds-public", network.rds_not_publicly_accessible, network.RDS_CLUSTER_INSTANCE): {
        "ok": Example({"publiclyAccessible": False}, []),
        "public": Example(
            {"publiclyAccessible": True},
            [pci("1.4.4", "database instance is publicly accessible (publiclyAccessible is true)")],
        ),
    },
    # data
    Subject("db-cmk", data.database_encrypted_with_cmk, data.RDS_CLUSTER): {
        "ok": Example(AURORA, []),
        "unencrypted": Example(
            with_(AURORA, storageEncrypted=False, kmsKeyId=...),
            [
                pci("3.5.1", "database storage is not encrypted (storageEncrypted is not true)"),
                pci("3.5.1", "database storage is not encrypted with a customer-managed KMS key (kmsKeyId)"),
            ],
        ),
        "aws-managed-key": Example(
            with_(AURORA, kmsKeyId="alias/aws/rds"),
            [pci("3.5.1", "database storage is not encrypted with a customer-managed KMS key (kmsKeyId)")],
        ),
    },
    Subject("redis-cmk", data.redis_encrypted_at_rest_with_cmk, data.REPLICATION_GROUP): {
        "ok": Example(REDIS, []),
        "off": Example(
            with_(REDIS, atRestEncryptionEnabled=False),
            [pci("3.5.1", "Redis at-rest encryption is off (atRestEncryptionEnabled is not true)")],
        ),
        "no-key": Example(
            with_(REDIS, kmsKeyId=...), [pci("3.5.1", "Redis is not encrypted with a customer-managed KMS key (kmsKeyId)")]
        ),
    },
    Subject("redis-tls", data.redis_transit_encryption, data.REPLICATION_GROUP): {
        "ok": Example(REDIS, []),
        "off": Example(
            with_(REDIS, transitEncryptionEnabled=False),
            [pci("4.2.1", "Redis in-transit encryption is off (transitEncryptionEnabled is not true)")],
        ),
        "preferred": Example(
            with_(REDIS, transitEncryptionMode="preferred"),
            [pci("4.2.1", "Redis accepts unencrypted connections (transitEncryptionMode is not 'required')")],
        ),
    },
    Subject("secret-cmk", data.secret_encrypted_with_cmk, data.SECRET): {
        "ok": Example({"kmsKeyId": KEY_ARN}, []),
        "default-key": Example(
            {"name": "db"}, [pci("8.3.2", "secret is not encrypted with a customer-managed KMS key (kmsKeyId)")]
        ),
    },
    Subject("sns-cmk", data.sns_topic_encrypted_with_cmk, data.TOPIC): {
        "ok": Example({"kmsMasterKeyId": KEY_ARN}, []),
        "aws-managed": Example(
            {"kmsMasterKeyId": "alias/aws/sns"},
            [pci("3.5.1", "SNS topic is not encrypted with a customer-managed KMS key (kmsMasterKeyId)")],
        ),
    },
    Subject("kms-rotation", data.kms_key_rotation, data.KMS_KEY): {
        "ok": Example({"enableKeyRotation": True}, []),
        "asymmetric-exempt": Example({"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"}, []),
        "off": Example(
            {"enableKeyRotation": False},
            [pci("3.7.4", "KMS key does not rotate automatically (enableKeyRotation is not true)")],
        ),
    },
    Subject("deletion-protection", data.aurora_deletion_protection, data.RDS_CLUSTER): {
        "ok": Example(AURORA, []),
        "off": Example(
            with_(AURORA, deletionProtection=False),
            [pci("12.10.1", "Aurora cluster has no deletion protection (deletionProtection is not true)")],
        ),
        "not-required-in-staging": Example(with_(AURORA, deletionProtection=False), [], ENVIRONMENT_PARAMS["staging"]),
    },
    Subject("backups", data.aurora_backup_retention, data.RDS_CLUSTER): {
        "ok": Example(with_(AURORA, backupRetentionPeriod=7.0), []),
        "one-day": Example(
            with_(AURORA, backupRetentionPeriod=1),
            [pci("12.10.1", "Aurora keeps backups for 1 days (backupRetentionPeriod); at least 7 are required")],
        ),
        "unset-defaults-to-one": Example(
            with_(AURORA, backupRetentionPeriod=...),
            [pci("12.10.1", "Aurora keeps backups for 1 days (backupRetentionPeriod); at least 7 are required")],
        ),
    },
    Subject("engine-pinned", data.engine_version_pinned, data.REPLICATION_GROUP): {
        "cluster-ok": Example(AURORA, [], resource_type=data.RDS_CLUSTER),
        "cluster-unpinned-major-allowed": Example(
            with_(AURORA, engineVersion=..., allowMajorVersionUpgrade=True),
            [
                pci("6.5.1", "Aurora cluster does not pin its engine version (engineVersion)"),
                pci("6.5.1", "Aurora cluster allows major engine version upgrades (allowMajorVersionUpgrade is true)"),
            ],
            resource_type=data.RDS_CLUSTER,
        ),
        "instance-ok": Example(
            {"instanceClass": "db.r6g.large", "autoMinorVersionUpgrade": False}, [], resource_type=data.RDS_CLUSTER_INSTANCE
        ),
        "instance-provider-default": Example(
            {"instanceClass": "db.r6g.large"},
            [
                pci(
                    "6.5.1",
                    "database instance lets AWS upgrade its engine minor version (autoMinorVersionUpgrade is not false)",
                )
            ],
            resource_type=data.RDS_CLUSTER_INSTANCE,
        ),
        "redis-ok": Example(REDIS_RBAC, []),
        "redis-string-false-ok": Example(with_(REDIS_RBAC, autoMinorVersionUpgrade="false"), []),
        "redis-auto-upgrade-unpinned": Example(
            with_(REDIS_RBAC, autoMinorVersionUpgrade="true", engineVersion=...),
            [
                pci(
                    "6.5.1",
                    "Redis replication group lets AWS upgrade its engine minor version (autoMinorVersionUpgrade is not false)",
                ),
                pci("6.5.1", "Redis replication group does not pin its engine version (engineVersion)"),
            ],
        ),
    },
    # compute
    Subject("read-only-root", compute.ecs_read_only_root_filesystem, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "writable": Example(
            task(container(), container(name="sidecar", readonlyRootFilesystem=...)),
            [pci("2.2.6", "container 'sidecar' has a writable root filesystem (readonlyRootFilesystem is not true)")],
        ),
    },
    Subject("privileged", compute.ecs_no_privileged_containers, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "privileged": Example(
            task(container(privileged=True)), [pci("7.2.5", "container 'api' runs privileged (privileged is true)")]
        ),
    },
    Subject("awslogs", compute.ecs_awslogs, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "no-log-config": Example(
            task(container(logConfiguration=...)),
            [pci("10.2.1", "container 'api' does not log to CloudWatch (logDriver awslogs with awslogs-group)")],
        ),
        "splunk": Example(
            task(container(logConfiguration={"logDriver": "splunk", "options": {}})),
            [pci("10.2.1", "container 'api' does not log to CloudWatch (logDriver awslogs with awslogs-group)")],
        ),
    },
    Subject("env-secrets", compute.ecs_no_secrets_in_environment, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "password-in-env": Example(
            task(container(environment=[{"name": "DB_PASSWORD", "value": "hunter2"}])),
            [
                pci(
                    "8.6.2",
                    "container 'api' passes 'DB_PASSWORD' as a plain environment variable; use secrets from Secrets Manager",
                )
            ],
        ),
        "ssm-parameter": Example(
            task(container(secrets=[{"name": "API_KEY", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/api-key"}])),
            [
                pci(
                    "8.6.2",
                    "container 'api' reads secret 'API_KEY' from 'arn:aws:ssm:us-east-1:123456789012:parameter/api-key', "
                    "not from Secrets Manager",
                )
            ],
        ),
    },
    Subject("ecs-public-ip", compute.ecs_service_no_public_ip, compute.ECS_SERVICE): {
        "ok": Example({"networkConfiguration": {"assignPublicIp": False}}, []),
        "public": Example(
            {"networkConfiguration": {"assignPublicIp": True, "subnets": ["s-1"]}},
            [pci("1.4.2", "ECS service assigns public IPs to tasks (networkConfiguration.assignPublicIp is true)")],
        ),
    },
    Subject("ecr-scan", compute.ecr_scan_on_push, compute.ECR_REPOSITORY): {
        "ok": Example({"imageScanningConfiguration": {"scanOnPush": True}}, []),
        "off": Example(
            {"imageScanningConfiguration": {"scanOnPush": False}},
            [pci("6.3.1", "ECR repository does not scan images on push (imageScanningConfiguration.scanOnPush)")],
        ),
    },
    Subject("ecr-immutable", compute.ecr_immutable_tags, compute.ECR_REPOSITORY): {
        "ok": Example({"imageTagMutability": "IMMUTABLE"}, []),
        "mutable": Example(
            {"imageTagMutability": "MUTABLE"},
            [pci("6.5.1", "ECR repository allows tags to be overwritten (imageTagMutability is not IMMUTABLE)")],
        ),
    },
    Subject("scratch", compute.ecs_read_only_root_writable_scratch, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "writable-root-needs-none": Example(task(container(readonlyRootFilesystem=False, mountPoints=...), volumes=()), []),
        "trailing-slash-ok": Example(
            task(container(mountPoints=[{"sourceVolume": "scratch-tmp", "containerPath": "/tmp/"}])), []
        ),
        "no-tmp-mount": Example(
            task(container(mountPoints=[{"sourceVolume": "scratch-tmp", "containerPath": "/var/cache/app", "readOnly": False}])),
            [
                pci(
                    "2.2.6",
                    f"container 'api' has a read-only root filesystem but has no writable mount at /tmp (mountPoints); {SCRATCH}",
                )
            ],
        ),
        "read-only-tmp": Example(
            task(container(mountPoints=[{"sourceVolume": "scratch-tmp", "containerPath": "/tmp", "readOnly": True}])),
            [
                pci(
                    "2.2.6",
                    "container 'api' has a read-only root filesystem but mounts /tmp read-only "
                    f"(mountPoints readOnly is true); {SCRATCH}",
                )
            ],
        ),
        "volume-not-in-task": Example(
            task(container(), container(name="sidecar", mountPoints=...), volumes=("other",)),
            [
                pci(
                    "2.2.6",
                    "container 'api' has a read-only root filesystem but mounts /tmp from 'scratch-tmp', "
                    f"which is not one of the task definition's volumes; {SCRATCH}",
                ),
                pci(
                    "2.2.6",
                    "container 'sidecar' has a read-only root filesystem but has no writable mount at /tmp "
                    f"(mountPoints); {SCRATCH}",
                ),
            ],
        ),
    },
    Subject("private-image", compute.ecs_images_from_private_registry, compute.TASK_DEFINITION): {
        "ok": Example(task(), []),
        "china-region-digest-ok": Example(
            task(container(image="123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/api@sha256:" + "a" * 64)), []
        ),
        "public-registries": Example(
            task(
                container(image="nginxinc/nginx-unprivileged:1.27-alpine"),
                container(name="ecr-public", image="public.ecr.aws/nginx/nginx:1.27"),
                container(name="lookalike", image="123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/api:1"),
                container(name="no-image", image=...),
            ),
            [
                pci(
                    "6.3.2",
                    "container 'api' runs image 'nginxinc/nginx-unprivileged:1.27-alpine' from outside a private Amazon ECR "
                    "registry (<account>.dkr.ecr.<region>.amazonaws.com/...)",
                ),
                pci(
                    "6.3.2",
                    "container 'ecr-public' runs image 'public.ecr.aws/nginx/nginx:1.27' from outside a private Amazon ECR "
                    "registry (<account>.dkr.ecr.<region>.amazonaws.com/...)",
                ),
                pci(
                    "6.3.2",
                    "container 'lookalike' runs image '123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/api:1' from "
                    "outside a private Amazon ECR registry (<account>.dkr.ecr.<region>.amazonaws.com/...)",
                ),
                pci(
                    "6.3.2",
                    "container 'no-image' runs image '<none>' from outside a private Amazon ECR "
                    "registry (<account>.dkr.ecr.<region>.amazonaws.com/...)",
                ),
            ],
        ),
    },
    # edge
    Subject("tls12", edge.alb_https_tls12, edge.LISTENERS[0]): {
        "ok": Example({"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}, []),
        "http-not-applicable": Example({"protocol": "HTTP", "port": 80}, []),
        "tls10-policy": Example(
            {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-2016-08"},
            [pci("4.2.1", "listener TLS policy 'ELBSecurityPolicy-2016-08' allows protocols older than TLS 1.2 (sslPolicy)")],
        ),
        "default-policy": Example(
            {"protocol": "HTTPS"},
            [
                pci(
                    "4.2.1",
                    "listener TLS policy '<default ELBSecurityPolicy-2016-08>' allows protocols older than TLS 1.2 (sslPolicy)",
                )
            ],
            resource_type=edge.LISTENERS[1],
        ),
    },
    Subject("drop-headers", edge.alb_drop_invalid_headers, edge.LOAD_BALANCERS[0]): {
        "ok": Example({"dropInvalidHeaderFields": True}, []),
        "nlb-exempt": Example({"loadBalancerType": "network"}, []),
        "off": Example(
            {"loadBalancerType": "application"},
            [pci("6.4.1", "load balancer forwards invalid HTTP headers (dropInvalidHeaderFields is not true)")],
        ),
    },
    Subject("access-logs", edge.alb_access_logs, edge.LOAD_BALANCERS[0]): {
        "ok": Example({"accessLogs": {"enabled": True, "bucket": "logs"}}, []),
        "bucket-but-disabled": Example(
            {"accessLogs": {"bucket": "logs"}},
            [pci("10.2.1", "load balancer access logs are off (accessLogs.enabled with a bucket)")],
        ),
    },
    Subject("waf-baseline", edge.waf_baseline_managed_rules, edge.WEB_ACL): {
        "ok": Example(web_acl(), []),
        "rule-json-ok": Example({"scope": "REGIONAL", "ruleJson": json.dumps(pascal(web_acl()["rules"]))}, []),
        "counting-missing-and-foreign": Example(
            web_acl(
                RATE_LIMIT,
                managed_group("AWSManagedRulesCommonRuleSet", override="count"),
                managed_group("AWSManagedRulesKnownBadInputsRuleSet", vendor="F5"),
                managed_group("AWSManagedRulesAmazonIpReputationList"),
            ),
            [
                pci(
                    "6.4.2",
                    "web ACL runs the AWS managed rule group AWSManagedRulesCommonRuleSet in count mode; "
                    "its override action must be none",
                ),
                pci("6.4.2", "web ACL does not run the AWS managed rule group AWSManagedRulesKnownBadInputsRuleSet"),
                pci("6.4.2", "web ACL does not run the AWS managed rule group AWSManagedRulesAnonymousIpList"),
            ],
        ),
        "rate-limit-only": Example(
            web_acl(RATE_LIMIT),
            [pci("6.4.2", f"web ACL does not run the AWS managed rule group {group}") for group in BASELINE_GROUPS],
        ),
    },
    # logging
    Subject("log-cmk", logging.log_group_encrypted_with_cmk, logging.LOG_GROUP): {
        "ok": Example({"kmsKeyId": KEY_ARN}, []),
        "none": Example(
            {"retentionInDays": 365}, [pci("3.5.1", "log group is not encrypted with a customer-managed KMS key (kmsKeyId)")]
        ),
    },
    Subject("retention", logging.log_group_retention, logging.LOG_GROUP): {
        "ok": Example({"retentionInDays": 365.0}, []),
        "never-expire-ok": Example({"retentionInDays": 0}, []),
        "staging-90-ok": Example({"retentionInDays": 90}, [], ENVIRONMENT_PARAMS["staging"]),
        "prod-90": Example(
            {"retentionInDays": 90},
            [pci("10.5.1", "log group keeps events for 90 days (retentionInDays); at least 365 are required")],
            ENVIRONMENT_PARAMS["prod"],
        ),
    },
    Subject("cloudtrail", logging.cloudtrail_log_file_validation, logging.TRAIL): {
        "ok": Example({"enableLogFileValidation": True, "kmsKeyId": KEY_ARN}, []),
        "unsigned-unencrypted": Example(
            {"enableLogFileValidation": False},
            [
                pci("10.3.4", "CloudTrail log file validation is off (enableLogFileValidation is not true)"),
                pci("10.3.4", "CloudTrail logs are not encrypted with a customer-managed KMS key (kmsKeyId)"),
            ],
        ),
    },
    # identity
    Subject("wildcard", identity.iam_no_wildcard_action, identity.IAM_POLICY): {
        "ok": Example({"policy": policy_doc(READ_SECRET, DECRYPT_KEY)}, [], resource_type=identity.ROLE_POLICY),
        "deny-star-ok": Example({"policy": policy_doc({"Effect": "Deny", "Action": "*", "Resource": "*"})}, []),
        "star": Example(
            {"policy": policy_doc(READ_SECRET, {"Effect": "Allow", "Action": "*", "Resource": "*"})},
            [pci("7.2.1", "IAM statement #1 allows action '*'; grant only the actions the workload needs")],
        ),
        "service-star-inline-role": Example(
            {
                "inlinePolicies": [
                    {
                        "name": "s3",
                        "policy": policy_doc({"Sid": "All", "Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}),
                    }
                ]
            },
            [pci("7.2.1", "IAM statement All allows action 's3:*'; grant only the actions the workload needs")],
            resource_type=identity.ROLE,
        ),
        "not-action": Example(
            {"policy": policy_doc({"Sid": "Most", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})},
            [pci("7.2.1", "IAM statement Most allows everything except a NotAction list")],
            resource_type=identity.USER_POLICY,
        ),
    },
    Subject("admin", identity.iam_no_admin_policy, identity.ATTACHMENT_TYPES[0]): {
        "ok": Example({"policyArn": "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}, []),
        "attached": Example(
            {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess", "role": "r"},
            [
                pci(
                    "7.2.2",
                    ADMIN_ATTACHED,
                )
            ],
        ),
        "role-managed-arns": Example(
            {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
            [
                pci(
                    "7.2.2",
                    ADMIN_ATTACHED,
                )
            ],
            resource_type=identity.ROLE,
        ),
    },
    Subject("decrypt", identity.iam_no_kms_decrypt_on_wildcard, identity.ROLE_POLICY): {
        "ok": Example({"policy": policy_doc(DECRYPT_KEY)}, []),
        "on-star": Example(
            {
                "policy": policy_doc(
                    {"Sid": "Dec", "Effect": "Allow", "Action": ["logs:PutLogEvents", "kms:Decrypt"], "Resource": "*"}
                )
            },
            [pci("3.6.1", "IAM statement Dec allows 'kms:Decrypt' on every key (Resource '*'); name the key ARNs")],
        ),
    },
    Subject("iam-auth", identity.aurora_iam_authentication, identity.RDS_CLUSTER): {
        "ok": Example(AURORA, []),
        "off": Example(
            with_(AURORA, iamDatabaseAuthenticationEnabled=...),
            [pci("8.3.1", "Aurora IAM database authentication is off (iamDatabaseAuthenticationEnabled is not true)")],
        ),
    },
    Subject("admin-user", identity.aurora_non_default_admin, identity.RDS_CLUSTER): {
        "ok": Example(AURORA, []),
        "postgres": Example(
            with_(AURORA, masterUsername="postgres"),
            [pci("2.2.2", "Aurora master user 'postgres' is a vendor default name; choose a non-default masterUsername")],
        ),
        "unset": Example(
            with_(AURORA, masterUsername=...),
            [pci("2.2.2", "Aurora master user is not set, so the engine default name is used (masterUsername)")],
        ),
    },
    Subject("redis-auth", identity.redis_auth_required, identity.REPLICATION_GROUP): {
        "ok": Example(REDIS, []),
        "rbac-ok": Example(with_(REDIS, authToken=..., userGroupIds=["ug-1"]), []),
        "none": Example(
            with_(REDIS, authToken=...),
            [pci("8.3.1", "Redis accepts unauthenticated clients (no authToken and no userGroupIds)")],
        ),
    },
    Subject("redis-static-token", identity.redis_no_static_auth_token, identity.REPLICATION_GROUP): {
        "rbac-ok": Example(REDIS_RBAC, []),
        "auth-token": Example(
            REDIS,
            [
                pci(
                    "8.6.3",
                    "Redis uses a static AUTH token shared by every client (authToken); "
                    "authenticate each client as its own user through userGroupIds (RBAC users with IAM authentication)",
                )
            ],
        ),
        "write-only-token-next-to-rbac": Example(
            with_(REDIS_RBAC, authTokenWo="y" * 32),
            [
                pci(
                    "8.6.3",
                    "Redis uses a static AUTH token shared by every client (authTokenWo); "
                    "authenticate each client as its own user through userGroupIds (RBAC users with IAM authentication)",
                )
            ],
        ),
    },
}

#: Every example as a case of its rule, named ``<prefix>/<example>``.
CASES: dict[str, Case] = {
    f"{subject.prefix}/{name}": Case(
        subject.check, example.resource_type or subject.resource_type, example.props, example.expected, example.params
    )
    for subject, examples in EXAMPLES.items()
    for name, example in examples.items()
}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_resource_rule(case_id: str) -> None:
    case = CASES[case_id]
    assert case.check(case.resource_type, case.props, case.params) == case.expected, case_id


# --- stack rules: a compliant mini stack and one mutation per failing case ----------------------


def res(type_: str, logical: str, **props: Any) -> StackResource:
    """A stack resource with the mock runtime's id convention (``<logical>-id``) and an ARN."""
    arn = f"arn:aws:x:us-east-1:123456789012:{logical}"
    return StackResource(type_, logical, {"arn": arn, **props}, f"urn:{logical}", f"{logical}-id")


def replace_res(stack: list[StackResource], name: str, **props: Any) -> list[StackResource]:
    """``stack`` with resource ``name``'s props changed (``...`` removes a prop)."""
    out = []
    for r in stack:
        if r.name == name:
            r = StackResource(r.type, r.name, with_(dict(r.props), **props), r.urn, r.id)
        out.append(r)
    return out


def without(stack: list[StackResource], name: str) -> list[StackResource]:
    return [r for r in stack if r.name != name]


def network_stack() -> list[StackResource]:
    return [
        res(network.INTERNET_GATEWAY, "igw"),
        res(network.NAT_GATEWAY, "nat"),
        res(network.SUBNET, "public-a", vpcId="vpc-id"),
        res(network.SUBNET, "private-a", vpcId="vpc-id"),
        res(network.SUBNET, "db-a", vpcId="vpc-id"),
        res(network.ROUTE_TABLE, "public-rt", routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-id"}]),
        res(network.ROUTE_TABLE, "private-rt"),
        res(
            network.ROUTE,
            "private-default",
            routeTableId="private-rt-id",
            destinationCidrBlock="0.0.0.0/0",
            natGatewayId="nat-id",
        ),
        res(network.ROUTE_TABLE, "db-rt"),
        res(network.ROUTE_TABLE_ASSOCIATION, "public-a-assoc", subnetId="public-a-id", routeTableId="public-rt-id"),
        res(network.ROUTE_TABLE_ASSOCIATION, "private-a-assoc", subnetId="private-a-id", routeTableId="private-rt-id"),
        res(network.ROUTE_TABLE_ASSOCIATION, "db-a-assoc", subnetId="db-a-id", routeTableId="db-rt-id"),
        res(network.RDS_SUBNET_GROUP, "db-subnets", subnetIds=["db-a-id"]),
        res(network.CACHE_SUBNET_GROUP, "cache-subnets", subnetIds=["db-a-id"]),
        res(network.SECURITY_GROUP, "alb-sg"),
        res(network.SECURITY_GROUP, "svc-sg"),
        res(
            network.INGRESS_RULE,
            "alb-in-443",
            securityGroupId="alb-sg-id",
            cidrIpv4="0.0.0.0/0",
            ipProtocol="tcp",
            fromPort=443,
            toPort=443,
        ),
        res(
            network.INGRESS_RULE,
            "svc-in-alb",
            securityGroupId="svc-sg-id",
            referencedSecurityGroupId="alb-sg-id",
            ipProtocol="tcp",
            fromPort=8080,
            toPort=8080,
        ),
        res(network.LOAD_BALANCERS[0], "alb", securityGroups=["alb-sg-id"]),
        res(compute.ECS_SERVICE, "api", networkConfiguration={"securityGroups": ["svc-sg-id"], "assignPublicIp": False}),
    ]


def test_data_stores_in_isolated_subnets_pass() -> None:
    assert network.data_stores_without_internet_route(network_stack()) == []


def test_cache_in_nat_routed_subnet_is_reported() -> None:
    stack = replace_res(network_stack(), "cache-subnets", subnetIds=["private-a-id"])
    violations = network.data_stores_without_internet_route(stack)
    assert [(v.resource, v.message) for v in violations] == [
        (
            "cache-subnets",
            pci(
                "1.4.4",
                "cache subnet group places the cache in subnet 'private-a' whose route table 'private-rt' routes to "
                "NAT gateway 'nat'; use isolated subnets with no internet route",
            ),
        )
    ]


def test_database_in_igw_routed_subnet_is_reported() -> None:
    stack = replace_res(network_stack(), "db-subnets", subnetIds=["db-a-id", "public-a-id"])
    assert [v.message for v in network.data_stores_without_internet_route(stack)] == [
        pci(
            "1.4.4",
            "database subnet group places the database in subnet 'public-a' whose route table 'public-rt' routes to "
            "internet gateway 'igw'; use isolated subnets with no internet route",
        )
    ]


def test_main_route_table_applies_to_unassociated_subnet() -> None:
    stack = [
        *without(network_stack(), "db-a-assoc"),
        res(network.MAIN_ROUTE_TABLE_ASSOCIATION, "main", vpcId="vpc-id", routeTableId="public-rt-id"),
    ]
    assert [v.resource for v in network.data_stores_without_internet_route(stack)] == ["db-subnets", "cache-subnets"]


def test_internet_ingress_on_alb_security_group_passes() -> None:
    assert network.security_group_internet_ingress_alb_only(network_stack()) == []


def test_internet_ingress_on_service_security_group_is_reported() -> None:
    stack = [
        *network_stack(),
        res(
            network.INGRESS_RULE,
            "svc-in-world",
            securityGroupId="svc-sg-id",
            cidrIpv4="0.0.0.0/0",
            ipProtocol="tcp",
            fromPort=443,
            toPort=443,
        ),
    ]
    assert [(v.resource, v.message) for v in network.security_group_internet_ingress_alb_only(stack)] == [
        ("svc-in-world", pci("1.4.2", "security group 'svc-sg' is open to the internet but is not attached to a load balancer")),
        (
            "svc-in-world",
            pci(
                "1.4.2",
                "security group 'svc-sg' is open to the internet and is also attached to 'api' (aws:ecs/service:Service); "
                "only load balancers may use it",
            ),
        ),
    ]


#: The pgaudit settings of a compliant cluster parameter group (as lib/components/database.py sets them).
AUDIT_PARAMETERS: dict[str, str | None] = {
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "ddl,role,write",
    "pgaudit.log_parameter": "0",
}


def aurora_stack(force_ssl: str = "1", audit: dict[str, str | None] | None = None) -> list[StackResource]:
    """A cluster and its parameter group; ``audit`` overrides pgaudit settings (None removes one)."""
    values = {"rds.force_ssl": force_ssl, **AUDIT_PARAMETERS, **(audit or {})}
    return [
        res(
            data.RDS_CLUSTER_PARAMETER_GROUP,
            "aurora-pg",
            name="scalepay-aurora-prod",
            parameters=[{"name": k, "value": v} for k, v in values.items() if v is not None],
        ),
        res(data.RDS_CLUSTER, "cluster", **AURORA),
    ]


def test_aurora_ssl_only_passes_with_force_ssl() -> None:
    assert data.aurora_ssl_only(aurora_stack()) == []


def test_aurora_ssl_only_reports_force_ssl_zero() -> None:
    assert [(v.resource, v.message) for v in data.aurora_ssl_only(aurora_stack("0"))] == [
        (
            "cluster",
            pci(
                "4.2.1",
                "cluster parameter group 'aurora-pg' sets rds.force_ssl=0; "
                "it must be 1 so the database refuses unencrypted connections",
            ),
        )
    ]


def test_aurora_ssl_only_reports_missing_parameter_group() -> None:
    stack = replace_res(aurora_stack(), "cluster", dbClusterParameterGroupName=...)
    assert [v.message for v in data.aurora_ssl_only(stack)] == [
        pci(
            "4.2.1",
            "Aurora cluster references no cluster parameter group (dbClusterParameterGroupName); it must set rds.force_ssl=1",
        )
    ]


@pytest.mark.parametrize("audit", [{}, {"pgaudit.log": "all, -misc", "pgaudit.log_parameter": "off"}], ids=["classes", "all"])
def test_aurora_audit_logging_passes(audit: dict[str, str | None]) -> None:
    assert data.aurora_audit_logging(aurora_stack(audit=audit)) == []


def test_aurora_audit_logging_reports_each_missing_setting() -> None:
    stack = aurora_stack(
        audit={"shared_preload_libraries": "pg_stat_statements", "pgaudit.log": "all,-role", "pgaudit.log_parameter": None}
    )
    assert [(v.resource, v.message) for v in data.aurora_audit_logging(stack)] == [
        (
            "cluster",
            pci(
                "10.2.1",
                "cluster parameter group 'aurora-pg' does not load pgaudit "
                "(shared_preload_libraries=pg_stat_statements); it must include pgaudit",
            ),
        ),
        (
            "cluster",
            pci("10.2.1", "cluster parameter group 'aurora-pg' sets pgaudit.log=all,-role; it must include ddl and role"),
        ),
        (
            "cluster",
            pci(
                "10.2.1",
                "cluster parameter group 'aurora-pg' sets pgaudit.log_parameter=<unset>; it must be 0 so that bind "
                "parameter values (which may carry sensitive data) are not logged",
            ),
        ),
    ]


def test_aurora_audit_logging_needs_the_parameter_group_and_skips_mysql() -> None:
    stack = replace_res(aurora_stack(), "cluster", dbClusterParameterGroupName="scalepay-elsewhere")
    assert [v.message for v in data.aurora_audit_logging(stack)] == [
        pci(
            "10.2.1",
            "Aurora cluster references parameter group 'scalepay-elsewhere' that is not part of this stack; "
            "it must load and configure pgaudit",
        )
    ]
    mysql = replace_res(aurora_stack(audit={"shared_preload_libraries": None}), "cluster", engine="aurora-mysql")
    assert data.aurora_audit_logging(mysql) == []


def edge_stack() -> list[StackResource]:
    redirect = {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
    return [
        res(edge.LOAD_BALANCERS[0], "alb", loadBalancerType="application", internal=False),
        res(
            edge.LISTENERS[0],
            "https",
            protocol="HTTPS",
            loadBalancerArn="arn:aws:x:us-east-1:123456789012:alb",
            sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
            defaultActions=[{"type": "fixed-response"}],
        ),
        res(
            edge.LISTENERS[0],
            "http",
            protocol="HTTP",
            loadBalancerArn="arn:aws:x:us-east-1:123456789012:alb",
            defaultActions=[redirect],
        ),
        res(
            edge.LISTENER_RULES[0],
            "api-rule",
            listenerArn="arn:aws:x:us-east-1:123456789012:https",
            actions=[{"type": "forward"}],
        ),
        res(edge.WAF_ASSOCIATION, "waf-assoc", resourceArn="arn:aws:x:us-east-1:123456789012:alb", webAclArn="arn:waf"),
    ]


def test_http_listener_redirect_only_passes() -> None:
    assert edge.alb_http_only_redirects(edge_stack()) == []


def test_http_listener_forwarding_is_reported() -> None:
    stack = replace_res(edge_stack(), "http", defaultActions=[{"type": "forward", "targetGroupArn": "tg"}])
    assert [(v.resource, v.message) for v in edge.alb_http_only_redirects(stack)] == [
        ("http", pci("4.2.1", "HTTP listener default action is 'forward'; it must only redirect to HTTPS"))
    ]


def test_rule_forwarding_on_http_listener_is_reported() -> None:
    stack = [
        *edge_stack(),
        res(edge.LISTENER_RULES[0], "sneaky", listenerArn="arn:aws:x:us-east-1:123456789012:http", actions=[{"type": "forward"}]),
    ]
    assert [(v.resource, v.message) for v in edge.alb_http_only_redirects(stack)] == [
        ("sneaky", pci("4.2.1", "listener rule on HTTP listener 'http' serves traffic instead of redirecting to HTTPS"))
    ]


def test_alb_without_https_listener_is_reported() -> None:
    assert [(v.resource, v.message) for v in edge.alb_http_only_redirects(without(edge_stack(), "https"))] == [
        ("alb", pci("4.2.1", "internet-facing load balancer has no HTTPS listener"))
    ]


def test_waf_attached_passes_and_missing_association_is_reported() -> None:
    assert edge.waf_attached(edge_stack()) == []
    assert [(v.resource, v.message) for v in edge.waf_attached(without(edge_stack(), "waf-assoc"))] == [
        ("alb", pci("6.4.2", "internet-facing load balancer has no WAF web ACL association"))
    ]


def test_waf_not_needed_on_internal_alb() -> None:
    stack = replace_res(without(edge_stack(), "waf-assoc"), "alb", internal=True)
    assert edge.waf_attached(stack) == []


def test_vpc_flow_logs() -> None:
    vpc = res(logging.VPC, "vpc")
    flow = res(logging.FLOW_LOG, "flow", vpcId="vpc-id", trafficType="ALL")
    assert logging.vpc_flow_logs([vpc, flow]) == []
    assert [v.message for v in logging.vpc_flow_logs([vpc])] == [pci("10.2.1", "VPC has no flow log")]
    reject_only = res(logging.FLOW_LOG, "flow", vpcId="vpc-id", trafficType="REJECT")
    assert [v.message for v in logging.vpc_flow_logs([vpc, reject_only])] == [
        pci("10.2.1", "VPC flow logs do not record ALL traffic (trafficType)")
    ]


TLS_ONLY = policy_doc(
    {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
)


def bucket_stack() -> list[StackResource]:
    return [
        res(logging.BUCKETS[0], "logs", bucket="scalepay-logs-prod"),
        res(
            logging.PUBLIC_ACCESS_BLOCK,
            "logs-pab",
            bucket="scalepay-logs-prod",
            blockPublicAcls=True,
            blockPublicPolicy=True,
            ignorePublicAcls=True,
            restrictPublicBuckets=True,
        ),
        res(logging.BUCKET_POLICY, "logs-policy", bucket="scalepay-logs-prod", policy=TLS_ONLY),
        res(
            logging.ENCRYPTION[0],
            "logs-sse",
            bucket="scalepay-logs-prod",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        ),
        res(logging.VERSIONING[0], "logs-versioning", bucket="scalepay-logs-prod", versioningConfiguration={"status": "Enabled"}),
    ]


@pytest.mark.parametrize(
    "check", [logging.s3_public_access_blocked, logging.s3_tls_only, logging.s3_encrypted, logging.s3_versioned]
)
def test_bucket_with_all_guards_passes(check: Callable[..., Any]) -> None:
    assert check(bucket_stack()) == []


@pytest.mark.parametrize(
    ("check", "missing", "message"),
    [
        (logging.s3_public_access_blocked, "logs-pab", pci("10.3.1", "bucket has no public access block")),
        (logging.s3_tls_only, "logs-policy", pci("4.2.1", "bucket policy does not deny s3:* when aws:SecureTransport is false")),
        (logging.s3_encrypted, "logs-sse", pci("10.3.2", "bucket has no default server-side encryption configuration")),
        (logging.s3_versioned, "logs-versioning", pci("10.3.3", "bucket versioning is not enabled")),
    ],
)
def test_bucket_missing_guard_is_reported(check: Callable[..., Any], missing: str, message: str) -> None:
    assert [(v.resource, v.message) for v in check(without(bucket_stack(), missing))] == [("logs", message)]


def test_partial_public_access_block_is_reported() -> None:
    stack = replace_res(bucket_stack(), "logs-pab", restrictPublicBuckets=False)
    assert [v.message for v in logging.s3_public_access_blocked(stack)] == [
        pci("10.3.1", "bucket public access block leaves restrictPublicBuckets off")
    ]


def test_suspended_versioning_and_plain_http_policy_are_reported() -> None:
    stack = replace_res(bucket_stack(), "logs-versioning", versioningConfiguration={"status": "Suspended"})
    stack = replace_res(
        stack,
        "logs-policy",
        policy=policy_doc(
            {
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::logs/*",
            }
        ),
    )
    assert [v.message for v in logging.s3_versioned(stack)] == [pci("10.3.3", "bucket versioning is not enabled")]
    assert [v.message for v in logging.s3_tls_only(stack)] == [
        pci("4.2.1", "bucket policy does not deny s3:* when aws:SecureTransport is false")
    ]


CLOUDTRAIL_ENCRYPT = {
    "Sid": "AllowCloudTrailToEncryptLogs",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:GenerateDataKey*",
    "Resource": "*",
}
CLOUDTRAIL_DECRYPT = {
    "Sid": "AllowCloudTrailBucketKey",
    "Effect": "Allow",
    "Principal": {"Service": ["cloudtrail.amazonaws.com"]},
    "Action": ["kms:Decrypt"],
    "Resource": "*",
}
KEY_ADMIN = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*"}


def sse_kms(key: str, bucket_key: bool) -> list[dict[str, Any]]:
    return [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}, "bucketKeyEnabled": bucket_key}
    ]


def audit_stack() -> list[StackResource]:
    """A trail and a Config delivery channel sharing one locked, lifecycled, access-logged bucket (Bucket Key on)."""
    return [
        res(logging.BUCKETS[0], "audit", bucket="scalepay-audit-prod", objectLockEnabled=True),
        res(
            logging.OBJECT_LOCK[0],
            "audit-lock",
            bucket="audit-id",
            rule={"defaultRetention": {"mode": "COMPLIANCE", "days": 365.0}},
        ),
        res(
            logging.LIFECYCLE[0],
            "audit-lifecycle",
            bucket="audit-id",
            rules=[{"id": "retain-then-expire", "status": "Enabled", "expiration": {"days": 365}}],
        ),
        res(logging.ACCESS_LOGGING[0], "audit-access-logging", bucket="audit-id", targetBucket="scalepay-access-prod"),
        res(logging.ENCRYPTION[0], "audit-sse", bucket="audit-id", rules=sse_kms("audit-key-id", bucket_key=True)),
        res(logging.KMS_KEY, "audit-key", policy=policy_doc(KEY_ADMIN, CLOUDTRAIL_ENCRYPT, CLOUDTRAIL_DECRYPT)),
        res(logging.TRAIL, "trail", s3BucketName="scalepay-audit-prod", kmsKeyId="audit-key-id"),
        res(logging.CONFIG_DELIVERY_CHANNEL, "config-channel", s3BucketName="scalepay-audit-prod"),
    ]


@pytest.mark.parametrize("params", [DEFAULT_PARAMS, ENVIRONMENT_PARAMS["staging"]], ids=["prod", "staging"])
def test_locked_audit_bucket_passes(params: Params) -> None:
    assert logging.audit_buckets_locked(audit_stack(), params) == []


def test_audit_bucket_without_lock_lifecycle_or_access_logging_is_reported() -> None:
    stack = replace_res(audit_stack(), "audit", objectLockEnabled=...)
    for name in ("audit-lock", "audit-lifecycle", "audit-access-logging"):
        stack = without(stack, name)
    what = "CloudTrail and AWS Config log bucket"
    assert [(v.resource, v.message) for v in logging.audit_buckets_locked(stack)] == [
        ("audit", pci("10.5.1", f"{what} does not enable S3 Object Lock (objectLockEnabled is not true)")),
        ("audit", pci("10.5.1", f"{what} has no default Object Lock retention (BucketObjectLockConfiguration)")),
        ("audit", pci("10.5.1", f"{what} has no lifecycle configuration (BucketLifecycleConfiguration)")),
        ("audit", pci("10.5.1", f"{what} has no server access logging (BucketLogging)")),
    ]


def test_audit_bucket_retention_counts_days_or_years_against_the_environment() -> None:
    ninety = replace_res(audit_stack(), "audit-lock", rule={"defaultRetention": {"mode": "GOVERNANCE", "days": 90}})
    assert [v.message for v in logging.audit_buckets_locked(ninety)] == [
        pci(
            "10.5.1",
            "CloudTrail and AWS Config log bucket locks objects for 90 days by default (BucketObjectLockConfiguration); "
            "at least 365 are required",
        )
    ]
    assert logging.audit_buckets_locked(ninety, ENVIRONMENT_PARAMS["staging"]) == []
    one_year = replace_res(audit_stack(), "audit-lock", rule={"defaultRetention": {"mode": "COMPLIANCE", "years": 1}})
    assert logging.audit_buckets_locked(one_year) == []


def test_audit_bucket_outside_the_stack_is_reported() -> None:
    stack = replace_res(audit_stack(), "trail", s3BucketName="org-cloudtrail-bucket")
    assert [(v.resource, v.message) for v in logging.audit_buckets_locked(stack)] == [
        (
            "trail",
            pci(
                "10.5.1",
                "CloudTrail 'trail' writes to bucket 'org-cloudtrail-bucket' that is not part of this stack; "
                "its Object Lock, retention, lifecycle and access logging cannot be checked",
            ),
        )
    ]
    # A bucket that only some other writer uses is not an audit bucket.
    assert logging.audit_buckets_locked(without(without(audit_stack(), "trail"), "config-channel")) == []


def test_cloudtrail_bucket_key_with_decrypt_grant_passes() -> None:
    assert logging.cloudtrail_bucket_key_decrypt(audit_stack()) == []
    wildcard = {**CLOUDTRAIL_DECRYPT, "Action": "kms:Decrypt*"}
    stack = replace_res(audit_stack(), "audit-key", policy=policy_doc(KEY_ADMIN, CLOUDTRAIL_ENCRYPT, wildcard))
    assert logging.cloudtrail_bucket_key_decrypt(stack) == []


@pytest.mark.parametrize(
    "rules",
    [
        sse_kms("audit-key-id", bucket_key=False),
        [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": True}],
    ],
    ids=["bucket-key-off", "sse-s3"],
)
def test_cloudtrail_bucket_without_kms_bucket_key_needs_no_decrypt(rules: list[dict[str, Any]]) -> None:
    stack = replace_res(audit_stack(), "audit-key", policy=policy_doc(KEY_ADMIN, CLOUDTRAIL_ENCRYPT))
    assert logging.cloudtrail_bucket_key_decrypt(replace_res(stack, "audit-sse", rules=rules)) == []


def test_cloudtrail_bucket_key_without_decrypt_grant_is_reported() -> None:
    stack = replace_res(audit_stack(), "audit-key", policy=policy_doc(KEY_ADMIN, CLOUDTRAIL_ENCRYPT))
    expected = [
        (
            "trail",
            pci(
                "10.2.1",
                "CloudTrail bucket 'audit' uses an S3 Bucket Key, but the policy of KMS key 'audit-key' does not allow "
                "cloudtrail.amazonaws.com kms:Decrypt; CloudTrail cannot deliver its log files",
            ),
        )
    ]
    assert [(v.resource, v.message) for v in logging.cloudtrail_bucket_key_decrypt(stack)] == expected
    # The key named through an alias is resolved to the same key.
    aliased = [
        *replace_res(stack, "audit-sse", rules=sse_kms("alias/scalepay-audit", bucket_key=True)),
        res(logging.KMS_ALIAS, "audit-alias", name="alias/scalepay-audit", targetKeyId="audit-key-id"),
    ]
    assert [(v.resource, v.message) for v in logging.cloudtrail_bucket_key_decrypt(aliased)] == expected


def test_cloudtrail_bucket_key_with_a_key_outside_the_stack_is_reported() -> None:
    foreign = "arn:aws:kms:us-east-1:210987654321:key/other"
    stack = replace_res(audit_stack(), "audit-sse", rules=sse_kms(foreign, bucket_key=True))
    assert [v.message for v in logging.cloudtrail_bucket_key_decrypt(stack)] == [
        pci(
            "10.2.1",
            f"CloudTrail bucket 'audit' uses an S3 Bucket Key with KMS key '{foreign}' that is not part of this stack; "
            "its key policy must allow cloudtrail.amazonaws.com kms:Decrypt",
        )
    ]


INSIGHTS_GROUP = "/aws/ecs/containerinsights/scalepay-cluster-prod/performance"


def insights_stack(setting: str = "enabled") -> list[StackResource]:
    return [
        res(
            logging.ECS_CLUSTER,
            "cluster",
            name="scalepay-cluster-prod",
            settings=[{"name": "containerInsights", "value": setting}],
        ),
        res(logging.LOG_GROUP, "insights-logs", name=INSIGHTS_GROUP, kmsKeyId=KEY_ARN, retentionInDays=365),
    ]


@pytest.mark.parametrize("setting", ["enabled", "enhanced"])
def test_container_insights_log_group_in_stack_passes(setting: str) -> None:
    assert logging.container_insights_logs_managed(insights_stack(setting)) == []


def test_container_insights_off_needs_no_log_group() -> None:
    assert logging.container_insights_logs_managed(without(insights_stack("disabled"), "insights-logs")) == []


def test_container_insights_log_group_missing_or_unencrypted_is_reported() -> None:
    assert [
        (v.resource, v.message) for v in logging.container_insights_logs_managed(without(insights_stack(), "insights-logs"))
    ] == [
        (
            "cluster",
            pci(
                "10.3.2",
                f"ECS cluster has Container Insights on but the stack does not create its log group '{INSIGHTS_GROUP}'; "
                "Container Insights would create it unencrypted and keep it forever",
            ),
        )
    ]
    unencrypted = replace_res(insights_stack("enhanced"), "insights-logs", kmsKeyId=...)
    assert [v.message for v in logging.container_insights_logs_managed(unencrypted)] == [
        pci(
            "10.3.2",
            f"Container Insights log group '{INSIGHTS_GROUP}' is not encrypted with a customer-managed KMS key (kmsKeyId)",
        )
    ]


TOPIC_ARN = "arn:aws:x:us-east-1:123456789012:alarms"
SCALE_OUT = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:abc:autoScalingGroupName/asg:policyName/out"


def alarm_stack() -> list[StackResource]:
    return [
        res(logging.TOPIC, "alarms", name="scalepay-alarms-prod"),
        res(logging.TOPIC_SUBSCRIPTION, "oncall", topic=TOPIC_ARN, protocol="sqs", endpoint="arn:aws:sqs:::oncall"),
        res(logging.METRIC_ALARM, "cpu-high", alarmActions=[TOPIC_ARN], okActions=[TOPIC_ARN]),
        res(logging.METRIC_ALARM, "5xx", alarmActions=[TOPIC_ARN, SCALE_OUT]),
    ]


def test_alarm_topic_with_subscription_passes() -> None:
    assert logging.alarm_topic_has_subscriber(alarm_stack()) == []


def test_alarm_topic_without_subscription_is_reported() -> None:
    assert [(v.resource, v.message) for v in logging.alarm_topic_has_subscriber(without(alarm_stack(), "oncall"))] == [
        (
            "alarms",
            pci(
                "10.7.2",
                "SNS topic 'alarms' is the alarm action of 2 CloudWatch alarm(s) but has no subscription "
                "(TopicSubscription); nobody receives the alarms",
            ),
        )
    ]


def test_alarm_topic_outside_the_stack_needs_a_subscription_too() -> None:
    external = "arn:aws:sns:us-east-1:123456789012:org-oncall"
    stack = replace_res(alarm_stack(), "5xx", alarmActions=[external, SCALE_OUT])
    assert [(v.resource, v.message) for v in logging.alarm_topic_has_subscriber(stack)] == [
        (
            "5xx",
            pci(
                "10.7.2",
                f"SNS topic '{external}' is the alarm action of 1 CloudWatch alarm(s) but has no subscription "
                "(TopicSubscription); nobody receives the alarms",
            ),
        )
    ]
    subscribed = [*stack, res(logging.TOPIC_SUBSCRIPTION, "org-oncall-sub", topic=external, protocol="email")]
    assert logging.alarm_topic_has_subscriber(subscribed) == []


# --- the catalogue itself ------------------------------------------------------------------------

STACK_RULE_TESTS = {
    "sg-internet-ingress-alb-only": test_internet_ingress_on_service_security_group_is_reported,
    "data-stores-no-internet-route": test_cache_in_nat_routed_subnet_is_reported,
    "aurora-ssl-only": test_aurora_ssl_only_reports_force_ssl_zero,
    "alb-http-only-redirects": test_http_listener_forwarding_is_reported,
    "waf-attached": test_waf_attached_passes_and_missing_association_is_reported,
    "vpc-flow-logs": test_vpc_flow_logs,
    "s3-public-access-blocked": test_bucket_missing_guard_is_reported,
    "s3-tls-only": test_bucket_missing_guard_is_reported,
    "s3-encrypted": test_bucket_missing_guard_is_reported,
    "s3-versioned": test_bucket_missing_guard_is_reported,
    "aurora-audit-logging": test_aurora_audit_logging_reports_each_missing_setting,
    "audit-buckets-locked": test_audit_bucket_without_lock_lifecycle_or_access_logging_is_reported,
    "cloudtrail-bucket-key-decrypt": test_cloudtrail_bucket_key_without_decrypt_grant_is_reported,
    "container-insights-logs-managed": test_container_insights_log_group_missing_or_unencrypted_is_reported,
    "alarm-topic-has-subscriber": test_alarm_topic_without_subscription_is_reported,
}


def test_at_least_25_uniquely_named_rules_in_six_domains() -> None:
    names = [r.name for r in ALL_RULES]
    assert len(names) >= 25 and len(set(names)) == len(names), names
    assert {r.domain for r in ALL_RULES} == {"network", "data", "compute", "edge", "logging", "identity"}


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if isinstance(r, ResourceRule)], ids=lambda r: r.name)
def test_every_resource_rule_has_compliant_and_violating_cases_naming_its_requirement(rule: ResourceRule) -> None:
    cases = [c for c in CASES.values() if c.check is rule.check]
    assert any(not c.expected for c in cases), f"{rule.name}: no compliant case"
    violating = [m for c in cases for m in c.expected]
    assert violating, f"{rule.name}: no violating case"
    assert all(m.startswith(f"PCI DSS 4.0 Req {rule.requirement}: ") for m in violating), rule.name
    assert all(c.resource_type in rule.resource_types for c in cases), rule.name


@pytest.mark.parametrize("rule", [r for r in ALL_RULES if isinstance(r, StackRule)], ids=lambda r: r.name)
def test_every_stack_rule_is_tested(rule: StackRule) -> None:
    assert rule.name in STACK_RULE_TESTS, f"{rule.name}: no stack-rule test"
