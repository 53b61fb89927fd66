"""The ScalePayments PCI DSS CrossGuard policy pack.

``pulumi preview --policy-pack policy`` starts this module; every rule of :mod:`policy.rules`
becomes a ``ResourceValidationPolicy`` or ``StackValidationPolicy`` whose enforcement level and
thresholds come from :mod:`policy.enforcement` for the stack being previewed (``PULUMI_STACK``,
set by the Pulumi CLI for analyzer plugins). ``--policy-pack-config policy/config/<env>.json``
pins an environment's profile explicitly.

Constructing :class:`pulumi_policy.PolicyPack` starts the analyzer's gRPC server and blocks
forever, so it only happens when run as a program; tests call :func:`pack_arguments`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The CLI runs this file from the pack directory: make ``policy.*`` importable from the repo root.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from pulumi_policy import (  # noqa: E402 - after the sys.path fix above
    EnforcementLevel,
    Policy,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError  # noqa: E402

from policy.enforcement import enforcement_level, environment_of, pack_config, params_for  # noqa: E402
from policy.rules import ALL_RULES  # noqa: E402
from policy.rules.base import Params, ResourceRule, Rule, StackResource, StackRule  # noqa: E402

PACK_NAME = "scalepayments-pci-dss"


def _framework(rule: Rule) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name="PCI DSS", version="4.0", reference=f"Req {rule.requirement}")


def _config_schema(rule: Rule, params: Params) -> PolicyConfigSchema | None:
    """The rule's thresholds as configurable properties (defaults: the environment's values)."""
    if not rule.params:
        return None
    properties = {
        key: {"type": "boolean" if isinstance(value, bool) else "integer", "default": value}
        for key, value in params.to_config(rule.params).items()
    }
    return PolicyConfigSchema(properties)


def _resource_validator(rule: ResourceRule, params: Params) -> Any:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        effective = params.with_config(args.get_config() or {})
        for message in rule.check(args.resource_type, args.props, effective):
            report_violation(message, None)

    return validate


def _value(props: Mapping[str, Any], key: str) -> Any:
    try:
        return props.get(key)
    except UnknownValueError:  # unknown during preview: cannot be used to link resources
        return None


def to_stack_resources(resources: Sequence[PolicyResource]) -> list[StackResource]:
    """CrossGuard resources as :class:`StackResource`, ids inferred from property dependencies.

    The engine does not send provider ids, but a property such as ``subnetId`` that depends on
    exactly one resource holds that resource's id.
    """
    ids: dict[str, str] = {}
    for resource in resources:
        for prop, deps in resource.property_dependencies.items():
            value = _value(resource.props, prop)
            if len(deps) != 1:
                continue
            if prop.endswith("Id") and isinstance(value, str):
                ids.setdefault(deps[0].urn, value)
            elif prop.endswith("Ids") and isinstance(value, Sequence) and len(value) == 1 and isinstance(value[0], str):
                ids.setdefault(deps[0].urn, value[0])
    return [StackResource(r.resource_type, r.name, r.props, r.urn, ids.get(r.urn) or _value(r.props, "id")) for r in resources]


def _stack_validator(rule: StackRule, params: Params) -> Any:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        effective = params.with_config(args.get_config() or {})
        for violation in rule.check(to_stack_resources(args.resources), effective):
            report_violation(violation.message, violation.urn or None)

    return validate


def build_policies(env: str) -> list[Policy]:
    """One CrossGuard policy per rule, with the environment's enforcement level and thresholds."""
    params = params_for(env)
    policies: list[Policy] = []
    for rule in ALL_RULES:
        common: dict[str, Any] = {
            "enforcement_level": EnforcementLevel(enforcement_level(env, rule.name)),
            "config_schema": _config_schema(rule, params),
            "severity": Severity.HIGH,
            "framework": _framework(rule),
            "tags": ["pci-dss", rule.domain],
        }
        if isinstance(rule, ResourceRule):
            policies.append(ResourceValidationPolicy(rule.name, rule.description, _resource_validator(rule, params), **common))
        else:
            policies.append(StackValidationPolicy(rule.name, rule.description, _stack_validator(rule, params), **common))
    return policies


def initial_config(env: str) -> dict[str, EnforcementLevel | dict[str, Any]]:
    """The pack's built-in config for ``env`` (the same content as ``policy/config/<env>.json``)."""
    config: dict[str, EnforcementLevel | dict[str, Any]] = {}
    for name, entry in pack_config(env).items():
        config[name] = {**entry, "enforcementLevel": EnforcementLevel(entry["enforcementLevel"])}
    return config


def pack_arguments(env: str) -> dict[str, Any]:
    """Keyword arguments of :class:`PolicyPack` for ``env``."""
    return {
        "name": PACK_NAME,
        "policies": build_policies(env),
        "enforcement_level": EnforcementLevel.MANDATORY,
        "initial_config": initial_config(env),
        "description": f"PCI DSS 4.0 guardrails for the ScalePayments platform ({env} profile)",
        "provider": "aws",
        "tags": ["pci-dss", "aws"],
    }


def main() -> None:
    """Serve the pack for the stack the Pulumi CLI is previewing."""
    PolicyPack(**pack_arguments(environment_of(os.environ.get("PULUMI_STACK", ""))))


if __name__ == "__main__":
    main()
