"""Polling for the suites that wait on servers and processes (tests/localplane, tests/integration)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout: float = 3.0, interval: float = 0.01, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that; after ``timeout`` seconds fail the
    test with an AssertionError naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:g} s (last: {last!r})")
        time.sleep(interval)
