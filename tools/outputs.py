"""Write a stack's outputs where the integration tests read them.

    python -m tools.outputs --stack <stack>

Runs ``pulumi stack output --json --stack <stack>`` (a real AWS deployment) and writes
``cfn-outputs/<env>/flat-outputs.json`` and ``cfn-outputs/flat-outputs.json``, the environment
taken from the outputs' ``environment`` key. The emulator deployment (tools.deploy) writes the
same files through :func:`write_outputs`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

OUTPUT_ROOT = Path("cfn-outputs")


def write_outputs(
    outputs: Mapping[str, Any], root: Path = OUTPUT_ROOT, env: str | None = None, primary: bool = True
) -> list[Path]:
    """Write ``outputs`` (as ``pulumi stack output --json`` prints them) for ``env``.

    Always ``<root>/<env>/flat-outputs.json``; with ``primary`` also ``<root>/flat-outputs.json``.
    """
    env = env or str(outputs.get("environment") or "")
    if not env:
        raise ValueError("the outputs have no 'environment' key and no environment was given")
    text = json.dumps(dict(outputs), indent=2, sort_keys=True) + "\n"
    paths = [root / env / "flat-outputs.json"]
    if primary:
        paths.append(root / "flat-outputs.json")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return paths


def stack_outputs(stack: str, cwd: Path | None = None) -> dict[str, Any]:
    """``pulumi stack output --json --stack <stack>`` as a dict."""
    result = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.outputs", description="write cfn-outputs/ from a Pulumi stack")
    parser.add_argument("--stack", required=True, help="the Pulumi stack (e.g. dev, or org/scalepayments/prod)")
    parser.add_argument("--outputs-dir", type=Path, default=OUTPUT_ROOT)
    args = parser.parse_args(argv)
    try:
        outputs = stack_outputs(args.stack)
    except FileNotFoundError:
        print("pulumi CLI not found on PATH", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"pulumi stack output failed: {exc.stderr.strip()}", file=sys.stderr)
        return 1
    for path in write_outputs(outputs, args.outputs_dir):
        print(f"wrote {path}")
    # Outputs of a real stack: the profiles and endpoint a local deployment left must not redirect the tests.
    for local_only in ("aws-config", "aws-credentials", "endpoint.json"):
        (args.outputs_dir / local_only).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
