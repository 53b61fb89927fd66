"""Integration scenarios: the deployed platform, inspected through the AWS APIs with boto3.

This is the entry the brief names; the scenarios are grouped by business concern in the modules
beside it (test_payment_path, test_network_isolation, test_high_availability,
test_security_compliance, test_autoscaling, test_disaster_recovery, test_monitoring, test_cost,
test_cross_environment, test_live_traffic). Each scenario's name and docstring say which business
case it protects. The tests read the stack outputs and ask AWS (or the emulator behind
AWS_ENDPOINT_URL) what exists; nothing is mocked. Scenarios that need live traffic are marked
``live_aws`` and skip unless SCALEPAY_LIVE_TRAFFIC=1.
"""

from __future__ import annotations

import re

from tests.integration.conftest import Deployed
from tests.integration.support import (
    SERVICES,
    Outputs,
)


def test_outputs_are_present_and_well_formed(deployed: Deployed) -> None:
    """Operators and pipelines find every identifier they need in the stack outputs."""
    o = deployed.outputs
    assert o["environment"] == deployed.env
    assert re.fullmatch(r"\d{12}", o["accountId"])
    assert re.fullmatch(r"vpc-[0-9a-f]+", o["vpcId"])
    for tier in ("publicSubnetIds", "privateSubnetIds", "databaseSubnetIds"):
        assert all(re.fullmatch(r"subnet-[0-9a-f]+", s) for s in o[tier]), tier
    assert o["albArn"].startswith("arn:aws:elasticloadbalancing:")
    assert set(o["targetGroupArns"]) == set(SERVICES)
    assert o["auroraPort"] == 5432 and o["redisPort"] == 6379
    assert o["auroraSecretArn"].startswith("arn:aws:secretsmanager:")
    assert o["kmsDataKeyArn"].startswith("arn:aws:kms:")


def test_primary_outputs_file_matches_its_environment(outputs: Outputs, all_outputs: dict[str, Outputs]) -> None:
    """The default outputs file CI and tools read is one of the deployed environments, unchanged."""
    assert outputs == all_outputs[outputs["environment"]]
