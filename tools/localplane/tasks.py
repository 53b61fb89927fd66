"""The local stand-in for ECS running a service's tasks: processes from the image, their environment as ECS builds it.

For each ECS service the :class:`ServiceRunner` keeps ``desiredCount`` tasks running. A task is the image's
command (:mod:`tools.localplane.images`) run as a process from this checkout, as the image's user when we are
root, with the environment ECS gives the container: the image's ``ENV``, then the task definition's
``environment``, then its ``secrets`` resolved from Secrets Manager, then what Fargate adds (``AWS_REGION``,
the container credentials endpoint of the task role). :func:`task_environment` then makes the addresses
work on one machine, changing values only, never names, so a variable the program names wrongly still breaks
the service here:

* ``<X>_HOST`` naming a data store endpoint of the stack (and its ``<X>_PORT``, when that is the endpoint's
  port) point at the endpoint's local stand-in on 127.0.0.1;
* a URL whose ``host:port`` is a Service Connect alias of the task's namespace points at the alias's local
  proxy;
* paths inside the image map to the checkout (``/app``), the task's scratch volume (``/tmp``) and the files
  the image downloads (the RDS CA bundle -> the local CA);
* ``PORT`` (the container port) becomes the task's own port: each Fargate task has its own network interface,
  here its own port on 127.0.0.1.

A task is registered in the service's target groups (moto) under an address of its own, ``127.0.0.<n>``
(as an awsvpc task registers its ENI's IP), which :meth:`ServiceRunner.resolve` maps to ``127.0.0.1:<port>``
for the front door. It joins the Service Connect alias once its container health check passes. A task whose
process exits, or whose container health check fails ``retries`` times in a row after the start period, is
stopped, deregistered and replaced, as ECS does.

Differences from ECS: no container isolation (the process sees this machine's filesystem; a read-only root
filesystem is not enforced), one container per task, no resource limits, tasks are not listed by the emulator's
ECS API (``ListTasks``).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tools.emulator.engine import Aws
from tools.localplane._files import check_traversable
from tools.localplane.credentials import ContainerCredentialsServer
from tools.localplane.deployed import EcsService, TaskDefinition, secret_value
from tools.localplane.images import IMAGE_CODE_ROOT, RDS_TRUST_STORE, LocalImage, resolve_image
from tools.localplane.service_connect import ServiceConnectMesh
from tools.localplane.supervisor import ManagedProcess, Supervisor, free_port
from tools.localplane.upstreams import Target

ROOT = Path(__file__).resolve().parents[2]
LOCALHOST = "127.0.0.1"
log = logging.getLogger(__name__)

#: What the process environment of every task starts from (nothing else of ours leaks into a task).
BASE_ENVIRONMENT = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class Rewrite:
    """One value :func:`task_environment` changed, for the operator to see."""

    variable: str
    declared: str
    local: str
    why: str


@dataclass(frozen=True)
class LocalAddresses:
    """Where the stack's endpoints and aliases are on this machine, and the files standing in for image files."""

    data_stores: Mapping[tuple[str, int], int]  # (endpoint host, port) -> local port on 127.0.0.1
    aliases: Mapping[str, str]  # "payment:8080" -> "http://127.0.0.1:<port>"
    trust_store: Path  # the local CA bundle (stand-in for the RDS bundle and the public trust store)


def _map_path(value: str, paths: Mapping[str, str]) -> str | None:
    for inside, outside in sorted(paths.items(), key=lambda item: -len(item[0])):
        if value == inside or value.startswith(inside.rstrip("/") + "/"):
            return outside + value[len(inside.rstrip("/")) :] if value != inside else outside
    return None


def task_environment(
    definition: TaskDefinition,
    image: LocalImage,
    *,
    secrets: Mapping[str, str],
    region: str,
    port: int,
    scratch: Path,
    addresses: LocalAddresses,
    credentials: Mapping[str, str],
) -> tuple[dict[str, str], list[Rewrite]]:
    """The process environment of one task, and the values changed to make it run on this machine."""
    container = definition.container
    declared: dict[str, str] = {**image.spec.env, **container.environment, **secrets}
    paths = {IMAGE_CODE_ROOT: str(ROOT), **{m: str(scratch) for m in container.mount_paths}}
    for inside, url in image.downloads.items():
        if url.startswith(RDS_TRUST_STORE):
            paths[inside] = str(addresses.trust_store)
    env = dict(declared)
    rewrites: list[Rewrite] = []

    def change(name: str, value: str, why: str) -> None:
        if env[name] != value:
            rewrites.append(Rewrite(name, env[name], value, why))
            env[name] = value

    endpoints_by_host: dict[str, dict[int, int]] = {}
    for (host, endpoint_port), local_port in addresses.data_stores.items():
        endpoints_by_host.setdefault(host, {})[endpoint_port] = local_port
    for name, value in declared.items():
        if name.endswith("_HOST") and value in endpoints_by_host:
            change(name, LOCALHOST, "data store endpoint -> its local stand-in")
            sibling = name.removesuffix("_HOST") + "_PORT"
            ports = endpoints_by_host[value]
            if sibling in env and env[sibling].isdigit() and int(env[sibling]) in ports:
                change(sibling, str(ports[int(env[sibling])]), "data store port -> its local stand-in")
        elif value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            proxy = addresses.aliases.get(parts.netloc)
            if proxy is not None:
                change(name, urlunsplit(urlsplit(proxy)._replace(path=parts.path, query=parts.query)), "Service Connect alias")
        elif name == "PORT" and container.port is not None and value == str(container.port):
            change(name, str(port), "container port -> the task's own port on 127.0.0.1")
        else:
            if name == "PYTHONPATH":
                mapped_parts = [_map_path(part, paths) or part for part in value.split(":")]
                mapped: str | None = ":".join(mapped_parts)
            else:
                mapped = _map_path(value, paths) if value.startswith("/") else None
            if mapped is not None and mapped != value:
                change(name, mapped, "path in the image -> this checkout, the scratch volume or a local stand-in file")
    env.update(BASE_ENVIRONMENT)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # A task's SDK trusts what the image trusts: the local CA stands in for the public roots.
            "SSL_CERT_FILE": str(addresses.trust_store),
            "TMPDIR": str(scratch),
            "BIND_ADDRESS": LOCALHOST,
            # Never a developer's ~/.aws, never instance metadata: only the task role, as on Fargate.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            **credentials,
        }
    )
    return env, rewrites


def resolve_secrets(aws: Aws, definition: TaskDefinition) -> dict[str, str]:
    """The task definition's ``secrets``, read from Secrets Manager as the execution role would."""
    return {name: secret_value(aws, value_from) for name, value_from in definition.container.secrets.items()}


def run_as(image: LocalImage) -> tuple[int, int] | None:
    """The uid/gid to run a task as: the image's ``USER`` when we are root and it can reach the interpreter.

    A container runs as its image's user; here the process can only do so if that user may read this
    checkout and execute this interpreter (a virtualenv built on a Python under a private home, such as
    /root/.pyenv, is out of its reach: then the task runs as the current user).
    """
    ids = image.run_as
    if ids is None or os.geteuid() != 0:
        return None
    try:
        for path in (Path(os.path.realpath(sys.executable)), ROOT / "services" / "__init__.py"):
            check_traversable(path, ids)
    except PermissionError:
        return None
    return ids


def local_argv(image: LocalImage) -> list[str]:
    """The image's command with ``python`` being this interpreter (the image's Python stands in for ours)."""
    argv = list(image.argv)
    if argv and re.fullmatch(r"python(3(\.\d+)?)?", Path(argv[0]).name):
        argv[0] = sys.executable
    return argv


@dataclass
class Task:
    """One running (or stopped) task of a service."""

    task_id: str
    port: int
    target_id: str  # the address it is registered under in the target groups
    scratch: Path
    process: ManagedProcess
    started: float
    rewrites: list[Rewrite]
    env: dict[str, str] = field(repr=False)
    health: str = "UNKNOWN"  # the container health check: UNKNOWN, HEALTHY, UNHEALTHY
    consecutive_failures: int = 0
    next_check: float = 0.0
    stopped_reason: str = ""

    @property
    def target(self) -> Target:
        """Where the task listens."""
        return Target(LOCALHOST, self.port)


_TARGET_IDS = (f"127.0.{high}.{low}" for high, low in itertools.product(range(256), range(2, 255)))
_TARGET_LOCK = threading.Lock()


def next_target_id() -> str:
    """A loopback address no other task of this process has used (moto keys a target group's targets by Id)."""
    with _TARGET_LOCK:
        return next(_TARGET_IDS)


class ServiceRunner:
    """Keeps ``desiredCount`` tasks of one ECS service running, registered and replaced when they die."""

    def __init__(
        self,
        stack: str,
        service: EcsService,
        aws: Aws,
        *,
        supervisor: Supervisor,
        credentials: ContainerCredentialsServer,
        addresses: LocalAddresses,
        mesh: ServiceConnectMesh | None,
        work_dir: Path,
        region: str,
        container_health_interval_s: float | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.stack = stack
        self.service = service
        self.aws = aws
        self.supervisor = supervisor
        self.credentials = credentials
        self.addresses = addresses
        self.mesh = mesh
        self.work_dir = work_dir
        self.region = region
        self.definition = service.task_definition
        self.image = resolve_image(aws, self.definition.container.image)
        self.run_as = run_as(self.image)
        self.secrets = resolve_secrets(aws, self.definition)
        container = self.definition.container
        self.health_interval_s = container_health_interval_s or float(container.health_interval_s)
        # The start period and the check timeout scale with the interval when it is shortened for tests.
        scale = self.health_interval_s / max(1, container.health_interval_s)
        self.health_timeout_s = max(1.0, container.health_timeout_s * scale)
        self.start_period_s = container.health_start_period_s * scale
        self.on_event = on_event or (lambda message: log.info("%s", message))
        self.tasks: list[Task] = []
        self.stopped: list[Task] = []
        self.replacements = 0
        self._lock = threading.RLock()
        self._by_target_id: dict[str, Task] = {}
        self._alias = [f"{name}:{port}" for name, port in service.service_connect.aliases] if service.service_connect else []
        self._elbv2 = aws.client("elbv2")

    # --- tasks -----------------------------------------------------------------------------------------------

    def start_task(self) -> Task:
        """Start one task: credentials, environment, process, target registration."""
        task_id = uuid.uuid4().hex
        port = free_port()
        scratch = self.work_dir / "tasks" / task_id[:12]
        scratch.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        user = self.run_as
        if user is not None:
            os.chown(scratch, *user)
        os.chmod(scratch, 0o700)
        if self.definition.task_role_arn:
            self.credentials.register_task(task_id, self.definition.task_role_arn)
        env, rewrites = task_environment(
            self.definition,
            self.image,
            secrets=self.secrets,
            region=self.region,
            port=port,
            scratch=scratch,
            addresses=self.addresses,
            credentials=self.credentials.env_for_task(task_id) if self.definition.task_role_arn else {},
        )
        process = self.supervisor.start_process(
            f"{self.stack}/{self.service.name}/{task_id[:8]}",
            local_argv(self.image),
            env=env,
            cwd=ROOT,
            uid=user[0] if user else None,
            gid=user[1] if user else None,
            log_path=self.work_dir / "logs" / f"{self.service.name}-{task_id[:8]}.log",
            port=port,
        )
        task = Task(task_id, port, next_target_id(), scratch, process, time.monotonic(), rewrites, env)
        task.next_check = task.started + min(self.health_interval_s, 1.0)
        with self._lock:
            self.tasks.append(task)
            self._by_target_id[task.target_id] = task
        container_port = self.service.container_port or self.definition.container.port or port
        for group in self.service.target_group_arns:
            self._elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": task.target_id, "Port": container_port}])
        if not self.definition.container.health_check:
            self._publish_mesh()  # without a container health check, Service Connect routes to every running task
        self.on_event(f"[{self.stack}] {self.service.name}: task {task_id[:8]} started (pid {process.pid}, 127.0.0.1:{port})")
        return task

    def stop_task(self, task: Task, reason: str) -> None:
        """Stop a task (if still running), take it out of rotation and forget its credentials."""
        with self._lock:
            if task not in self.tasks:
                return
            self.tasks.remove(task)
            self.stopped.append(task)
        task.stopped_reason = reason
        container_port = self.service.container_port or self.definition.container.port or task.port
        for group in self.service.target_group_arns:
            self._elbv2.deregister_targets(TargetGroupArn=group, Targets=[{"Id": task.target_id, "Port": container_port}])
        self._publish_mesh()
        self.supervisor.stop_process(task.process, timeout=10)
        self.credentials.unregister_task(task.task_id)
        shutil.rmtree(task.scratch, ignore_errors=True)
        self.on_event(f"[{self.stack}] {self.service.name}: task {task.task_id[:8]} stopped: {reason}")

    def resolve(self, target_id: str, port: int) -> Target:
        """A target group registration -> where that task listens (the front door's ``resolve``)."""
        with self._lock:
            task = self._by_target_id.get(target_id)
        return task.target if task is not None else Target(target_id, port)

    def owns(self, target_id: str) -> bool:
        """Whether ``target_id`` is one of this service's tasks (running or stopped)."""
        with self._lock:
            return target_id in self._by_target_id

    # --- reconciliation ----------------------------------------------------------------------------------------

    def reconcile(self, now: float | None = None) -> None:
        """One pass: replace exited or unhealthy tasks, run due container health checks, start missing tasks."""
        now = time.monotonic() if now is None else now
        for task in list(self.tasks):
            code = task.process.popen.poll()
            if code is not None:
                self.stop_task(task, f"Essential container in task exited (exit code {code})")
                self.replacements += 1
                continue
            if self.definition.container.health_check and now >= task.next_check:
                task.next_check = now + self.health_interval_s
                self._check(task, now)
                if task.health == "UNHEALTHY":
                    self.stop_task(task, "Task failed container health checks")
                    self.replacements += 1
        while len(self.tasks) < self.service.desired_count:
            self.start_task()

    def _check(self, task: Task, now: float) -> None:
        command = list(self.definition.container.health_check)
        if command and re.fullmatch(r"python(3(\.\d+)?)?", Path(command[0]).name):
            command[0] = sys.executable
        user = self.run_as
        try:
            result = subprocess.run(
                command,
                env=task.env,
                cwd=ROOT,
                capture_output=True,
                timeout=self.health_timeout_s,
                check=False,
                user=user[0] if user else None,
                group=user[1] if user else None,
            )
            ok = result.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        before = task.health
        if ok:
            task.health, task.consecutive_failures = "HEALTHY", 0
        elif now - task.started >= self.start_period_s:
            # Failures inside the start period do not count, as in ECS.
            task.consecutive_failures += 1
            if task.consecutive_failures >= self.definition.container.health_retries:
                task.health = "UNHEALTHY"
        if task.health != before and task.health == "HEALTHY":
            self._publish_mesh()

    def _publish_mesh(self) -> None:
        if self.mesh is None:
            return
        with self._lock:
            healthy = [t.target for t in self.tasks if t.health == "HEALTHY" or not self.definition.container.health_check]
        for alias in self._alias:
            self.mesh.set_targets(alias, healthy)

    def stop_all(self) -> None:
        """Stop every task (at shutdown)."""
        for task in list(self.tasks):
            self.stop_task(task, "the local deployment is stopping")

    def status(self) -> dict[str, object]:
        """Counts for the summary and the tests."""
        with self._lock:
            return {
                "desired": self.service.desired_count,
                "running": len(self.tasks),
                "healthy": sum(1 for t in self.tasks if t.health == "HEALTHY"),
                "replaced": self.replacements,
            }
