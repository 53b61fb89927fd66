"""Shared reading of the resource graph: components, physical names, references, subnets and settings.

:func:`load` evaluates a stack exactly as the local deployment does (``tools.stack_config.offline_config``:
Pulumi.yaml defaults, ``Pulumi.<stack>.yaml``, the per-run ``CONFIG`` overrides and the local stand-ins
staging and prod need offline) and wraps the :class:`~tools.evaluate.Evaluation` in a :class:`Graph`.

Under the mock runtime every resource's state carries an ``id`` and an ``arn``; the program passes those
(or a resource's physical name) to the resources that refer to it, so a :class:`Graph` can follow
references generically: a subnet group's subnets, an ECS service's target group, a security-group rule's
groups. Nothing here names a component of ``lib/``: a new resource type shows up in every view.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lib.config import CONFIG_NAMESPACE, ConfigError, EnvironmentConfig, build
from tools.evaluate import Evaluation, Registration, evaluate
from tools.stack_config import StackConfigError, offline_config, parse_overrides
from tools.stack_config import load as load_stack_config

#: Inputs that hold a resource's own physical name, in the order they are tried. ``identifier`` comes
#: before ``clusterIdentifier`` because a cluster instance also names (by reference) its cluster.
NAME_KEYS: tuple[str, ...] = (
    "identifier",
    "name",
    "clusterIdentifier",
    "replicationGroupId",
    "userId",
    "userGroupId",
    "bucket",
    "family",
    "policyName",
    "dashboardName",
    "alarmName",
    "resourceId",
)

#: Inputs by which a resource without a name of its own attaches to another one (a bucket policy to its
#: bucket, a route to its route table): the preview shows the physical name of what it is attached to.
ATTACHMENT_KEYS: tuple[str, ...] = (
    "bucket",
    "role",
    "repository",
    "targetKeyId",
    "detectorId",
    "topic",
    "routeTableId",
    "securityGroupId",
    "subnetId",
    "clusterName",
    "listenerArn",
    "loadBalancerArn",
    "resourceArn",
    "vpcId",
)

#: Inputs that name a subnet group instead of listing subnets (RDS and ElastiCache).
SUBNET_GROUP_KEYS: dict[str, str] = {
    "dbSubnetGroupName": "aws:rds/subnetGroup:SubnetGroup",
    "subnetGroupName": "aws:elasticache/subnetGroup:SubnetGroup",
}

SUBNET = "aws:ec2/subnet:Subnet"


@dataclass(frozen=True)
class PhysicalName:
    """What a resource is called in AWS, and where that name comes from.

    ``source`` is ``input <key>`` (set by the program), ``Name tag`` (AWS assigns the id; the console
    shows the tag), ``on <key>`` (an attachment: the name is that of the resource it attaches to) or
    ``assigned by AWS`` (nothing the program sets).
    """

    value: str | None
    source: str

    def __str__(self) -> str:
        if self.value is None:
            return f"({self.source})"
        if self.source.startswith("on "):
            return f"on {self.value}"
        if self.source == "Name tag":
            return f"{self.value} (Name tag)"
        return self.value


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a nested input value, with its dotted path (``networkConfiguration.subnets[0]``)."""
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from walk(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


def get_in(data: Any, path: str, default: Any = None) -> Any:
    """``data["a"][0]["b"]`` for ``"a[0].b"``; ``default`` when a step is missing."""
    current: Any = data
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part.strip("[]"))
            if not isinstance(current, list | tuple) or index >= len(current):
                return default
            current = current[index]
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return default
    return current


def number(value: Any, default: float = 0.0) -> float:
    """A numeric input as a float (the engine hands numbers over as floats, task sizes as strings)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class Graph:
    """One evaluation of the program, read as a graph (registrations sorted by URN for stable output)."""

    def __init__(self, evaluation: Evaluation, config: Mapping[str, str], stand_ins: Sequence[str] = ()) -> None:
        self.evaluation = evaluation
        #: The full configuration the program was evaluated with (``namespace:key`` -> value).
        self.config = dict(config)
        #: The keys of ``config`` that are local stand-ins, not stack configuration (see ``offline_config``).
        self.stand_ins: frozenset[str] = frozenset(stand_ins)
        self.stack = evaluation.stack
        self.registrations: list[Registration] = sorted(evaluation.registrations, key=lambda r: r.urn)
        self.by_urn: dict[str, Registration] = {r.urn: r for r in self.registrations}
        #: Real cloud resources (custom resources), sorted by URN.
        self.resources: list[Registration] = [r for r in self.registrations if r.custom]
        #: ComponentResources, the stack's own component (TapStack) included, sorted by URN.
        self.components: list[Registration] = [r for r in self.registrations if not r.custom]
        self._by_ref: dict[str, Registration] = {}
        for registration in self.resources:
            for key in ("id", "arn"):
                value = registration.state.get(key)
                if isinstance(value, str) and value:
                    self._by_ref.setdefault(value, registration)
        self._by_name: dict[str, list[Registration]] = {}
        for registration in self.resources:
            for key in NAME_KEYS:
                value = registration.inputs.get(key)
                if isinstance(value, str) and value and value not in self._by_ref:
                    self._by_name.setdefault(value, []).append(registration)

    # --- the component tree ---------------------------------------------------------------------

    @property
    def environment(self) -> str:
        """The environment preset the stack runs (``dev``, ``staging``, ``prod``): exported, configured or the stack's name."""
        found = self.evaluation.outputs.get("environment") or self.config.get(f"{CONFIG_NAMESPACE}:environment")
        return str(found or self.stack.split("-")[0])

    @property
    def region(self) -> str:
        """The AWS region the stack deploys to."""
        return self.config.get("aws:region", "us-east-1")

    def parent_component(self, registration: Registration) -> Registration | None:
        """The nearest ComponentResource above ``registration`` (None for the top component)."""
        parent = self.by_urn.get(registration.parent)
        while parent is not None and parent.custom:
            parent = self.by_urn.get(parent.parent)
        return parent

    def component_name(self, registration: Registration) -> str:
        """Logical name of the component ``registration`` belongs to (``(stack)`` when none)."""
        if not registration.custom:
            return registration.name
        component = self.parent_component(registration)
        return component.name if component is not None else "(stack)"

    def component_depth(self, component: Registration) -> int:
        """0 for the top component, 1 for its children..."""
        depth = 0
        parent = self.parent_component(component)
        while parent is not None:
            depth += 1
            parent = self.parent_component(parent)
        return depth

    def members(self, component: Registration) -> list[Registration]:
        """The custom resources whose nearest component is ``component`` (sorted by type, then name)."""
        found = [r for r in self.resources if self.parent_component(r) is component]
        return sorted(found, key=lambda r: (r.type, r.name))

    def component_tree(self) -> list[Registration]:
        """Components depth-first from the top, siblings by logical name: a stable reading order."""
        children: dict[str, list[Registration]] = {}
        for component in self.components:
            parent = self.parent_component(component)
            children.setdefault(parent.urn if parent else "", []).append(component)
        ordered: list[Registration] = []

        def visit(urn: str) -> None:
            for child in sorted(children.get(urn, []), key=lambda c: c.name):
                ordered.append(child)
                visit(child.urn)

        visit("")
        return ordered

    def of_type(self, type_: str) -> list[Registration]:
        """Resources of one type token, sorted by logical name."""
        return sorted((r for r in self.resources if r.type == type_), key=lambda r: r.name)

    # --- references -------------------------------------------------------------------------------

    def resolve(self, value: Any, type_: str | None = None) -> Registration | None:
        """The resource an input value refers to: by id or ARN, or (with ``type_``) by physical name."""
        if not isinstance(value, str) or not value:
            return None
        found = self._by_ref.get(value)
        if found is not None and (type_ is None or found.type == type_):
            return found
        if type_ is not None:
            for candidate in self._by_name.get(value, []):
                if candidate.type == type_:
                    return candidate
        return None

    def references(self, registration: Registration) -> list[tuple[str, Registration]]:
        """``(input path, resource)`` for every input of ``registration`` that is another resource's id or ARN."""
        found = []
        for path, value in walk(registration.inputs):
            target = self.resolve(value)
            if target is not None and target is not registration:
                found.append((path, target))
        return found

    @cached_property
    def _referrers(self) -> dict[str, list[tuple[Registration, str]]]:
        index: dict[str, list[tuple[Registration, str]]] = {}
        for registration in self.resources:
            for path, target in self.references(registration):
                index.setdefault(target.urn, []).append((registration, path))
        return index

    def referrers(self, target: Registration, type_: str | None = None) -> list[tuple[Registration, str]]:
        """``(resource, input path)`` for every resource that refers to ``target`` by id or ARN."""
        found = self._referrers.get(target.urn, [])
        return [(r, p) for r, p in found if type_ is None or r.type == type_]

    def refers_to(self, registration: Registration, type_: str) -> list[Registration]:
        """The resources of ``type_`` that ``registration`` refers to, in input order, without repeats."""
        found: list[Registration] = []
        for _, target in self.references(registration):
            if target.type == type_ and target not in found:
                found.append(target)
        return found

    # --- names, subnets, tiers ----------------------------------------------------------------------

    def physical_name(self, registration: Registration) -> PhysicalName:
        """The one place that knows where a resource's AWS name lives (see :class:`PhysicalName`)."""
        inputs = registration.inputs
        for key in NAME_KEYS:
            value = inputs.get(key)
            if isinstance(value, str) and value and self._by_ref.get(value) is None:
                return PhysicalName(value, f"input {key}")
        tag = (inputs.get("tags") or {}).get("Name")
        if isinstance(tag, str) and tag:
            return PhysicalName(tag, "Name tag")
        for key in ATTACHMENT_KEYS:
            value = inputs.get(key)
            target = self.resolve(value) or (self._by_name.get(value, [None])[0] if isinstance(value, str) else None)
            if target is not None:
                name = self.physical_name(target)
                return PhysicalName(name.value or target.name, f"on {key}")
            if isinstance(value, str) and value:
                return PhysicalName(value, f"on {key}")
        return PhysicalName(None, "assigned by AWS")

    def subnets_of(self, registration: Registration) -> list[Registration]:
        """The subnets a resource is placed in: listed directly, or through its RDS/ElastiCache subnet group."""
        subnets = self.refers_to(registration, SUBNET)
        for key, group_type in SUBNET_GROUP_KEYS.items():
            group = self.resolve(registration.inputs.get(key), group_type)
            if group is not None:
                subnets += [s for s in self.refers_to(group, SUBNET) if s not in subnets]
        return subnets

    @staticmethod
    def tier_of(subnet: Registration) -> str:
        """A subnet's tier, from the ``Tier`` tag the network component sets (``public``, ``private``...)."""
        return str((subnet.inputs.get("tags") or {}).get("Tier") or "untiered")

    def tier_of_resource(self, registration: Registration) -> str | None:
        """The tier of the subnets a resource is placed in (None when it is not in a subnet)."""
        tiers = sorted({self.tier_of(s) for s in self.subnets_of(registration)})
        return tiers[0] if len(tiers) == 1 else None

    # --- settings -----------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> EnvironmentConfig:
        """The validated settings the program resolved for this stack (preset + stack configuration)."""
        return environment_settings(self.stack, self.config)


def plain_settings(config: Mapping[str, str]) -> dict[str, str]:
    """The project's config values without their namespace (``dbInstanceClass``), as ``lib.config`` reads them."""
    prefix = f"{CONFIG_NAMESPACE}:"
    return {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}


def environment_settings(stack: str, config: Mapping[str, str]) -> EnvironmentConfig:
    """``lib.config.build`` for a full config (with namespaces), as ``tap.py`` resolves it."""
    return build(stack, plain_settings(config), config.get("aws:region"))


def load(stack: str, overrides: Mapping[str, str] | None = None) -> Graph:
    """Evaluate ``stack`` with its configuration (+ per-run ``overrides``, full keys) and return the graph."""
    config = offline_config(stack, overrides)
    stand_ins = set(config) - set(load_stack_config(stack, overrides))
    return Graph(evaluate(stack, config), config, sorted(stand_ins))


# --- command-line plumbing shared by the four commands ---------------------------------------------


def add_config_argument(parser: argparse.ArgumentParser, flag: str = "--config", help_suffix: str = "") -> None:
    """``--config minTasks=3 --config maxTasks=6`` (or one quoted, space-separated list): per-run overrides.

    The same form as ``tools.deploy``: the Makefile turns ``CONFIG="minTasks=3 maxTasks=6"`` into one
    ``--config`` per pair.
    """
    parser.add_argument(
        flag,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="per-run config override, repeatable (keys without namespace belong to scalepayments)" + help_suffix,
    )


def overrides_from(values: Sequence[str]) -> dict[str, str]:
    """The parsed ``--config`` values (full keys); each value may hold several space-separated pairs."""
    return parse_overrides([pair for value in values for pair in value.split()])


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main``; a configuration error becomes one line on stderr and exit status 2."""
    try:
        return main(argv)
    except (ConfigError, StackConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
