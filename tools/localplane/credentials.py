"""Stand-in for the ECS container credentials endpoint (what a task's SDK reads its task-role credentials from).

An HTTP server on 127.0.0.1 serves ``GET /v2/credentials/<task-id>`` with the JSON the ECS agent returns
(``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration``, ``RoleArn``) for the task's role. Credentials come
from STS AssumeRole against the emulator and are refreshed well before they expire; every credential handed out is
registered in the :class:`~tools.localplane.iam_auth.CredentialRegistry`, which is how the data-plane fronts recognise
the keys that signed an IAM auth token. A task's process gets :meth:`ContainerCredentialsServer.env_for_task`:
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (botocore accepts a loopback full URI) and ``AWS_CONTAINER_AUTHORIZATION_TOKEN``
(a random per-task token the request must carry in ``Authorization``), so the SDK's default credential chain works
unchanged.

Differences from ECS: served over a loopback TCP port rather than 169.254.170.2 with a relative URI; one token per
task instead of per-container; the trust policy of the role is whatever the emulator enforces for AssumeRole.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from tools.localplane._http import BackgroundHttpServer, JsonRequestHandler
from tools.localplane.iam_auth import CredentialRegistry
from tools.localplane.supervisor import Supervisor

__all__ = ["ContainerCredentialsServer", "TaskCredentials"]

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"^/v2/credentials/([A-Za-z0-9._-]{1,128})$")


@dataclass(frozen=True)
class TaskCredentials:
    """One set of role credentials served to a task."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime
    role_arn: str

    def as_json(self) -> dict[str, str]:
        """The ECS credentials-endpoint document."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": self.expiration.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": self.role_arn,
        }


@dataclass
class _Task:
    role_arn: str
    auth_token: str
    credentials: TaskCredentials | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _account_of(role_arn: str) -> str:
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[4]:
        raise ValueError(f"not an IAM role ARN: {role_arn}")
    return parts[4]


class ContainerCredentialsServer:
    """Serves per-task role credentials on 127.0.0.1 and records them in a credential registry."""

    def __init__(
        self,
        sts_client: Any,
        registry: CredentialRegistry,
        *,
        supervisor: Supervisor | None = None,
        port: int | None = None,
        duration_seconds: int = 3600,
        refresh_before: dt.timedelta = dt.timedelta(minutes=20),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        name: str = "container-credentials",
    ) -> None:
        self._sts = sts_client
        self.registry = registry
        self.supervisor = supervisor
        self._requested_port = port or 0
        self.duration_seconds = duration_seconds
        # botocore itself refreshes when 15 (advisory) / 10 (mandatory) minutes are left: hand out credentials with
        # more than that, as the ECS agent does, so the SDK never sees almost-expired credentials.
        self.refresh_before = min(refresh_before, dt.timedelta(seconds=duration_seconds // 3))
        self._clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._server: BackgroundHttpServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        if self._server is None:
            raise RuntimeError("credentials server not started")
        return self._server.port

    def start(self) -> None:
        """Listen on 127.0.0.1 and serve on a background thread (registered with the supervisor, if any)."""
        if self._server is not None:
            return
        # A short poll interval keeps stop() fast (shutdown waits for the loop to notice).
        self._server = BackgroundHttpServer(self._handler_class(), name=self.name, port=self._requested_port, poll_interval=0.05)
        if self.supervisor is not None:
            self.supervisor.add_callback(self.name, self._shutdown)
        log.info("%s listening on 127.0.0.1:%s", self.name, self.port)

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self.supervisor is not None:
            self.supervisor.remove_callback(self.name)
        self._shutdown()

    def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> ContainerCredentialsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tasks -------------------------------------------------------------------------------------------------------

    def register_task(self, task_id: str, role_arn: str) -> str:
        """Serve ``role_arn`` credentials to ``task_id``; returns the task's authorization token."""
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", task_id):
            raise ValueError(f"invalid task id {task_id!r}")
        _account_of(role_arn)
        with self._lock:
            task = _Task(role_arn=role_arn, auth_token=secrets.token_urlsafe(32))
            self._tasks[task_id] = task
            return task.auth_token

    def unregister_task(self, task_id: str) -> None:
        """Stop serving the task (its credentials already handed out stay valid until they expire, as on AWS)."""
        with self._lock:
            self._tasks.pop(task_id, None)

    def env_for_task(self, task_id: str) -> dict[str, str]:
        """The environment a task's process needs for the SDK's container credential provider."""
        with self._lock:
            task = self._tasks[task_id]
            token = task.auth_token
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{self.port}/v2/credentials/{task_id}",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        }

    def credentials_for(self, task_id: str) -> TaskCredentials:
        """The task's current credentials, assuming the role again when they are missing or close to expiry."""
        with self._lock:
            task = self._tasks[task_id]
        # Per task: concurrent requests of one task share a single AssumeRole; other tasks are not held up.
        with task.lock:
            current = task.credentials
            if current is None or current.expiration - self._clock() <= self.refresh_before:
                current = task.credentials = self._assume(task_id, task.role_arn)
            return current

    def _assume(self, task_id: str, role_arn: str) -> TaskCredentials:
        response = self._sts.assume_role(
            RoleArn=role_arn, RoleSessionName=f"ecs-{task_id}"[:64], DurationSeconds=self.duration_seconds
        )
        raw = response["Credentials"]
        expiration = raw["Expiration"]
        if isinstance(expiration, str):
            expiration = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=dt.UTC)
        creds = TaskCredentials(raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"], expiration, role_arn)
        self.registry.register(
            creds.access_key_id, creds.secret_access_key, creds.session_token, role_arn, _account_of(role_arn), expiration
        )
        return creds

    def _authorised(self, task_id: str, header: str | None) -> bool | None:
        """None if the task is unknown, else whether ``header`` is its authorization token."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            return None
        return header is not None and hmac.compare_digest(header.encode(), task.auth_token.encode())

    # -- HTTP --------------------------------------------------------------------------------------------------------

    def _handler_class(self) -> type[JsonRequestHandler]:
        owner = self

        class Handler(JsonRequestHandler):
            """GET /v2/credentials/<task-id> with the task's Authorization token."""

            server_version = "localplane-credentials"
            sys_version = ""

            def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler method name
                """Serve one task's credentials."""
                match = _PATH_RE.match(self.path)
                if match is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"code": "NotFound", "message": "unknown path"})
                    return
                task_id = match.group(1)
                authorised = owner._authorised(task_id, self.headers.get("Authorization"))
                if authorised is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"code": "NotFound", "message": "unknown task"})
                    return
                if not authorised:
                    self._reply(HTTPStatus.UNAUTHORIZED, {"code": "AccessDenied", "message": "bad authorization token"})
                    return
                try:
                    creds = owner.credentials_for(task_id)
                except KeyError:  # unregistered meanwhile
                    self._reply(HTTPStatus.NOT_FOUND, {"code": "NotFound", "message": "unknown task"})
                    return
                except Exception as exc:
                    log.exception("%s: AssumeRole for task %s failed", owner.name, task_id)
                    self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"code": "InternalError", "message": str(exc)})
                    return
                self._reply(HTTPStatus.OK, creds.as_json())

            def log_message(self, format: str, *args: Any) -> None:
                """Route access logs to logging instead of stderr."""
                log.debug("%s: " + format, owner.name, *args)

        return Handler
