"""Canonical dump of the program's resource graph, to prove a refactoring changes nothing.

    python -m tools.graph_snapshot > before.json      # on the old code
    python -m tools.graph_snapshot --check before.json  # on the new code: exit 1 and the differences if any

Every environment is evaluated offline under the mock runtime (:func:`tools.evaluate.evaluate`) and each
registration is reduced to what `pulumi up` would send the engine: type, logical name, parent URN, inputs
and the resource options (protect, retainOnDelete, dependsOn, ignoreChanges), sorted, so that two runs
of the same program give byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tools.evaluate import default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")


def snapshot(environments: Sequence[str] = ENVIRONMENTS) -> dict[str, Any]:
    """The resource graph of each environment in canonical form, plus its outputs."""
    result: dict[str, Any] = {}
    for env in environments:
        evaluation = evaluate(env, default_config(env))
        resources = sorted(
            (
                {
                    "type": r.type,
                    "name": r.name,
                    "urn": r.urn,
                    "parent": r.parent,
                    "custom": r.custom,
                    "inputs": r.inputs,
                    "protect": r.protect,
                    "retainOnDelete": r.retain_on_delete,
                    "dependsOn": sorted(r.depends_on),
                    "ignoreChanges": sorted(r.ignore_changes),
                }
                for r in evaluation.registrations
            ),
            key=lambda r: str(r["urn"]),
        )
        result[env] = {"resources": resources, "outputs": evaluation.outputs}
    return result


def render(data: dict[str, Any]) -> str:
    """Deterministic JSON (sorted keys, fixed separators)."""
    return json.dumps(data, sort_keys=True, indent=1, default=str) + "\n"


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots (empty when identical)."""
    lines: list[str] = []
    for env in sorted(set(before) | set(after)):
        old = {r["urn"]: r for r in before.get(env, {}).get("resources", [])}
        new = {r["urn"]: r for r in after.get(env, {}).get("resources", [])}
        lines += [f"{env}: removed {urn}" for urn in sorted(set(old) - set(new))]
        lines += [f"{env}: added {urn}" for urn in sorted(set(new) - set(old))]
        for urn in sorted(set(old) & set(new)):
            for key in sorted(set(old[urn]) | set(new[urn])):
                if render(old[urn].get(key)) != render(new[urn].get(key)):
                    lines.append(f"{env}: {urn}: {key} differs")
        if render(before.get(env, {}).get("outputs")) != render(after.get(env, {}).get("outputs")):
            lines.append(f"{env}: outputs differ")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print the snapshot, or compare it with a saved one (``--check``)."""
    parser = argparse.ArgumentParser(prog="python -m tools.graph_snapshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", metavar="FILE", help="compare with a snapshot saved earlier; exit 1 if they differ")
    args = parser.parse_args(argv)
    current = snapshot()
    if not args.check:
        sys.stdout.write(render(current))
        return 0
    with open(args.check, encoding="utf-8") as handle:
        saved = json.load(handle)
    found = differences(saved, json.loads(render(current)))
    for line in found:
        print(line)
    print("resource graph unchanged" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
