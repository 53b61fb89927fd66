"""``make bench``: how long the program takes to evaluate, per environment (median of N runs).

Targets (printed beside the numbers, never asserted in a timed test): under 3 s per
environment for the mock-runtime evaluation, and under 60 s for all three environments
deployed into one fresh emulator (median of 3).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools.evaluate import default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
EVALUATION_TARGET_SECONDS = 3.0
DEPLOY_TARGET_SECONDS = 60.0


def bench_evaluation(runs: int) -> list[tuple[str, float, int]]:
    """Return (environment, median seconds, resources) for each environment."""
    rows = []
    for env in ENVIRONMENTS:
        timings = []
        count = 0
        for _ in range(runs):
            start = time.perf_counter()
            evaluation = evaluate(env, default_config(env))
            timings.append(time.perf_counter() - start)
            count = len(evaluation.custom())
        rows.append((env, statistics.median(timings), count))
    return rows


def bench_deployment(runs: int) -> tuple[float, int]:
    """Median seconds to deploy dev, staging and prod into one fresh emulator, and resources created."""
    from tools.deploy import deploy
    from tools.emulator import server
    from tools.emulator import state as records

    timings = []
    count = 0
    for _ in range(runs):
        emulator = server.start()
        try:
            with tempfile.TemporaryDirectory() as outputs:
                start = time.perf_counter()
                results = deploy(list(ENVIRONMENTS), emulator.endpoint, root=Path(outputs), stream=io.StringIO())
                timings.append(time.perf_counter() - start)
            count = sum(len(r.record.resources) for r in results)
        finally:
            emulator.stop()
            for stack in records.stacks_in(emulator.endpoint):  # the emulator's memory is gone with it
                records.remove(emulator.endpoint, stack)
    return statistics.median(timings), count


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation benchmark; exit 1 if an environment misses its target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per environment (median is reported)")
    parser.add_argument("--deploy-runs", type=int, default=3, help="emulator deployments of all three environments")
    args = parser.parse_args(argv)
    print(f"Program evaluation under the mock runtime (median of {args.runs} runs)")
    print(f"{'environment':<12} {'seconds':>8} {'resources':>10}  target")
    ok = True
    for env, seconds, count in bench_evaluation(args.runs):
        met = seconds < EVALUATION_TARGET_SECONDS
        ok &= met
        print(f"{env:<12} {seconds:>8.3f} {count:>10}  < {EVALUATION_TARGET_SECONDS:.0f} s {'met' if met else 'MISSED'}")
    if args.deploy_runs:
        seconds, count = bench_deployment(args.deploy_runs)
        met = seconds < DEPLOY_TARGET_SECONDS
        ok &= met
        print(f"\nEmulator deployment of dev + staging + prod into one emulator (median of {args.deploy_runs} runs)")
        print(f"{'all':<12} {seconds:>8.3f} {count:>10}  < {DEPLOY_TARGET_SECONDS:.0f} s {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
