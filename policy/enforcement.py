"""Which rules block a deployment where, and with which thresholds.

Enforcement is mandatory everywhere except a documented few rules that are advisory in dev:
they guard production resilience, retention or operations, not cardholder-data exposure, and dev holds no
cardholder data (PCI DSS scope covers staging only as the pre-production copy of the CDE).
The environment is the stack name (``dev``, ``staging``, ``prod``; ``dev-pr1`` counts as dev);
an unknown stack gets the production profile, so a typo fails closed.

``python -m policy.enforcement`` rewrites ``policy/config/<env>.json`` from this table; the
files are what ``pulumi preview --policy-pack policy --policy-pack-config policy/config/dev.json``
reads.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from policy.rules import ALL_RULES
from policy.rules.base import DEFAULT_PARAMS, Params, Rule

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
MANDATORY = "mandatory"
ADVISORY = "advisory"

#: Thresholds per environment. Staging mirrors production except where its preset deliberately
#: differs: 90-day logs (PCI DSS 10.5.1's "three months immediately available") and snapshots
#: instead of deletion protection, so that staging can be torn down and rebuilt.
ENVIRONMENT_PARAMS: dict[str, Params] = {
    "dev": DEFAULT_PARAMS,
    "staging": replace(DEFAULT_PARAMS, min_log_retention_days=90, require_deletion_protection=False),
    "prod": DEFAULT_PARAMS,
}

#: Rules that only warn in dev, and why. Dev is checked against the production thresholds so the
#: report shows how far dev is from production, without blocking a cheap, disposable stack.
ADVISORY_IN_DEV: dict[str, str] = {
    "aurora-deletion-protection": "dev databases are disposable and hold no cardholder data; prod must protect them",
    "aurora-backup-retention": "dev keeps 1 day of backups to save cost; 7+ days is a production resilience rule",
    "log-group-retention": "365-day retention (Req 10.5.1) applies to the CDE; dev keeps short logs to save cost",
    "waf-attached": "dev is not exposed to customer traffic; WAF costs money per web ACL and rule",
    "ecs-images-from-private-registry": "dev may try public images (no cardholder data); staging and prod run only ECR images",
    "alarm-topic-has-subscriber": "nobody is on call for dev; its alarms go to the topic for whoever looks at it",
}

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def environment_of(stack: str) -> str:
    """The environment a stack name denotes; unknown names get ``prod`` (fail closed)."""
    name = stack.rsplit("/", 1)[-1].strip().lower()
    for env in ENVIRONMENTS:
        if name == env or name.startswith(f"{env}-"):
            return env
    return "prod"


def enforcement_level(env: str, rule_name: str) -> str:
    """``mandatory`` or ``advisory`` for one rule in one environment."""
    if env == "dev" and rule_name in ADVISORY_IN_DEV:
        return ADVISORY
    return MANDATORY


def params_for(env: str) -> Params:
    """The thresholds of an environment (production's for an unknown one)."""
    return ENVIRONMENT_PARAMS.get(env, DEFAULT_PARAMS)


def pack_config(env: str, rules: tuple[Rule, ...] = ALL_RULES) -> dict[str, dict[str, Any]]:
    """The CrossGuard policy-pack config of an environment: enforcement level and thresholds per rule."""
    params = params_for(env)
    return {rule.name: {"enforcementLevel": enforcement_level(env, rule.name), **params.to_config(rule.params)} for rule in rules}


def render_config(env: str) -> str:
    """``pack_config(env)`` as the JSON text stored in ``policy/config/<env>.json``."""
    return json.dumps(pack_config(env), indent=2, sort_keys=True) + "\n"


def write_configs(directory: Path = CONFIG_DIR) -> list[Path]:
    """Write ``<env>.json`` for every environment; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for env in ENVIRONMENTS:
        path = directory / f"{env}.json"
        path.write_text(render_config(env))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_configs():
        print(written_path)
