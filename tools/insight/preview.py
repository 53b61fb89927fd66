"""``make preview ENV=dev|staging|prod [FORMAT=json] [CONFIG="key=value ..."]``: the plan, offline.

The resources the program would register for the stack, grouped by component (the ComponentResource
tree, from the parent URNs): per component a count per resource type, each resource's logical and
physical name, and the flags ``[protected]`` (Pulumi ``protect``: ``pulumi destroy`` refuses) and
``[retain-on-delete]`` (Pulumi forgets the resource but leaves it in AWS). The configuration is the
one the deployment uses (Pulumi.yaml, ``Pulumi.<stack>.yaml``, ``CONFIG``, local stand-ins).

    python -m tools.insight.preview --env prod
    python -m tools.insight.preview --env staging --format json --config "minTasks=3"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tools.evaluate import Registration
from tools.insight.graph import Graph, PhysicalName, add_config_argument, load, overrides_from, run_cli
from tools.stack_config import OFFLINE_ACCOUNT, local_stand_ins
from tools.stack_config import load as load_stack_config


def _resource_entry(graph: Graph, resource: Registration) -> dict[str, Any]:
    name = graph.physical_name(resource)
    return {
        "type": resource.type,
        "name": resource.name,
        "urn": resource.urn,
        "physicalName": name.value,
        "physicalNameSource": name.source,
        "protect": resource.protect,
        "retainOnDelete": resource.retain_on_delete,
    }


def plan(graph: Graph) -> dict[str, Any]:
    """The preview as data: totals, then each component with its counts per type and its resources.

    Resources whose nearest component is none (registered at the stack's top level) are listed under a
    pseudo-component ``(stack)`` so that the per-component counts always add up to the total.
    """
    components: list[dict[str, Any]] = []
    grouped: list[tuple[Registration | None, list[Registration]]] = [(c, graph.members(c)) for c in graph.component_tree()]
    orphans = sorted((r for r in graph.resources if graph.parent_component(r) is None), key=lambda r: (r.type, r.name))
    if orphans:
        grouped.insert(0, (None, orphans))
    for component, members in grouped:
        parent = graph.parent_component(component) if component is not None else None
        components.append(
            {
                "name": component.name if component is not None else "(stack)",
                "type": component.type if component is not None else "pulumi:pulumi:Stack",
                "urn": component.urn if component is not None else "",
                "parent": parent.name if parent is not None else None,
                "depth": graph.component_depth(component) if component is not None else 0,
                "resourceCount": len(members),
                "countsByType": dict(sorted(Counter(r.type for r in members).items())),
                "resources": [_resource_entry(graph, r) for r in members],
            }
        )
    resources = graph.resources
    return {
        "stack": graph.stack,
        "environment": graph.environment,
        "region": graph.region,
        "totals": {
            "resources": len(resources),
            "components": len(graph.components),
            "protected": sum(r.protect for r in resources),
            "retainOnDelete": sum(r.retain_on_delete for r in resources),
            "countsByType": dict(sorted(Counter(r.type for r in resources).items())),
        },
        "components": components,
    }


def _flags(entry: dict[str, Any]) -> str:
    flags = (["[protected]"] if entry["protect"] else []) + (["[retain-on-delete]"] if entry["retainOnDelete"] else [])
    return " ".join(flags)


def _shown_name(entry: dict[str, Any]) -> str:
    return str(PhysicalName(entry["physicalName"], entry["physicalNameSource"]))


def render_text(data: dict[str, Any], config_note: str = "") -> str:
    """The preview for a terminal: one block per component, resources grouped by type with their count."""
    totals = data["totals"]
    lines = [
        f"Preview of stack {data['stack']} (environment {data['environment']}, {data['region']}), offline under the "
        "Pulumi mock runtime",
    ]
    if config_note:
        lines.append(config_note)
    lines.append(
        f"{totals['resources']} resources in {totals['components']} components; "
        f"{totals['protected']} protected, {totals['retainOnDelete']} retain-on-delete"
    )
    for component in data["components"]:
        indent = "  " * component["depth"]
        parent = f", in {component['parent']}" if component["parent"] else ""
        lines.append("")
        lines.append(f"{indent}{component['name']}  ({component['type']}{parent}): {component['resourceCount']} resources")
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry in component["resources"]:
            by_type.setdefault(entry["type"], []).append(entry)
        for type_, entries in by_type.items():
            lines.append(f"{indent}  {type_} x{len(entries)}")
            width = max(len(e["name"]) for e in entries)
            name_width = max(len(_shown_name(e)) for e in entries)
            for entry in entries:
                row = f"{indent}    {entry['name']:<{width}}  {_shown_name(entry):<{name_width}}  {_flags(entry)}"
                lines.append(row.rstrip())
    lines.append("")
    lines.append("Totals by type")
    width = max((len(t) for t in totals["countsByType"]), default=0)
    for type_, count in totals["countsByType"].items():
        lines.append(f"  {type_:<{width}}  {count:>4}")
    return "\n".join(lines) + "\n"


def config_note(stack: str, overrides: dict[str, str]) -> str:
    """Where the configuration came from, so a reader knows which stand-ins and overrides were applied."""
    config = load_stack_config(stack, overrides)
    region = config.get("aws:region", "us-east-1")
    stand_ins = sorted(k.split(":", 1)[1] for k in local_stand_ins(config, stack, OFFLINE_ACCOUNT, region))
    parts = [f"config: Pulumi.yaml + Pulumi.{stack}.yaml"]
    if overrides:
        parts.append(
            "CONFIG "
            + " ".join(f"{k.split(':', 1)[1] if k.startswith('scalepayments:') else k}={v}" for k, v in overrides.items())
        )
    if stand_ins:
        parts.append("local stand-ins for " + ", ".join(stand_ins))
    return " + ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the preview of one stack."""
    parser = argparse.ArgumentParser(prog="python -m tools.insight.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env", required=True, help="stack to preview: dev, staging, prod (or any stack with a Pulumi.<stack>.yaml)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text for people, json for machines")
    add_config_argument(parser)
    args = parser.parse_args(argv)
    overrides = overrides_from(args.config)
    data = plan(load(args.env, overrides))
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(render_text(data, config_note(args.env, overrides)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
