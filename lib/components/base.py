"""What every component shares: naming and tagging context, and child resource options."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.naming import NameKind, Namer
from lib.tags import standard_tags, with_name


@dataclass(frozen=True)
class Context:
    """Naming and tagging for one stack; passed to every component."""

    namer: Namer
    environment: str
    cost_center: str
    compliance: str
    region: str

    def name(self, component: str, kind: NameKind = NameKind.GENERIC) -> str:
        """Physical name ``scalepay-<component>-<environment>[-<suffix>]``."""
        return self.namer.name(component, kind)

    def tags(self, component: str, name: str | None = None) -> dict[str, str]:
        """Standard tags for ``component``; with ``name`` also the EC2-family Name tag."""
        tags = standard_tags(
            environment=self.environment,
            component=component,
            cost_center=self.cost_center,
            compliance=self.compliance,
        )
        return with_name(tags, name) if name else tags


def child_opts(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions:
    """Resource options for a component's child: parented to the component, merged with ``opts``."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts)


def guarded_opts(parent: pulumi.Resource, *, protect: bool, retain_on_delete: bool, **extra: object) -> pulumi.ResourceOptions:
    """Child options for data stores and keys: ``protect``/``retain_on_delete`` as the environment asks."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=retain_on_delete, **extra)  # type: ignore[arg-type]
