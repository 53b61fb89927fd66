"""The emulator engine: Pulumi mocks that carry out every registration against AWS APIs.

:class:`EmulatorMocks` is a :class:`pulumi.runtime.Mocks` whose ``new_resource`` dispatches on the
resource type token to a :class:`ResourceHandler` in :data:`tools.emulator.handlers.HANDLERS`. Its
``create`` makes the resource with the real AWS API operation (boto3, pointed at the emulator
endpoint) and returns the state the program sees, read back from the emulator with describe/get
calls; ``read`` and ``delete`` find and remove it again later (destroy, re-runs). ``call`` answers
data sources the same way (:data:`tools.emulator.handlers.CALLS`).

Every created resource is recorded in :attr:`EmulatorMocks.created` (:class:`CreatedResource`: type,
name, URN, physical id, state, dependencies) so that a later destroy can delete it.

A registration whose type has no handler, or an AWS error, stops the deployment with a
:class:`DeploymentError` that names the resource, the operation and the emulator's message.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions
import pulumi

if TYPE_CHECKING:
    from tools.evaluate import Registration

DEFAULT_REGION = "us-east-1"
# Pulumi's wire markers for a secret value (pulumi.runtime.rpc._special_sig_key / _special_secret_sig).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# Credentials the emulator accepts for its default account (moto maps unknown keys to 123456789012).
TEST_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class DeploymentError(RuntimeError):
    """A resource or data source could not be carried out against the emulator."""

    def __init__(self, resource: str, operation: str, message: str) -> None:
        super().__init__(f"{resource}: {operation} failed: {message}")
        self.resource = resource
        self.operation = operation
        self.message = message


class UnknownTypeError(DeploymentError):
    """The program registered a resource type (or called a data source) that has no handler."""


@dataclass(frozen=True)
class Request:
    """One resource registration as the provider would receive it (camelCase inputs)."""

    typ: str
    name: str
    inputs: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """Input ``key`` (camelCase), or ``default`` when absent or None."""
        value = self.inputs.get(key)
        return default if value is None else value

    def physical_name(self, key: str = "name", max_len: int = 63) -> str:
        """The explicit physical name, or a provider-style autoname (``<logical>-<7 hex>``)."""
        explicit = self.inputs.get(key)
        if explicit:
            return str(explicit)
        # Why: the real provider autonames unnamed resources the same way; the mock runtime does not.
        return f"{self.name[: max_len - 8]}-{secrets.token_hex(4)[:7]}"


@dataclass
class Aws:
    """boto3 clients for one emulated account: one client per service, shared by all threads."""

    session: boto3.session.Session
    endpoint: str
    region: str = DEFAULT_REGION
    account_id: str = ""
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        """The (thread-safe) boto3 client for ``service``; sessions are not thread-safe, so create under a lock."""
        with self._lock:
            found = self._clients.get(service)
            if found is None:
                found = self.session.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    config=botocore.config.Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=32),
                )
                self._clients[service] = found
            return found

    @property
    def partition(self) -> str:
        """AWS partition of the region (the emulator only runs the commercial one here)."""
        return "aws-us-gov" if self.region.startswith("us-gov") else "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """An ARN in this account, for identifiers the API itself does not return as an ARN."""
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id if account else ''}:{resource}"


def normalize(value: Any) -> Any:
    """Pulumi's wire format carries every number as a double: give integral ones back their int type.

    boto3 refuses 1.0 where the API wants an integer (ports, priorities, counts) and accepts an int
    wherever it wants a double, so integral floats become ints everywhere.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            # A secret arrives wrapped ({sig: secret, value: ...}); the provider sees the plain value.
            return normalize(value.get("value"))
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    return value


CreateHandler = Callable[[Aws, Request], tuple[str, dict[str, Any]]]
ReadHandler = Callable[[Aws, str, Mapping[str, Any]], dict[str, Any] | None]
DeleteHandler = Callable[[Aws, str, Mapping[str, Any]], None]
CallHandler = Callable[[Aws, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ResourceHandler:
    """How one resource type is created, read back and deleted in the emulator.

    ``create(aws, request)`` returns ``(physical id, state the program sees)``. ``read(aws, id, state)``
    and ``delete(aws, id, state)`` get that id and that state back (so they can find parents, names,
    inputs): ``read`` returns the current state in the same shape, or None when the resource is gone;
    ``delete`` removes it with the real AWS delete operation and is idempotent (already gone is fine).

    ``retained`` is empty when ``delete`` really removes the resource. Otherwise it says why the resource
    outlives ``delete`` (it exists only in Pulumi's state, or moto has no delete operation for it);
    ``read`` then keeps returning its state.
    """

    token: str
    create: CreateHandler
    read: ReadHandler
    delete: DeleteHandler
    retained: str = ""


@dataclass(frozen=True)
class DataSource:
    """One data source (``aws:index/getRegion:getRegion``, ...) and the function that answers it."""

    token: str
    call: CallHandler


@dataclass(frozen=True)
class CreatedResource:
    """A resource the engine created: what a destroy needs to find it, delete it and order the deletions."""

    type: str
    name: str
    id: str
    state: dict[str, Any]
    urn: str = ""
    parent: str = ""
    depends_on: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that create every resource in the emulator and return the state read back from it."""

    def __init__(
        self,
        aws: Aws,
        handlers: Mapping[str, ResourceHandler] | None = None,
        calls: Mapping[str, CallHandler] | None = None,
    ) -> None:
        from tools.emulator.handlers import CALLS, HANDLERS

        self.aws = aws
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.calls = dict(CALLS if calls is None else calls)
        self.errors: list[DeploymentError] = []
        # In creation order: a destroy deletes in the reverse order (or by depends_on).
        self.created: list[CreatedResource] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._in_flight = 0
        # The record new_resource just appended on this thread, until registered() completes it.
        self._pending = threading.local()

    @property
    def error(self) -> DeploymentError | None:
        """The first failure, which is the one to report (later ones are usually its consequences)."""
        return self.errors[0] if self.errors else None

    def _fail(self, error: DeploymentError) -> DeploymentError:
        with self._lock:
            self.errors.append(error)
        return error

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Create the resource in the emulator; components (not custom) need nothing there."""
        self._pending.index = None
        if not args.custom:
            # Component resources exist only in Pulumi's state; MockMonitor just needs an (empty) id and state.
            return "", {}
        resource = f"{args.typ} {args.name!r}"
        if self.errors:
            # Why: after the first failure nothing more is created, so the emulator shows where it stopped.
            raise self._fail(DeploymentError(resource, "(skipped)", "an earlier resource failed"))
        handler = self.handlers.get(args.typ)
        if handler is None:
            raise self._fail(UnknownTypeError(resource, "(no handler)", f"no emulator handler for resource type {args.typ}"))
        request = Request(typ=args.typ, name=args.name, inputs=normalize(dict(args.inputs)))
        with self._idle:
            self._in_flight += 1
        try:
            resource_id, state = self._run(resource, lambda: handler.create(self.aws, request))
            with self._lock:
                self.created.append(CreatedResource(type=args.typ, name=args.name, id=resource_id, state=state))
                self._pending.index = len(self.created) - 1
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
        return resource_id, {**state, "id": resource_id}

    def quiesce(self, timeout: float = 30.0) -> bool:
        """Wait until no create is in flight (after a failure, creates started before it still finish).

        A destroy must know every resource that exists: the record of a failed deployment is taken only
        once the creates already under way have ended. Returns False if they did not end in ``timeout``.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def registered(self, registration: Registration) -> None:
        """Complete the record of the resource just created with its URN and dependencies.

        Pass as (or call from) :func:`tools.evaluate.evaluate`'s ``on_register``. The mock args that
        ``new_resource`` gets carry neither the URN nor the dependencies; the registration does, and the
        monitor reports it on the same thread right after ``new_resource`` returns, which is how the two
        are matched (type and name are checked as well).
        """
        index = getattr(self._pending, "index", None)
        self._pending.index = None
        if index is None:
            return
        with self._lock:
            record = self.created[index]
            if (record.type, record.name) != (registration.type, registration.name):
                return
            self.created[index] = replace(
                record,
                urn=registration.urn,
                parent=registration.parent,
                depends_on=tuple(registration.depends_on),
                protect=registration.protect,
                retain_on_delete=registration.retain_on_delete,
            )

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer a data source from the emulator."""
        handler = self.calls.get(args.token)
        if handler is None:
            raise self._fail(
                UnknownTypeError(f"data source {args.token}", "(no handler)", f"no emulator handler for {args.token}")
            )
        return self._run(f"data source {args.token}", lambda: handler(self.aws, normalize(dict(args.args)))), []

    def _run(self, resource: str, action: Callable[[], Any]) -> Any:
        """Run a handler, turning AWS and handler errors into a DeploymentError that names the resource."""
        try:
            return action()
        except DeploymentError as exc:
            raise self._fail(DeploymentError(resource, exc.operation, exc.message)) from exc
        except botocore.exceptions.ClientError as exc:
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            code = exc.response.get("Error", {}).get("Code", "")
            raise self._fail(DeploymentError(resource, exc.operation_name, f"{code}: {message}".strip(": "))) from exc
        except botocore.exceptions.ParamValidationError as exc:
            raise self._fail(DeploymentError(resource, "(request validation)", str(exc))) from exc
        except Exception as exc:  # a handler bug still has to name the resource it failed on
            raise self._fail(DeploymentError(resource, "(handler)", f"{type(exc).__name__}: {exc}")) from exc


def account_session(endpoint: str, account_id: str, region: str = DEFAULT_REGION) -> boto3.session.Session:
    """Credentials for ``account_id``: STS AssumeRole into its scalepay-deployer role (moto maps them to that account)."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, **TEST_CREDENTIALS)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/scalepay-deployer", RoleSessionName="scalepay-deploy")[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def account_aws(endpoint: str, account_id: str, region: str = DEFAULT_REGION) -> Aws:
    """An :class:`Aws` for one emulated account."""
    return Aws(session=account_session(endpoint, account_id, region), endpoint=endpoint, region=region, account_id=account_id)
