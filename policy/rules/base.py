"""Building blocks shared by every rule: the rule records and their parameters (the small readers of
property values are in :mod:`policy.rules.readers`).

A rule is a plain function. Resource rules take ``(resource_type, props, params)`` where ``props``
are the camelCase Pulumi input properties the AWS provider receives (JSON documents such as IAM
policies or container definitions arrive as JSON strings) and return the violation messages.
Stack rules take the list of :class:`StackResource` and return :class:`Violation` records. Every
message starts with ``PCI DSS 4.0 Req <id>:`` so a finding names the control it serves.

Nothing here imports Pulumi or the AWS SDK: the same functions run in the CrossGuard pack, in
``python -m tools.compliance`` and in plain unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Params:
    """Thresholds that differ between environments (the rest of a rule is the same everywhere).

    The defaults are the strictest (production) values: an unknown stack fails closed.
    """

    #: PCI DSS 10.5.1: twelve months of audit log history.
    min_log_retention_days: int = 365
    #: Aurora automated backups kept at least this many days.
    min_backup_retention_days: int = 7
    #: Aurora clusters must have deletion protection on.
    require_deletion_protection: bool = True
    #: Internet-facing application load balancers must have a WAF web ACL.
    require_waf: bool = True

    def to_config(self, names: Sequence[str]) -> dict[str, Any]:
        """The named fields as CrossGuard policy config properties (camelCase)."""
        return {_camel(name): getattr(self, name) for name in names}

    def with_config(self, config: Mapping[str, Any]) -> Params:
        """These params overridden by CrossGuard policy config properties (camelCase keys)."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            key = _camel(f.name)
            if key in config and config[key] is not None:
                default = getattr(self, f.name)
                changes[f.name] = bool(config[key]) if isinstance(default, bool) else int(config[key])
        return Params(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


#: The strictest parameters (production).
DEFAULT_PARAMS = Params()


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class StackResource:
    """One resource as a stack rule sees it.

    ``id`` is the provider id when known (the mock runtime knows it; CrossGuard infers it from
    property dependencies). References between resources are matched on ids, ARNs and names.
    """

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    id: str | None = None

    def keys(self) -> set[str]:
        """Every value another resource may use to refer to this one (id, ARN, physical name)."""
        found = {self.id} if self.id else set()
        for prop in ("id", "arn", "name", "bucket"):
            value = self.props.get(prop)
            if isinstance(value, str) and value:
                found.add(value)
        return found


@dataclass(frozen=True)
class Violation:
    """One stack-rule finding, attached to the resource it is about."""

    resource: str
    message: str
    urn: str = ""


ResourceCheck = Callable[[str, Mapping[str, Any], Params], list[str]]
StackCheck = Callable[[Sequence[StackResource], Params], list[Violation]]


@dataclass(frozen=True)
class RuleInfo:
    """What every rule declares: its name and domain, the PCI DSS requirement it serves and what it checks."""

    name: str
    domain: str
    requirement: str
    description: str
    resource_types: tuple[str, ...]


@dataclass(frozen=True)
class ResourceRule(RuleInfo):
    """A policy evaluated on each resource of ``resource_types`` on its own."""

    check: ResourceCheck
    #: Params fields the rule reads; exposed as CrossGuard policy config.
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackRule(RuleInfo):
    """A policy over the whole stack (relations between resources); counts ``resource_types`` as checked."""

    check: StackCheck
    #: Params fields the rule reads; exposed as CrossGuard policy config.
    params: tuple[str, ...] = ()


Rule = ResourceRule | StackRule


def pci(requirement: str, text: str) -> str:
    """A violation message naming the PCI DSS 4.0 requirement it serves."""
    return f"PCI DSS 4.0 Req {requirement}: {text}"
