"""``make integration``: emulator up, all three environments deployed, integration tests, emulator down.

Fails if any scenario outside the ``live_aws`` set was skipped: in CI every other scenario must
really run against the deployed stacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import pytest

from tools.deploy import ACCOUNTS, deploy
from tools.emulator import server
from tools.emulator.engine import DEFAULT_REGION, TEST_CREDENTIALS, DeploymentError


class SkipAudit:
    """pytest plugin: remembers skipped scenarios and whether each was a live-AWS one."""

    def __init__(self) -> None:
        self.live_skips: list[str] = []
        self.other_skips: list[str] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Sort each skipped test into live-AWS or not."""
        if report.when == "call" and report.passed:
            self.passed += 1
        if report.skipped:
            target = self.live_skips if "live_aws" in report.keywords else self.other_skips
            target.append(report.nodeid)


def scenario_environment(endpoint: str, region: str) -> dict[str, str]:
    """Environment variables that point boto3 at the emulator and at each environment's account."""
    variables = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": TEST_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": region,
    }
    for env, account in ACCOUNTS.items():
        variables[f"SCALEPAY_{env.upper()}_ROLE_ARN"] = f"arn:aws:iam::{account}:role/scalepay-deployer"
    return variables


def main(argv: list[str] | None = None) -> int:
    """Run the whole integration flow; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    emulator = server.start()
    print(f"Started the moto emulator at {emulator.endpoint}", flush=True)
    try:
        started = time.monotonic()
        try:
            deploy(["dev", "staging", "prod"], emulator.endpoint, DEFAULT_REGION)
        except DeploymentError as exc:
            print(f"DEPLOYMENT FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"Deployed dev, staging and prod in {time.monotonic() - started:.1f} s\n", flush=True)
        os.environ.update(scenario_environment(emulator.endpoint, DEFAULT_REGION))
        audit = SkipAudit()
        status = pytest.main(
            ["tests/integration", "-v", "-p", "no:cacheprovider", "--no-cov", *args.pytest_args], plugins=[audit]
        )
    finally:
        emulator.stop()
    if audit.other_skips:
        print(f"FAILED: {len(audit.other_skips)} scenario(s) outside the live-AWS set were skipped:", file=sys.stderr)
        for nodeid in audit.other_skips:
            print(f"  {nodeid}", file=sys.stderr)
        return 1
    print(f"{audit.passed} scenario runs passed; {len(audit.live_skips)} live-AWS scenario(s) skipped (need real traffic)")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
