"""The standard tag set every taggable resource carries."""

from __future__ import annotations

from collections.abc import Mapping

MANAGED_BY = "pulumi"


def standard_tags(
    *,
    environment: str,
    component: str,
    cost_center: str,
    compliance: str,
    project: str = "ScalePayments",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the tags required on every taggable resource.

    No timestamps: a tag that changes on every run would make every ``pulumi up`` a diff.
    """
    tags = {
        "Project": project,
        "Environment": environment,
        "Component": component,
        "ManagedBy": MANAGED_BY,
        "CostCenter": cost_center,
        "Compliance": compliance,
    }
    if extra:
        tags.update(extra)
    return tags


def with_name(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """Return ``tags`` plus a ``Name`` tag (required on every EC2-family resource)."""
    return {**tags, "Name": name}
