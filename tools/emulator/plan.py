"""What a deployment would change in a stack that is already deployed: the local ``pulumi preview``.

The program runs again under :class:`PlanMocks`, which answers every resource the record knows with
its recorded id and state (touching no emulator), and every new one with a placeholder. Comparing
each registration's inputs with the recorded inputs gives Pulumi-style steps:

    + create    a resource the record does not have
    ~ update    same resource, some inputs differ
    +- replace  an identifying input differs (a name, an identifier, an engine): AWS cannot change it in place
    - delete    a recorded resource the program no longer registers

Because recorded state feeds the downstream inputs, an unchanged program plans zero changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from tools.emulator.engine import normalize
from tools.emulator.state import StackRecord, data_source_key
from tools.evaluate import Evaluation, FakeAws

CREATE, UPDATE, REPLACE, DELETE = "create", "update", "replace", "delete"
SYMBOLS = {CREATE: "+", UPDATE: "~", REPLACE: "+-", DELETE: "-"}

#: Inputs AWS cannot change in place (the provider replaces the resource when they change).
IDENTIFYING_INPUTS: frozenset[str] = frozenset(
    {
        "name",
        "bucket",
        "clusterIdentifier",
        "identifier",
        "replicationGroupId",
        "userId",
        "userGroupId",
        "family",
        "engine",
        "cidrBlock",
        "vpcId",
        "availabilityZone",
        "keySpec",
        "databaseName",
        "masterUsername",
        "storageEncrypted",
        "kmsKeyId",
        "scope",
        "loadBalancerType",
        "internal",
        "targetType",
        "protocol",
    }
)


@dataclass(frozen=True)
class Step:
    """One change: what, on which resource, and which inputs differ."""

    op: str
    type: str
    name: str
    urn: str
    changed: tuple[str, ...] = ()

    def line(self) -> str:
        """``~ update  aws:ecs/service:Service payment-service (desiredCount)``."""
        detail = f" ({', '.join(self.changed)})" if self.changed else ""
        return f"{SYMBOLS[self.op]:>2} {self.op:<8} {self.type} {self.name}{detail}"


@dataclass
class Plan:
    """The steps a deployment of the program would take against a record."""

    steps: list[Step] = field(default_factory=list)
    evaluation: Evaluation | None = None

    @property
    def changes(self) -> int:
        """How many resources would change."""
        return len(self.steps)

    def summary(self) -> str:
        """``3 changes: 1 to create, 2 to update`` or ``0 changes``."""
        if not self.steps:
            return "0 changes"
        counts = {op: sum(1 for s in self.steps if s.op == op) for op in (CREATE, UPDATE, REPLACE, DELETE)}
        parts = [f"{n} to {op}" for op, n in counts.items() if n]
        return f"{self.changes} change{'s' if self.changes != 1 else ''}: {', '.join(parts)}"


class PlanMocks(FakeAws):
    """Mocks that answer from a record: known resources get their recorded id and state, new ones a placeholder."""

    def __init__(self, record: StackRecord) -> None:
        super().__init__(region=record.region, account_id=record.account_id)
        self._known = {(r.type, r.name): r for r in record.resources}
        self._answers = record.data_sources

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """The recorded resource, or FakeAws's placeholder for a new one."""
        if not args.custom:
            return "", {}
        found = self._known.get((args.typ, args.name))
        if found is not None:
            return found.id, dict(found.state)
        return super().new_resource(args)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Data sources answer as they did at deployment time (recorded), else as FakeAws does."""
        answer = self._answers.get(data_source_key(args.token, normalize(dict(args.args))))
        if answer is not None:
            return dict(answer), []
        return super().call(args)


def _comparable(inputs: Mapping[str, Any]) -> dict[str, Any]:
    # Secrets arrive wrapped and numbers as floats on one side: compare what the provider would receive.
    value = normalize(dict(inputs))
    return {k: v for k, v in value.items() if not k.startswith("__")}


def diff(record: StackRecord, evaluation: Evaluation) -> Plan:
    """The steps that take ``record`` to what ``evaluation`` registered."""
    recorded = record.by_urn()
    steps: list[Step] = []
    seen: set[str] = set()
    for registration in evaluation.custom():
        seen.add(registration.urn)
        old = recorded.get(registration.urn)
        if old is None:
            steps.append(Step(CREATE, registration.type, registration.name, registration.urn))
            continue
        before, after = _comparable(old.inputs), _comparable(registration.inputs)
        # As Pulumi does: an input the program says to ignore (desiredCount, owned by autoscaling) is no change.
        ignored = set(registration.ignore_changes)
        changed = tuple(sorted(k for k in set(before) | set(after) if k not in ignored and before.get(k) != after.get(k)))
        if changed:
            op = REPLACE if set(changed) & IDENTIFYING_INPUTS else UPDATE
            steps.append(Step(op, registration.type, registration.name, registration.urn, changed))
    for old in record.resources:
        if old.urn not in seen:
            steps.append(Step(DELETE, old.type, old.name, old.urn))
    return Plan(steps, evaluation)
