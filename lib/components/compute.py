"""ECS Fargate: cluster, ECR repositories, task definitions, services, IAM and autoscaling."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, child_opts
from lib.components.load_balancer import TargetGroupRef
from lib.config import ComputeSettings, ServiceSettings
from lib.iam_policies import (
    ecs_tasks_assume_role_policy,
    metric_namespace,
    service_task_role_policy,
    task_execution_role_policy,
)
from lib.naming import NameKind

COMPONENT = "compute"

#: Where the containers may write: the root filesystem is read-only, /tmp is an ephemeral task volume
#: (nginx-unprivileged keeps its pid file and proxy/client body caches there).
SCRATCH_VOLUME = "tmp"
SCRATCH_PATH = "/tmp"  # a per-task ephemeral volume, not the host's /tmp

#: JSON keys inside the secrets the data tier creates: the RDS-managed master secret stores
#: ``username`` and ``password``; the cache component stores the Redis AUTH token as ``authToken``.
DB_USERNAME_KEY = "username"
DB_PASSWORD_KEY = "password"
CACHE_TOKEN_KEY = "authToken"

#: ECR lifecycle: untagged layers are build leftovers; 30 tagged images is ample rollback history.
UNTAGGED_IMAGE_EXPIRY_DAYS = 7
TAGGED_IMAGES_KEPT = 30

#: Container health check (the default image answers ``GET /`` with 200 on its port).
HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_TIMEOUT_SECONDS = 5
HEALTH_CHECK_RETRIES = 3
HEALTH_CHECK_START_PERIOD_SECONDS = 60
LB_HEALTH_CHECK_GRACE_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class ServiceDependencies:
    """Where the services find their data stores: endpoints are plain, credentials are secrets."""

    database_endpoint: pulumi.Input[str]
    database_reader_endpoint: pulumi.Input[str]
    database_port: int
    database_name: str
    database_secret_arn: pulumi.Input[str]
    cache_endpoint: pulumi.Input[str]
    cache_port: int
    cache_secret_arn: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class ComputeArgs:
    """Inputs of :class:`Compute`."""

    context: Context
    settings: ComputeSettings
    private_subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    target_groups: dict[str, TargetGroupRef]
    alb_arn_suffix: pulumi.Input[str]
    dependencies: ServiceDependencies
    data_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    account_id: pulumi.Input[str]


# --- pure helpers (no Pulumi): tested directly --------------------------------------------------


@dataclass(frozen=True)
class DataAccess:
    """Which data stores a service's containers receive endpoints and credentials for."""

    database: bool
    cache: bool


#: Least privilege per service: api and payment read and write PostgreSQL and use Redis (sessions,
#: idempotency keys); notification only consumes events and deduplicates them in Redis, so it never
#: sees the database credentials.
SERVICE_DATA_ACCESS: Mapping[str, DataAccess] = {
    "api": DataAccess(database=True, cache=True),
    "payment": DataAccess(database=True, cache=True),
    "notification": DataAccess(database=False, cache=True),
}


def data_access(service: str) -> DataAccess:
    """The data stores ``service`` may reach; an unknown service fails instead of getting everything."""
    try:
        return SERVICE_DATA_ACCESS[service]
    except KeyError:
        raise ValueError(
            f"service {service!r} has no data-access entry; known services: {', '.join(sorted(SERVICE_DATA_ACCESS))}"
        ) from None


@dataclass(frozen=True)
class DatabaseConnection:
    """Resolved PostgreSQL connection details for one container."""

    endpoint: str
    reader_endpoint: str
    port: int
    name: str
    secret_arn: str


@dataclass(frozen=True)
class CacheConnection:
    """Resolved Redis connection details for one container."""

    endpoint: str
    port: int
    secret_arn: str


def secret_ref(secret_arn: str, json_key: str | None) -> str:
    """``valueFrom`` for an ECS secret: the whole secret, or one JSON key (``<arn>:<key>::``)."""
    return f"{secret_arn}:{json_key}::" if json_key else secret_arn


def container_definitions(
    service: ServiceSettings,
    *,
    environment: str,
    region: str,
    log_group_name: str,
    database: DatabaseConnection | None,
    cache: CacheConnection | None,
) -> list[dict[str, Any]]:
    """The container definitions of one service's task (one hardened container).

    Credentials only ever appear under ``secrets`` (resolved by the ECS agent from Secrets
    Manager at start-up); ``environment`` carries endpoints and names, nothing sensitive.
    """
    env: dict[str, str] = {
        "SERVICE_NAME": service.name,
        "ENVIRONMENT": environment,
        "PORT": str(service.port),
        "METRICS_NAMESPACE": metric_namespace(service.name),
    }
    secrets: dict[str, str] = {}
    if database is not None:
        env.update(
            DB_HOST=database.endpoint,
            DB_READER_HOST=database.reader_endpoint,
            DB_PORT=str(database.port),
            DB_NAME=database.name,
            DB_SSL_MODE="require",  # Aurora is configured SSL-only; say so to the client too
        )
        secrets.update(
            DB_USERNAME=secret_ref(database.secret_arn, DB_USERNAME_KEY),
            DB_PASSWORD=secret_ref(database.secret_arn, DB_PASSWORD_KEY),
        )
    if cache is not None:
        env.update(REDIS_HOST=cache.endpoint, REDIS_PORT=str(cache.port), REDIS_TLS="true")
        secrets.update(REDIS_AUTH_TOKEN=secret_ref(cache.secret_arn, CACHE_TOKEN_KEY))
    return [
        {
            "name": service.name,
            "image": service.image,
            "essential": True,
            "privileged": False,
            "readonlyRootFilesystem": True,
            # Fargate honours capability drops; nothing here needs a Linux capability (port >= 1024).
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
            "portMappings": [{"containerPort": service.port, "hostPort": service.port, "protocol": "tcp"}],
            "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}],
            # Sorted so that the rendered JSON (and therefore the task definition) is stable across runs.
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
            "healthCheck": {
                "command": ["CMD-SHELL", f"wget -q -O /dev/null http://localhost:{service.port}/ || exit 1"],
                "interval": HEALTH_CHECK_INTERVAL_SECONDS,
                "timeout": HEALTH_CHECK_TIMEOUT_SECONDS,
                "retries": HEALTH_CHECK_RETRIES,
                "startPeriod": HEALTH_CHECK_START_PERIOD_SECONDS,
            },
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group_name,
                    "awslogs-region": region,
                    "awslogs-stream-prefix": service.name,
                },
            },
        }
    ]


def ecr_lifecycle_policy(
    untagged_expiry_days: int = UNTAGGED_IMAGE_EXPIRY_DAYS, tagged_images_kept: int = TAGGED_IMAGES_KEPT
) -> dict[str, Any]:
    """ECR lifecycle policy: expire untagged images after N days, keep the last M tagged images."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {untagged_expiry_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_expiry_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the last {tagged_images_kept} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": tagged_images_kept,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def log_group_name(ctx: Context, service: str) -> str:
    """``/ecs/scalepay-<service>-<environment>[-<suffix>]``."""
    return f"/ecs/{ctx.name(service)}"


# --- the component -------------------------------------------------------------------------------


class Compute(Component):
    """ECS cluster with Container Insights running api, payment and notification on Fargate."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    task_definition_arns: dict[str, pulumi.Output[str]]
    log_group_names: dict[str, pulumi.Output[str]]
    repository_urls: dict[str, pulumi.Output[str]]
    execution_role_arn: pulumi.Output[str]
    task_role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:compute:Compute", name, None, opts)
        ctx = args.context
        services = args.settings.services
        # Fail before registering anything if a service has no target group or no data-access entry.
        for service in services:
            data_access(service.name)
            if service.name not in args.target_groups:
                raise ValueError(f"service {service.name!r} has no target group; have {sorted(args.target_groups)}")
        tags = ctx.tags(COMPONENT)

        cluster = aws.ecs.Cluster(
            "ecs-cluster",
            name=ctx.name("cluster"),
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=tags,
            opts=child_opts(self),
        )
        aws.ecs.ClusterCapacityProviders(
            "ecs-capacity-providers",
            cluster_name=cluster.name,
            # FARGATE_SPOT is available for ad-hoc tasks; services default to on-demand FARGATE
            # because an interrupted payment task costs more than the Spot discount saves.
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(capacity_provider="FARGATE", weight=1)
            ],
            opts=child_opts(self),
        )

        repositories: dict[str, aws.ecr.Repository] = {}
        log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        for service in services:
            repositories[service.name] = self._repository(ctx, service, args.data_key_arn, tags)
            log_groups[service.name] = aws.cloudwatch.LogGroup(
                f"{service.name}-log-group",
                name=log_group_name(ctx, service.name),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.logs_key_arn,
                tags=tags,
                opts=child_opts(self),
            )

        execution_role, execution_policy = self._execution_role(ctx, args, repositories, log_groups, tags)

        self.service_names = {}
        self.task_definition_arns = {}
        self.task_role_arns = {}
        for service in services:
            task_role, task_policy = self._task_role(ctx, service, args.account_id, tags)
            task_definition = aws.ecs.TaskDefinition(
                f"{service.name}-task-definition",
                family=ctx.name(service.name),
                cpu=str(service.cpu),
                memory=str(service.memory),
                network_mode="awsvpc",
                requires_compatibilities=["FARGATE"],
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture="X86_64"
                ),
                execution_role_arn=execution_role.arn,
                task_role_arn=task_role.arn,
                volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=SCRATCH_VOLUME)],
                container_definitions=self._container_definitions(ctx, service, log_groups[service.name].name, args),
                tags=tags,
                # The inline policies are separate resources: without these edges the first task could
                # start before the execution role may read its secrets, and fail.
                opts=child_opts(self, pulumi.ResourceOptions(depends_on=[execution_policy, task_policy])),
            )
            ecs_service = aws.ecs.Service(
                f"{service.name}-service",
                name=ctx.name(service.name),
                cluster=cluster.arn,
                task_definition=task_definition.arn,
                launch_type="FARGATE",
                desired_count=args.settings.min_tasks,
                network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                    subnets=args.private_subnet_ids,
                    security_groups=[args.security_group_id],
                    assign_public_ip=False,
                ),
                load_balancers=[
                    aws.ecs.ServiceLoadBalancerArgs(
                        target_group_arn=args.target_groups[service.name].arn,
                        container_name=service.name,
                        container_port=service.port,
                    )
                ],
                health_check_grace_period_seconds=LB_HEALTH_CHECK_GRACE_SECONDS,
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
                deployment_minimum_healthy_percent=100,
                deployment_maximum_percent=200,
                enable_execute_command=False,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                wait_for_steady_state=False,
                tags=tags,
                # Autoscaling owns the task count after creation; re-applying min_tasks would undo a scale-out.
                opts=child_opts(self, pulumi.ResourceOptions(ignore_changes=["desiredCount"])),
            )
            self._autoscaling(ctx, service, args, cluster, ecs_service, tags)
            self.service_names[service.name] = ecs_service.name
            self.task_definition_arns[service.name] = task_definition.arn
            self.task_role_arns[service.name] = task_role.arn

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.log_group_names = {k: v.name for k, v in log_groups.items()}
        self.repository_urls = {k: v.repository_url for k, v in repositories.items()}
        self.execution_role_arn = execution_role.arn
        self.finish()

    def _repository(
        self, ctx: Context, service: ServiceSettings, data_key_arn: pulumi.Input[str], tags: dict[str, str]
    ) -> aws.ecr.Repository:
        """A private, KMS-encrypted, scan-on-push, immutable-tag repository with a lifecycle policy."""
        repository = aws.ecr.Repository(
            f"{service.name}-repository",
            name=ctx.name(service.name),
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            # Immutable tags: a deployed tag always means the same image (audit trail, safe rollbacks).
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=data_key_arn)
            ],
            force_delete=False,
            tags=tags,
            opts=child_opts(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{service.name}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps(ecr_lifecycle_policy()),
            opts=child_opts(self),
        )
        return repository

    def _execution_role(
        self,
        ctx: Context,
        args: ComputeArgs,
        repositories: Mapping[str, aws.ecr.Repository],
        log_groups: Mapping[str, aws.cloudwatch.LogGroup],
        tags: dict[str, str],
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The task execution role shared by the services' ECS agents, and its inline policy."""
        role = aws.iam.Role(
            "ecs-execution-role",
            name=ctx.name("ecs-execution", NameKind.IAM_ROLE),
            description="ECS agent: pull images, write service logs, inject data-store secrets",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(ecs_tasks_assume_role_policy(account))
            ),
            tags=tags,
            opts=child_opts(self),
        )
        region = ctx.region
        deps = args.dependencies
        policy_document = pulumi.Output.all(
            repos=[r.arn for r in repositories.values()],
            groups=[g.arn for g in log_groups.values()],
            secrets=[deps.database_secret_arn, deps.cache_secret_arn],
            key=args.data_key_arn,
        ).apply(
            lambda v: json.dumps(
                task_execution_role_policy(
                    region=region,
                    repository_arns=v["repos"],
                    log_group_arns=v["groups"],
                    secret_arns=v["secrets"],
                    secrets_key_arn=v["key"],
                )
            )
        )
        policy = aws.iam.RolePolicy(
            "ecs-execution-policy",
            name=ctx.name("ecs-execution"),
            role=role.id,
            policy=policy_document,
            opts=child_opts(self),
        )
        return role, policy

    def _task_role(
        self, ctx: Context, service: ServiceSettings, account_id: pulumi.Input[str], tags: dict[str, str]
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """One service's task role (what its code may call) with only that service's permissions."""
        role = aws.iam.Role(
            f"{service.name}-task-role",
            name=ctx.name(f"{service.name}-task", NameKind.IAM_ROLE),
            description=f"{service.name} ({service.description}) application permissions",
            assume_role_policy=pulumi.Output.from_input(account_id).apply(
                lambda account: json.dumps(ecs_tasks_assume_role_policy(account))
            ),
            tags=tags,
            opts=child_opts(self),
        )
        policy = aws.iam.RolePolicy(
            f"{service.name}-task-policy",
            name=ctx.name(f"{service.name}-task"),
            role=role.id,
            policy=json.dumps(service_task_role_policy(service.name)),
            opts=child_opts(self),
        )
        return role, policy

    def _container_definitions(
        self, ctx: Context, service: ServiceSettings, group_name: pulumi.Output[str], args: ComputeArgs
    ) -> pulumi.Output[str]:
        """Render :func:`container_definitions` once the endpoints and secret ARNs are known.

        Only the data stores the service may use are awaited, so notification's task definition
        does not even depend on the database.
        """
        access = data_access(service.name)
        deps = args.dependencies
        parts: dict[str, pulumi.Input[str]] = {"log_group": group_name}
        if access.database:
            parts.update(
                db_endpoint=deps.database_endpoint,
                db_reader=deps.database_reader_endpoint,
                db_secret=deps.database_secret_arn,
            )
        if access.cache:
            parts.update(cache_endpoint=deps.cache_endpoint, cache_secret=deps.cache_secret_arn)
        environment, region = ctx.environment, ctx.region

        def render(values: dict[str, str]) -> str:
            database = (
                DatabaseConnection(
                    values["db_endpoint"], values["db_reader"], deps.database_port, deps.database_name, values["db_secret"]
                )
                if access.database
                else None
            )
            cache = CacheConnection(values["cache_endpoint"], deps.cache_port, values["cache_secret"]) if access.cache else None
            return json.dumps(
                container_definitions(
                    service,
                    environment=environment,
                    region=region,
                    log_group_name=values["log_group"],
                    database=database,
                    cache=cache,
                )
            )

        return pulumi.Output.all(**parts).apply(render)

    def _autoscaling(
        self,
        ctx: Context,
        service: ServiceSettings,
        args: ComputeArgs,
        cluster: aws.ecs.Cluster,
        ecs_service: aws.ecs.Service,
        tags: dict[str, str],
    ) -> None:
        """Scale the service's task count between min and max on CPU, memory and ALB requests."""
        settings = args.settings
        target = aws.appautoscaling.Target(
            f"{service.name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster.name, "/", ecs_service.name),
            min_capacity=settings.min_tasks,
            max_capacity=settings.max_tasks,
            tags=tags,
            opts=child_opts(self),
        )
        request_label = pulumi.Output.concat(args.alb_arn_suffix, "/", args.target_groups[service.name].arn_suffix)
        metrics: list[tuple[str, str, int, pulumi.Input[str] | None]] = [
            ("cpu", "ECSServiceAverageCPUUtilization", settings.cpu_target_percent, None),
            ("memory", "ECSServiceAverageMemoryUtilization", settings.memory_target_percent, None),
            ("requests", "ALBRequestCountPerTarget", settings.requests_per_target, request_label),
        ]
        for short, metric, target_value, label in metrics:
            aws.appautoscaling.Policy(
                f"{service.name}-{short}-scaling",
                name=ctx.name(f"{service.name}-{short}-scaling"),
                policy_type="TargetTrackingScaling",
                # Read from the target (not repeated literals) so the policy waits for the target to exist.
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                service_namespace=target.service_namespace,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=float(target_value),
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric,
                        resource_label=label,
                    ),
                    scale_out_cooldown=settings.scale_out_cooldown_seconds,
                    scale_in_cooldown=settings.scale_in_cooldown_seconds,
                ),
                opts=child_opts(self),
            )
