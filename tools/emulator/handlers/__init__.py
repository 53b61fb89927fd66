"""The handler tables: resource type token -> handler, data-source token -> handler.

Each service module declares its own ``HANDLERS`` (and ``CALLS``); this module merges them into the
single tables the engine dispatches on, refusing a token claimed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from tools.emulator.engine import CallHandler, ResourceHandler
from tools.emulator.handlers import (
    baseline,
    containers,
    ec2,
    edge,
    elasticache,
    elbv2,
    iam,
    index,
    kms,
    local,
    logs,
    monitoring,
    rds,
    s3,
    secretsmanager,
)

_MODULES: tuple[ModuleType, ...] = (
    kms,
    ec2,
    logs,
    iam,
    rds,
    elasticache,
    elbv2,
    secretsmanager,
    local,
    containers,
    s3,
    edge,
    monitoring,
    baseline,
    index,
)


def _merge(attribute: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for module in _MODULES:
        table: Mapping[str, Any] = getattr(module, attribute, {})
        for token, handler in table.items():
            if token in merged:
                raise RuntimeError(f"{token} has two handlers ({module.__name__} and another)")
            merged[token] = handler
    return merged


HANDLERS: dict[str, ResourceHandler] = _merge("HANDLERS")
CALLS: dict[str, CallHandler] = _merge("CALLS")
