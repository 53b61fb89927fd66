"""Compute guardrails (PCI DSS 4.0 Req 1.4, 2.2, 6, 7.2, 8.6 and 10.2): hardened ECS tasks that log,
hold no secrets in plain text and get no public IP; scanned, immutable images from our own registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, pci
from policy.rules.readers import as_list, as_map, is_true, parse_json

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
ECR_REPOSITORY = "aws:ecr/repository:Repository"

#: Environment variable names that look like they hold a credential.
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH", re.IGNORECASE)
#: ...unless they only point at one (an ARN, id or name is not the secret itself).
_REFERENCE_SUFFIX = re.compile(r"_(ARN|ID|NAME|PATH|REGION|URL|ENDPOINT|HOST|PORT)$", re.IGNORECASE)
#: ...or name an authentication *method* (``DB_AUTH=iam``): that says how to authenticate, it holds no credential.
AUTH_METHODS: frozenset[str] = frozenset({"iam", "none"})


#: A private Amazon ECR registry: ``<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>...``.
#: Anything else (Docker Hub, ECR Public, GHCR, quay.io) is pulled anonymously: rate-limited and not
#: scanned by our ECR repositories' scan-on-push.
PRIVATE_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^/\s]+")

#: The scratch path a container with a read-only root filesystem must be able to write to.
SCRATCH_PATH = "/tmp"


def _containers(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, definition) of every container in ``containerDefinitions`` (a JSON string)."""
    for index, container in enumerate(as_list(parse_json(props.get("containerDefinitions")))):
        container = as_map(container)
        yield str(container.get("name") or f"#{index}"), container


def ecs_read_only_root_filesystem(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Every container mounts its root filesystem read-only."""
    return [
        pci("2.2.6", f"container '{name}' has a writable root filesystem (readonlyRootFilesystem is not true)")
        for name, container in _containers(props)
        if not is_true(container.get("readonlyRootFilesystem"))
    ]


def _volume_names(props: Mapping[str, Any]) -> set[str]:
    """The names of the task definition's ``volumes`` (what a mount point's ``sourceVolume`` may name)."""
    return {str(as_map(v).get("name")) for v in as_list(props.get("volumes")) if as_map(v).get("name")}


def _scratch_mount_problems(container: Mapping[str, Any], volumes: set[str]) -> list[str]:
    """Why none of the container's mount points gives it a writable ``/tmp`` (empty when one does)."""
    problems = []
    for mount in as_list(container.get("mountPoints")):
        mount = as_map(mount)
        if str(mount.get("containerPath") or "").rstrip("/") != SCRATCH_PATH:
            continue
        source = mount.get("sourceVolume")
        if is_true(mount.get("readOnly")):
            problems.append(f"mounts {SCRATCH_PATH} read-only (mountPoints readOnly is true)")
        elif not source or str(source) not in volumes:
            problems.append(
                f"mounts {SCRATCH_PATH} from '{source or '<none>'}', which is not one of the task definition's volumes"
            )
        else:
            return []
    return problems or [f"has no writable mount at {SCRATCH_PATH} (mountPoints)"]


def ecs_read_only_root_writable_scratch(
    resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS
) -> list[str]:
    """A container with a read-only root filesystem gets a writable ``/tmp`` from a task volume.

    Without one, the first temporary file (Python's tempfile, a TLS library's cache) fails and the
    task crash-loops at start on Fargate: the hardening of 2.2.6 must not make the service unusable.
    """
    volumes = _volume_names(props)
    return [
        pci("2.2.6", f"container '{name}' has a read-only root filesystem but {problem}; it cannot write temporary files")
        for name, container in _containers(props)
        if is_true(container.get("readonlyRootFilesystem"))
        for problem in _scratch_mount_problems(container, volumes)
    ]


def ecs_images_from_private_registry(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Every container image comes from a private Amazon ECR registry (scanned, not rate-limited)."""
    return [
        pci(
            "6.3.2",
            f"container '{name}' runs image '{container.get('image') or '<none>'}' from outside a private Amazon ECR "
            "registry (<account>.dkr.ecr.<region>.amazonaws.com/...)",
        )
        for name, container in _containers(props)
        if not PRIVATE_ECR_IMAGE.match(str(container.get("image") or ""))
    ]


def ecs_no_privileged_containers(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """No container runs privileged."""
    return [
        pci("7.2.5", f"container '{name}' runs privileged (privileged is true)")
        for name, container in _containers(props)
        if is_true(container.get("privileged"))
    ]


def ecs_awslogs(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Every container sends its output to CloudWatch Logs."""
    messages = []
    for name, container in _containers(props):
        log = as_map(container.get("logConfiguration"))
        if log.get("logDriver") != "awslogs" or not as_map(log.get("options")).get("awslogs-group"):
            messages.append(
                pci("10.2.1", f"container '{name}' does not log to CloudWatch (logDriver awslogs with awslogs-group)")
            )
    return messages


def ecs_no_secrets_in_environment(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Credentials reach containers through ``secrets`` from Secrets Manager, never ``environment``."""
    messages = []
    for name, container in _containers(props):
        for variable in as_list(container.get("environment")):
            key = str(as_map(variable).get("name", ""))
            value = str(as_map(variable).get("value", ""))
            if key.upper().endswith("_AUTH") and value.lower() in AUTH_METHODS:
                continue
            if _SECRET_NAME.search(key) and not _REFERENCE_SUFFIX.search(key):
                messages.append(
                    pci(
                        "8.6.2",
                        f"container '{name}' passes '{key}' as a plain environment variable; use secrets from Secrets Manager",
                    )
                )
        for secret in as_list(container.get("secrets")):
            source = str(as_map(secret).get("valueFrom", ""))
            if not source.startswith("arn:aws") or ":secretsmanager:" not in source:
                secret_name = as_map(secret).get("name")
                messages.append(
                    pci("8.6.2", f"container '{name}' reads secret '{secret_name}' from '{source}', not from Secrets Manager")
                )
    return messages


def ecs_service_no_public_ip(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """ECS tasks get no public IP."""
    if is_true(as_map(props.get("networkConfiguration")).get("assignPublicIp")):
        return [pci("1.4.2", "ECS service assigns public IPs to tasks (networkConfiguration.assignPublicIp is true)")]
    return []


def ecr_scan_on_push(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Images are scanned for vulnerabilities when pushed."""
    if not is_true(as_map(props.get("imageScanningConfiguration")).get("scanOnPush")):
        return [pci("6.3.1", "ECR repository does not scan images on push (imageScanningConfiguration.scanOnPush)")]
    return []


def ecr_immutable_tags(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """A deployed tag always means the same image."""
    if props.get("imageTagMutability") != "IMMUTABLE":
        return [pci("6.5.1", "ECR repository allows tags to be overwritten (imageTagMutability is not IMMUTABLE)")]
    return []


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "ecs-read-only-root-filesystem",
        "compute",
        "2.2.6",
        "ECS containers run with a read-only root filesystem.",
        (TASK_DEFINITION,),
        ecs_read_only_root_filesystem,
    ),
    ResourceRule(
        "ecs-read-only-root-writable-scratch",
        "compute",
        "2.2.6",
        "ECS containers with a read-only root filesystem have a writable /tmp task volume.",
        (TASK_DEFINITION,),
        ecs_read_only_root_writable_scratch,
    ),
    ResourceRule(
        "ecs-images-from-private-registry",
        "compute",
        "6.3.2",
        "ECS containers run images from a private Amazon ECR registry.",
        (TASK_DEFINITION,),
        ecs_images_from_private_registry,
    ),
    ResourceRule(
        "ecs-no-privileged-containers",
        "compute",
        "7.2.5",
        "ECS containers do not run privileged.",
        (TASK_DEFINITION,),
        ecs_no_privileged_containers,
    ),
    ResourceRule(
        "ecs-awslogs",
        "compute",
        "10.2.1",
        "ECS containers log to CloudWatch with the awslogs driver.",
        (TASK_DEFINITION,),
        ecs_awslogs,
    ),
    ResourceRule(
        "ecs-no-secrets-in-environment",
        "compute",
        "8.6.2",
        "ECS containers get credentials from Secrets Manager, not environment variables.",
        (TASK_DEFINITION,),
        ecs_no_secrets_in_environment,
    ),
    ResourceRule(
        "ecs-service-no-public-ip",
        "compute",
        "1.4.2",
        "ECS services do not assign public IPs.",
        (ECS_SERVICE,),
        ecs_service_no_public_ip,
    ),
    ResourceRule(
        "ecr-scan-on-push",
        "compute",
        "6.3.1",
        "ECR repositories scan images on push.",
        (ECR_REPOSITORY,),
        ecr_scan_on_push,
    ),
    ResourceRule(
        "ecr-immutable-tags",
        "compute",
        "6.5.1",
        "ECR repositories have immutable tags.",
        (ECR_REPOSITORY,),
        ecr_immutable_tags,
    ),
)
