"""``make bench``: evaluation and deployment times, and the payment path's latency on the running platform.

Targets (printed beside the numbers, never asserted in a timed test): under 3 s per
environment for the mock-runtime evaluation, under 60 s for all three environments
deployed into one fresh emulator (median of 3), and a p99 under 300 ms for creating a
payment through the local front door (the bound the live-AWS scenario holds the real
platform to; locally every hop, TLS included, runs on this machine's 2 cores).
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
PAYMENT_P99_TARGET_MS = 300.0


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


def bench_payment_path(payments: int, concurrency: int) -> dict[str, float]:
    """Create ``payments`` payments through dev's front door with ``concurrency`` clients; latency and throughput.

    A fresh emulator, dev deployed and its platform running (health checks every second so it is ready
    in seconds); each client keeps one HTTPS connection to the front door, as a payment gateway would.
    Every request is POST /api/payments with its own idempotency key: front door -> api -> Service Connect
    -> payment -> PostgreSQL (ledger) and Redis (idempotency key) -> notification.
    """
    import ssl
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tools.deploy import deploy
    from tools.emulator import server
    from tools.emulator import state as records
    from tools.localplane.platform import DEMO_PAYMENT, LocalPlatform, Timings

    emulator = server.start()
    platform = None
    try:
        with tempfile.TemporaryDirectory() as outputs:
            deploy(["dev"], emulator.endpoint, root=Path(outputs), stream=io.StringIO())
        platform = LocalPlatform(emulator.endpoint, ["dev"], timings=Timings(1.0, 1.0), stream=io.StringIO())
        platform.start()
        platform.wait_ready(timeout=120)
        door = platform.planes["dev"].front_doors[0]
        context = ssl.create_default_context(cafile=str(door.certificate))
        url = f"{door.door.https_url}/api/payments"

        def client_run(count: int) -> list[tuple[float, int]]:
            samples = []
            with httpx.Client(verify=context, timeout=10.0) as client:
                for _ in range(count):
                    started = time.perf_counter()
                    response = client.post(
                        url,
                        json=DEMO_PAYMENT,
                        headers={"Host": door.host, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
                        extensions={"sni_hostname": door.host},
                    )
                    samples.append((time.perf_counter() - started, response.status_code))
            return samples

        shares = [payments // concurrency + (1 if i < payments % concurrency else 0) for i in range(concurrency)]
        client_run(20)  # warm-up: connections, pools, first-request costs
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            samples = [sample for part in pool.map(client_run, shares) for sample in part]
        elapsed = time.perf_counter() - started
    finally:
        if platform is not None:
            platform.stop()
        emulator.stop()
        for stack in records.stacks_in(emulator.endpoint):
            records.remove(emulator.endpoint, stack)
    latencies = sorted(seconds * 1000 for seconds, _ in samples)

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, max(0, round(q * len(latencies)) - 1))]

    return {
        "requests": len(samples),
        "errors": sum(1 for _, status in samples if status != 201),
        "p50": percentile(0.50),
        "p95": percentile(0.95),
        "p99": percentile(0.99),
        "rps": len(samples) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation benchmark; exit 1 if an environment misses its target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per environment (median is reported)")
    parser.add_argument("--deploy-runs", type=int, default=3, help="emulator deployments of all three environments")
    parser.add_argument("--payments", type=int, default=1000, help="payments created through the front door (0: skip)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients for the payment path")
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
    if args.payments:
        found = bench_payment_path(args.payments, args.concurrency)
        met = found["p99"] < PAYMENT_P99_TARGET_MS and found["errors"] == 0
        ok &= met
        print(
            f"\nPayment path on the running dev platform: {found['requests']:.0f} x POST /api/payments through the "
            f"front door, {args.concurrency} concurrent clients"
        )
        print(f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}  target")
        print(
            f"{found['p50']:>8.1f} {found['p95']:>8.1f} {found['p99']:>8.1f} {found['rps']:>8.1f} {found['errors']:>7.0f}"
            f"  p99 < {PAYMENT_P99_TARGET_MS:.0f} ms, no errors: {'met' if met else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
