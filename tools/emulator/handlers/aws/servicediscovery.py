"""aws:servicediscovery -- Cloud Map namespaces (the HTTP namespace ECS Service Connect uses)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import delete_call, described, drop_none, read_by, tag_list

_NOT_FOUND = "NamespaceNotFound"


def _namespace(aws: Aws, namespace_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetNamespace."""
    found = aws.client("servicediscovery").get_namespace(Id=namespace_id)["Namespace"]
    http = (found.get("Properties") or {}).get("HttpProperties") or {}
    return {"name": found["Name"], "arn": found["Arn"], "httpName": http.get("HttpName")}


def create_http_namespace(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:servicediscovery/httpNamespace:HttpNamespace -> CreateHttpNamespace, its operation, then GetNamespace."""
    sd = aws.client("servicediscovery")
    operation_id = sd.create_http_namespace(
        **drop_none({"Name": req.get("name"), "Description": req.get("description"), "Tags": tag_list(req.get("tags")) or None})
    )["OperationId"]
    # The namespace id is only known from the (asynchronous in AWS) operation, as for the provider.
    operation = sd.get_operation(OperationId=operation_id)["Operation"]
    if operation.get("Status") == "FAIL":
        raise RuntimeError(f"CreateHttpNamespace: {operation.get('ErrorCode')}: {operation.get('ErrorMessage')}")
    namespace_id = operation["Targets"]["NAMESPACE"]
    return described(aws, req, namespace_id, _namespace)


read_http_namespace = read_by(_namespace, _NOT_FOUND)
# AWS refuses while services are registered in it; those are deleted first.
delete_http_namespace = delete_call("servicediscovery", "delete_namespace", "Id", _NOT_FOUND)


RESOURCES = (
    ResourceHandler(
        "aws:servicediscovery/httpNamespace:HttpNamespace", create_http_namespace, read_http_namespace, delete_http_namespace
    ),
)
