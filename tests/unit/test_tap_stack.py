"""Whole-stack unit tests: the real program under Pulumi mocks, for every environment.

Component files have their own detailed tests; this file holds the requirements that cut
across components (configuration and validation, tags and names, outputs, protection, the
security-group perimeter, least privilege, determinism) and the environment progression.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import json
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import pytest

from lib import config as cfg
from tools.evaluate import Evaluation, Registration, default_config, evaluate

ENVS = ("dev", "staging", "prod")
STANDARD_TAGS = ("Project", "Environment", "Component", "ManagedBy", "CostCenter", "Compliance")


@pytest.fixture(scope="module")
def stacks(evaluated: Callable[[str], Evaluation]) -> dict[str, Evaluation]:
    return {env: evaluated(env) for env in ENVS}


def preset(env: str) -> cfg.EnvironmentConfig:
    return cfg.PRESETS[cfg.Environment(env)]


@cache
def _resource_class(token: str) -> Any:
    """The pulumi_aws (or other provider) class behind a type token such as aws:ec2/vpc:Vpc."""
    provider, module, name = token.split(":")
    package = {"aws": "pulumi_aws", "random": "pulumi_random", "tls": "pulumi_tls"}[provider]
    sub = module.split("/")[0]
    mod = importlib.import_module(package if sub == "index" else f"{package}.{sub}")
    return getattr(mod, name)


def is_taggable(token: str) -> bool:
    """True if the resource type accepts a ``tags`` input."""
    if not token.startswith("aws:"):
        return False
    return "tags" in inspect.signature(_resource_class(token)._internal_init).parameters


def config_error(env: str, overrides: dict[str, str], drop: tuple[str, ...] = ()) -> tuple[str, list[Registration]]:
    """Evaluate with overrides that must fail; return the message and what was registered."""
    registered: list[Registration] = []
    config = {k: v for k, v in default_config(env).items() if k not in drop}
    config.update({f"scalepayments:{k}": v for k, v in overrides.items()})
    with pytest.raises(cfg.ConfigError) as excinfo:
        evaluate(env, config, on_register=registered.append)
    return str(excinfo.value), registered


# --- validation: message names the key, the bad value and what is allowed; nothing registered --------


class Invalid(NamedTuple):
    """Settings the program must refuse before registering anything, and what its message must name."""

    #: The settings given (without the ``scalepayments:`` namespace).
    overrides: dict[str, str]
    #: The setting the message names (without the namespace, which the message must include).
    key: str
    #: The refused value, as the message quotes it.
    value: str
    #: A fragment of what the message says is allowed.
    allowed: str
    #: Settings removed from the environment's defaults (full ``scalepayments:`` keys).
    drop: tuple[str, ...] = ()


def rejected(key: str, value: str, allowed: str) -> Invalid:
    """The usual case: one setting with a bad value, refused by a message naming that setting and value."""
    return Invalid({key: value}, key, value, allowed)


VALIDATION_CASES: dict[str, Invalid] = {
    "environment": Invalid({"environment": "qa"}, "environment", "'qa'", "dev, staging, prod"),
    "malformed CIDR": rejected("vpcCidr", "10.0.0.0/33", "CIDR"),
    "host bits CIDR": rejected("vpcCidr", "10.0.0.1/16", "CIDR"),
    "public CIDR": rejected("vpcCidr", "8.8.0.0/16", "private"),
    "overlapping CIDR": rejected("vpcCidr", "10.2.0.0/17", "prod VPC (10.2.0.0/16)"),
    # Issue #9.7: another environment's block itself is refused too, not only a part of it.
    "another environment's CIDR": rejected("vpcCidr", "10.2.0.0/16", "prod VPC"),
    "AZ count beyond plan": rejected("azCount", "4", "at most 3"),
    "AZ count one": rejected("azCount", "1", "2 to 6"),
    "min tasks zero": rejected("minTasks", "0", "at least 1"),
    "min above max": Invalid({"minTasks": "5", "maxTasks": "3"}, "maxTasks", "3", "at least minTasks (5)"),
    "fargate memory": Invalid({"apiCpu": "256", "apiMemory": "4096"}, "apiMemory", "4096", "512-2048"),
    "fargate cpu": rejected("paymentCpu", "300", "[256, 512, 1024, 2048, 4096]"),
    "aurora micro": rejected("dbInstanceClass", "db.t3.micro", "db.t4g.medium"),
    "backup zero": rejected("dbBackupRetentionDays", "0", "1 to 35"),
    "backup 36": rejected("dbBackupRetentionDays", "36", "1 to 35"),
    "log retention": rejected("logRetentionDays", "10", "365"),
    "monitoring interval": rejected("dbMonitoringInterval", "7", "[0, 1, 5, 10, 15, 30, 60]"),
    "name too long": Invalid({"environmentSuffix": "longname"}, "environmentSuffix", "scalepay-notif-tg-staging-longname", "32"),
    "suffix charset": rejected("environmentSuffix", "PR_1", "lowercase"),
    "default db user": rejected("dbMasterUsername", "postgres", "not a default"),
    "no certificate": Invalid({}, "certificateArn", "None", "refuses to deploy", drop=("scalepayments:certificateArn",)),
    "self-signed outside dev": Invalid(
        {"selfSignedCertificateFallback": "true"}, "selfSignedCertificateFallback", "True", "dev only"
    ),
    "unknown key": Invalid({"dbInstanceClas": "db.r5.large"}, "dbInstanceClas", "unknown setting", "dbInstanceClass"),
    "not a boolean": rejected("wafEnabled", "maybe", "true or false"),
    "redis multi-az one node": Invalid({"cacheNodeCount": "1"}, "cacheAutomaticFailover", "True", "at least 2"),
    "waf rate limit": rejected("wafRateLimit", "5", "10 to"),
    "kms window": rejected("kmsDeletionWindowDays", "3", "7 to 30"),
    # Issue #8.2: staging and prod pull nothing anonymously from a public registry.
    "public image": Invalid(
        {"paymentImage": "nginxinc/nginx-unprivileged:1.27-alpine"},
        "paymentImage",
        "nginxinc/nginx-unprivileged:1.27-alpine",
        "private Amazon ECR registry",
    ),
    "public images outside dev": Invalid({"allowPublicImages": "true"}, "allowPublicImages", "True", "false outside dev"),
    # Issue #8.8: alarms must page someone in staging and prod.
    "no alarm subscriber": Invalid({}, "alarmEmail", "None", "page nobody", drop=("scalepayments:alarmSubscriberArns",)),
    "not an https endpoint": Invalid(
        {"alarmHttpsEndpoint": "http://hooks.example.com"}, "alarmHttpsEndpoint", "http://", "https://"
    ),
    # Issue #8.4: a shared account names its singleton owner explicitly.
    "shared account owner": Invalid({"accountModel": "shared"}, "manageAccountSingletons", "None", "exactly one"),
    "account model": rejected("accountModel", "pooled", "dedicated"),
    # Issue #8.3: IAM authentication to Redis needs Redis 7.
    "redis 6": rejected("cacheEngineVersion", "6.2", "7.0 or later"),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES.values()), ids=list(VALIDATION_CASES))
def test_invalid_setting_is_rejected_before_any_resource(case: Invalid) -> None:
    message, registered = config_error("staging", case.overrides, case.drop)
    assert f"scalepayments:{case.key}" in message, message
    assert case.value in message, message
    assert case.allowed in message, message
    assert registered == [], f"resources registered before validation failed: {[r.name for r in registered]}"


@pytest.mark.parametrize(
    ("env", "cidr", "accepted"),
    [
        ("dev", "10.0.0.0/16", True),  # its own block
        ("dev", "10.0.0.0/17", True),  # a subset of its own block
        ("dev", "10.9.0.0/16", True),  # disjoint from every environment
        ("dev", "10.1.0.0/16", False),  # equal to staging's
        ("dev", "10.2.128.0/17", False),  # inside prod's
        ("prod", "10.0.0.0/18", False),  # inside dev's
    ],
)
def test_vpc_cidr_may_not_equal_or_overlap_another_environment(env: str, cidr: str, accepted: bool) -> None:
    raw = {k.split(":", 1)[1]: v for k, v in default_config(env).items() if k.startswith("scalepayments:")}
    if accepted:
        assert cfg.build(env, {**raw, "vpcCidr": cidr}).network.vpc_cidr == cidr
    else:
        with pytest.raises(cfg.ConfigError, match=r"scalepayments:vpcCidr: invalid value .*does not overlap the \w+ VPC"):
            cfg.build(env, {**raw, "vpcCidr": cidr})


def test_environment_defaults_to_stack_name() -> None:
    prod = {k.split(":", 1)[1]: v for k, v in default_config("prod").items() if k.startswith("scalepayments:")}
    assert cfg.build("prod", prod).environment is cfg.Environment.PROD
    message, registered = config_error("sandbox", {})
    assert "defaulted from the stack name" in message and "'sandbox'" in message
    assert registered == []


def test_an_ephemeral_copy_is_unprotected_and_owns_no_account_singleton() -> None:
    """Issue #8.10: an environmentSuffix copy tears down cleanly and can be recreated at once under the same name."""
    prod = {k.split(":", 1)[1]: v for k, v in default_config("prod").items() if k.startswith("scalepayments:")}
    copy = cfg.build("prod", {**prod, "environmentSuffix": "pr7"})
    assert (copy.protection.protect, copy.protection.retain_on_delete) == (False, False)
    assert (copy.database.deletion_protection, copy.database.final_snapshot, copy.edge.alb_deletion_protection) == (False,) * 3
    assert copy.account_security.manage_account_singletons is False, "a copy shares its original's account"
    explicit = cfg.build("prod", {**prod, "environmentSuffix": "pr7", "protectResources": "true"})
    assert explicit.protection.protect is True, "explicit configuration still wins"
    evaluation = evaluate("prod", {**default_config("prod"), "scalepayments:environmentSuffix": "pr7"})
    assert not [r.name for r in evaluation.registrations if r.protect or r.retain_on_delete]
    assert all(b.inputs["forceDestroy"] is True for b in evaluation.of_type("aws:s3/bucket:Bucket"))
    assert all(r.inputs["forceDelete"] is True for r in evaluation.of_type("aws:ecr/repository:Repository"))
    assert evaluation.of_type("aws:guardduty/detector:Detector") == []


def test_environment_setting_overrides_stack_name() -> None:
    evaluation = evaluate("pr-1234", {**default_config("dev"), "scalepayments:environment": "dev"})
    assert evaluation.outputs["environment"] == "dev"
    assert evaluation.outputs["vpcCidr"] == "10.0.0.0/16"


def test_preset_table_matches_design() -> None:
    """The README environment table, row by row."""
    expected = {
        "dev": ("10.0.0.0/16", 2, True, (1, 2), 1, 1, False, False),
        "staging": ("10.1.0.0/16", 2, False, (2, 4), 2, 7, True, True),
        "prod": ("10.2.0.0/16", 3, False, (3, 10), 3, 30, True, True),
    }
    for env, (cidr, azs, single_nat, tasks, instances, backups, insights, security) in expected.items():
        p = preset(env)
        assert (p.network.vpc_cidr, p.network.az_count, p.network.single_nat_gateway) == (cidr, azs, single_nat), env
        assert (p.compute.min_tasks, p.compute.max_tasks) == tasks, env
        assert (p.database.instance_count, p.database.backup_retention_days) == (instances, backups), env
        assert p.database.performance_insights is insights and (p.database.monitoring_interval_seconds > 0) is insights, env
        assert p.account_security.enabled is security and p.edge.waf_enabled is security, env
    assert preset("prod").database.instance_class == "db.r5.xlarge"
    assert preset("dev").database.instance_class in ("db.t3.medium", "db.t4g.medium")
    assert preset("prod").observability.log_retention_days >= 365
    assert preset("prod").protection.protect and preset("prod").database.deletion_protection
    assert not preset("dev").protection.protect and not preset("dev").database.final_snapshot
    assert preset("staging").database.final_snapshot and not preset("staging").protection.protect


def test_every_override_key_is_declared_in_pulumi_yaml() -> None:
    with open("Pulumi.yaml", encoding="utf-8") as handle:
        declared = handle.read()
    for key in sorted(cfg.KNOWN_KEYS):
        assert f"scalepayments:{key}:" in declared, f"{key} missing from Pulumi.yaml"


def test_pulumi_yaml_and_readme_configuration_reference_are_generated_from_the_declarations() -> None:
    """Pulumi.yaml's config block and the README table come from lib/config.py (make config-reference)."""
    from tools import config_reference

    assert config_reference.stale() == []
    block = config_reference.pulumi_yaml_config_block()
    assert block.count("    type: ") == len(cfg.KNOWN_KEYS)
    table = config_reference.readme_table()
    for declared in cfg.OVERRIDES:
        assert f"| `{declared.key}` |" in table, declared.key


def test_a_setting_is_declared_once_on_its_field() -> None:
    """Every override key maps to exactly one declared field, and every declared field has a parser."""
    keys = [o.key for o in cfg.OVERRIDES]
    assert len(keys) == len(set(keys))
    for declared in (*cfg.OVERRIDES, *cfg.SERVICE_OVERRIDES):
        assert declared.yaml_type in ("string", "integer", "boolean", "number"), declared.key
        assert declared.setting.help, declared.key
    assert cfg.KNOWN_KEYS == {s.key for s in cfg.STACK_SETTINGS} | set(keys) | {
        f"{name}{o.key}" for name in cfg.SERVICE_NAMES for o in cfg.SERVICE_OVERRIDES
    }


def test_overrides_reach_the_resources() -> None:
    config = {
        **default_config("staging"),
        "scalepayments:minTasks": "3",
        "scalepayments:maxTasks": "6",
        "scalepayments:dbInstanceClass": "db.r6g.xlarge",
        "scalepayments:paymentCpu": "1024",
        "scalepayments:paymentMemory": "3072",
    }
    evaluation = evaluate("staging", config)
    targets = evaluation.of_type("aws:appautoscaling/target:Target")
    assert targets and all((t.inputs["minCapacity"], t.inputs["maxCapacity"]) == (3, 6) for t in targets)
    classes = {r.inputs["instanceClass"] for r in evaluation.of_type("aws:rds/clusterInstance:ClusterInstance")}
    assert classes == {"db.r6g.xlarge"}
    payment = [t for t in evaluation.of_type("aws:ecs/taskDefinition:TaskDefinition") if "payment" in t.inputs["family"]]
    assert [(t.inputs["cpu"], t.inputs["memory"]) for t in payment] == [("1024", "3072")]


# --- tags and names ----------------------------------------------------------------------------------


def test_every_taggable_resource_has_the_standard_tags(stack: Evaluation) -> None:
    env = stack.outputs["environment"]
    checked = 0
    for r in stack.custom():
        if not is_taggable(r.type):
            continue
        checked += 1
        tags = r.inputs.get("tags") or {}
        missing = [t for t in STANDARD_TAGS if t not in tags]
        assert not missing, f"{r.type} {r.name} lacks tags {missing}"
        assert tags["Environment"] == env and tags["ManagedBy"] == "pulumi" and tags["Project"] == "ScalePayments", r.name
    assert checked > 50


def test_every_ec2_family_resource_has_a_name_tag(stack: Evaluation) -> None:
    for r in stack.custom():
        if r.type.startswith(("aws:ec2/", "aws:vpc/")) and is_taggable(r.type):
            name = (r.inputs.get("tags") or {}).get("Name", "")
            assert name.startswith("scalepay-"), f"{r.type} {r.name} Name tag {name!r}"


def test_no_tag_changes_between_runs(stack: Evaluation) -> None:
    """No timestamp or random value in inputs: two evaluations are identical (no diff on every up)."""
    again = evaluate(stack.stack, default_config(stack.stack))
    first = {(r.type, r.name): r.inputs for r in stack.registrations}
    second = {(r.type, r.name): r.inputs for r in again.registrations}
    assert first == second


@pytest.mark.parametrize(
    ("token", "field", "limit"),
    [
        ("aws:lb/loadBalancer:LoadBalancer", "name", 32),
        ("aws:lb/targetGroup:TargetGroup", "name", 32),
        ("aws:elasticache/replicationGroup:ReplicationGroup", "replicationGroupId", 40),
        ("aws:rds/cluster:Cluster", "clusterIdentifier", 63),
        ("aws:rds/clusterInstance:ClusterInstance", "identifier", 63),
        ("aws:iam/role:Role", "name", 64),
        ("aws:ecs/cluster:Cluster", "name", 255),
    ],
)
def test_names_follow_convention_and_limits(stack: Evaluation, token: str, field: str, limit: int) -> None:
    env = stack.outputs["environment"]
    found = stack.of_type(token)
    assert found, f"no {token} registered"
    for r in found:
        value = r.inputs[field]
        assert value.startswith("scalepay-"), f"{r.name}: {value}"
        assert f"-{env}" in value, f"{r.name}: {value} lacks the environment"
        assert len(value) <= limit, f"{r.name}: {value} is {len(value)} > {limit}"


def test_environment_suffix_reaches_every_bounded_name() -> None:
    evaluation = evaluate("dev", {**default_config("dev"), "scalepayments:environmentSuffix": "pr7"})
    assert evaluation.one("aws:lb/loadBalancer:LoadBalancer").inputs["name"] == "scalepay-alb-dev-pr7"
    assert evaluation.one("aws:rds/cluster:Cluster").inputs["clusterIdentifier"].endswith("-dev-pr7")
    rg = evaluation.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert rg.inputs["replicationGroupId"] == "scalepay-redis-dev-pr7"
    assert evaluation.outputs["environmentSuffix"] == "pr7"


# --- outputs -------------------------------------------------------------------------------------------

REQUIRED_OUTPUTS = (
    "accountId",
    "region",
    "environment",
    "vpcId",
    "publicSubnetIds",
    "privateSubnetIds",
    "databaseSubnetIds",
    "albSecurityGroupId",
    "servicesSecurityGroupId",
    "databaseSecurityGroupId",
    "cacheSecurityGroupId",
    "albArn",
    "albDnsName",
    "httpsListenerArn",
    "httpListenerArn",
    "targetGroupArns",
    "ecsClusterName",
    "ecsClusterArn",
    "serviceNames",
    "taskDefinitionArns",
    "serviceLogGroupNames",
    "auroraClusterIdentifier",
    "auroraWriterEndpoint",
    "auroraReaderEndpoint",
    "auroraPort",
    "auroraSecretArn",
    "redisReplicationGroupId",
    "redisPrimaryEndpoint",
    "redisReaderEndpoint",
    "redisPort",
    "kmsDataKeyArn",
    "kmsLogsKeyArn",
    "wafWebAclArn",
    "alarmTopicArn",
    "guardDutyDetectorId",
    "configRecorderName",
)


def test_outputs_are_complete(stack: Evaluation) -> None:
    missing = [k for k in REQUIRED_OUTPUTS if k not in stack.outputs]
    assert not missing, missing
    env = stack.outputs["environment"]
    azs = preset(env).network.az_count
    for tier in ("publicSubnetIds", "privateSubnetIds", "databaseSubnetIds"):
        assert len(stack.outputs[tier]) == azs, tier
    assert set(stack.outputs["serviceNames"]) == {"api", "payment", "notification"}
    assert set(stack.outputs["targetGroupArns"]) == {"api", "payment", "notification"}
    assert stack.outputs["auroraPort"] == 5432 and stack.outputs["redisPort"] == 6379
    assert stack.outputs["accountId"] == "123456789012"


def test_security_outputs_follow_the_environment(stacks: dict[str, Evaluation]) -> None:
    assert stacks["dev"].outputs["wafWebAclArn"] == ""
    assert stacks["dev"].outputs["guardDutyDetectorId"] == ""
    for env in ("staging", "prod"):
        assert stacks[env].outputs["wafWebAclArn"].startswith("arn:"), env
        assert stacks[env].outputs["guardDutyDetectorId"], env
        assert stacks[env].outputs["configRecorderName"], env


# --- protection ------------------------------------------------------------------------------------------

PROTECTED_TYPES = (
    "aws:kms/key:Key",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
)


def test_data_stores_and_keys_are_protected_in_prod_only(stacks: dict[str, Evaluation]) -> None:
    for env, evaluation in stacks.items():
        should = preset(env).protection.protect
        for token in PROTECTED_TYPES:
            found = evaluation.of_type(token)
            assert found, f"{env}: no {token}"
            for r in found:
                assert r.protect is should, f"{env} {r.name}: protect={r.protect}"
                assert r.retain_on_delete is should, f"{env} {r.name}: retainOnDelete={r.retain_on_delete}"


# --- perimeter -------------------------------------------------------------------------------------------


def _rules(evaluation: Evaluation, direction: str) -> list[Registration]:
    return evaluation.of_type(f"aws:vpc/securityGroup{direction}Rule:SecurityGroup{direction}Rule")


def test_only_the_alb_is_open_to_the_internet(stack: Evaluation) -> None:
    alb_sg = stack.outputs["albSecurityGroupId"]
    open_rules = [r for r in _rules(stack, "Ingress") if r.inputs.get("cidrIpv4") == "0.0.0.0/0" or r.inputs.get("cidrIpv6")]
    assert {(r.inputs["securityGroupId"], r.inputs["fromPort"], r.inputs["toPort"]) for r in open_rules} == {
        (alb_sg, 80, 80),
        (alb_sg, 443, 443),
    }
    for r in stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not r.inputs.get("ingress"), f"{r.name} has inline ingress rules"


def test_data_tier_reachable_only_from_services(stack: Evaluation) -> None:
    services = stack.outputs["servicesSecurityGroupId"]
    for output, port in (("databaseSecurityGroupId", 5432), ("cacheSecurityGroupId", 6379)):
        sg = stack.outputs[output]
        rules = [r for r in _rules(stack, "Ingress") if r.inputs["securityGroupId"] == sg]
        assert rules, output
        for r in rules:
            assert r.inputs.get("referencedSecurityGroupId") == services, f"{r.name} source"
            assert (r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"]) == (port, port, "tcp"), r.name
            assert r.inputs.get("description"), f"{r.name} has no description"


def test_every_security_group_rule_has_a_description(stack: Evaluation) -> None:
    for r in _rules(stack, "Ingress") + _rules(stack, "Egress"):
        assert r.inputs.get("description"), f"{r.name} has no description"


def test_database_subnets_have_no_route_out(stack: Evaluation) -> None:
    db_subnets = set(stack.outputs["databaseSubnetIds"])
    assoc = [
        a for a in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation") if a.inputs.get("subnetId") in db_subnets
    ]
    assert len(assoc) == len(db_subnets)
    db_tables = {a.inputs["routeTableId"] for a in assoc}
    routes = [r for r in stack.of_type("aws:ec2/route:Route") if r.inputs["routeTableId"] in db_tables]
    assert routes == [], [r.name for r in routes]


def test_no_resource_gets_a_public_ip(stack: Evaluation) -> None:
    for r in stack.of_type("aws:ec2/subnet:Subnet"):
        assert not r.inputs.get("mapPublicIpOnLaunch"), r.name
    for r in stack.of_type("aws:ecs/service:Service"):
        assert r.inputs["networkConfiguration"]["assignPublicIp"] is False, r.name
    for r in stack.of_type("aws:rds/clusterInstance:ClusterInstance"):
        assert r.inputs.get("publiclyAccessible") is False, r.name


# --- least privilege, encryption, secrets -----------------------------------------------------------------


def _policy_documents(evaluation: Evaluation) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for r in evaluation.custom():
        for key in ("policy", "assumeRolePolicy"):
            raw = r.inputs.get(key)
            if isinstance(raw, str) and raw.strip().startswith("{"):
                document = json.loads(raw)
                if "Statement" in document:  # IAM-style documents only (not ECR lifecycle policies)
                    documents.append((f"{r.type} {r.name}.{key}", document))
    return documents


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_policy_grants_a_wildcard_action(stack: Evaluation) -> None:
    documents = [(n, d) for n, d in _policy_documents(stack) if "aws:kms/" not in n]
    assert len(documents) > 5
    for name, document in documents:
        for statement in _as_list(document["Statement"]):
            if statement.get("Effect") != "Allow":
                continue
            for action in _as_list(statement.get("Action", [])):
                assert action != "*" and not action.endswith(":*"), f"{name}: action {action}"


def test_kms_decrypt_is_never_granted_on_every_key(stack: Evaluation) -> None:
    for name, document in _policy_documents(stack):
        if "aws:kms/" in name:
            continue  # a key policy's "*" resource means "this key"
        for statement in _as_list(document["Statement"]):
            actions = _as_list(statement.get("Action", []))
            if statement.get("Effect") == "Allow" and "kms:Decrypt" in actions:
                assert "*" not in _as_list(statement.get("Resource", [])), name


def test_every_log_group_is_encrypted_with_environment_retention(stack: Evaluation) -> None:
    env = stack.outputs["environment"]
    retention = preset(env).observability.log_retention_days
    groups = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) >= 4
    for r in groups:
        assert r.inputs.get("kmsKeyId"), f"{r.name} not encrypted"
        assert r.inputs.get("retentionInDays") == retention, f"{r.name} retention {r.inputs.get('retentionInDays')}"


def test_every_secret_and_topic_uses_a_customer_managed_key(stack: Evaluation) -> None:
    for r in stack.of_type("aws:secretsmanager/secret:Secret"):
        assert r.inputs.get("kmsKeyId"), r.name
    for r in stack.of_type("aws:sns/topic:Topic"):
        assert r.inputs.get("kmsMasterKeyId"), r.name
    for r in stack.of_type("aws:kms/key:Key"):
        assert r.inputs.get("enableKeyRotation") is True, r.name


def test_no_secret_in_container_environment(stack: Evaluation) -> None:
    for r in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(r.inputs["containerDefinitions"]):
            for variable in container.get("environment", []):
                name = variable["name"].upper()
                assert not any(word in name for word in ("PASSWORD", "TOKEN", "SECRET")), f"{r.name}: {name}"
            # Services hold no credential at all (IAM auth to both data stores); only the one-off migrate
            # task receives the Aurora master secret, and only through ECS secrets (issue #8.6).
            secrets = {s["name"] for s in container.get("secrets", [])}
            expected = {"DB_MASTER_USERNAME", "DB_MASTER_PASSWORD"} if r.name == "migrate-task-definition" else set()
            assert secrets == expected, f"{r.name}: secrets {sorted(secrets)}"
            if expected:
                assert all(s["valueFrom"].startswith(stack.outputs["auroraSecretArn"]) for s in container["secrets"]), r.name


def test_every_s3_bucket_is_locked_down(stack: Evaluation) -> None:
    buckets = {r.name for r in stack.of_type("aws:s3/bucket:Bucket")}
    assert buckets
    for token in (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy",
    ):
        assert len(stack.of_type(token)) == len(buckets), f"{token}: {len(stack.of_type(token))} for {len(buckets)} buckets"
    for r in stack.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert all(r.inputs.get(f) is True for f in flags), r.name


# --- environments side by side -----------------------------------------------------------------------------


def test_vpcs_do_not_overlap(stacks: dict[str, Evaluation]) -> None:
    cidrs = [ipaddress.ip_network(s.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"]) for s in stacks.values()]
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_capacity_rises_from_dev_to_prod(stacks: dict[str, Evaluation]) -> None:
    def count(env: str, token: str) -> int:
        return len(stacks[env].of_type(token))

    nat = [count(e, "aws:ec2/natGateway:NatGateway") for e in ENVS]
    assert nat == [1, 2, 3]
    aurora = [count(e, "aws:rds/clusterInstance:ClusterInstance") for e in ENVS]
    assert aurora == [1, 2, 3]
    mins = [stacks[e].of_type("aws:appautoscaling/target:Target")[0].inputs["minCapacity"] for e in ENVS]
    maxs = [stacks[e].of_type("aws:appautoscaling/target:Target")[0].inputs["maxCapacity"] for e in ENVS]
    assert mins == [1, 2, 3] and maxs == [2, 4, 10]
    nodes = [stacks[e].one("aws:elasticache/replicationGroup:ReplicationGroup").inputs["numCacheClusters"] for e in ENVS]
    assert nodes[0] == 1 and nodes[0] < nodes[1] <= nodes[2]


def test_security_services_only_in_staging_and_prod(stacks: dict[str, Evaluation]) -> None:
    for env, evaluation in stacks.items():
        expected = env != "dev"
        for token in (
            "aws:wafv2/webAcl:WebAcl",
            "aws:guardduty/detector:Detector",
            "aws:cfg/recorder:Recorder",
            "aws:cloudtrail/trail:Trail",
        ):
            assert bool(evaluation.of_type(token)) is expected, f"{env}: {token}"


def test_components_parent_their_resources(stack: Evaluation) -> None:
    """Every cloud resource sits under a component (the component contract: one ComponentResource per concern)."""
    for r in stack.custom():
        assert r.component.startswith("scalepayments:"), f"{r.type} {r.name} parent {r.component!r}"


def test_settings_cannot_change_after_validation() -> None:
    """The validated configuration is frozen: no component can alter another's settings."""
    import dataclasses

    loaded = cfg.build("dev", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.network.az_count = 3  # type: ignore[misc]


def test_physical_names_are_unique(stack: Evaluation) -> None:
    """Two resources of one type never claim the same AWS name (the second create would fail)."""
    for token in {r.type for r in stack.custom()}:
        names = [r.inputs.get("name") for r in stack.of_type(token) if isinstance(r.inputs.get("name"), str)]
        duplicates = {n for n in names if names.count(n) > 1}
        assert not duplicates, f"{token}: {duplicates}"


def test_outputs_serialise_like_pulumi_stack_output(stack: Evaluation) -> None:
    """Outputs are plain JSON values, as `pulumi stack output --json` prints them."""
    assert json.loads(json.dumps(stack.outputs)) == stack.outputs


def test_under_pulumi_up_a_config_error_is_one_line_and_creates_nothing() -> None:
    """Issue #9.1: `pulumi up` reports a RunError as its message alone (no traceback), before any resource."""
    import pulumi

    import tap
    from tools import evaluate as evaluation_module

    registered: list[Registration] = []
    # Run the program exactly as the Pulumi language host does (tap.run), under the mock runtime.
    with pytest.raises(pulumi.RunError) as excinfo:
        evaluation_module.evaluate(
            "staging",
            {**default_config("staging"), "scalepayments:dbInstanceClas": "db.r5.large"},
            on_register=registered.append,
            entry=tap.run,
        )
    message = str(excinfo.value)
    assert message == (
        "scalepayments:dbInstanceClas: unknown setting; did you mean dbInstanceClass or dbInstanceCount? "
        "(every setting is listed in Pulumi.yaml and the README)"
    )
    assert "\n" not in message and registered == []


#: Pulumi token module -> the aws provider's endpoint key for that service.
ENDPOINT_KEYS = {
    "acm": "acm",
    "appautoscaling": "appautoscaling",
    "cfg": "configservice",
    "cloudtrail": "cloudtrail",
    "cloudwatch": "cloudwatch",
    "ec2": "ec2",
    "ecr": "ecr",
    "ecs": "ecs",
    "elasticache": "elasticache",
    "guardduty": "guardduty",
    "iam": "iam",
    "kms": "kms",
    "lb": "elbv2",
    "rds": "rds",
    "route53": "route53",
    "s3": "s3",
    "secretsmanager": "secretsmanager",
    "servicediscovery": "servicediscovery",
    "sns": "sns",
    "wafv2": "wafv2",
    "vpc": "ec2",  # aws:vpc security-group rules are EC2 API calls
}


def test_the_pulumi_cli_stack_for_the_emulator_is_well_formed(stacks: dict[str, Evaluation]) -> None:
    """Issue #9.6: `pulumi up --stack local` reaches the emulator for every service any environment uses."""
    import inspect

    import pulumi_aws
    import yaml

    with open("Pulumi.local.yaml", encoding="utf-8") as handle:
        config = yaml.safe_load(handle)["config"]
    (endpoints,) = config["aws:endpoints"]
    valid = set(inspect.signature(pulumi_aws.ProviderEndpointArgs.__init__).parameters) - {"__self__"}
    assert set(endpoints) <= valid, sorted(set(endpoints) - valid)
    assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
    used = {r.type.split(":")[1].split("/")[0] for ev in stacks.values() for r in ev.custom() if r.type.startswith("aws:")}
    assert used <= set(ENDPOINT_KEYS), sorted(used - set(ENDPOINT_KEYS))
    assert {ENDPOINT_KEYS[m] for m in used} | {"sts", "logs"} <= set(endpoints)
    flags = ("skipCredentialsValidation", "skipRequestingAccountId", "skipMetadataApiCheck", "s3UsePathStyle")
    assert all(config[f"aws:{flag}"] is True for flag in flags), config
    own = {k.split(":", 1)[1]: str(v) for k, v in config.items() if k.startswith("scalepayments:")}
    assert cfg.build("local", own, config["aws:region"]).environment is cfg.Environment.DEV
