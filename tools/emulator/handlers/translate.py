"""Generic translation between Pulumi inputs/state and AWS API shapes, shared by every handler module.

Nothing here knows about moto: workarounds for the emulator's gaps live in
:mod:`tools.emulator.handlers.moto_fixes`.

* inputs -> API parameters: :func:`drop_none`, :func:`api_params`, :func:`tag_list`, :func:`tag_spec`, :func:`as_json`,
  :func:`pascal`, :func:`subnet_group`;
* API responses -> state: :func:`state` (create), :func:`refreshed` (read), :func:`fields`, :func:`tag_dict`;
* "is it gone?": :func:`none_when` turns the API's not-found errors (and :class:`GoneError`) into None;
  :func:`first_or_gone` raises GoneError where an API answers with an empty list instead;
* handlers built from a :data:`Describe` function: :func:`described` (create's answer), :func:`read_by` (read);
  a delete that is one API call: :func:`delete_call`;
* resources with nothing to call (state-only): :func:`read_recorded`, :func:`delete_nothing`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

import botocore.exceptions

from tools.emulator.engine import Aws, DeleteHandler, ReadHandler, Request

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

PULUMI_DESCRIPTION = "Managed by Pulumi"
"""The description the provider gives resources whose ``description`` input is left out."""

Describe = Callable[[Aws, str, Mapping[str, Any]], dict[str, Any]]
"""What the API says about a resource now: ``describe(aws, resource id, inputs)`` -> its computed attributes.

``inputs`` are the request's inputs on create and the recorded state on read (a state holds its inputs), for
what the id alone does not say. A describe raises the API's not-found error, or :class:`GoneError`, once the
resource is gone. One describe serves create (:func:`described`) and read (:func:`read_by`), so both return one shape.
"""


def tag_list(tags: Mapping[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]`` (most AWS APIs' tag shape)."""
    return [{key: k, value: str(v)} for k, v in (tags or {}).items()]


def tag_dict(tags: list[Mapping[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """The inverse of :func:`tag_list`, for reading tags back."""
    return {t[key]: t[value] for t in tags or []}


def tag_spec(resource_type: str, tags: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for a Create* call, so the resource is tagged atomically as the provider does."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}] if tags else []


def as_json(value: Any) -> str:
    """JSON inputs arrive as strings; nested dicts (if a component passed one) are dumped."""
    return value if isinstance(value, str) else json.dumps(value)


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    """boto3 rejects None for optional parameters: leave them out."""
    return {k: v for k, v in params.items() if v is not None}


def api_params(inputs: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The inputs ``names`` (None where absent) under the API's PascalCase parameter names: the inverse of :func:`fields`.

    For the many parameters that are an input as it is: ``api_params(req.inputs, "kmsKeyId")`` -> ``{"KmsKeyId": ...}``;
    wrap the call's parameters in :func:`drop_none`, as for any optional parameter.
    """
    return {name[:1].upper() + name[1:]: inputs.get(name) for name in names}


def pascal(value: Any, exceptions: Mapping[str, str] | None = None) -> Any:
    """camelCase input blocks -> the API's PascalCase, recursively, for inputs that mirror an API shape 1:1.

    ``exceptions`` names keys whose API spelling is not the plain capitalisation (``arn`` -> ``ARN``).
    None values are left out, as boto3 wants.
    """
    special = exceptions or {}
    if isinstance(value, Mapping):
        return {special.get(k, k[:1].upper() + k[1:]): pascal(v, special) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pascal(v, special) for v in value]
    return value


def fields(found: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The API fields ``names`` of ``found`` (None where absent), under the provider's camelCase names.

    For the many computed attributes that are an API field as it is: ``fields(found, "VpcId", "OwnerId")`` ->
    ``{"vpcId": ..., "ownerId": ...}``. :func:`state` and :func:`refreshed` leave the None ones out.
    """
    return {name[:1].lower() + name[1:]: found.get(name) for name in names}


def subnet_group(req: Request, group: str) -> tuple[str, dict[str, Any]]:
    """The name and ``Create<group>`` parameters of an RDS (``DBSubnetGroup``) or ElastiCache (``CacheSubnetGroup``) subnet group.

    Both services take the same inputs with the same parameters but for the ``<group>`` prefix; the provider
    names both in lower case.
    """
    name = req.physical_name("name", 255).lower()
    return name, {
        f"{group}Name": name,
        f"{group}Description": req.get("description", PULUMI_DESCRIPTION),
        "SubnetIds": list(req.get("subnetIds", [])),
        "Tags": tag_list(req.get("tags")),
    }


def state(request: Request, **computed: Any) -> dict[str, Any]:
    """The provider's state after create: the inputs, overlaid with what was read back from the emulator.

    Read-back values win over inputs; ``tagsAll`` mirrors ``tags`` as the provider does without default tags.
    """
    out: dict[str, Any] = dict(request.inputs)
    if "tags" in request.inputs:
        out["tagsAll"] = dict(request.inputs.get("tags") or {})
    out.update({k: v for k, v in computed.items() if v is not None})
    return out


def refreshed(recorded: Mapping[str, Any], **computed: Any) -> dict[str, Any]:
    """The provider's state after read: the recorded state, overlaid with what was read back now.

    Handlers compute ``computed`` with the same function for create and read, so both return one shape.
    """
    out = dict(recorded)
    out.update({k: v for k, v in computed.items() if v is not None})
    return out


def given(recorded: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``recorded[key]``, or ``default`` when absent or None (:meth:`Request.get` for a recorded state)."""
    value = recorded.get(key)
    return default if value is None else value


def read_recorded(_aws: Aws, _resource_id: str, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``read`` of a resource that exists only in Pulumi's state (or has no API in the emulator): the recorded state."""
    return dict(recorded)


def delete_nothing(_aws: Aws, _resource_id: str, _recorded: Mapping[str, Any]) -> None:
    """``delete`` of a resource that exists only in Pulumi's state (or has no API in the emulator): nothing to call."""


class GoneError(Exception):
    """Raised by a read helper when the API still answers but says the resource is deleted (or being deleted)."""


def first_or_gone(found: Iterable[T], resource: str) -> T:
    """The first of what a describe or list call found (filter it first), or :class:`GoneError` naming ``resource``.

    For APIs that answer a missing resource with an empty list (or keep a deleted one listed) instead of an error.
    """
    for item in found:
        return item
    raise GoneError(resource)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    """The AWS error code of a failed call (``ResourceNotFoundException``, ``InvalidVpcID.NotFound``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def none_when(*codes: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorate a read or delete: the listed not-found error codes, or :class:`GoneError`, mean "gone" -> None.

    For ``read`` that is the "resource no longer exists" answer; for ``delete`` it makes deleting a
    resource that is already gone a success, as idempotent deletes must be.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return function(*args, **kwargs)
            except GoneError:
                return None
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in codes:
                    return None
                raise

        return wrapper

    return decorate


def described(aws: Aws, req: Request, resource_id: str, describe: Describe) -> tuple[str, dict[str, Any]]:
    """What ``create`` returns once the resource exists: its id and :func:`state`, read back with ``describe``."""
    return resource_id, state(req, **describe(aws, resource_id, req.inputs))


def read_by(describe: Describe, *not_found: str) -> ReadHandler:
    """``read`` as ``describe`` does it: the recorded state :func:`refreshed`; None on the ``not_found`` codes or GoneError."""

    @none_when(*not_found)
    def read(aws: Aws, resource_id: str, recorded: Mapping[str, Any]) -> dict[str, Any]:
        return refreshed(recorded, **describe(aws, resource_id, recorded))

    read.__doc__ = describe.__doc__ or f"read with {describe.__name__}"
    return read


def delete_call(
    service: str, operation: str, id_param: str, *not_found: str, exists: Describe | None = None, **params: Any
) -> DeleteHandler:
    """``delete`` that is one API call: ``operation`` of ``service`` with the id as ``id_param``, and ``params``.

    The ``not_found`` codes (and GoneError) make deleting what is already gone a success. With ``exists``, the
    resource is described first and the call made only while it exists, for APIs that refuse to delete a
    resource twice or answer a deleted one with an error that is no not-found code.
    """

    @none_when(*not_found)
    def delete(aws: Aws, resource_id: str, recorded: Mapping[str, Any]) -> None:
        if exists is not None:
            exists(aws, resource_id, recorded)
        getattr(aws.client(service), operation)(**{id_param: resource_id}, **params)

    delete.__doc__ = f"{service} {operation}({id_param}=<id>{''.join(f', {k}={v!r}' for k, v in params.items())})"
    return delete
