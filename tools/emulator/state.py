"""What the local deployment deployed, per stack and endpoint: the basis of re-runs, destroy and the data plane.

One JSON file per stack and emulator endpoint, ``.deploy/state/<host>_<port>/<stack>.json`` (git-ignored),
like a Pulumi state file: the stack's configuration, every resource the engine created (type, logical
name, URN, physical id, inputs, state, parent, dependencies, protect, retainOnDelete) in creation
order, the operator-side extras the local deployment made for it (an imported certificate, a local pager
queue, pushed images), the stack outputs and a status. It is written while a deployment runs, so a
deployment that fails (or is interrupted) leaves a record ``make destroy`` can clean up after.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
STATE_ROOT = ROOT / ".deploy" / "state"

DEPLOYING = "deploying"
DEPLOYED = "deployed"
FAILED = "failed"


@dataclass
class ResourceRecord:
    """One resource the engine created."""

    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    depends_on: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False


@dataclass
class ExtraRecord:
    """Something the local deployment made for the stack outside the program (what an operator does by hand)."""

    kind: str  # "acm-certificate" | "sqs-queue" | "ecr-image"
    id: str  # ARN, queue URL, "<repository>:<tag>"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class StackRecord:
    """Everything deployed for one stack into one emulator endpoint."""

    stack: str
    endpoint: str
    account_id: str
    region: str
    config: dict[str, str]
    status: str = DEPLOYING
    resources: list[ResourceRecord] = field(default_factory=list)
    extras: list[ExtraRecord] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    #: Data-source answers at deployment time (``<token> <args as JSON>`` -> result), replayed by a re-run's plan.
    data_sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def environment(self) -> str:
        """The preset the stack uses (its ``scalepayments:environment``, else the stack name)."""
        return self.config.get("scalepayments:environment", self.stack)

    def by_urn(self) -> dict[str, ResourceRecord]:
        """Resources by URN."""
        return {r.urn: r for r in self.resources}


def data_source_key(token: str, args: dict[str, Any]) -> str:
    """The key a data-source answer is recorded under."""
    return f"{token} {json.dumps(args, sort_keys=True, default=str)}"


def endpoint_slug(endpoint: str) -> str:
    """``http://127.0.0.1:5000`` -> ``127.0.0.1_5000`` (a directory name)."""
    parts = urlsplit(endpoint)
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{parts.hostname}_{parts.port or ''}")


def path_for(endpoint: str, stack: str, root: Path | None = None) -> Path:
    """Where the record of ``stack`` in ``endpoint`` lives (under ``root``, by default :data:`STATE_ROOT`)."""
    return (root or STATE_ROOT) / endpoint_slug(endpoint) / f"{stack}.json"


def _from_json(data: dict[str, Any]) -> StackRecord:
    record = StackRecord(**{k: v for k, v in data.items() if k not in ("resources", "extras")})
    record.resources = [ResourceRecord(**r) for r in data.get("resources", [])]
    record.extras = [ExtraRecord(**e) for e in data.get("extras", [])]
    return record


def load(endpoint: str, stack: str, root: Path | None = None) -> StackRecord | None:
    """The record of ``stack`` in ``endpoint``, or None when nothing is deployed there."""
    path = path_for(endpoint, stack, root)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        return _from_json(json.load(handle))


def save(record: StackRecord, root: Path | None = None) -> Path:
    """Write the record atomically (a crash mid-write leaves the previous version, never half a file)."""
    path = path_for(record.endpoint, record.stack, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{record.stack}.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(record), handle, indent=1, sort_keys=True, default=str)
    os.replace(temporary, path)
    return path


def remove(endpoint: str, stack: str, root: Path | None = None) -> None:
    """Forget the stack (after a complete destroy)."""
    path = path_for(endpoint, stack, root)
    if path.exists():
        path.unlink()
    if path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def stacks_in(endpoint: str, root: Path | None = None) -> list[str]:
    """The stacks recorded for ``endpoint``."""
    directory = (root or STATE_ROOT) / endpoint_slug(endpoint)
    return sorted(p.stem for p in directory.glob("*.json")) if directory.exists() else []


def records(endpoint: str, stacks: Iterable[str], root: Path | None = None) -> dict[str, StackRecord]:
    """The records of those ``stacks`` that exist."""
    found = {stack: load(endpoint, stack, root) for stack in stacks}
    return {stack: record for stack, record in found.items() if record is not None}
