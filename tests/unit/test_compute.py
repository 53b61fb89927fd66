"""Compute (ECS Fargate) requirements, per environment, on the whole program run under mocks.

Per-environment values (log retention, task counts and sizes, scaling targets and cooldowns) come from
the README's environment table through tests/expectations.py, never from the preset table the program
reads; wiring is checked against the other components' exported outputs (subnets, security group, target
groups, secrets, keys), so a mistake in either direction fails here with the resource's name in the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from lib import iam_policies
from lib.components import compute
from lib.config import EnvironmentConfig, ServiceSettings
from lib.service_access import data_access
from services.common import config as service_contract
from tests.expectations import EXPECTED, Expected
from tools.evaluate import Evaluation, Registration, default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
COMPUTE = "scalepayments:compute:Compute"
SERVICES = ("api", "payment", "notification")

#: The migrate task runs once per release (users, schemas, grants): the smallest Fargate size in every environment.
MIGRATE_TASK_SIZE = (256, 512)

#: Fargate CPU -> memory (MiB), written out independently of lib/config.py (the task-size table of the ECS docs).
FARGATE_PAIRS = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}

#: Which data stores each service reaches, and as whom (least privilege; issue #8.6, #8.7): api only fronts
#: the others; payment owns the ledger and the idempotency keys; notification records events.
EXPECTED_DB_USER = {"api": None, "payment": "scalepay_payment", "notification": "scalepay_notification"}
EXPECTED_REDIS = {"api": False, "payment": True, "notification": False}
EXPECTED_PEERS = {"api": {"PAYMENT_URL", "NOTIFICATION_URL"}, "payment": {"NOTIFICATION_URL"}, "notification": set()}
IMAGE_TAG = "1.0.0"
WORKLOADS = (*SERVICES, "migrate")
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
    def expected(self) -> Expected:
        """What the README's environment table asks of this environment."""
        return EXPECTED[self.env]

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
    assert set(repos) == {case.cfg.namer.name(s) for s in WORKLOADS}
    for name, repo in repos.items():
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, name
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE", name
        assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": case.out["kmsDataKeyArn"]}], name
        # Prod keeps its release history; an unprotected environment tears down even with images (issue #8.10).
        assert repo.inputs.get("forceDelete") is (case.env != "prod"), f"{name}: forceDelete"


def test_every_repository_has_the_lifecycle_policy(case: Case) -> None:
    registered = case.regs("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    policies = {r.inputs["repository"]: json.loads(r.inputs["policy"]) for r in registered}
    assert set(policies) == {case.cfg.namer.name(s) for s in WORKLOADS}
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
    insights = f"/aws/ecs/containerinsights/{case.out['ecsClusterName']}/performance"
    assert set(groups) == {f"/ecs/{case.cfg.namer.name(s)}" for s in WORKLOADS} | {insights}
    for name, group in groups.items():
        assert group.inputs["retentionInDays"] == case.expected.log_retention_days, name
        assert group.inputs["kmsKeyId"] == case.out["kmsLogsKeyArn"], f"{name}: must be encrypted with the logs key"
    assert case.out["serviceLogGroupNames"] == {s: f"/ecs/{case.cfg.namer.name(s)}" for s in WORKLOADS}


def test_container_insights_log_group_exists_before_the_cluster(case: Case) -> None:
    """Issue #8.9: Container Insights would otherwise create its group unencrypted and kept forever."""
    (cluster,) = case.regs("aws:ecs/cluster:Cluster")
    group = case.by_name("aws:cloudwatch/logGroup:LogGroup")["container-insights-logs"]
    assert group.inputs["name"] == f"/aws/ecs/containerinsights/{cluster.inputs['name']}/performance"
    assert group.urn in cluster.depends_on, "the cluster must wait for its Container Insights log group"


# --- task definitions ------------------------------------------------------------------------------


def test_task_definitions_size_is_a_valid_fargate_pair(case: Case) -> None:
    tds = case.by_name("aws:ecs/taskDefinition:TaskDefinition")
    assert set(tds) == {f"{s}-task-definition" for s in WORKLOADS}
    for name, td in tds.items():
        cpu, memory = int(td.inputs["cpu"]), int(td.inputs["memory"])
        service_size = (case.expected.task_cpu, case.expected.task_memory)
        assert (cpu, memory) == (service_size if name != "migrate-task-definition" else MIGRATE_TASK_SIZE), name
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
    # Issue #8.2: the image comes from the stack's own ECR repository, never anonymously from a public registry.
    assert c["image"] == f"{case.out['ecrRepositoryUrls'][service]}:{IMAGE_TAG}", td.name
    assert c["image"] == case.out["serviceImages"][service], td.name
    # The read-only root needs a writable scratch volume, declared on the task and mounted at /tmp.
    volumes = {v["name"] for v in td.inputs.get("volumes", [])}
    mounts = {m["containerPath"]: m for m in c["mountPoints"]}
    assert "/tmp" in mounts and mounts["/tmp"]["sourceVolume"] in volumes, f"{td.name}: {mounts} / {volumes}"
    assert mounts["/tmp"]["readOnly"] is False, td.name
    assert "user" not in c, f"{td.name}: the image's own non-root USER applies"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_can_write_every_path_the_task_mounts_writable(case: Case, service: str) -> None:
    """Issue #8.1: on Fargate a bind-mount volume is root-owned unless the image declares the path with VOLUME
    (then Fargate copies the path's ownership into the volume). The image the service runs declares every
    writable mount, owned by (or open to) its non-root user, so the task starts with a read-only root."""
    from services.images import read_dockerfile

    spec = read_dockerfile("services/Dockerfile", service)
    uid = spec.user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{service} image runs as {spec.user}"
    mounts = [m["containerPath"] for m in container(case, service)["mountPoints"] if not m["readOnly"]]
    assert mounts, service
    for path in mounts:
        assert path in spec.volumes, f"{service}: {path} is mounted writable but the image declares no VOLUME for it"
        assert _made_writable(spec, path, uid), f"{service}: {path} is not writable by uid {uid} in the image"


def _made_writable(spec: Any, path: str, uid: str) -> bool:
    """True if a RUN step of the final stage chowns ``path`` to ``uid`` or opens it to everyone (1777/777)."""
    for run in spec.stage_instructions("RUN"):
        for step in re.split(r"&&|;", run.args):
            words = step.split()
            if path not in words:
                continue
            if words[:1] == ["chown"] and any(w.split(":")[0] == uid for w in words[1:]):
                return True
            if words[:1] == ["chmod"] and any(w in ("1777", "777", "a+rwx", "o+w") for w in words[1:]):
                return True
    return False


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
    assert c["portMappings"] == [
        {"name": "http", "containerPort": port, "hostPort": port, "protocol": "tcp", "appProtocol": "http"}
    ], service
    check = c["healthCheck"]
    # The check runs inside the image: the command must exist there (no wget/curl in the service images).
    assert check["command"] == ["CMD", "python", "-m", "services.common.healthcheck"], service
    assert (check["interval"], check["timeout"], check["retries"], check["startPeriod"]) == (30, 5, 3, 60), service
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert env["HEALTH_CHECK_PATH"] == f"/{service}/health", service


@pytest.mark.parametrize("service", SERVICES)
def test_task_definition_declares_exactly_what_the_service_reads(case: Case, service: str) -> None:
    """The names the task definition declares are the services' own contract (services/common/config.py):
    a rename on either side fails here, before it fails on a real account."""
    c = container(case, service)
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert set(env) == set(service_contract.required_variables(service)), service
    assert {s["name"] for s in c["secrets"]} == set(service_contract.secret_variables(service)) == set(), service


@pytest.mark.parametrize("service", SERVICES)
def test_services_hold_no_credential_and_connect_as_their_own_users(case: Case, service: str) -> None:
    """Issue #8.6 / #8.7: IAM authentication to PostgreSQL and Redis; no master secret, no static token."""
    c = container(case, service)
    assert c["secrets"] == [], f"{service}: a service task gets no secret at all"
    env = {e["name"]: e["value"] for e in c["environment"]}
    secretish = [k for k in env if SECRETISH.search(k)]
    assert secretish == [], f"{service}: secret-like names in plain environment: {secretish}"
    assert not [k for k, v in env.items() if "secretsmanager" in v or case.out["auroraSecretArn"] in v], service
    assert env["SERVICE_NAME"] == service and env["ENVIRONMENT"] == case.env, service
    db_user = EXPECTED_DB_USER[service]
    if db_user:
        assert (env["DB_HOST"], env["DB_PORT"], env["DB_NAME"]) == (
            case.out["auroraWriterEndpoint"],
            str(case.out["auroraPort"]),
            "payments",
        ), service
        assert (env["DB_USER"], env["DB_AUTH"]) == (db_user, "iam"), service
        assert (env["DB_SSL_MODE"], env["DB_SSL_ROOT_CERT"]) == ("verify-full", "/etc/ssl/certs/rds-global-bundle.pem"), service
    else:
        assert not [k for k in env if k.startswith("DB_")], f"{service} must not know the database"
    if EXPECTED_REDIS[service]:
        assert env["REDIS_HOST"] == case.out["redisPrimaryEndpoint"], service
        assert (env["REDIS_USER"], env["REDIS_AUTH"], env["REDIS_TLS"]) == (case.out["redisUserIds"][service], "iam", "true")
        assert env["REDIS_CACHE_NAME"] == case.out["redisReplicationGroupId"], service
    else:
        assert not [k for k in env if k.startswith("REDIS_")], f"{service} must not know Redis"
    assert {k for k in env if k.endswith("_URL")} == EXPECTED_PEERS[service], service
    for peer in ("payment", "notification"):
        if f"{peer.upper()}_URL" in env:
            # The Service Connect alias, never the internet-facing load balancer.
            assert env[f"{peer.upper()}_URL"] == f"http://{peer}:8080", service


@pytest.mark.parametrize("service", SERVICES)
def test_task_role_may_connect_only_as_the_service_own_users(case: Case, service: str) -> None:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")[f"{service}-task-policy"]
    statements = {s["Sid"]: s for s in iam_policies.statements(json.loads(policy.inputs["policy"]))}
    account, region = case.out["accountId"], case.cfg.region
    db_user = EXPECTED_DB_USER[service]
    if db_user:
        connect = statements["ConnectAsOwnDatabaseUser"]
        assert actions_in(connect) == {"rds-db:connect"}, service
        assert iam_policies.resources(connect) == [
            f"arn:aws:rds-db:{region}:{account}:dbuser:{case.out['auroraClusterResourceId']}/{db_user}"
        ], service
    else:
        assert "ConnectAsOwnDatabaseUser" not in statements, service
    if EXPECTED_REDIS[service]:
        connect = statements["ConnectToRedisAsOwnUser"]
        assert actions_in(connect) == {"elasticache:Connect"}, service
        assert set(iam_policies.resources(connect)) == {
            case.out["redisReplicationGroupArn"],
            f"arn:aws:elasticache:{region}:{account}:user:{case.out['redisUserIds'][service]}",
        }, service
    else:
        assert "ConnectToRedisAsOwnUser" not in statements, service


def test_only_the_migrate_task_receives_the_master_secret(case: Case) -> None:
    td = case.by_name("aws:ecs/taskDefinition:TaskDefinition")["migrate-task-definition"]
    (c,) = json.loads(td.inputs["containerDefinitions"])
    secret = case.out["auroraSecretArn"]
    assert {s["name"]: s["valueFrom"] for s in c["secrets"]} == {
        "DB_MASTER_USERNAME": f"{secret}:username::",
        "DB_MASTER_PASSWORD": f"{secret}:password::",
    }
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert set(env) == set(service_contract.required_variables("migrate")) - set(service_contract.secret_variables("migrate"))
    assert env["DB_SERVICE_USERS"] == "payment=scalepay_payment,notification=scalepay_notification"
    assert c["image"] == f"{case.out['ecrRepositoryUrls']['migrate']}:{IMAGE_TAG}" and c["readonlyRootFilesystem"] is True
    assert td.inputs["executionRoleArn"] != case.out["taskExecutionRoleArn"], "the services' execution role reads no secret"
    assert case.out["migrateTaskDefinitionArn"] == td.state["arn"]
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")["migrate-execution-policy"]
    by_sid = {s["Sid"]: s for s in iam_policies.statements(json.loads(policy.inputs["policy"]))}
    assert iam_policies.resources(by_sid["ReadInjectedSecrets"]) == [secret]


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
    # Issue #8.1: `pulumi up` fails when the tasks do not start instead of reporting success over a 503.
    assert i["waitForSteadyState"] is True, svc.name


@pytest.mark.parametrize("service", SERVICES)
def test_service_publishes_itself_through_service_connect(case: Case, service: str) -> None:
    """Issue #11.2: east-west traffic goes through the environment's Cloud Map namespace, not the public ALB."""
    svc = case.by_name("aws:ecs/service:Service")[f"{service}-service"]
    connect = svc.inputs["serviceConnectConfiguration"]
    assert connect["enabled"] is True and connect["namespace"] == case.out["serviceConnectNamespaceArn"], svc.name
    (published,) = connect["services"]
    assert published["portName"] == "http" and published["discoveryName"] == service, svc.name
    assert published["clientAlias"] == [{"port": 8080, "dnsName": service}], svc.name
    assert connect["logConfiguration"]["logDriver"] == "awslogs", svc.name
    assert case.out["serviceConnectNamespace"] == f"scalepay-mesh-{case.env}"
    (cluster,) = case.regs("aws:ecs/cluster:Cluster")
    assert cluster.inputs["serviceConnectDefaults"] == {"namespace": case.out["serviceConnectNamespaceArn"]}


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
    assert svc.inputs["desiredCount"] == case.expected.min_tasks, svc.name
    assert "desiredCount" in svc.ignore_changes, f"{svc.name}: ignore_changes={svc.ignore_changes}"


# --- autoscaling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_scaling_target_bounds(case: Case, service: str) -> None:
    target = case.by_name("aws:appautoscaling/target:Target")[f"{service}-scaling-target"]
    bounds = (case.expected.min_tasks, case.expected.max_tasks)
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == bounds, target.name
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
    expected = case.expected
    target = case.by_name("aws:appautoscaling/target:Target")[f"{service}-scaling-target"]
    policies = [p for p in case.regs("aws:appautoscaling/policy:Policy") if p.inputs["resourceId"] == target.inputs["resourceId"]]
    by_metric = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]["predefinedMetricType"]: p
        for p in policies
    }
    expected_targets = {
        "ECSServiceAverageCPUUtilization": expected.cpu_target_percent,
        "ECSServiceAverageMemoryUtilization": expected.memory_target_percent,
        "ALBRequestCountPerTarget": expected.requests_per_target,
    }
    assert set(by_metric) == set(expected_targets) and len(policies) == 3, f"{service}: {[p.name for p in policies]}"
    for metric, policy in by_metric.items():
        cfg = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert policy.inputs["policyType"] == "TargetTrackingScaling", policy.name
        assert policy.inputs["scalableDimension"] == "ecs:service:DesiredCount", policy.name
        assert cfg["targetValue"] == expected_targets[metric], (
            f"{policy.name}: targetValue {cfg['targetValue']}, expected {expected_targets[metric]}"
        )
        assert cfg["scaleOutCooldown"] == expected.scale_out_cooldown_seconds, policy.name
        assert cfg["scaleInCooldown"] == expected.scale_in_cooldown_seconds, policy.name
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
    assert set(roles) == {"ecs-execution-role", "migrate-execution-role"} | {f"{s}-task-role" for s in SERVICES}
    assert roles["ecs-execution-role"].inputs["name"] == case.cfg.namer.name("ecs-execution")
    for service in SERVICES:
        name = roles[f"{service}-task-role"].inputs["name"]
        assert name == case.cfg.namer.name(f"{service}-task") and len(name) <= 64, name


def test_every_policy_is_least_privilege(case: Case) -> None:
    docs = policy_documents(case)
    assert len(docs) == 2 * (2 + len(SERVICES)), [n for n, _ in docs]
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
    """The services' execution role pulls their images and writes their logs: no secret, no key (issue #8.6)."""
    by_sid = execution_statements(case)
    assert not [s for s in by_sid.values() if actions_in(s) & {"secretsmanager:GetSecretValue", "kms:Decrypt"}]
    repos = {r.name: r.state["arn"] for r in case.regs("aws:ecr/repository:Repository")}
    pull = [s for s in by_sid.values() if "ecr:BatchGetImage" in actions_in(s)]
    expected_repos = {repos[f"{s}-repository"] for s in SERVICES}
    assert len(pull) == 1 and set(iam_policies.resources(pull[0])) == expected_repos, "ECR pull beyond the services' repositories"
    groups = {r.name: r.state["arn"] for r in case.regs("aws:cloudwatch/logGroup:LogGroup")}
    logs = [s for s in by_sid.values() if "logs:PutLogEvents" in actions_in(s)]
    assert len(logs) == 1
    assert set(iam_policies.resources(logs[0])) == {f"{groups[f'{s}-log-group']}:*" for s in SERVICES}
    star = [s for s in by_sid.values() if "*" in iam_policies.resources(s)]
    assert [actions_in(s) for s in star] == [{"ecr:GetAuthorizationToken"}]


@pytest.mark.parametrize("service", SERVICES)
def test_task_role_policy_is_scoped_to_the_service(case: Case, service: str) -> None:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")[f"{service}-task-policy"]
    role = case.by_name("aws:iam/role:Role")[f"{service}-task-role"]
    assert policy.inputs["role"] == role.state["id"], policy.name
    metrics = {s["Sid"]: s for s in iam_policies.statements(json.loads(policy.inputs["policy"]))}["PublishOwnMetrics"]
    assert actions_in(metrics) == {"cloudwatch:PutMetricData"}, policy.name
    namespace = f"ScalePayments/{case.env}/{service}"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}, policy.name
    definition = case.by_name("aws:ecs/taskDefinition:TaskDefinition")[f"{service}-task-definition"]
    (container,) = json.loads(definition.inputs["containerDefinitions"])
    assert {e["name"]: e["value"] for e in container["environment"]}["METRICS_NAMESPACE"] == namespace


def test_execution_policy_is_attached_before_tasks_can_start(case: Case) -> None:
    policy = case.by_name("aws:iam/rolePolicy:RolePolicy")["ecs-execution-policy"]
    assert policy.inputs["role"] == case.by_name("aws:iam/role:Role")["ecs-execution-role"].state["id"]
    for td in case.regs("aws:ecs/taskDefinition:TaskDefinition"):
        if td.name != "migrate-task-definition":
            assert policy.urn in td.depends_on, f"{td.name} does not wait for the execution role policy"
    migrate = case.by_name("aws:iam/rolePolicy:RolePolicy")["migrate-execution-policy"]
    assert migrate.urn in case.by_name("aws:ecs/taskDefinition:TaskDefinition")["migrate-task-definition"].depends_on


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
    for key in ("serviceNames", "taskDefinitionArns", "taskRoleArns"):
        assert set(case.out[key]) == set(SERVICES), key
    for key in ("serviceLogGroupNames", "ecrRepositoryUrls", "serviceImages"):
        assert set(case.out[key]) == set(WORKLOADS), key
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
    names += [
        r.inputs["name"] for r in ev.registrations if r.component == COMPUTE and r.type == "aws:cloudwatch/logGroup:LogGroup"
    ]
    assert names and all(n.endswith("-dev-pr42") or n.endswith("-dev-pr42/performance") for n in names), names
    assert ev.outputs["serviceLogGroupNames"]["api"] == "/ecs/scalepay-api-dev-pr42"


# --- pure helpers ------------------------------------------------------------------------------------------


def _settings(name: str) -> ServiceSettings:
    return ServiceSettings(
        name=name,
        short_name=name[:3],
        description="test",
        image=None,
        port=9090,
        cpu=256,
        memory=512,
        max_request_body_bytes=1024,
        path_pattern=f"/{name}/*",
        health_check_path=f"/{name}/health",
    )


def _container(
    name: str,
    *,
    environment: str,
    scope: str,
    region: str,
    database: compute.DatabaseConnection | None = None,
    cache: compute.CacheConnection | None = None,
    peers: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The one container definition of service ``name`` (built by :func:`_settings`) for these deployment inputs."""
    (container,) = compute.container_definitions(
        _settings(name),
        image="repo:1",
        environment=environment,
        scope=scope,
        region=region,
        log_group_name="/ecs/x",
        database=database,
        cache=cache,
        peers=peers or {},
    )
    return container


def test_container_definitions_without_data_stores_have_no_credentials() -> None:
    c = _container("worker", environment="dev", scope="dev", region="us-west-2")
    assert c["secrets"] == []
    assert not [e for e in c["environment"] if e["name"].startswith(("DB_", "REDIS_"))]
    assert c["portMappings"][0]["containerPort"] == 9090
    assert {e["name"]: e["value"] for e in c["environment"]}["PORT"] == "9090"
    assert c["logConfiguration"]["options"]["awslogs-region"] == "us-west-2"


def test_container_definitions_name_the_identities_not_secrets() -> None:
    c = _container(
        "payment",
        environment="prod",
        scope="prod-pr7",
        region="us-east-1",
        database=compute.DatabaseConnection(endpoint="w", port=5432, name="payments", user="scalepay_payment"),
        cache=compute.CacheConnection(endpoint="c", port=6379, user="scalepay-payment-redis-prod", replication_group_id="g"),
        peers={"notification": 8080},
    )
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert c["secrets"] == []
    assert (env["DB_USER"], env["REDIS_USER"], env["REDIS_CACHE_NAME"]) == (
        "scalepay_payment",
        "scalepay-payment-redis-prod",
        "g",
    )
    assert env["NOTIFICATION_URL"] == "http://notification:8080"
    assert env["METRICS_NAMESPACE"] == "ScalePayments/prod-pr7/payment", "an ephemeral copy publishes apart from prod"


def test_unknown_service_gets_no_implicit_data_access() -> None:
    with pytest.raises(ValueError, match="worker"):
        data_access("worker")
    assert data_access("notification").cache_access is None and data_access("api").db_user is None


def test_secret_ref() -> None:
    assert compute.secret_ref("arn:s", "password") == "arn:s:password::"
    assert compute.secret_ref("arn:s", None) == "arn:s"


def test_scratch_volume_names() -> None:
    assert compute.scratch_volume_name("/tmp") == "scratch-tmp"
    assert compute.scratch_volume_name("/var/cache/app/") == "scratch-var-cache-app"
