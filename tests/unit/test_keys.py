"""KMS keys: the pure key policies (no mocks) and the Keys component in every environment.

The deletion window and the protection of each environment come from the README's environment table
(tests/expectations.py), not from the preset table the program reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lib import key_policies
from lib.config import EnvironmentConfig
from tests.expectations import EXPECTED
from tools.evaluate import ACCOUNT_ID, Evaluation, Registration, default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
KEYS = "scalepayments:keys:Keys"
PURPOSES = ("data", "logs", "alarms", "audit")
REGION = "us-east-1"
ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
LOGS_ACTIONS = {"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"}
BUILDERS = {purpose: builder for purpose, (_, builder) in key_policies.KEY_PURPOSES.items()}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements_for(policy: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if service in _as_list(s.get("Principal", {}).get("Service", []))]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in _as_list(s["Action"])}


# --- pure key policies ----------------------------------------------------------------------------


def test_one_builder_per_purpose() -> None:
    assert set(key_policies.KEY_PURPOSES) == set(PURPOSES)


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("partition", ["aws", "aws-us-gov"])
def test_every_policy_keeps_the_account_administrator(purpose: str, partition: str) -> None:
    policy = BUILDERS[purpose](ACCOUNT_ID, REGION, partition, "amazonaws.com")
    root = f"arn:{partition}:iam::{ACCOUNT_ID}:root"
    admin = [s for s in policy["Statement"] if s.get("Principal", {}).get("AWS") == root]
    assert len(admin) == 1, f"{purpose} key policy lost the account's administrative access: {policy}"
    assert admin[0]["Effect"] == "Allow" and admin[0]["Action"] == "kms:*" and admin[0]["Resource"] == "*"
    assert policy["Version"] == "2012-10-17"


@pytest.mark.parametrize("purpose", PURPOSES)
def test_only_the_account_administrator_gets_every_action(purpose: str) -> None:
    policy = BUILDERS[purpose](ACCOUNT_ID, REGION, "aws", "amazonaws.com")
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", f"{purpose}: unexpected {statement}"
        principal = statement["Principal"]
        assert principal != "*" and principal.get("AWS") != "*", f"{purpose}: key open to everyone: {statement}"
        if principal.get("AWS") != ROOT:
            actions = set(_as_list(statement["Action"]))
            assert not {"kms:*", "*"} & actions, f"{purpose}: a service gets every action: {statement}"
            assert not {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"} & actions, statement


@pytest.mark.parametrize("purpose", PURPOSES)
def test_statement_ids_are_unique_and_the_policy_serialises(purpose: str) -> None:
    policy = BUILDERS[purpose](ACCOUNT_ID, REGION, "aws", "amazonaws.com")
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)), f"{purpose}: duplicate Sid in {sids}"
    assert json.loads(json.dumps(policy)) == policy


def test_data_key_is_governed_by_iam_only() -> None:
    policy = key_policies.data_key_policy(ACCOUNT_ID, REGION, "aws")
    assert [s["Principal"] for s in policy["Statement"]] == [{"AWS": ROOT}]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2"])
def test_logs_key_lets_the_regional_logs_service_encrypt_this_accounts_groups(region: str) -> None:
    policy = key_policies.logs_key_policy(ACCOUNT_ID, region, "aws")
    logs = _statements_for(policy, f"logs.{region}.amazonaws.com")
    assert len(logs) == 1, f"logs key policy must allow logs.{region}.amazonaws.com: {policy}"
    assert set(_as_list(logs[0]["Action"])) == LOGS_ACTIONS
    condition = {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:*"}}
    assert logs[0]["Condition"] == condition, "the Logs service must be limited to this account's log groups"


def test_logs_principal_follows_the_partition_dns_suffix() -> None:
    policy = key_policies.logs_key_policy(ACCOUNT_ID, "cn-north-1", "aws-cn", "amazonaws.com.cn")
    assert _statements_for(policy, "logs.cn-north-1.amazonaws.com.cn"), policy


def test_alarms_key_lets_cloudwatch_and_sns_use_it() -> None:
    policy = key_policies.alarms_key_policy(ACCOUNT_ID, REGION, "aws")
    cloudwatch = _statements_for(policy, "cloudwatch.amazonaws.com")
    assert _actions(cloudwatch) == {"kms:Decrypt", "kms:GenerateDataKey*"}, f"CloudWatch alarms cannot publish: {policy}"
    sns = _statements_for(policy, "sns.amazonaws.com")
    assert _actions(sns) == {"kms:Decrypt", "kms:GenerateDataKey*"}, policy
    assert sns[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


def test_audit_key_lets_cloudtrail_encrypt_only_this_accounts_trails() -> None:
    policy = key_policies.audit_key_policy(ACCOUNT_ID, REGION, "aws")
    cloudtrail = _statements_for(policy, "cloudtrail.amazonaws.com")
    assert _actions(cloudtrail) == {"kms:GenerateDataKey*", "kms:DescribeKey"}, policy
    (encrypt,) = [s for s in cloudtrail if s["Action"] == "kms:GenerateDataKey*"]
    trails = f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/*"
    assert encrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:cloudtrail:arn": trails}
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}


def test_audit_key_lets_config_deliver_for_this_account_only() -> None:
    policy = key_policies.audit_key_policy(ACCOUNT_ID, REGION, "aws")
    config = _statements_for(policy, "config.amazonaws.com")
    assert _actions(config) == {"kms:Decrypt", "kms:GenerateDataKey"}, policy
    assert config[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert not _statements_for(policy, f"logs.{REGION}.amazonaws.com"), "the audit key is not a Logs key"


# --- the Keys component in each environment ---------------------------------------------------------


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def stack(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> tuple[str, Evaluation, EnvironmentConfig]:
    env = str(request.param)
    return env, evaluated(env), resolved(env)


def _keys(evaluation: Evaluation) -> dict[str, Registration]:
    keys = {r.name.rsplit("-", 1)[-1]: r for r in evaluation.of_type("aws:kms/key:Key") if r.component == KEYS}
    assert set(keys) == set(PURPOSES), f"expected one key per purpose {PURPOSES}, found {sorted(keys)}"
    return keys


def _policy(key: Registration) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(key.inputs["policy"])
    return policy


def test_every_key_rotates_and_has_the_environments_deletion_window(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, _ = stack
    window = EXPECTED[env].kms_deletion_window_days
    for purpose, key in _keys(evaluation).items():
        assert key.inputs.get("enableKeyRotation") is True, f"{key.name} ({env}): rotation is off"
        found = key.inputs["deletionWindowInDays"]
        assert found == window, f"{key.name} ({env}): deletionWindowInDays {found}, expected {window}"
        assert 7 <= found <= 30, f"{key.name} ({env}): KMS accepts a deletion window of 7 to 30 days"
        assert key.inputs.get("keyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT", key.name
        assert key.inputs.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT", key.name
        assert key.inputs["tags"]["Environment"] == env and key.inputs["tags"]["Name"] == f"scalepay-{purpose}-{env}"


def test_all_kms_keys_in_the_stack_rotate(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, _ = stack
    for key in evaluation.of_type("aws:kms/key:Key"):
        assert key.inputs.get("enableKeyRotation") is True, f"{key.name} ({env}): rotation is off"


def test_key_policies_keep_admin_and_allow_the_right_services(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, cfg = stack
    keys = _keys(evaluation)
    for key in keys.values():
        admin = [s for s in _policy(key)["Statement"] if s["Principal"].get("AWS") == ROOT]
        assert admin and admin[0]["Action"] == "kms:*", f"{key.name} ({env}): account admin statement missing"
    logs = _statements_for(_policy(keys["logs"]), f"logs.{cfg.region}.amazonaws.com")
    assert logs, f"{keys['logs'].name} ({env}): CloudWatch Logs cannot use the logs key"
    context = logs[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert context == f"arn:aws:logs:{cfg.region}:{ACCOUNT_ID}:*", keys["logs"].name
    alarms = _statements_for(_policy(keys["alarms"]), "cloudwatch.amazonaws.com")
    assert _actions(alarms) >= {"kms:Decrypt", "kms:GenerateDataKey*"}, (
        f"{keys['alarms'].name} ({env}): CloudWatch cannot publish"
    )
    assert _statements_for(_policy(keys["audit"]), "cloudtrail.amazonaws.com"), f"{keys['audit'].name} ({env})"
    assert not _statements_for(_policy(keys["data"]), f"logs.{cfg.region}.amazonaws.com"), keys["data"].name


def test_aliases_follow_the_naming_convention(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, _ = stack
    keys = _keys(evaluation)
    aliases = {r.inputs["name"]: r for r in evaluation.of_type("aws:kms/alias:Alias") if r.component == KEYS}
    assert set(aliases) == {f"alias/scalepay-{p}-{env}" for p in PURPOSES}, f"{env}: aliases {sorted(aliases)}"
    for purpose in PURPOSES:
        alias = aliases[f"alias/scalepay-{purpose}-{env}"]
        assert alias.inputs["targetKeyId"] == keys[purpose].state["keyId"], f"{alias.name} points at the wrong key"


def test_keys_and_aliases_are_protected_as_the_environment_asks(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, _ = stack
    expected = (EXPECTED[env].protect, EXPECTED[env].retain_on_delete)
    guarded = [
        r for r in evaluation.registrations if r.type in ("aws:kms/key:Key", "aws:kms/alias:Alias") and r.component == KEYS
    ]
    assert len(guarded) == 2 * len(PURPOSES)
    for r in guarded:
        assert (r.protect, r.retain_on_delete) == expected, f"{r.name} ({env}): protect/retain {r.protect, r.retain_on_delete}"


def test_stack_exports_the_key_arns(stack: tuple[str, Evaluation, EnvironmentConfig]) -> None:
    env, evaluation, _ = stack
    keys = _keys(evaluation)
    for purpose in PURPOSES:
        output = f"kms{purpose.capitalize()}KeyArn"
        assert evaluation.outputs[output] == keys[purpose].state["arn"], f"{env}: {output} is not the {purpose} key"


def test_deletion_window_override_reaches_every_key() -> None:
    config = {**default_config("dev"), "scalepayments:kmsDeletionWindowDays": "21"}
    for key in _keys(evaluate("dev", config)).values():
        assert key.inputs["deletionWindowInDays"] == 21, f"{key.name}: override ignored"
