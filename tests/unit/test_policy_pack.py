"""The CrossGuard pack (policy/__main__.py): built per environment without starting its gRPC server.

``PolicyPack(...)`` serves forever, so the tests exercise :func:`pack_arguments` and call the
wrapped policies with hand-built ``ResourceValidationArgs`` / ``StackValidationArgs``.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.enforcement import ADVISORY_IN_DEV, ENVIRONMENTS, environment_of, render_config
from policy.rules import ALL_RULES
from policy.rules.base import ResourceRule

ROOT = Path(__file__).resolve().parents[2]
pack = importlib.import_module("policy.__main__")


def opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def policy_named(env: str, name: str) -> Any:
    return next(p for p in pack.pack_arguments(env)["policies"] if p.name == name)


def run_resource_policy(
    env: str, name: str, type_: str, props: dict[str, Any], config: dict[str, Any] | None = None
) -> list[str]:
    found: list[str] = []
    args = ResourceValidationArgs(type_, props, f"urn:{name}", "res", opts(), None, config)
    policy_named(env, name).validate(args, lambda message, urn=None: found.append(message))
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pack_builds_one_policy_per_rule(env: str) -> None:
    arguments = pack.pack_arguments(env)
    assert re.fullmatch(r"[a-zA-Z0-9-_.]{1,100}", arguments["name"]), arguments["name"]
    assert arguments["enforcement_level"] is EnforcementLevel.MANDATORY
    policies = arguments["policies"]
    assert [p.name for p in policies] == [r.name for r in ALL_RULES]
    assert len(policies) >= 25
    for policy, rule in zip(policies, ALL_RULES, strict=True):
        expected = ResourceValidationPolicy if isinstance(rule, ResourceRule) else StackValidationPolicy
        assert isinstance(policy, expected), policy.name
        assert policy.framework is not None and policy.framework.reference == f"Req {rule.requirement}", policy.name


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_every_policy_is_mandatory_in_staging_and_prod(env: str) -> None:
    levels = {p.name: p.enforcement_level for p in pack.pack_arguments(env)["policies"]}
    assert {n for n, level in levels.items() if level is not EnforcementLevel.MANDATORY} == set()


def test_only_the_documented_rules_are_advisory_in_dev() -> None:
    levels = {p.name: p.enforcement_level for p in pack.pack_arguments("dev")["policies"]}
    advisory = {n for n, level in levels.items() if level is EnforcementLevel.ADVISORY}
    assert (
        advisory
        == set(ADVISORY_IN_DEV)
        == {
            "aurora-deletion-protection",
            "aurora-backup-retention",
            "log-group-retention",
            "waf-attached",
            "ecs-images-from-private-registry",
            "alarm-topic-has-subscriber",
        }
    )
    assert all(level in (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY) for level in levels.values())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_config_files_match_the_enforcement_table(env: str) -> None:
    path = ROOT / "policy" / "config" / f"{env}.json"
    assert path.read_text() == render_config(env), f"{path} is stale: run python -m policy.enforcement"
    stored = json.loads(path.read_text())
    built = pack.initial_config(env)
    assert set(stored) == set(built)
    for name, entry in stored.items():
        assert built[name]["enforcementLevel"] is EnforcementLevel(entry["enforcementLevel"]), name


def test_config_files_set_environment_thresholds() -> None:
    configs = {env: json.loads((ROOT / "policy" / "config" / f"{env}.json").read_text()) for env in ENVIRONMENTS}
    assert configs["prod"]["log-group-retention"]["minLogRetentionDays"] == 365
    assert configs["staging"]["log-group-retention"]["minLogRetentionDays"] == 90
    assert configs["prod"]["aurora-deletion-protection"]["requireDeletionProtection"] is True
    assert configs["staging"]["aurora-deletion-protection"]["requireDeletionProtection"] is False
    assert configs["dev"]["waf-attached"]["enforcementLevel"] == "advisory"
    # Object Lock retention of the audit buckets follows the log retention of each environment.
    assert configs["prod"]["audit-buckets-locked"]["minLogRetentionDays"] == 365
    assert configs["staging"]["audit-buckets-locked"]["minLogRetentionDays"] == 90
    for name in ("ecs-images-from-private-registry", "alarm-topic-has-subscriber"):
        assert [configs[env][name]["enforcementLevel"] for env in ENVIRONMENTS] == ["advisory", "mandatory", "mandatory"]


@pytest.mark.parametrize(
    ("stack", "env"),
    [
        ("dev", "dev"),
        ("staging", "staging"),
        ("prod", "prod"),
        ("dev-pr123", "dev"),
        ("org/scalepayments/staging", "staging"),
        ("qa", "prod"),
        ("", "prod"),
    ],
)
def test_stack_name_maps_to_environment_and_unknown_fails_closed(stack: str, env: str) -> None:
    assert environment_of(stack) == env


def test_resource_policy_reports_violation_for_its_type_only() -> None:
    assert run_resource_policy("prod", "sns-topic-encrypted-with-cmk", "aws:sns/topic:Topic", {"name": "alarms"}) == [
        "PCI DSS 4.0 Req 3.5.1: SNS topic is not encrypted with a customer-managed KMS key (kmsMasterKeyId)"
    ]
    assert run_resource_policy("prod", "sns-topic-encrypted-with-cmk", "aws:sqs/queue:Queue", {"name": "q"}) == []


def test_resource_policy_uses_environment_thresholds_and_config_overrides() -> None:
    log_group = "aws:cloudwatch/logGroup:LogGroup"
    props = {"retentionInDays": 90, "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"}
    assert run_resource_policy("staging", "log-group-retention", log_group, props) == []
    assert run_resource_policy("prod", "log-group-retention", log_group, props) == [
        "PCI DSS 4.0 Req 10.5.1: log group keeps events for 90 days (retentionInDays); at least 365 are required"
    ]
    assert run_resource_policy("prod", "log-group-retention", log_group, props, {"minLogRetentionDays": 90}) == []


def resource(type_: str, name: str, props: dict[str, Any], deps: dict[str, list[PolicyResource]] | None = None) -> PolicyResource:
    return PolicyResource(type_, props, f"urn:{name}", name, opts(), None, None, [], deps or {})


def test_stack_policy_links_resources_through_property_dependencies() -> None:
    vpc = resource("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})
    linked = resource("aws:ec2/flowLog:FlowLog", "flow", {"vpcId": "vpc-0abc", "trafficType": "ALL"}, {"vpcId": [vpc]})
    unlinked = resource("aws:ec2/flowLog:FlowLog", "flow", {"vpcId": "vpc-other", "trafficType": "ALL"})
    policy = policy_named("prod", "vpc-flow-logs")
    for resources, expected in (
        ([vpc, linked], []),
        ([vpc, unlinked], [("PCI DSS 4.0 Req 10.2.1: VPC has no flow log", "urn:vpc")]),
    ):
        found: list[tuple[str, str | None]] = []
        policy.validate(StackValidationArgs(resources), lambda message, urn=None, out=found: out.append((message, urn)))
        assert found == expected


def test_pack_files_are_present_and_pinned() -> None:
    yaml_text = (ROOT / "policy" / "PulumiPolicy.yaml").read_text()
    assert re.search(r"runtime:\s*\n\s+name: python", yaml_text)
    assert "pulumi-policy==1.21.0" in (ROOT / "policy" / "requirements.txt").read_text().split()
    assert callable(pack.main)


@pytest.mark.parametrize("readme_path", ["policy/README.md", "README.md"])
def test_readme_documents_every_policy_and_its_requirement(readme_path: str) -> None:
    readme = (ROOT / readme_path).read_text()
    for rule in ALL_RULES:
        assert f"| `{rule.name}` | {rule.domain} | Req {rule.requirement} |" in readme, f"{readme_path}: {rule.name}"
