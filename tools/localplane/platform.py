"""The running platform of a local deployment: the data plane for what the control plane deployed into the emulator.

:class:`LocalPlatform` reads each deployed stack back from the emulator (:mod:`tools.localplane.deployed`) and
starts, under one :class:`~tools.localplane.supervisor.Supervisor`:

* per Aurora cluster, a PostgreSQL server behind a TLS/IAM front on 127.0.0.1 (the master user and password
  from the RDS-managed secret, ``rds.force_ssl`` and ``ssl_min_protocol_version`` from the parameter group,
  IAM database authentication as the cluster says);
* per replication group, a Valkey server behind a TLS/IAM front, with the user group's users and access strings;
* the container credentials endpoint (task roles by STS AssumeRole in the emulator);
* per Service Connect namespace, one local proxy per client alias;
* the one-off task definitions (the migrate job), run once to completion before the services start;
* per ECS service, its desired count of tasks (:mod:`tools.localplane.tasks`);
* per load balancer, the front door built from its listeners, rules, target groups and WAF.

Everything listens on 127.0.0.1 and stops with :meth:`LocalPlatform.stop` (Ctrl-C in ``make deploy``). What
the servers and proxies stand in for, and how they differ from AWS, is in each module's docstring and in the
README ("Running the platform locally").
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import EndpointConnectionError
from cryptography import x509

from tools.emulator import state as records
from tools.emulator.engine import Aws, account_aws
from tools.localplane.alb_config import front_door_config_from_emulator, moto_target_source
from tools.localplane.auth_front import FrontOptions
from tools.localplane.control import ControlServer
from tools.localplane.credentials import ContainerCredentialsServer
from tools.localplane.deployed import (
    AuroraCluster,
    CacheGroup,
    DeployedStack,
    NotRunnableError,
    TaskDefinition,
    read_stack,
    secret_value,
)
from tools.localplane.frontdoor import FrontDoor
from tools.localplane.iam_auth import CredentialRegistry, PolicyChecker
from tools.localplane.images import resolve_image
from tools.localplane.pg_front import PgFront, PgFrontConfig
from tools.localplane.pki import LocalCA
from tools.localplane.postgres import LocalPostgres
from tools.localplane.redis import LocalRedis
from tools.localplane.redis_front import RedisFront, RedisFrontConfig
from tools.localplane.service_connect import ServiceConnectMesh
from tools.localplane.supervisor import Supervisor
from tools.localplane.tasks import LocalAddresses, ServiceRunner, Task, local_argv, resolve_secrets, run_as, task_environment
from tools.localplane.upstreams import Target

log = logging.getLogger(__name__)
LOCALHOST = "127.0.0.1"
ACM_CERTIFICATE = "aws:acm/certificate:Certificate"
ONE_OFF_TIMEOUT_S = 120.0
#: The payment the printed curl creates (a card token, never a card number).
DEMO_PAYMENT = {"amount_minor": 1999, "currency": "EUR", "merchant_id": "merchant_demo", "payment_method_token": "tok_demo_visa"}


class PlatformError(RuntimeError):
    """The platform could not be started or did not become ready (one message for the operator)."""


@dataclass(frozen=True)
class Timings:
    """Health-check pacing. None: as deployed (the target groups' and task definitions' own intervals).

    Tests and benchmarks shorten both, so that a replaced task is back in rotation in seconds rather than a
    minute; the thresholds (how many checks) stay as deployed.
    """

    target_health_interval_s: float | None = None
    container_health_interval_s: float | None = None
    reconcile_every_s: float = 0.5


@dataclass
class Database:
    """An Aurora cluster's local stand-in."""

    cluster: AuroraCluster
    server: LocalPostgres
    front: PgFront


@dataclass
class Cache:
    """A replication group's local stand-in."""

    group: CacheGroup
    server: LocalRedis
    front: RedisFront


@dataclass
class FrontDoorInfo:
    """A load balancer's local front door and how to reach it."""

    arn: str
    door: FrontDoor
    host: str  # the name in the listener certificate, for --resolve
    certificate: Path


@dataclass
class StackPlane:
    """Everything running for one stack."""

    deployed: DeployedStack
    aws: Aws
    databases: dict[str, Database] = field(default_factory=dict)
    caches: dict[str, Cache] = field(default_factory=dict)
    meshes: dict[str, ServiceConnectMesh] = field(default_factory=dict)
    runners: dict[str, ServiceRunner] = field(default_factory=dict)
    front_doors: list[FrontDoorInfo] = field(default_factory=list)
    one_off_results: dict[str, str] = field(default_factory=dict)

    @property
    def stack(self) -> str:
        """The stack's name."""
        return self.deployed.stack

    def addresses(self, trust_store: Path) -> LocalAddresses:
        """Where this stack's endpoints and aliases are locally."""
        data_stores: dict[tuple[str, int], int] = {}
        for db in self.databases.values():
            for host in (db.cluster.endpoint, db.cluster.reader_endpoint):
                if host:
                    data_stores[(host, db.cluster.port)] = db.front.port
        for cache in self.caches.values():
            for host in (cache.group.primary_endpoint, cache.group.reader_endpoint):
                if host:
                    data_stores[(host, cache.group.port)] = cache.front.port
        aliases = {alias: url for mesh in self.meshes.values() for alias, url in mesh.endpoints().items()}
        return LocalAddresses(data_stores, aliases, trust_store)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(data)


def _short(note: str) -> str:
    """``WAF rule 'X' (priority 40): managed rule group AWS/X cannot be emulated locally`` -> ``WAF rule X``."""
    found = re.match(r"WAF rule '([^']+)'", note)
    return f"WAF rule {found.group(1)} (AWS managed)" if found and "managed rule group" in note else note


def _dns_names(certificate: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in sans.get_values_for_type(x509.DNSName)]


class LocalPlatform:
    """The data plane of the stacks deployed into one emulator endpoint."""

    def __init__(
        self,
        endpoint: str,
        stacks: Sequence[str],
        *,
        timings: Timings | None = None,
        stream: TextIO | None = None,
        certificate_root: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.stack_names = list(stacks)
        self.timings = timings or Timings()
        self.stream = stream or sys.stdout
        self.certificate_root = certificate_root
        self.supervisor = Supervisor(name="scalepay-platform")
        # Short and reachable by the servers' unprivileged uid (unix socket paths are limited to 107 bytes).
        self.work_dir = Path(tempfile.mkdtemp(prefix="scalepay-plane-"))
        os.chmod(self.work_dir, 0o711)
        self.ca = LocalCA.create(self.work_dir / "ca")
        os.chmod(self.ca.ca_path, 0o644)
        self.registry = CredentialRegistry()
        self.planes: dict[str, StackPlane] = {}
        self._policies: dict[str, PolicyChecker] = {}
        self._credentials: ContainerCredentialsServer | None = None
        self._reconciler: threading.Thread | None = None
        self._stop = threading.Event()
        self._events: list[str] = []
        self._events_lock = threading.Lock()
        self._stopped = False
        self.control: ControlServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start everything, stack by stack (in the order given); on any failure stop what was started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        loaded = records.records(self.endpoint, self.stack_names)
        missing = [s for s in self.stack_names if s not in loaded]
        if missing:
            raise PlatformError(f"{', '.join(missing)}: not deployed in {self.endpoint} (make deploy ENV=... ENDPOINT=...)")
        first = next(iter(loaded.values()))
        sts = account_aws(self.endpoint, first.account_id, first.region).client("sts")
        self._credentials = ContainerCredentialsServer(sts, self.registry, supervisor=self.supervisor, name="task-credentials")
        self._credentials.start()
        for stack in self.stack_names:
            record = loaded[stack]
            if record.status != records.DEPLOYED:
                raise PlatformError(f"{stack}: its deployment into {self.endpoint} did not finish; nothing to run")
            aws = account_aws(self.endpoint, record.account_id, record.region)
            deployed = read_stack(aws, record)
            plane = StackPlane(deployed, aws)
            self.planes[stack] = plane
            self._start_stack(plane, record)
        self._reconciler = threading.Thread(target=self._reconcile_loop, name="scalepay-platform-tasks", daemon=True)
        self._reconciler.start()
        self.control = ControlServer(
            self.describe,
            {
                **{
                    f"{kind}/{verb}": functools.partial(self._switch_action, kind, verb)
                    for kind in ("databases", "caches")
                    for verb in ("stop", "start")
                },
                "caches/scan": lambda stack, name, body: self.scan_cache(stack, name, str(body.get("match", "*"))),
                "services/kill": lambda stack, name, body: self.kill_task(stack, name, str(body.get("taskId", ""))),
                "services/exec": lambda stack, name, body: self.exec_in_task(
                    stack, name, [str(a) for a in body.get("argv", [])], {str(k): str(v) for k, v in body.get("env", {}).items()}
                ),
            },
        )
        self.control.start()
        self.supervisor.add_callback("control", self.control.stop)

    def _start_stack(self, plane: StackPlane, record: records.StackRecord) -> None:
        started = time.monotonic()
        for cluster in plane.deployed.clusters:
            plane.databases[cluster.identifier] = self._start_database(plane, cluster)
        for group in plane.deployed.caches:
            plane.caches[group.identifier] = self._start_cache(plane, group)
        for service in plane.deployed.services:
            if service.service_connect is None:
                continue
            namespace = service.service_connect.namespace
            mesh = plane.meshes.get(namespace)
            if mesh is None:
                mesh = plane.meshes[namespace] = ServiceConnectMesh(namespace, loop=self.supervisor.loop)
                mesh.start()
                self.supervisor.add_callback(f"{plane.stack}/mesh/{namespace}", mesh.stop)
            for name, port in service.service_connect.aliases:
                mesh.add(f"{name}:{port}")
        addresses = plane.addresses(self.ca.ca_path)
        for definition in plane.deployed.one_off_tasks:
            plane.one_off_results[definition.family] = self._run_one_off(plane, definition, addresses)
        for service in plane.deployed.services:
            runner = ServiceRunner(
                plane.stack,
                service,
                plane.aws,
                supervisor=self.supervisor,
                credentials=self._require_credentials(),
                addresses=addresses,
                mesh=plane.meshes.get(service.service_connect.namespace) if service.service_connect else None,
                work_dir=self.work_dir / plane.stack,
                region=plane.deployed.region,
                container_health_interval_s=self.timings.container_health_interval_s,
                on_event=self._event,
            )
            plane.runners[service.name] = runner
            runner.reconcile()
        for arn in plane.deployed.load_balancer_arns:
            plane.front_doors.append(self._start_front_door(plane, record, arn))
        self._event(f"[{plane.stack}] data plane started in {time.monotonic() - started:.1f} s")

    def _require_credentials(self) -> ContainerCredentialsServer:
        if self._credentials is None:
            raise PlatformError("the task credentials endpoint is not running")
        return self._credentials

    def _policy(self, plane: StackPlane) -> PolicyChecker:
        account = plane.deployed.account_id
        if account not in self._policies:
            self._policies[account] = PolicyChecker(plane.aws.client("iam"))
        return self._policies[account]

    # --- data stores -------------------------------------------------------------------------------------------

    def _start_database(self, plane: StackPlane, cluster: AuroraCluster) -> Database:
        aws = plane.aws
        secret = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=cluster.secret_arn)["SecretString"])
        master = str(secret.get("username") or cluster.master_username)
        if master != cluster.master_username:
            raise NotRunnableError(
                f"Aurora cluster {cluster.identifier}: its master secret names user {master!r}, "
                f"the cluster {cluster.master_username!r}"
            )
        server = LocalPostgres(self.work_dir / f"pg-{len(self._all_databases())}", supervisor=self.supervisor)
        server.start()
        # What RDS gives the master user: a login that may create roles and databases, owner of the cluster's
        # database, and the right to GRANT rds_iam without being an IAM user itself (admin option only).
        server.execute(
            f'CREATE ROLE "{master}" LOGIN CREATEDB CREATEROLE; CREATE ROLE rds_iam NOLOGIN; '
            f'GRANT rds_iam TO "{master}" WITH ADMIN OPTION, INHERIT FALSE, SET FALSE'
        )
        server.execute(f'CREATE DATABASE "{cluster.database}" OWNER "{master}"')
        host_names = [h for h in (cluster.endpoint, cluster.reader_endpoint) if h]
        front = PgFront(
            PgFrontConfig(
                host_names=host_names,
                port=None,
                force_ssl=cluster.force_ssl,
                min_tls_version=cluster.min_tls_version,
                master_user=master,
                # Read per login, as RDS checks the current secret: a rotation in Secrets Manager applies at once.
                master_password=lambda: secret_value(aws, f"{cluster.secret_arn}:password::"),
                region=plane.deployed.region,
                account_id=plane.deployed.account_id,
                cluster_resource_id=cluster.resource_id,
                advertised_port=cluster.port,
                iam_enabled=cluster.iam_auth,
            ),
            server,
            **self._front_options(plane, host_names, f"{plane.stack}/aurora/{cluster.identifier}"),
        )
        front.start()
        self._event(
            f"[{plane.stack}] Aurora {cluster.identifier}: PostgreSQL behind {LOCALHOST}:{front.port} "
            f"(TLS {'required' if cluster.force_ssl else 'optional'}, IAM auth {'on' if cluster.iam_auth else 'off'})"
        )
        return Database(cluster, server, front)

    def _start_cache(self, plane: StackPlane, group: CacheGroup) -> Cache:
        if not group.transit_encryption:
            raise NotRunnableError(
                f"replication group {group.identifier}: no in-transit encryption; the local stand-in serves TLS only"
            )
        server = LocalRedis(self.work_dir / f"redis-{len(self._all_caches())}", supervisor=self.supervisor)
        server.start()
        host_names = [h for h in (group.primary_endpoint, group.reader_endpoint) if h]
        front = RedisFront(
            RedisFrontConfig(group.identifier, None, plane.deployed.region, plane.deployed.account_id, list(group.users)),
            server,
            **self._front_options(plane, host_names, f"{plane.stack}/redis/{group.identifier}"),
        )
        front.start()
        users = ", ".join(f"{u.user_name} ({u.auth_type})" for u in group.users) or "none"
        self._event(f"[{plane.stack}] Redis {group.identifier}: Valkey behind {LOCALHOST}:{front.port} (TLS; users: {users})")
        return Cache(group, server, front)

    def _front_options(self, plane: StackPlane, host_names: list[str], name: str) -> FrontOptions:
        """What a data store's front is constructed with: a certificate for its endpoint's host names (and
        127.0.0.1), the IAM checks of the plane's account, the supervisor and its name."""
        cert, key = self.ca.issue_server_cert(host_names, [LOCALHOST])
        return FrontOptions(
            cert_path=cert,
            key_path=key,
            registry=self.registry,
            policy=self._policy(plane),
            supervisor=self.supervisor,
            name=name,
        )

    def _all_databases(self) -> list[Database]:
        return [db for plane in self.planes.values() for db in plane.databases.values()]

    def _all_caches(self) -> list[Cache]:
        return [c for plane in self.planes.values() for c in plane.caches.values()]

    # --- one-off tasks and the front door ---------------------------------------------------------------------

    def _run_one_off(self, plane: StackPlane, definition: TaskDefinition, addresses: LocalAddresses) -> str:
        """Run a task definition no service runs (the migrate job) once, to completion, as ``aws ecs run-task`` would."""
        image = resolve_image(plane.aws, definition.container.image)
        credentials = self._require_credentials()
        task_id = f"run-{definition.family}"[:64]
        # A task without a task role gets no credentials endpoint, as on ECS (the migrate job needs none).
        if definition.task_role_arn:
            credentials.register_task(task_id, definition.task_role_arn)
        scratch = self.work_dir / plane.stack / "tasks" / task_id
        scratch.mkdir(parents=True, exist_ok=True)
        user = run_as(image)
        if user is not None:
            os.chown(scratch, *user)
        env, _ = task_environment(
            definition,
            image,
            secrets=resolve_secrets(plane.aws, definition),
            region=plane.deployed.region,
            port=0,
            scratch=scratch,
            addresses=addresses,
            credentials=credentials.env_for_task(task_id) if definition.task_role_arn else {},
        )
        log_path = self.work_dir / plane.stack / "logs" / f"{definition.family}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        process = self.supervisor.start_process(
            f"{plane.stack}/{definition.family}",
            local_argv(image),
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            uid=user[0] if user else None,
            gid=user[1] if user else None,
            log_path=log_path,
        )
        try:
            code = process.popen.wait(ONE_OFF_TIMEOUT_S)
        except Exception as exc:
            self.supervisor.stop_process(process)
            raise PlatformError(f"[{plane.stack}] task {definition.family} did not finish in {ONE_OFF_TIMEOUT_S:.0f} s") from exc
        finally:
            credentials.unregister_task(task_id)
        output = log_path.read_text(errors="replace").strip().splitlines() if log_path.exists() else []
        if code != 0:
            tail = "\n    ".join(output[-8:])
            raise PlatformError(f"[{plane.stack}] task {definition.family} exited with {code}:\n    {tail}")
        self._event(f"[{plane.stack}] task {definition.family} ran to completion (exit 0)")
        return output[-1] if output else ""

    def _certificate(self, plane: StackPlane, record: records.StackRecord, arn: str) -> tuple[str, str]:
        """The listener certificate's PEM files: the operator-imported one, or the one the program imported (dev)."""
        for extra in record.extras:
            if extra.kind == "acm-certificate" and extra.id == arn:
                return str(extra.detail["certificate"]), str(extra.detail["key"])
        for resource in record.resources:
            if resource.type == ACM_CERTIFICATE and (resource.id == arn or resource.state.get("arn") == arn):
                # The state holds the values the engine sent (the inputs keep secrets wrapped, as Pulumi marks them).
                body, key = resource.state.get("certificateBody"), resource.state.get("privateKey")
                if isinstance(body, str) and isinstance(key, str) and "PRIVATE KEY" in key:
                    directory = self.work_dir / plane.stack / "listener-certificate"
                    _write_private(directory / "certificate.pem", str(body).encode())
                    _write_private(directory / "key.pem", str(key).encode())
                    os.chmod(directory / "certificate.pem", 0o644)
                    return str(directory / "certificate.pem"), str(directory / "key.pem")
        raise NotRunnableError(
            f"[{plane.stack}] certificate {arn}: its private key is not available locally (ACM does not export it); "
            "deploy without certificateArn to serve the local certificate"
        )

    def _start_front_door(self, plane: StackPlane, record: records.StackRecord, arn: str) -> FrontDoorInfo:
        elbv2 = plane.aws.client("elbv2")
        config = front_door_config_from_emulator(
            elbv2,
            plane.aws.client("wafv2"),
            arn,
            cert_loader=lambda certificate_arn: self._certificate(plane, record, certificate_arn),
            access_log_path=str(self.work_dir / plane.stack / "logs" / "front-door-access.log"),
        )
        if self.timings.target_health_interval_s is not None:
            config = config.with_health_check_interval(self.timings.target_health_interval_s)
        door = FrontDoor(config, moto_target_source(elbv2, resolve=self._resolver(plane)), loop=self.supervisor.loop)
        door.start()
        self.supervisor.add_callback(f"{plane.stack}/front-door/{config.name}", door.stop)
        certificate = Path(config.cert_path)
        names = _dns_names(certificate)
        skipped = config.not_emulated_summary()
        if skipped:
            self._event(f"[{plane.stack}] front door: not emulated locally: {'; '.join(_short(s) for s in skipped)}")
        return FrontDoorInfo(arn, door, names[0] if names else "localhost", certificate)

    def _resolver(self, plane: StackPlane) -> Callable[[str, int], Target]:
        def resolve(target_id: str, port: int) -> Target:
            for runner in plane.runners.values():
                if runner.owns(target_id):
                    return runner.resolve(target_id, port)
            return Target(target_id, port)

        return resolve

    # --- running -------------------------------------------------------------------------------------------------

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self.timings.reconcile_every_s):
            for plane in list(self.planes.values()):
                for runner in list(plane.runners.values()):
                    try:
                        runner.reconcile()
                    except Exception as exc:  # one service's trouble must not stop the others' reconciliation
                        self._event(f"[{plane.stack}] {runner.service.name}: {type(exc).__name__}: {exc}")

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Wait until every service runs its desired count and every target group has a healthy target."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            pending = self.not_ready()
            if not pending:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise PlatformError(f"not ready after {timeout:.0f} s: {'; '.join(pending)}")
            time.sleep(0.2)

    def not_ready(self) -> list[str]:
        """What is not ready yet (empty when everything is)."""
        pending = []
        for plane in self.planes.values():
            for name, runner in plane.runners.items():
                status = runner.status()
                if status["running"] != status["desired"]:
                    pending.append(f"{plane.stack} {name}: {status['running']}/{status['desired']} tasks")
            for mesh in plane.meshes.values():
                for alias, proxy in mesh.proxies.items():
                    if not proxy.pool.healthy_targets():
                        pending.append(f"{plane.stack} Service Connect {alias}: no healthy task")
            for info in plane.front_doors:
                for arn, pool in info.door.pools.items():
                    if not pool.healthy_targets():
                        pending.append(f"{plane.stack} target group {arn.rsplit('/', 2)[-2]}: no healthy target")
        return pending

    def _event(self, message: str) -> None:
        with self._events_lock:
            self._events.append(message)
        print(message, file=self.stream, flush=True)

    @property
    def events(self) -> list[str]:
        """Everything the platform reported, in order."""
        with self._events_lock:
            return list(self._events)

    def stop(self) -> None:
        """Stop every task, proxy, front and server, and remove the working directory (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._reconciler is not None:
            self._reconciler.join(10)
        for plane in self.planes.values():
            for runner in plane.runners.values():
                try:
                    runner.stop_all()
                except EndpointConnectionError:
                    # Ctrl-C in a terminal reaches the emulator too, which may exit first: there is no target
                    # group left to deregister from, and that is no failure. The processes must stop anyway.
                    log.debug("stopping %s: the emulator is already gone", runner.service.name)
                    self._stop_processes(runner.tasks)
                except Exception as exc:  # any other error: say so, and still stop the processes
                    log.warning("stopping %s: %s", runner.service.name, exc)
                    self._stop_processes(runner.tasks)
        self.supervisor.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def _stop_processes(self, tasks: Sequence[Task]) -> None:
        """Stop the processes of ``tasks`` directly, without telling the emulator."""
        for task in list(tasks):
            self.supervisor.stop_process(task.process)

    # --- failures an operator injects (tools/localplane/control.py) -------------------------------------------

    def _switch_action(self, kind: str, verb: str, stack: str, identifier: str, _body: dict[str, Any]) -> dict[str, Any]:
        return self._switch(stack, kind, identifier, verb)

    def _switch(self, stack: str, kind: str, identifier: str, verb: str) -> dict[str, Any]:
        """Stop or start the server behind a cluster (``databases``) or replication group (``caches``) endpoint.

        The front keeps listening, as the endpoint's DNS name stays; a restarted Valkey gets its users again.
        """
        plane = self.planes[stack]
        stand_in: Database | Cache = plane.databases[identifier] if kind == "databases" else plane.caches[identifier]
        if verb == "stop":
            stand_in.server.stop()
        else:
            stand_in.server.start()
        what = "Aurora" if kind == "databases" else "Redis"
        self._event(f"[{stack}] {what} {identifier}: server {'stopped' if verb == 'stop' else 'started'} (operator)")
        return {"identifier": identifier, "running": stand_in.server.is_running()}

    def kill_task(self, stack: str, service: str, task_id: str) -> dict[str, Any]:
        """SIGKILL one task's process: the runner sees it exit and replaces it."""
        runner = self.planes[stack].runners[service]
        task = next((t for t in list(runner.tasks) if t.task_id == task_id), None)
        if task is None:
            raise KeyError(f"task {task_id}")
        task.process.popen.kill()
        self._event(f"[{stack}] {service}: task {task_id[:8]} killed (operator)")
        return {"taskId": task_id, "pid": task.process.pid, "targetId": task.target_id}

    def scan_cache(self, stack: str, identifier: str, match: str) -> dict[str, Any]:
        """Key names matching ``match`` and their TTLs in a replication group's server (values are never read)."""
        client = self.planes[stack].caches[identifier].server.admin_client()
        try:
            keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in client.scan_iter(match=match, count=500))
            return {"keys": {key: int(client.ttl(key)) for key in keys}}
        finally:
            client.close()

    def exec_in_task(self, stack: str, service: str, argv: list[str], overrides: dict[str, str]) -> dict[str, Any]:
        """Run ``argv`` with a running task's environment (plus ``overrides``) and user; its status and output."""
        runner = self.planes[stack].runners[service]
        task = next(iter(list(runner.tasks)), None)
        if task is None or not argv:
            raise KeyError(f"running task of {service}" if task is None else "argv")
        command = [sys.executable if arg == "python" else arg for arg in argv]
        user = runner.run_as
        result = subprocess.run(
            command,
            env={**task.env, **overrides},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            user=user[0] if user else None,
            group=user[1] if user else None,
        )
        return {"taskId": task.task_id, "exitCode": result.returncode, "stdout": result.stdout, "stderr": result.stderr[-4000:]}

    # --- what to tell the operator and the tests ---------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Where everything runs: per stack, the front doors, the data stores' local addresses, the tasks."""
        described: dict[str, Any] = {"endpoint": self.endpoint, "caFile": str(self.ca.ca_path), "stacks": {}}
        if self.control is not None:
            described["control"] = {"url": self.control.url, "token": self.control.token}
        for stack, plane in self.planes.items():
            described["stacks"][stack] = {
                "healthChecks": self._health_pacing(plane),
                "frontDoors": [
                    {
                        "loadBalancerArn": info.arn,
                        "https": info.door.https_url,
                        "http": info.door.http_url,
                        "host": info.host,
                        "certificate": str(info.certificate),
                    }
                    for info in plane.front_doors
                ],
                "dataStores": {
                    f"{host}:{port}": f"{LOCALHOST}:{local}"
                    for (host, port), local in plane.addresses(self.ca.ca_path).data_stores.items()
                },
                "databases": {
                    ident: {"endpoint": db.cluster.endpoint, "local": f"{LOCALHOST}:{db.front.port}", "pid": db.server.pid}
                    for ident, db in plane.databases.items()
                },
                "caches": {
                    ident: {"endpoint": c.group.primary_endpoint, "local": f"{LOCALHOST}:{c.front.port}"}
                    for ident, c in plane.caches.items()
                },
                "serviceConnect": {alias: url for mesh in plane.meshes.values() for alias, url in mesh.endpoints().items()},
                "services": {
                    name: {
                        **runner.status(),
                        "tasks": [
                            {
                                "taskId": t.task_id,
                                "pid": t.process.pid,
                                "port": t.port,
                                "targetId": t.target_id,
                                "health": t.health,
                                "role": runner.definition.task_role_arn,
                            }
                            for t in list(runner.tasks)
                        ],
                    }
                    for name, runner in plane.runners.items()
                },
            }
        return described

    def _health_pacing(self, plane: StackPlane) -> dict[str, float]:
        """The target groups' health-check pacing as the front door runs it (the window a dead task can get traffic)."""
        for info in plane.front_doors:
            for group in info.door.config.target_groups.values():
                if group.health is not None:
                    return {
                        "intervalSeconds": group.health.interval_s,
                        "healthyThreshold": group.health.healthy_threshold,
                        "unhealthyThreshold": group.health.unhealthy_threshold,
                        "targetPollSeconds": info.door.poll_interval_s,
                    }
        return {}

    def curl(self, stack: str) -> str:
        """A copy-paste ``curl`` that creates a payment through the stack's front door."""
        info = self.planes[stack].front_doors[0]
        body = json.dumps(DEMO_PAYMENT)
        return (
            f"curl --cacert {info.certificate} --resolve {info.host}:{info.door.https_port}:{LOCALHOST} \\\n"
            f"  https://{info.host}:{info.door.https_port}/api/payments \\\n"
            f"  -H 'Content-Type: application/json' -H \"Idempotency-Key: demo-$(date +%s)\" \\\n"
            f"  -d '{body}'"
        )

    def write_endpoints(self, root: Path) -> list[Path]:
        """``cfn-outputs/<stack>/local-platform.json``: where the stack's endpoints run on this machine."""
        written = []
        described = self.describe()
        for stack, detail in described["stacks"].items():
            path = root / stack / "local-platform.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"endpoint": self.endpoint, "caFile": described["caFile"], "control": described.get("control"), **detail}
            _write_private(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
            written.append(path)
        return written
