"""``make diff A=staging B=prod [CONFIG_A=...] [CONFIG_B=...]``: what differs between two stacks, as Markdown.

Both stacks are evaluated offline with their configuration (as :mod:`tools.insight.preview` does), then
compared on three levels, each a table a reviewer can paste into a pull request:

Settings
    every setting whose resolved value differs: the declared settings by their config key
    (``dbInstanceClass``, ``apiCpu``, ``aws:region``, from ``lib.config.OVERRIDES``, ``SERVICE_OVERRIDES``
    and ``STACK_SETTINGS``), then the preset-only values (alarm thresholds, cooldowns...) by their field
    path in :class:`lib.config.EnvironmentConfig` (``observability.cpu_alarm_percent``). A value set by the
    stack's configuration rather than the preset table is marked *(config)*; an offline stand-in
    (certificate, alarm subscriber) is marked *(stand-in)*.
Resources
    the resource types whose count differs (Aurora instances, NAT gateways, subnets...), and the resources
    only one side registers, matched by type and logical name.
Key properties
    for resources both sides register: the inputs in :data:`KEY_PROPERTIES` (instance classes, node types
    and counts, task counts and sizes, autoscaling bounds, retention periods, deletion protection...) and,
    for every resource, Pulumi ``protect`` and ``retainOnDelete``. Names, tags and policy documents are not
    key properties: they differ between any two environments by construction.

    python -m tools.insight.diff --a staging --b prod
    python -m tools.insight.diff --a prod --b prod --config-b "dbInstanceCount=4"   # what would a change do?
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lib.config import OVERRIDES, SECTIONS, SERVICE_OVERRIDES, STACK_SETTINGS, EnvironmentConfig
from lib.settings import METADATA_KEY
from tools.evaluate import Registration
from tools.insight.graph import Graph, add_config_argument, get_in, load, overrides_from, plain_settings, run_cli

#: The inputs compared per resource type, besides ``protect`` and ``retainOnDelete`` (compared for all).
#: ``#path`` compares the length of a list (the number of subnets of a load balancer, of WAF rules).
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpcEndpointType", "#subnetIds", "#routeTableIds"),
    "aws:kms/key:Key": ("deletionWindowInDays", "enableKeyRotation"),
    "aws:rds/cluster:Cluster": (
        "engineVersion",
        "backupRetentionPeriod",
        "deletionProtection",
        "skipFinalSnapshot",
        "storageEncrypted",
        "iamDatabaseAuthenticationEnabled",
    ),
    "aws:rds/clusterInstance:ClusterInstance": (
        "instanceClass",
        "availabilityZone",
        "performanceInsightsEnabled",
        "performanceInsightsRetentionPeriod",
        "monitoringInterval",
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "nodeType",
        "numCacheClusters",
        "automaticFailoverEnabled",
        "multiAzEnabled",
        "snapshotRetentionLimit",
        "engineVersion",
    ),
    "aws:ecs/service:Service": ("desiredCount", "#networkConfiguration.subnets"),
    "aws:ecs/taskDefinition:TaskDefinition": ("cpu", "memory"),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity"),
    "aws:appautoscaling/policy:Policy": ("targetTrackingScalingPolicyConfiguration.targetValue",),
    "aws:lb/loadBalancer:LoadBalancer": ("enableDeletionProtection", "#subnets"),
    "aws:lb/listener:Listener": ("port", "sslPolicy", "certificateArn"),
    "aws:cloudwatch/logGroup:LogGroup": ("retentionInDays",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("threshold", "evaluationPeriods"),
    "aws:wafv2/webAcl:WebAcl": ("#rules",),
    "aws:cloudtrail/trail:Trail": ("#insightSelectors", "enableLogFileValidation"),
    "aws:s3/bucket:Bucket": ("forceDestroy",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("rules[0].expiration.days",),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": ("rule.defaultRetention.days",),
    "aws:ecr/repository:Repository": ("forceDelete", "imageTagMutability"),
    "aws:guardduty/detector:Detector": ("findingPublishingFrequency",),
}

#: Top-level fields of EnvironmentConfig that are not settings (identity, derived helpers).
_NOT_SETTINGS = frozenset({"environment", "suffix", "region", "namer", *SECTIONS})


@dataclass(frozen=True)
class SettingRow:
    """One setting whose value differs; ``kind`` is ``config`` (a config key) or ``preset`` (a field path)."""

    key: str
    kind: str
    a: str
    b: str


@dataclass(frozen=True)
class ResourceRow:
    """A resource only one side registers."""

    component: str
    type: str
    name: str
    physical_name: str


@dataclass(frozen=True)
class ChangeRow:
    """A key property of a resource both sides register, with its two values."""

    component: str
    type: str
    name: str
    property: str
    a: str
    b: str


@dataclass
class Difference:
    """Everything that differs between stack ``a`` and stack ``b``."""

    a: str
    b: str
    settings: list[SettingRow] = field(default_factory=list)
    counts: list[tuple[str, int, int]] = field(default_factory=list)
    only_in_a: list[ResourceRow] = field(default_factory=list)
    only_in_b: list[ResourceRow] = field(default_factory=list)
    changed: list[ChangeRow] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when the two stacks resolve the same settings and register the same resources alike."""
        return not (self.settings or self.counts or self.only_in_a or self.only_in_b or self.changed)


# --- settings ---------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A setting or property value as a reviewer reads it (``true``, ``2``, ``1.5``, ``unset``)."""
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value) if value else "none"
    return str(value)


def resolved_settings(cfg: EnvironmentConfig) -> dict[str, tuple[str, Any]]:
    """Every setting of ``cfg``: ``key -> (kind, value)``; declared settings by config key, the rest by field path."""
    # The stack settings choose the preset; EnvironmentConfig keeps them under other names.
    chosen = {"environment": cfg.environment, "environmentSuffix": cfg.suffix}
    found: dict[str, tuple[str, Any]] = {s.key: ("config", chosen.get(s.key)) for s in STACK_SETTINGS}
    found["aws:region"] = ("config", cfg.region)
    for declared in OVERRIDES:
        holder = getattr(cfg, declared.section) if declared.section else cfg
        found[declared.key] = ("config", getattr(holder, declared.field_name))
    for service in cfg.compute.services:
        for declared in SERVICE_OVERRIDES:
            found[f"{service.name}{declared.key}"] = ("config", getattr(service, declared.field_name))
    # Preset-only values: fields without a setting declaration, named by their path.
    for item in dataclasses.fields(cfg):
        if item.name not in _NOT_SETTINGS and METADATA_KEY not in item.metadata:
            found[item.name] = ("preset", getattr(cfg, item.name))
    for section in SECTIONS:
        holder = getattr(cfg, section)
        for item in dataclasses.fields(holder):
            if METADATA_KEY in item.metadata or item.name == "services":
                continue
            found[f"{section}.{item.name}"] = ("preset", getattr(holder, item.name))
    for service in cfg.compute.services:
        for item in dataclasses.fields(service):
            if METADATA_KEY not in item.metadata:
                found[f"compute.services[{service.name}].{item.name}"] = ("preset", getattr(service, item.name))
    return found


def _origin(graph: Graph, key: str) -> str:
    full = key if ":" in key else f"scalepayments:{key}"
    if full in graph.stand_ins:
        return " *(stand-in)*"
    if key in plain_settings(graph.config) or (":" in key and key in graph.config and key != "aws:region"):
        return " *(config)*"
    return ""


def compare_settings(a: Graph, b: Graph) -> list[SettingRow]:
    """The settings whose resolved values differ, declared settings first, each group in declaration order."""
    left, right = resolved_settings(a.settings), resolved_settings(b.settings)
    rows = []
    for key in list(left) + [k for k in right if k not in left]:
        kind, value_a = left.get(key, ("preset", None))
        _, value_b = right.get(key, (kind, None))
        if format_value(value_a) != format_value(value_b):
            rows.append(SettingRow(key, kind, format_value(value_a) + _origin(a, key), format_value(value_b) + _origin(b, key)))
    return sorted(rows, key=lambda r: r.kind)  # stable: config keys, then preset values


# --- resources --------------------------------------------------------------------------------------


def key_property(registration: Registration, path: str) -> Any:
    """The value of one key property (``#path``: the length of the list at ``path``)."""
    if path.startswith("#"):
        value = get_in(registration.inputs, path[1:])
        return len(value) if isinstance(value, list | tuple) else None
    return get_in(registration.inputs, path)


def _property_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "—" if value is None else format_value(value)


def compare_resources(a: Graph, b: Graph, diff: Difference) -> None:
    """Fill the resource parts of ``diff``: differing counts, one-sided resources, changed key properties."""
    count_a, count_b = Counter(r.type for r in a.resources), Counter(r.type for r in b.resources)
    diff.counts = [(t, count_a[t], count_b[t]) for t in sorted(set(count_a) | set(count_b)) if count_a[t] != count_b[t]]
    left = {(r.type, r.name): r for r in a.resources}
    right = {(r.type, r.name): r for r in b.resources}

    def row(graph: Graph, registration: Registration) -> ResourceRow:
        name = graph.physical_name(registration)
        return ResourceRow(graph.component_name(registration), registration.type, registration.name, str(name))

    diff.only_in_a = sorted((row(a, r) for k, r in left.items() if k not in right), key=lambda r: (r.component, r.type, r.name))
    diff.only_in_b = sorted((row(b, r) for k, r in right.items() if k not in left), key=lambda r: (r.component, r.type, r.name))
    changes = []
    for key in sorted(set(left) & set(right)):
        ra, rb = left[key], right[key]
        compared: list[tuple[str, Any, Any]] = [
            ("protect", ra.protect, rb.protect),
            ("retainOnDelete", ra.retain_on_delete, rb.retain_on_delete),
        ]
        compared += [(p, key_property(ra, p), key_property(rb, p)) for p in KEY_PROPERTIES.get(ra.type, ())]
        for prop, value_a, value_b in compared:
            shown_a, shown_b = _property_value(value_a), _property_value(value_b)
            if shown_a != shown_b:
                changes.append(ChangeRow(a.component_name(ra), ra.type, ra.name, prop, shown_a, shown_b))
    diff.changed = sorted(changes, key=lambda c: (c.component, c.type, c.name))


def compare(a: Graph, b: Graph) -> Difference:
    """What differs between the stacks of ``a`` and ``b`` (settings, resource counts, resources, key properties)."""
    diff = Difference(a=a.stack, b=b.stack, settings=compare_settings(a, b))
    compare_resources(a, b, diff)
    return diff


# --- output -----------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(diff: Difference, title_a: str = "", title_b: str = "") -> str:
    """The difference as Markdown tables (what a reviewer pastes into a pull request)."""
    a, b = title_a or diff.a, title_b or diff.b
    lines = [f"## `{a}` → `{b}`", ""]
    if diff.is_empty():
        lines.append("No differences: the same settings, the same resources and the same key properties.")
        return "\n".join(lines) + "\n"
    config_rows = [r for r in diff.settings if r.kind == "config"]
    preset_rows = [r for r in diff.settings if r.kind == "preset"]
    lines += [f"### Settings that differ ({len(diff.settings)})", ""]
    if config_rows:
        lines += [*_table(["setting", a, b], [(f"`{r.key}`", r.a, r.b) for r in config_rows]), ""]
    if preset_rows:
        lines += ["Preset-only values (no config key; field paths of `lib.config.EnvironmentConfig`):", ""]
        lines += [*_table(["preset value", a, b], [(f"`{r.key}`", r.a, r.b) for r in preset_rows]), ""]
    if not diff.settings:
        lines += ["None.", ""]
    lines += [f"### Resource counts that differ ({len(diff.counts)})", ""]
    lines += (
        _table(["resource type", a, b], [(f"`{t}`", str(x), str(y)) for t, x, y in diff.counts]) if diff.counts else ["None."]
    )
    lines.append("")
    for label, rows in ((f"only in `{b}` (added)", diff.only_in_b), (f"only in `{a}` (removed)", diff.only_in_a)):
        lines += [f"### Resources {label} ({len(rows)})", ""]
        table_rows = [(r.component, f"`{r.type}`", f"`{r.name}`", r.physical_name) for r in rows]
        lines += _table(["component", "type", "logical name", "physical name"], table_rows) if rows else ["None."]
        lines.append("")
    lines += [f"### Key properties that differ ({len(diff.changed)})", ""]
    if diff.changed:
        # One row per (component, type, property, change): five log groups going from 90 to 365 days of
        # retention read better as one row naming the five than as five rows.
        grouped: dict[tuple[str, str, str, str, str], list[str]] = {}
        for c in diff.changed:
            grouped.setdefault((c.component, c.type, c.property, c.a, c.b), []).append(c.name)
        change_rows = [
            (component, ", ".join(f"`{n}`" for n in names) + f" ({type_.split(':')[-1]})", f"`{prop}`", va, vb)
            for (component, type_, prop, va, vb), names in grouped.items()
        ]
        lines += _table(["component", "resources", "property", a, b], change_rows)
    else:
        lines.append("None.")
    lines += [
        "",
        "Key properties: `protect`, `retainOnDelete` and the inputs listed in `tools/insight/diff.py` (`KEY_PROPERTIES`).",
    ]
    return "\n".join(lines) + "\n"


def as_json(diff: Difference) -> dict[str, Any]:
    """The difference as plain data."""
    return {
        "a": diff.a,
        "b": diff.b,
        "empty": diff.is_empty(),
        "settings": [dataclasses.asdict(r) for r in diff.settings],
        "counts": [{"type": t, "a": x, "b": y} for t, x, y in diff.counts],
        "onlyInA": [dataclasses.asdict(r) for r in diff.only_in_a],
        "onlyInB": [dataclasses.asdict(r) for r in diff.only_in_b],
        "changed": [dataclasses.asdict(c) for c in diff.changed],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the difference between two stacks."""
    parser = argparse.ArgumentParser(prog="python -m tools.insight.diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="the stack the comparison starts from (e.g. staging)")
    parser.add_argument("--b", required=True, help="the stack it is compared with (e.g. prod)")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    add_config_argument(parser, help_suffix=", applied to both stacks")
    add_config_argument(parser, "--config-a", help_suffix=", applied to stack A only")
    add_config_argument(parser, "--config-b", help_suffix=", applied to stack B only")
    args = parser.parse_args(argv)
    common = overrides_from(args.config)
    left = load(args.a, {**common, **overrides_from(args.config_a)})
    right = load(args.b, {**common, **overrides_from(args.config_b)})
    diff = compare(left, right)
    # A side with its own overrides is titled with them: "prod + dbInstanceCount=4" against "prod".
    title_a = " + ".join([args.a, *(p for v in args.config_a for p in v.split())])
    title_b = " + ".join([args.b, *(p for v in args.config_b for p in v.split())])
    if args.format == "json":
        sys.stdout.write(json.dumps(as_json(diff), indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(diff, title_a, title_b))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
