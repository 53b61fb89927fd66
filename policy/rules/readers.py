"""Readers shared by every rule: they tolerate both plain values and CrossGuard's read-only proxies.

Property values reach a rule as plain Python values (unit tests, ``python -m tools.compliance``) or as
CrossGuard's read-only proxies; JSON documents may arrive as strings or already parsed, and booleans and
numbers may be echoed as strings or floats. These functions read all of those the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy.rules.base import StackResource


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: a sequence (not a string) as is, a scalar as a one-item list, None as []."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def parse_json(value: Any) -> Any:
    """A JSON document that may arrive as a string or already parsed; None when unreadable."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def is_true(value: Any) -> bool:
    """True for ``True`` and the string ``"true"`` (some providers echo booleans as strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def is_false(value: Any) -> bool:
    """True for ``False`` and the string ``"false"``: an explicit off, not merely unset (None)."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def is_customer_managed_key(value: Any) -> bool:
    """A KMS key reference that is not empty and not an AWS-managed ``alias/aws/...`` key."""
    if not isinstance(value, str) or not value.strip():
        return False
    return "alias/aws/" not in value


def statements(document: Any) -> Iterator[Mapping[str, Any]]:
    """The statements of an IAM policy document (string or parsed); a lone statement is allowed."""
    parsed = as_map(parse_json(document))
    for statement in as_list(parsed.get("Statement")):
        if isinstance(statement, Mapping):
            yield statement


def by_type(resources: Sequence[StackResource], *types: str) -> list[StackResource]:
    """The resources whose type is one of ``types``, in order."""
    return [r for r in resources if r.type in types]


def find(resources: Sequence[StackResource], reference: Any, *types: str) -> StackResource | None:
    """The resource of one of ``types`` that ``reference`` (an id, ARN or name) points to."""
    if not isinstance(reference, str) or not reference:
        return None
    for resource in by_type(resources, *types):
        if reference in resource.keys():
            return resource
    return None


def as_int(value: Any) -> int | None:
    """A whole number from an int, an integral float (protobuf numbers arrive as floats) or a digit string."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None
