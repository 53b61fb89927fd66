"""Every PCI DSS guardrail of the ScalePayments platform, grouped by domain."""

from __future__ import annotations

from policy.rules import compute, data, edge, identity, logging, network
from policy.rules.base import Rule

#: All rules, in report order (network, data, compute, edge, logging, identity).
ALL_RULES: tuple[Rule, ...] = (
    *network.RULES,
    *data.RULES,
    *compute.RULES,
    *edge.RULES,
    *logging.RULES,
    *identity.RULES,
)

__all__ = ["ALL_RULES"]
