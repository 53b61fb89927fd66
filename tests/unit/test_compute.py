"""Compute (ECS Fargate) requirements, per environment, on the whole program run under mocks.

Expected values come from the issue (retention, task counts, sizes) or from the other components'
exported outputs (subnets, security group, target groups, secrets, keys), so a wiring mistake in
either direction fails here with the resource's name in the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lib import iam_policies
from lib.components import compute
from lib.config import DEFAULT_IMAGE, EnvironmentConfig, ServiceSettings
from tools.evaluate import Evaluation, Registration, default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
COMPUTE = "scalepayments:compute:Compute"
SERVICES = ("api", "payment", "notification")

#: From the README environment table.
LOG_RETENTION = {"dev": 7, "staging": 90, "prod": 365}
TASK_BOUNDS = {"dev": (1, 2), "staging": (2, 4), "prod": (3, 10)}
TASK_SIZE = {"dev": (256, 512), "staging": (512, 1024), "prod": (1024, 2048)}

#: Fargate CPU -> memory (MiB), written out independently of lib/config.py (the Fargate task-size table in the AWS ECS documentation).
FARGATE_PAIRS = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}

#: Which credentials each service's containers receive (least privilege: notification has no DB).
EXPECTED_SECRETS = {
    "api": {"DB_USERNAME", "DB_PASSWORD", "REDIS_AUTH_TOKEN"},
    "payment": {"DB_USERNAME", "DB_PASSWORD", "REDIS_AUTH_TOKEN"},
    "notification": {"REDIS_AUTH_TOKEN"},
}
SECRETISH = re.compile(r"PASS|TOKEN|SECRET|CREDENTIAL|PRIVATE|API_KEY", re.IGNORECASE)

STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


@dataclass(frozen=True)
class Case:
    env: str
    cfg: EnvironmentConfig
    ev: Evaluation

    def regs(self, type_: str) -> list[Registration]:
        """Registrations of ``type_`` made by the compute component."""
        return [r for r in self.ev.of_type(type_) if r.component == COMPUTE]

    def by_name(self, type_: str) -> dict[str, Registration]:
        return {r.name: r for r in self.regs(type_)}

    def service(self, name: str) -> ServiceSettings:
        return next(s for s in self.cfg.compute.services if s.name == name)

    @property
    def out(self) -> dict[str, Any]:
        return self.ev.outputs


def raw_config(env: str) -> dict[str, str]:
    return {k.split(":", 1)[1]: v for k, v in default_config(env).items() if k.startswith("scalepayments:")}


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def case(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> Case:
    env = request.param
    return Case(env, resolved(env), evaluated(env))


def container(case: Case, service: str) -> dict[str, Any]:
    td = case.by_name("aws:ecs/taskDefinition:TaskDefinition")[f"{service}-task-definition"]
    (definition,) = json.loads(td.inputs["containerDefinitions"])
    return definition


def policy_documents(case: Case) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM document compute registers: trust policies and inline policies."""
    docs = [(r.inputs["name"], json.loads(r.inputs["assumeRolePolicy"])) for r in case.regs("aws:iam/role:Role")]
    docs += [(r.inputs["name"], json.loads(r.inputs["policy"])) for r in case.regs("aws:iam/rolePolicy:RolePolicy")]
    return docs


def execution_statements(case: Case) -> dict[str, dict[str, Any]]:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")["ecs-execution-policy"]
    return {s["Sid"]: s for s in iam_policies.statements(json.loads(policy.inputs["policy"]))}


def actions_in(statement: dict[str, Any]) -> set[str]:
    return set(iam_policies.actions(statement))


# --- cluster and repositories ------------------------------------------------------------------------


def test_cluster_has_container_insights(case: Case) -> None:
    cluster = case.regs("aws:ecs/cluster:Cluster")
    assert len(cluster) == 1, [r.name for r in cluster]
    settings = {s["name"]: s["value"] for s in cluster[0].inputs.get("settings", [])}
    assert settings.get("containerInsights") in ("enabled", "enhanced"), f"{cluster[0].name}: {settings}"
    assert cluster[0].inputs["name"] == case.out["ecsClusterName"] == case.cfg.namer.name("cluster")


def test_cluster_capacity_providers_are_fargate(case: Case) -> None:
    (providers,) = case.regs("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert "FARGATE" in providers.inputs["capacityProviders"], providers.name
    assert set(providers.inputs["capacityProviders"]) <= {"FARGATE", "FARGATE_SPOT"}, providers.name
    assert providers.inputs["clusterName"] == case.out["ecsClusterName"], providers.name
    default = providers.inputs["defaultCapacityProviderStrategies"]
    assert [s["capacityProvider"] for s in default] == ["FARGATE"], f"{providers.name}: services default to on-demand"


def test_one_hardened_repository_per_service(case: Case) -> None:
    repos = {r.inputs["name"]: r for r in case.regs("aws:ecr/repository:Repository")}
    assert set(repos) == {case.cfg.namer.name(s) for s in SERVICES}
    for name, repo in repos.items():
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, name
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE", name
        assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": case.out["kmsDataKeyArn"]}], name
        assert repo.inputs.get("forceDelete") is False, f"{name}: images must not be deleted with the repository"


def test_every_repository_has_the_lifecycle_policy(case: Case) -> None:
    registered = case.regs("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    policies = {r.inputs["repository"]: json.loads(r.inputs["policy"]) for r in registered}
    assert set(policies) == {case.cfg.namer.name(s) for s in SERVICES}
    for repo, policy in policies.items():
        rules = {r["selection"]["tagStatus"]: r for r in policy["rules"]}
        untagged, tagged = rules["untagged"], rules["tagged"]
        assert untagged["selection"]["countType"] == "sinceImagePushed", repo
        assert (untagged["selection"]["countUnit"], untagged["selection"]["countNumber"]) == ("days", 7), repo
        assert (tagged["selection"]["countType"], tagged["selection"]["countNumber"]) == ("imageCountMoreThan", 30), repo
        assert all(r["action"] == {"type": "expire"} for r in policy["rules"]), repo
        priorities = [r["rulePriority"] for r in policy["rules"]]
        assert len(set(priorities)) == len(priorities), f"{repo}: duplicate rule priorities {priorities}"


# --- logs ----------------------------------------------------------------------------------------


def test_log_groups_retention_and_kms(case: Case) -> None:
    groups = {r.inputs["name"]: r for r in case.regs("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {f"/ecs/{case.cfg.namer.name(s)}" for s in SERVICES}
    for name, group in groups.items():
        assert group.inputs["retentionInDays"] == LOG_RETENTION[case.env], name
        assert group.inputs["kmsKeyId"] == case.out["kmsLogsKeyArn"], f"{name}: must be encrypted with the logs key"
    assert case.out["serviceLogGroupNames"] == {s: f"/ecs/{case.cfg.namer.name(s)}" for s in SERVICES}


# --- task definitions ------------------------------------------------------------------------------


def test_task_definitions_size_is_a_valid_fargate_pair(case: Case) -> None:
    tds = case.by_name("aws:ecs/taskDefinition:TaskDefinition")
    assert set(tds) == {f"{s}-task-definition" for s in SERVICES}
    for name, td in tds.items():
        cpu, memory = int(td.inputs["cpu"]), int(td.inputs["memory"])
        assert (cpu, memory) == TASK_SIZE[case.env], name
        assert memory in FARGATE_PAIRS.get(cpu, set()), f"{name}: {cpu}/{memory} is not a Fargate size"
        assert td.inputs["networkMode"] == "awsvpc", name
        assert td.inputs["requiresCompatibilities"] == ["FARGATE"], name
        assert td.inputs["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}, name


def test_task_definitions_use_the_shared_execution_role_and_their_own_task_role(case: Case) -> None:
    for service in SERVICES:
        td = case.by_name("aws:ecs/taskDefinition:TaskDefinition")[f"{service}-task-definition"]
        assert td.inputs["executionRoleArn"] == case.out["taskExecutionRoleArn"], td.name
        assert td.inputs["taskRoleArn"] == case.out["taskRoleArns"][service], td.name
        assert td.inputs["family"] == case.cfg.namer.name(service), td.name
    assert len(set(case.out["taskRoleArns"].values())) == len(SERVICES), "each service needs its own task role"


@pytest.mark.parametrize("service", SERVICES)
def test_container_is_hardened(case: Case, service: str) -> None:
    c = container(case, service)
    td = case.by_name("aws:ecs/taskDefinition:TaskDefinition")[f"{service}-task-definition"]
    assert c["readonlyRootFilesystem"] is True, td.name
    assert c["privileged"] is False, td.name
    assert c["essential"] is True, td.name
    assert c["image"] == case.service(service).image == DEFAULT_IMAGE, td.name
    # The read-only root needs a writable scratch volume, declared on the task and mounted at /tmp.
    volumes = {v["name"] for v in td.inputs.get("volumes", [])}
    mounts = {m["containerPath"]: m for m in c["mountPoints"]}
    assert "/tmp" in mounts and mounts["/tmp"]["sourceVolume"] in volumes, f"{td.name}: {mounts} / {volumes}"
    assert c.get("user") in (None, "101"), f"{td.name}: runs as {c.get('user')}"


@pytest.mark.parametrize("service", SERVICES)
def test_container_logs_to_its_own_log_group(case: Case, service: str) -> None:
    log = container(case, service)["logConfiguration"]
    assert log["logDriver"] == "awslogs", service
    assert log["options"]["awslogs-group"] == case.out["serviceLogGroupNames"][service], service
    assert log["options"]["awslogs-region"] == case.cfg.region, service
    assert log["options"]["awslogs-stream-prefix"], service


@pytest.mark.parametrize("service", SERVICES)
def test_container_port_and_health_check(case: Case, service: str) -> None:
    c = container(case, service)
    port = case.service(service).port
    assert c["portMappings"] == [{"containerPort": port, "hostPort": port, "protocol": "tcp"}], service
    check = c["healthCheck"]
    assert check["command"][0] == "CMD-SHELL" and f"http://localhost:{port}/" in check["command"][1], service
    assert (check["interval"], check["timeout"], check["retries"], check["startPeriod"]) == (30, 5, 3, 60), service


@pytest.mark.parametrize("service", SERVICES)
def test_credentials_come_only_from_secrets_manager(case: Case, service: str) -> None:
    c = container(case, service)
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert set(secrets) == EXPECTED_SECRETS[service], service
    db_arn, redis_arn = case.out["auroraSecretArn"], case.out["redisAuthSecretArn"]
    if "DB_PASSWORD" in secrets:
        assert secrets["DB_USERNAME"] == f"{db_arn}:username::", service
        assert secrets["DB_PASSWORD"] == f"{db_arn}:password::", service
    assert secrets["REDIS_AUTH_TOKEN"] in (redis_arn, f"{redis_arn}:authToken::"), service
    env = {e["name"]: e["value"] for e in c["environment"]}
    secretish = [k for k in env if SECRETISH.search(k)]
    assert secretish == [], f"{service}: secret-like names in plain environment: {secretish}"
    leaked = [k for k, v in env.items() if db_arn in v or redis_arn in v or "secretsmanager" in v]
    assert leaked == [], f"{service}: secret references in plain environment: {leaked}"
    assert env["SERVICE_NAME"] == service and env["ENVIRONMENT"] == case.env, service
    assert env["REDIS_HOST"] == case.out["redisPrimaryEndpoint"], service
    if "DB_PASSWORD" in EXPECTED_SECRETS[service]:
        assert env["DB_HOST"] == case.out["auroraWriterEndpoint"], service
        assert env["DB_PORT"] == str(case.out["auroraPort"]), service
    else:
        assert not [k for k in env if k.startswith("DB_")], f"{service} must not know the database"


# --- services ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_in_private_subnets_behind_the_services_sg(case: Case, service: str) -> None:
    svc = case.by_name("aws:ecs/service:Service")[f"{service}-service"]
    net = svc.inputs["networkConfiguration"]
    assert net["subnets"] == case.out["privateSubnetIds"], svc.name
    assert not set(net["subnets"]) & set(case.out["publicSubnetIds"]), f"{svc.name}: tasks in a public subnet"
    assert net["assignPublicIp"] is False, svc.name
    assert net["securityGroups"] == [case.out["servicesSecurityGroupId"]], svc.name
    assert svc.inputs["launchType"] == "FARGATE", svc.name
    assert svc.inputs["cluster"] == case.out["ecsClusterArn"], svc.name
    assert svc.inputs["taskDefinition"] == case.out["taskDefinitionArns"][service], svc.name
    assert svc.inputs["name"] == case.out["serviceNames"][service] == case.cfg.namer.name(service), svc.name


@pytest.mark.parametrize("service", SERVICES)
def test_service_deploys_safely(case: Case, service: str) -> None:
    svc = case.by_name("aws:ecs/service:Service")[f"{service}-service"]
    i = svc.inputs
    assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, svc.name
    assert (i["deploymentMinimumHealthyPercent"], i["deploymentMaximumPercent"]) == (100, 200), svc.name
    assert i["healthCheckGracePeriodSeconds"] == 60, svc.name
    assert i["enableExecuteCommand"] is False, svc.name
    assert i["propagateTags"] == "SERVICE", svc.name
    assert i["waitForSteadyState"] is False, svc.name


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_attached_to_its_target_group(case: Case, service: str) -> None:
    svc = case.by_name("aws:ecs/service:Service")[f"{service}-service"]
    assert svc.inputs["loadBalancers"] == [
        {
            "targetGroupArn": case.out["targetGroupArns"][service],
            "containerName": container(case, service)["name"],
            "containerPort": case.service(service).port,
        }
    ], svc.name


@pytest.mark.parametrize("service", SERVICES)
def test_desired_count_starts_at_min_then_belongs_to_autoscaling(case: Case, service: str) -> None:
    svc = case.by_name("aws:ecs/service:Service")[f"{service}-service"]
    assert svc.inputs["desiredCount"] == TASK_BOUNDS[case.env][0], svc.name
    assert "desiredCount" in svc.ignore_changes, f"{svc.name}: ignore_changes={svc.ignore_changes}"


# --- autoscaling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_scaling_target_bounds(case: Case, service: str) -> None:
    target = case.by_name("aws:appautoscaling/target:Target")[f"{service}-scaling-target"]
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == TASK_BOUNDS[case.env], target.name
    assert target.inputs["serviceNamespace"] == "ecs", target.name
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount", target.name
    expected = f"service/{case.out['ecsClusterName']}/{case.out['serviceNames'][service]}"
    assert target.inputs["resourceId"] == expected, target.name


def _arn_suffix(case: Case, type_: str, arn: str) -> str:
    found = [r for r in case.ev.of_type(type_) if r.state.get("arn") == arn]
    assert len(found) == 1, f"no single {type_} with arn {arn}"
    return str(found[0].state["arnSuffix"])


@pytest.mark.parametrize("service", SERVICES)
def test_target_tracking_policies(case: Case, service: str) -> None:
    settings = case.cfg.compute
    target = case.by_name("aws:appautoscaling/target:Target")[f"{service}-scaling-target"]
    policies = [p for p in case.regs("aws:appautoscaling/policy:Policy") if p.inputs["resourceId"] == target.inputs["resourceId"]]
    by_metric = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]["predefinedMetricType"]: p
        for p in policies
    }
    expected_targets = {
        "ECSServiceAverageCPUUtilization": settings.cpu_target_percent,
        "ECSServiceAverageMemoryUtilization": settings.memory_target_percent,
        "ALBRequestCountPerTarget": settings.requests_per_target,
    }
    assert set(by_metric) == set(expected_targets) and len(policies) == 3, f"{service}: {[p.name for p in policies]}"
    for metric, policy in by_metric.items():
        cfg = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert policy.inputs["policyType"] == "TargetTrackingScaling", policy.name
        assert policy.inputs["scalableDimension"] == "ecs:service:DesiredCount", policy.name
        assert cfg["targetValue"] == expected_targets[metric], policy.name
        assert cfg["scaleOutCooldown"] == settings.scale_out_cooldown_seconds, policy.name
        assert cfg["scaleInCooldown"] == settings.scale_in_cooldown_seconds, policy.name
        # Scale out fast, scale in slowly (a payment spike must not flap the task count).
        assert cfg["scaleOutCooldown"] < cfg["scaleInCooldown"], policy.name
    for metric in ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"):
        assert 10 <= expected_targets[metric] <= 95, f"{service} {metric} target"
    label = by_metric["ALBRequestCountPerTarget"].inputs["targetTrackingScalingPolicyConfiguration"][
        "predefinedMetricSpecification"
    ]["resourceLabel"]
    alb = _arn_suffix(case, "aws:lb/loadBalancer:LoadBalancer", case.out["albArn"])
    tg = _arn_suffix(case, "aws:lb/targetGroup:TargetGroup", case.out["targetGroupArns"][service])
    assert label == f"{alb}/{tg}", f"{service}: request-count label {label}"


# --- IAM ------------------------------------------------------------------------------------------------


def test_roles_and_names(case: Case) -> None:
    roles = {r.name: r for r in case.regs("aws:iam/role:Role")}
    assert set(roles) == {"ecs-execution-role"} | {f"{s}-task-role" for s in SERVICES}
    assert roles["ecs-execution-role"].inputs["name"] == case.cfg.namer.name("ecs-execution")
    for service in SERVICES:
        name = roles[f"{service}-task-role"].inputs["name"]
        assert name == case.cfg.namer.name(f"{service}-task") and len(name) <= 64, name


def test_every_policy_is_least_privilege(case: Case) -> None:
    docs = policy_documents(case)
    assert len(docs) == 2 * (1 + len(SERVICES)), [n for n, _ in docs]
    for name, doc in docs:
        assert iam_policies.least_privilege_violations(doc) == [], name
        for statement in iam_policies.statements(doc):
            assert not [a for a in iam_policies.actions(statement) if "*" in a], f"{name}: wildcard action"
            if "*" in iam_policies.resources(statement):
                assert actions_in(statement) <= STAR_RESOURCE_ACTIONS, f"{name}: '*' resource for {actions_in(statement)}"


def test_trust_policies_allow_only_ecs_tasks_of_this_account(case: Case) -> None:
    for role in case.regs("aws:iam/role:Role"):
        (statement,) = iam_policies.statements(json.loads(role.inputs["assumeRolePolicy"]))
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}, role.name
        assert iam_policies.actions(statement) == ["sts:AssumeRole"], role.name
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == case.out["accountId"], role.name


def test_execution_policy_scopes(case: Case) -> None:
    by_sid = execution_statements(case)
    secret_statements = [s for s in by_sid.values() if "secretsmanager:GetSecretValue" in actions_in(s)]
    assert len(secret_statements) == 1
    assert set(iam_policies.resources(secret_statements[0])) == {
        case.out["auroraSecretArn"],
        case.out["redisAuthSecretArn"],
    }, "GetSecretValue must name exactly the DB and Redis secrets"
    decrypt = [s for s in by_sid.values() if "kms:Decrypt" in actions_in(s)]
    assert len(decrypt) == 1
    assert iam_policies.resources(decrypt[0]) == [case.out["kmsDataKeyArn"]], "kms:Decrypt beyond the data key"
    assert decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"] == f"secretsmanager.{case.cfg.region}.amazonaws.com"
    repo_arns = {r.state["arn"] for r in case.regs("aws:ecr/repository:Repository")}
    pull = [s for s in by_sid.values() if "ecr:BatchGetImage" in actions_in(s)]
    assert len(pull) == 1 and set(iam_policies.resources(pull[0])) == repo_arns, "ECR pull beyond the stack's repositories"
    group_arns = {f"{r.state['arn']}:*" for r in case.regs("aws:cloudwatch/logGroup:LogGroup")}
    logs = [s for s in by_sid.values() if "logs:PutLogEvents" in actions_in(s)]
    assert len(logs) == 1 and set(iam_policies.resources(logs[0])) == group_arns, "log writes beyond the service log groups"
    star = [s for s in by_sid.values() if "*" in iam_policies.resources(s)]
    assert [actions_in(s) for s in star] == [{"ecr:GetAuthorizationToken"}]


@pytest.mark.parametrize("service", SERVICES)
def test_task_role_policy_is_scoped_to_the_service(case: Case, service: str) -> None:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")[f"{service}-task-policy"]
    role = case.by_name("aws:iam/role:Role")[f"{service}-task-role"]
    assert policy.inputs["role"] == role.state["id"], policy.name
    (statement,) = iam_policies.statements(json.loads(policy.inputs["policy"]))
    assert actions_in(statement) == {"cloudwatch:PutMetricData"}, policy.name
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": f"ScalePayments/{service}"}}, policy.name


def test_execution_policy_is_attached_before_tasks_can_start(case: Case) -> None:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")["ecs-execution-policy"]
    assert policy.inputs["role"] == case.by_name("aws:iam/role:Role")["ecs-execution-role"].state["id"]
    for td in case.regs("aws:ecs/taskDefinition:TaskDefinition"):
        assert policy.urn in td.depends_on, f"{td.name} does not wait for the execution role policy"


# --- component contract ---------------------------------------------------------------------------------


def test_children_are_parented_and_tagged(case: Case) -> None:
    (component,) = case.ev.of_type(COMPUTE)
    children = [r for r in case.ev.registrations if r.component == COMPUTE]
    assert children and all(r.parent == component.urn for r in children)
    taggable = {
        "aws:ecs/cluster:Cluster",
        "aws:ecr/repository:Repository",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:ecs/service:Service",
        "aws:iam/role:Role",
        "aws:appautoscaling/target:Target",
    }
    for r in children:
        if r.type in taggable:
            tags = r.inputs.get("tags", {})
            assert tags.get("Environment") == case.env and tags.get("Component") == "compute", f"{r.name}: {tags}"
            assert tags.get("ManagedBy") == "pulumi", r.name


def test_outputs_cover_every_service(case: Case) -> None:
    for key in ("serviceNames", "taskDefinitionArns", "serviceLogGroupNames", "ecrRepositoryUrls", "taskRoleArns"):
        assert set(case.out[key]) == set(SERVICES), key
    for service, url in case.out["ecrRepositoryUrls"].items():
        assert url.endswith(f"/{case.cfg.namer.name(service)}"), url


# --- one extra evaluation: the ephemeral suffix reaches every physical name ----------------------------------


def test_environment_suffix_reaches_every_name() -> None:
    config = {**default_config("dev"), "scalepayments:environmentSuffix": "pr42"}
    ev = evaluate("dev", config)
    names = [
        r.inputs["name"]
        for r in ev.registrations
        if r.component == COMPUTE and "name" in r.inputs and r.type != "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
    ]
    assert names and all(n.endswith("-dev-pr42") for n in names), names
    assert ev.outputs["serviceLogGroupNames"]["api"] == "/ecs/scalepay-api-dev-pr42"


# --- pure helpers ------------------------------------------------------------------------------------------


def _settings(name: str) -> ServiceSettings:
    return ServiceSettings(
        name=name,
        short_name=name[:3],
        description="test",
        image=DEFAULT_IMAGE,
        port=9090,
        cpu=256,
        memory=512,
        path_pattern=f"/{name}/*",
        health_check_path="/",
    )


def test_container_definitions_without_data_stores_have_no_secrets() -> None:
    (c,) = compute.container_definitions(
        _settings("worker"), environment="dev", region="us-west-2", log_group_name="/ecs/x", database=None, cache=None
    )
    assert c["secrets"] == []
    assert not [e for e in c["environment"] if e["name"].startswith(("DB_", "REDIS_"))]
    assert c["portMappings"][0]["containerPort"] == 9090
    assert "localhost:9090" in c["healthCheck"]["command"][1]
    assert c["logConfiguration"]["options"]["awslogs-region"] == "us-west-2"


def test_container_definitions_reference_secret_keys() -> None:
    (c,) = compute.container_definitions(
        _settings("api"),
        environment="prod",
        region="us-east-1",
        log_group_name="/ecs/x",
        database=compute.DatabaseConnection("w", "r", 5432, "payments", "arn:db"),
        cache=compute.CacheConnection("c", 6379, "arn:redis"),
    )
    assert {s["name"]: s["valueFrom"] for s in c["secrets"]} == {
        "DB_USERNAME": "arn:db:username::",
        "DB_PASSWORD": "arn:db:password::",
        "REDIS_AUTH_TOKEN": "arn:redis:authToken::",
    }
    assert "arn:db" not in json.dumps(c["environment"]) and "arn:redis" not in json.dumps(c["environment"])


def test_unknown_service_gets_no_implicit_data_access() -> None:
    with pytest.raises(ValueError, match="worker"):
        compute.data_access("worker")
    assert compute.data_access("notification") == compute.DataAccess(database=False, cache=True)


def test_secret_ref() -> None:
    assert compute.secret_ref("arn:s", "password") == "arn:s:password::"
    assert compute.secret_ref("arn:s", None) == "arn:s"
