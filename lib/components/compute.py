"""ECS Fargate: cluster, ECR repositories, task definitions, services, Service Connect, IAM and autoscaling.

Every service runs its image from the stack's own ECR repository (``<repository>:<imageTag>``); no task
pulls anonymously from a public registry. The containers hold no static credential: they reach
PostgreSQL and Redis with IAM authentication as their own users (:mod:`lib.service_access`), and each
other through ECS Service Connect (a Cloud Map namespace per environment), never through the
internet-facing load balancer. A one-off ``migrate`` task definition, the only holder of the Aurora
master secret, creates the services' database users and applies the schema migrations.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, GuardedArgs, child_opts, encrypted_log_group
from lib.components.load_balancer import TargetGroupRef
from lib.config import ComputeSettings, ServiceSettings
from lib.iam_policies import (
    ecs_tasks_assume_role_policy,
    elasticache_user_arn,
    metric_namespace,
    rds_db_user_arn,
    service_task_role_policy,
    task_execution_role_policy,
)
from lib.naming import NameKind
from lib.service_access import MIGRATE, data_access, db_service_users, db_service_users_variable

COMPONENT = "compute"

#: JSON keys inside the RDS-managed master secret (``username``, ``password``): only the migrate task reads them.
DB_USERNAME_KEY = "username"
DB_PASSWORD_KEY = "password"

#: Where the service images keep the RDS CA bundle (services/Dockerfile's database-service and migrate targets add
#: it there): clients verify the server certificate and its host name (``sslmode=verify-full``), not only encrypt.
RDS_CA_BUNDLE_PATH = "/etc/ssl/certs/rds-global-bundle.pem"
DB_SSL_MODE = "verify-full"

#: The container health check every service image carries (services/common/healthcheck.py): GET of the
#: service's HEALTH_CHECK_PATH on its own port, with nothing but the Python standard library.
HEALTH_CHECK_COMMAND: tuple[str, ...] = ("CMD", "python", "-m", "services.common.healthcheck")

#: Name of the container port mapping Service Connect publishes (the client alias points at it).
SERVICE_CONNECT_PORT_NAME = "http"

#: ECR lifecycle: untagged layers are build leftovers; 30 tagged images is ample rollback history.
UNTAGGED_IMAGE_EXPIRY_DAYS = 7
TAGGED_IMAGES_KEPT = 30

#: Container health check timing; the start period covers interpreter start and the first pool connection.
HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_TIMEOUT_SECONDS = 5
HEALTH_CHECK_RETRIES = 3
HEALTH_CHECK_START_PERIOD_SECONDS = 60
LB_HEALTH_CHECK_GRACE_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class ServiceDependencies:
    """Where the services find their data stores, and which identities they use there."""

    database_endpoint: pulumi.Input[str]
    database_port: int
    database_name: str
    database_cluster_resource_id: pulumi.Input[str]
    database_master_secret_arn: pulumi.Input[str]
    cache_endpoint: pulumi.Input[str]
    cache_port: int
    cache_replication_group_id: pulumi.Input[str]
    cache_replication_group_arn: pulumi.Input[str]
    #: service -> ElastiCache user id (IAM authentication: user id and user name are the same).
    cache_user_ids: Mapping[str, pulumi.Input[str]]


@dataclass(frozen=True, kw_only=True)
class ComputeArgs(GuardedArgs):
    """Inputs of :class:`Compute`."""

    settings: ComputeSettings
    private_subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    target_groups: dict[str, TargetGroupRef]
    #: service -> the listener rule that forwards to its target group (ECS refuses a service before it exists).
    listener_rules: Mapping[str, pulumi.Resource]
    alb_arn_suffix: pulumi.Input[str]
    dependencies: ServiceDependencies
    data_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]


# --- pure helpers (no Pulumi): tested directly --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DatabaseConnection:
    """Resolved PostgreSQL connection details for one container."""

    endpoint: str
    port: int
    name: str
    user: str


@dataclass(frozen=True, kw_only=True)
class CacheConnection:
    """Resolved Redis connection details for one container."""

    endpoint: str
    port: int
    user: str
    replication_group_id: str


def secret_ref(secret_arn: str, json_key: str | None) -> str:
    """``valueFrom`` for an ECS secret: the whole secret, or one JSON key (``<arn>:<key>::``)."""
    return f"{secret_arn}:{json_key}::" if json_key else secret_arn


def service_url(service: str, port: int) -> str:
    """The Service Connect client alias of ``service``: ``http://<service>:<port>`` inside the namespace."""
    return f"http://{service}:{port}"


def scratch_volume_name(path: str) -> str:
    """Task volume for a writable path: ``/tmp`` -> ``scratch-tmp``, ``/var/cache/app`` -> ``scratch-var-cache-app``."""
    return "scratch-" + "-".join(part for part in path.strip("/").split("/") if part)


def _database_env(database: DatabaseConnection) -> dict[str, str]:
    return {
        "DB_HOST": database.endpoint,
        "DB_PORT": str(database.port),
        "DB_NAME": database.name,
        # The client verifies the server's certificate chain and host name, not only encrypts;
        # the cluster itself refuses plaintext (rds.force_ssl).
        "DB_SSL_MODE": DB_SSL_MODE,
        "DB_SSL_ROOT_CERT": RDS_CA_BUNDLE_PATH,
    }


def _log_configuration(log_group_name: str, region: str, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {"awslogs-group": log_group_name, "awslogs-region": region, "awslogs-stream-prefix": prefix},
    }


def container_definitions(
    service: ServiceSettings,
    *,
    image: str,
    environment: str,
    scope: str,
    region: str,
    log_group_name: str,
    database: DatabaseConnection | None,
    cache: CacheConnection | None,
    peers: Mapping[str, int],
) -> list[dict[str, Any]]:
    """The container definitions of one service's task (one hardened container).

    ``environment`` carries endpoints and names only; there are no ``secrets`` at all: the data stores
    authenticate the task role (IAM), so nothing can leak from the task definition or expire under a
    running task. ``peers`` are the services it calls (name -> port), reached at their Service Connect
    aliases. ``scope`` (``<environment>[-<suffix>]``) names the stack's own metrics namespace. The names are
    exactly those the services read (services/common/config.py).
    """
    env: dict[str, str] = {
        "SERVICE_NAME": service.name,
        "ENVIRONMENT": environment,
        "PORT": str(service.port),
        "HEALTH_CHECK_PATH": service.health_check_path,
        "MAX_REQUEST_BODY_BYTES": str(service.max_request_body_bytes),
        "METRICS_NAMESPACE": metric_namespace(scope, service.name),
    }
    for peer, port in sorted(peers.items()):
        env[f"{peer.upper()}_URL"] = service_url(peer, port)
    if database is not None:
        env.update(_database_env(database), DB_USER=database.user, DB_AUTH="iam")
    if cache is not None:
        env.update(
            REDIS_HOST=cache.endpoint,
            REDIS_PORT=str(cache.port),
            REDIS_TLS="true",  # ElastiCache in-transit encryption: TLS from the first byte
            REDIS_USER=cache.user,
            REDIS_AUTH="iam",
            REDIS_CACHE_NAME=cache.replication_group_id,
        )
    return [
        {
            "name": service.name,
            "image": image,
            "essential": True,
            "privileged": False,
            "readonlyRootFilesystem": True,
            # Fargate honours capability drops; nothing here needs a Linux capability (port >= 1024).
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
            "portMappings": [
                {
                    "name": SERVICE_CONNECT_PORT_NAME,
                    "containerPort": service.port,
                    "hostPort": service.port,
                    "protocol": "tcp",
                    "appProtocol": "http",
                }
            ],
            # Each writable path is a task volume; the image declares it with VOLUME (owned by its
            # non-root user), so Fargate copies that ownership into the otherwise root-owned volume.
            "mountPoints": [
                {"sourceVolume": scratch_volume_name(path), "containerPath": path, "readOnly": False}
                for path in service.writable_paths
            ],
            # Sorted so that the rendered JSON (and therefore the task definition) is stable across runs.
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "secrets": [],
            "healthCheck": {
                "command": list(HEALTH_CHECK_COMMAND),
                "interval": HEALTH_CHECK_INTERVAL_SECONDS,
                "timeout": HEALTH_CHECK_TIMEOUT_SECONDS,
                "retries": HEALTH_CHECK_RETRIES,
                "startPeriod": HEALTH_CHECK_START_PERIOD_SECONDS,
            },
            "logConfiguration": _log_configuration(log_group_name, region, service.name),
        }
    ]


def migrate_container_definitions(
    *,
    image: str,
    region: str,
    log_group_name: str,
    database: DatabaseConnection,
    master_secret_arn: str,
    service_users: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The migrate task's container: the only one that receives the Aurora master credentials (as ECS secrets)."""
    env = {**_database_env(database), "DB_SERVICE_USERS": db_service_users_variable(service_users)}
    return [
        {
            "name": MIGRATE,
            "image": image,
            "essential": True,
            "privileged": False,
            "readonlyRootFilesystem": True,
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
            "mountPoints": [{"sourceVolume": scratch_volume_name("/tmp"), "containerPath": "/tmp", "readOnly": False}],
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            # Resolved by the ECS agent (the migrate execution role) from Secrets Manager at start:
            # the values never appear in the task definition, its API responses or the logs.
            "secrets": [
                {"name": "DB_MASTER_PASSWORD", "valueFrom": secret_ref(master_secret_arn, DB_PASSWORD_KEY)},
                {"name": "DB_MASTER_USERNAME", "valueFrom": secret_ref(master_secret_arn, DB_USERNAME_KEY)},
            ],
            "logConfiguration": _log_configuration(log_group_name, region, MIGRATE),
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


def _proxy_log_options(region: str, log_group: str) -> dict[str, str]:
    """awslogs options of the Service Connect proxy: the service's own log group, its own stream prefix."""
    return {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": "service-connect"}


def log_group_name(ctx: Context, service: str) -> str:
    """``/ecs/scalepay-<service>-<environment>[-<suffix>]``."""
    return f"/ecs/{ctx.name(service)}"


def container_insights_log_group_name(cluster_name: str) -> str:
    """The log group Container Insights writes performance events to (fixed by AWS)."""
    return f"/aws/ecs/containerinsights/{cluster_name}/performance"


def cache_user_id(ctx: Context, service: str) -> str:
    """ElastiCache user id of ``service``: ``scalepay-<service>-<env>[-<suffix>]`` (IAM auth: id == name)."""
    return ctx.name(f"{service}-redis", NameKind.ELASTICACHE_USER)


# --- the component -------------------------------------------------------------------------------


class Compute(Component):
    """ECS cluster with Container Insights running api, payment and notification on Fargate."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    task_definition_arns: dict[str, pulumi.Output[str]]
    migrate_task_definition_arn: pulumi.Output[str]
    log_group_names: dict[str, pulumi.Output[str]]
    repository_urls: dict[str, pulumi.Output[str]]
    images: dict[str, pulumi.Output[str]]
    execution_role_arn: pulumi.Output[str]
    task_role_arns: dict[str, pulumi.Output[str]]
    service_connect_namespace_arn: pulumi.Output[str]
    service_connect_namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:compute:Compute", name, None, opts)
        ctx = args.context
        services = args.settings.services
        # Fail before registering anything if a service has no target group or no data-access entry.
        for service in services:
            data_access(service.name)
            if service.name not in args.target_groups or service.name not in args.listener_rules:
                raise ValueError(f"service {service.name!r} has no target group and rule; have {sorted(args.target_groups)}")
        tags = ctx.tags(COMPONENT)
        self._args = args

        cluster_name = ctx.name("cluster")
        # Created before the cluster: Container Insights would otherwise create it on the first metric,
        # unencrypted and kept forever (and the stack's Config rule would report it).
        insights_log_group = encrypted_log_group(
            "container-insights-logs", container_insights_log_group_name(cluster_name), args, tags, child_opts(self)
        )
        namespace = aws.servicediscovery.HttpNamespace(
            "service-connect-namespace",
            name=ctx.name("mesh"),
            description="ECS Service Connect: east-west traffic between the services, never through the public ALB",
            tags=tags,
            opts=child_opts(self),
        )
        cluster = aws.ecs.Cluster(
            "ecs-cluster",
            name=cluster_name,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            service_connect_defaults=aws.ecs.ClusterServiceConnectDefaultsArgs(namespace=namespace.arn),
            tags=tags,
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[insights_log_group])),
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
        for workload in [*(s.name for s in services), MIGRATE]:
            repositories[workload] = self._repository(ctx, workload, tags)
            log_groups[workload] = encrypted_log_group(
                f"{workload}-log-group", log_group_name(ctx, workload), args, tags, child_opts(self)
            )
        self.images = {
            workload: self._image(repository, next((s.image for s in services if s.name == workload), None))
            for workload, repository in repositories.items()
        }

        execution_role, execution_policy = self._execution_role(
            "ecs-execution",
            "ECS agent of the services: pull their images, write their logs (no secrets)",
            [repositories[s.name] for s in services],
            [log_groups[s.name] for s in services],
            secret_arns=[],
            tags=tags,
        )

        self.service_names = {}
        self.task_definition_arns = {}
        self.task_role_arns = {}
        ports = {s.name: s.port for s in services}
        for service in services:
            task_role, task_policy = self._task_role(ctx, service, tags)
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
                volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=scratch_volume_name(p)) for p in service.writable_paths],
                container_definitions=self._container_definitions(ctx, service, log_groups[service.name].name, ports),
                tags=tags,
                # The inline policies are separate resources: without these edges the first task could
                # start before its roles may pull the image or connect to the data stores.
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
                # Publishes <service>:<port> in the namespace; every service is also a client of it.
                service_connect_configuration=aws.ecs.ServiceServiceConnectConfigurationArgs(
                    enabled=True,
                    namespace=namespace.arn,
                    services=[
                        aws.ecs.ServiceServiceConnectConfigurationServiceArgs(
                            port_name=SERVICE_CONNECT_PORT_NAME,
                            discovery_name=service.name,
                            client_alias=[
                                aws.ecs.ServiceServiceConnectConfigurationServiceClientAliasArgs(
                                    port=service.port, dns_name=service.name
                                )
                            ],
                        )
                    ],
                    log_configuration=aws.ecs.ServiceServiceConnectConfigurationLogConfigurationArgs(
                        log_driver="awslogs",
                        options=log_groups[service.name].name.apply(functools.partial(_proxy_log_options, ctx.region)),
                    ),
                ),
                health_check_grace_period_seconds=LB_HEALTH_CHECK_GRACE_SECONDS,
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
                deployment_minimum_healthy_percent=100,
                deployment_maximum_percent=200,
                enable_execute_command=False,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                # `pulumi up` fails when tasks do not become healthy (a crash loop rolled back by the
                # circuit breaker) instead of reporting success over a service answering 503.
                wait_for_steady_state=args.settings.wait_for_steady_state,
                tags=tags,
                # Autoscaling owns the task count after creation; re-applying min_tasks would undo a scale-out.
                # ECS refuses a service whose target group is not attached to a listener rule yet; the rule is
                # not an input of the service, so Pulumi cannot infer this edge.
                opts=child_opts(
                    self,
                    pulumi.ResourceOptions(ignore_changes=["desiredCount"], depends_on=[args.listener_rules[service.name]]),
                ),
            )
            self._autoscaling(ctx, service, args, cluster, ecs_service, tags)
            self.service_names[service.name] = ecs_service.name
            self.task_definition_arns[service.name] = task_definition.arn
            self.task_role_arns[service.name] = task_role.arn

        self.migrate_task_definition_arn = self._migrate_task(ctx, repositories[MIGRATE], log_groups[MIGRATE], tags)
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.log_group_names = {k: v.name for k, v in log_groups.items()}
        self.repository_urls = {k: v.repository_url for k, v in repositories.items()}
        self.execution_role_arn = execution_role.arn
        self.service_connect_namespace_arn = namespace.arn
        self.service_connect_namespace_name = namespace.name
        self.finish()

    def _image(self, repository: aws.ecr.Repository, override: str | None) -> pulumi.Output[str]:
        """The configured image, or the stack's repository at the configured tag."""
        if override is not None:
            return pulumi.Output.from_input(override)
        return pulumi.Output.concat(repository.repository_url, ":", self._args.settings.image_tag)

    def _repository(self, ctx: Context, workload: str, tags: dict[str, str]) -> aws.ecr.Repository:
        """A private, KMS-encrypted, scan-on-push, immutable-tag repository with a lifecycle policy."""
        repository = aws.ecr.Repository(
            f"{workload}-repository",
            name=ctx.name(workload),
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            # Immutable tags: a deployed tag always means the same image (audit trail, safe rollbacks).
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=self._args.data_key_arn)
            ],
            # An unprotected environment (dev, an ephemeral copy) must tear down even with images in it;
            # a protected one keeps its release history.
            force_delete=not self._args.protection.protect,
            tags=tags,
            opts=child_opts(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{workload}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps(ecr_lifecycle_policy()),
            opts=child_opts(self),
        )
        return repository

    def _execution_role(
        self,
        role: str,
        description: str,
        repositories: list[aws.ecr.Repository],
        log_groups: list[aws.cloudwatch.LogGroup],
        *,
        secret_arns: list[pulumi.Input[str]],
        tags: dict[str, str],
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A task execution role (the ECS agent's) and its inline policy: exactly these images, logs and secrets."""
        ctx = self._args.context
        execution_role = aws.iam.Role(
            f"{role}-role",
            name=ctx.name(role, NameKind.IAM_ROLE),
            description=description,
            assume_role_policy=pulumi.Output.from_input(self._args.account_id).apply(
                lambda account: json.dumps(ecs_tasks_assume_role_policy(account))
            ),
            tags=tags,
            opts=child_opts(self),
        )
        region = ctx.region
        policy_document = pulumi.Output.all(
            repos=[r.arn for r in repositories],
            groups=[g.arn for g in log_groups],
            secrets=secret_arns,
            key=self._args.data_key_arn,
        ).apply(
            lambda v: json.dumps(
                task_execution_role_policy(
                    region=region,
                    repository_arns=v["repos"],
                    log_group_arns=v["groups"],
                    secret_arns=v["secrets"],
                    secrets_key_arn=v["key"] if v["secrets"] else None,
                )
            )
        )
        policy = aws.iam.RolePolicy(
            f"{role}-policy",
            name=ctx.name(role),
            role=execution_role.id,
            policy=policy_document,
            opts=child_opts(self),
        )
        return execution_role, policy

    def _task_role(self, ctx: Context, service: ServiceSettings, tags: dict[str, str]) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """One service's task role (what its code may call): its metrics, its database user, its Redis user."""
        args = self._args
        deps = args.dependencies
        access = data_access(service.name)
        role = aws.iam.Role(
            f"{service.name}-task-role",
            name=ctx.name(f"{service.name}-task", NameKind.IAM_ROLE),
            description=f"{service.name} ({service.description}) application permissions",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(ecs_tasks_assume_role_policy(account))
            ),
            tags=tags,
            opts=child_opts(self),
        )
        region, name, scope = ctx.region, service.name, ctx.scope
        cache_user = deps.cache_user_ids.get(service.name) if access.cache_access else None

        def document(values: dict[str, Any]) -> str:
            db_arns = [rds_db_user_arn(region, values["account"], values["cluster"], access.db_user)] if access.db_user else []
            cache_arns = (
                [values["group_arn"], elasticache_user_arn(region, values["account"], values["cache_user"])]
                if cache_user is not None
                else []
            )
            return json.dumps(service_task_role_policy(name, scope=scope, db_user_arns=db_arns, cache_resource_arns=cache_arns))

        parts: dict[str, pulumi.Input[Any]] = {"account": args.account_id}
        if access.db_user:
            parts["cluster"] = deps.database_cluster_resource_id
        if cache_user is not None:
            parts.update(group_arn=deps.cache_replication_group_arn, cache_user=cache_user)
        policy = aws.iam.RolePolicy(
            f"{service.name}-task-policy",
            name=ctx.name(f"{service.name}-task"),
            role=role.id,
            policy=pulumi.Output.all(**parts).apply(document),
            opts=child_opts(self),
        )
        return role, policy

    def _container_definitions(
        self, ctx: Context, service: ServiceSettings, group_name: pulumi.Output[str], ports: Mapping[str, int]
    ) -> pulumi.Output[str]:
        """Render :func:`container_definitions` once the image, endpoints and user ids are known.

        Only the data stores the service may use are awaited, so api's task definition depends on
        neither, and notification's not on Redis.
        """
        deps = self._args.dependencies
        access = data_access(service.name)
        parts: dict[str, pulumi.Input[str]] = {"log_group": group_name, "image": self.images[service.name]}
        if access.db_user:
            parts["db_endpoint"] = deps.database_endpoint
        if access.cache_access:
            parts.update(
                cache_endpoint=deps.cache_endpoint,
                cache_user=deps.cache_user_ids[service.name],
                cache_group=deps.cache_replication_group_id,
            )
        environment, scope, region = ctx.environment, ctx.scope, ctx.region
        peers = {peer: ports[peer] for peer in access.calls}

        def render(values: dict[str, str]) -> str:
            database = (
                DatabaseConnection(
                    endpoint=values["db_endpoint"], port=deps.database_port, name=deps.database_name, user=access.db_user
                )
                if access.db_user
                else None
            )
            cache = (
                CacheConnection(
                    endpoint=values["cache_endpoint"],
                    port=deps.cache_port,
                    user=values["cache_user"],
                    replication_group_id=values["cache_group"],
                )
                if access.cache_access
                else None
            )
            return json.dumps(
                container_definitions(
                    service,
                    image=values["image"],
                    environment=environment,
                    scope=scope,
                    region=region,
                    log_group_name=values["log_group"],
                    database=database,
                    cache=cache,
                    peers=peers,
                )
            )

        return pulumi.Output.all(**parts).apply(render)

    def _migrate_task(
        self, ctx: Context, repository: aws.ecr.Repository, log_group: aws.cloudwatch.LogGroup, tags: dict[str, str]
    ) -> pulumi.Output[str]:
        """The one-off migrate task: schema migrations and the services' database users, as the master user."""
        args = self._args
        deps = args.dependencies
        execution_role, execution_policy = self._execution_role(
            "migrate-execution",
            "ECS agent of the migrate task: pull its image, write its logs, inject the Aurora master secret",
            [repository],
            [log_group],
            secret_arns=[deps.database_master_secret_arn],
            tags=tags,
        )
        users = db_service_users([s.name for s in args.settings.services])
        region = ctx.region
        definitions = pulumi.Output.all(
            image=self.images[MIGRATE],
            group=log_group.name,
            endpoint=deps.database_endpoint,
            secret=deps.database_master_secret_arn,
        ).apply(
            lambda v: json.dumps(
                migrate_container_definitions(
                    image=v["image"],
                    region=region,
                    log_group_name=v["group"],
                    database=DatabaseConnection(
                        endpoint=v["endpoint"], port=deps.database_port, name=deps.database_name, user=""
                    ),
                    master_secret_arn=v["secret"],
                    service_users=users,
                )
            )
        )
        task_definition = aws.ecs.TaskDefinition(
            "migrate-task-definition",
            family=ctx.name(MIGRATE),
            cpu="256",
            memory="512",
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture="X86_64"
            ),
            execution_role_arn=execution_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=scratch_volume_name("/tmp"))],
            container_definitions=definitions,
            tags=tags,
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[execution_policy])),
        )
        return task_definition.arn

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
