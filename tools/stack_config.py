"""The configuration of a stack, read the way ``pulumi up`` reads it, without the Pulumi CLI.

    Pulumi.yaml            project-level ``config:`` block: declarations, some with a ``default``
    Pulumi.<stack>.yaml    the stack's ``config:`` values (``namespace:key: value``)
    per-run overrides      ``key=value`` pairs (``make deploy CONFIG="minTasks=3 maxTasks=6"``), like
                           ``pulumi up --config key=value``

Later sources win. Keys without a namespace belong to the project (``scalepayments``), as in Pulumi.
Values become strings the way Pulumi hands them to the program (objects and lists as JSON). A secure
value (``secure: ...``) needs the Pulumi CLI to decrypt: the local deployment refuses it with a clear
message instead of passing ciphertext to the program.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "scalepayments"


class StackConfigError(ValueError):
    """A stack or override file that cannot be read; the message names the file and the key."""


def _as_config_string(value: Any) -> str:
    """What the Pulumi engine passes the program for a config value (strings as is, the rest as JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StackConfigError(f"{path.name}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise StackConfigError(f"{path.name}: expected a mapping at the top level")
    return data


def project_defaults(root: Path = ROOT) -> dict[str, str]:
    """The ``default`` of every key Pulumi.yaml declares with one."""
    declared = _read_yaml(root / "Pulumi.yaml").get("config") or {}
    defaults: dict[str, str] = {}
    for key, spec in declared.items():
        if isinstance(spec, Mapping) and "default" in spec:
            defaults[_full_key(str(key))] = _as_config_string(spec["default"])
        elif not isinstance(spec, Mapping):
            # Pulumi also accepts "key: value" (a plain default) in the project file.
            defaults[_full_key(str(key))] = _as_config_string(spec)
    return defaults


def stack_file(stack: str, root: Path = ROOT) -> Path:
    """``Pulumi.<stack>.yaml`` next to Pulumi.yaml."""
    return root / f"Pulumi.{stack}.yaml"


def stack_values(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The ``config:`` values of ``Pulumi.<stack>.yaml`` (empty when the stack has no file)."""
    path = stack_file(stack, root)
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for key, value in (_read_yaml(path).get("config") or {}).items():
        if isinstance(value, Mapping) and "secure" in value:
            raise StackConfigError(
                f"{path.name}: {key} is a secret (secure:); the local deployment cannot decrypt Pulumi secrets: "
                f'pass the value for this run with CONFIG="{str(key).split(":")[-1]}=..." or use `pulumi up`'
            )
        values[_full_key(str(key))] = _as_config_string(value)
    return values


def parse_overrides(pairs: Sequence[str] | str) -> dict[str, str]:
    """``["minTasks=3", "aws:region=eu-west-1"]`` (or one space-separated string) as full config keys."""
    items = pairs.split() if isinstance(pairs, str) else list(pairs)
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackConfigError(f"per-run config {item!r}: expected key=value, e.g. minTasks=3")
        found[_full_key(key.strip())] = value
    return found


def load(stack: str, overrides: Mapping[str, str] | None = None, root: Path = ROOT) -> dict[str, str]:
    """The full config of ``stack``: project defaults, then the stack file, then ``overrides`` (full keys)."""
    return {**project_defaults(root), **stack_values(stack, root), **dict(overrides or {})}


#: The account the offline views (preview, diff, cost, diagram) evaluate in: the mock runtime's.
OFFLINE_ACCOUNT = "123456789012"


def local_stand_ins(config: Mapping[str, str], stack: str, account_id: str, region: str) -> dict[str, str]:
    """What a run without a real account supplies for the settings a stack file must carry on AWS.

    Staging and prod refuse to deploy without a trusted certificate and an alarm subscriber; on a real
    account the operator sets them (README, "Deploying to AWS"). A local deployment imports a
    self-signed certificate into the emulator's ACM and subscribes a local pager queue; the offline
    views use the same names in the mock account. Nothing is supplied for a key the stack already sets.
    """
    environment = config.get(f"{PROJECT}:environment", stack.split("-")[0])
    if environment == "dev":
        return {}
    found: dict[str, str] = {}
    if not any(config.get(f"{PROJECT}:{key}") for key in ("certificateArn", "domainName")):
        found[f"{PROJECT}:certificateArn"] = f"arn:aws:acm:{region}:{account_id}:certificate/local-{stack}"
    if not any(config.get(f"{PROJECT}:{key}") for key in ("alarmEmail", "alarmHttpsEndpoint", "alarmSubscriberArns")):
        found[f"{PROJECT}:alarmSubscriberArns"] = f"arn:aws:sqs:{region}:{account_id}:{local_pager_queue(stack)}"
    return found


def local_pager_queue(stack: str) -> str:
    """Name of the SQS queue that stands in for the on-call pager of a local deployment."""
    return f"scalepay-local-pager-{stack}"


def offline_config(stack: str, overrides: Mapping[str, str] | None = None, root: Path = ROOT) -> dict[str, str]:
    """The stack's configuration plus the local stand-ins, in the mock account: what the offline views evaluate."""
    config = load(stack, overrides, root)
    region = config.get("aws:region", "us-east-1")
    return {**local_stand_ins(config, stack, OFFLINE_ACCOUNT, region), **config}
