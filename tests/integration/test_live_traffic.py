"""Live traffic on real AWS only (SCALEPAY_LIVE_TRAFFIC=1): latency, throughput, failover timing."""

from __future__ import annotations

import pytest

from tests.integration.support import (
    ClientsFor,
    Outputs,
    aurora_cluster,
    redis_group,
)

# Real AWS only: timing under real load and managed failovers (their local counterparts, on the local
# platform, are in test_running_platform.py and `make bench`). Run them on AWS with SCALEPAY_LIVE_TRAFFIC=1
# (bounded request counts; the WAF rate limit of 2,000 requests per 5 minutes per address applies).


def _create_payment(url: str, timeout: float = 5.0) -> tuple[int, float]:
    """POST one payment (a card token, a fresh idempotency key) to ``url``; return (status, seconds)."""
    import json
    import time
    import urllib.error
    import urllib.request
    import uuid

    body = json.dumps(
        {"amount_minor": 100, "currency": "EUR", "merchant_id": "merchant_load", "payment_method_token": "tok_load_test_01"}
    ).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "Idempotency-Key": f"load-{uuid.uuid4()}"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    return status, time.perf_counter() - start


@pytest.mark.live_aws
def test_payment_api_latency_under_load(outputs: Outputs) -> None:
    """p99 latency of creating a payment stays under 300 ms over 200 sequential requests."""
    url = f"https://{outputs['albDnsName']}/api/payments"
    samples = [_create_payment(url) for _ in range(200)]
    assert all(status == 201 for status, _ in samples)
    latencies = sorted(seconds for _, seconds in samples)
    assert latencies[int(len(latencies) * 0.99) - 1] < 0.3


@pytest.mark.live_aws
def test_throughput_of_black_friday_surge(outputs: Outputs) -> None:
    """The payment path serves 2,000 payments from 20 concurrent clients with under 1% errors."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"https://{outputs['albDnsName']}/api/payments"
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = [status for status, _ in pool.map(lambda _: _create_payment(url), range(2000))]
    assert sum(1 for s in statuses if s != 201) / len(statuses) < 0.01


@pytest.mark.live_aws
def test_aurora_failover_time(outputs: Outputs, clients_for: ClientsFor) -> None:
    """A forced Aurora failover promotes a new writer within 120 seconds."""
    import time

    aws = clients_for(outputs["environment"])
    before = next(m for m in aurora_cluster(aws, outputs)["DBClusterMembers"] if m["IsClusterWriter"])["DBInstanceIdentifier"]
    aws("rds").failover_db_cluster(DBClusterIdentifier=outputs["auroraClusterIdentifier"])
    start = time.monotonic()
    while time.monotonic() - start < 120:
        writer = next(m for m in aurora_cluster(aws, outputs)["DBClusterMembers"] if m["IsClusterWriter"])["DBInstanceIdentifier"]
        if writer != before:
            return
        time.sleep(5)
    pytest.fail(f"writer still {before} after 120 s")


@pytest.mark.live_aws
def test_redis_failover_time(outputs: Outputs, clients_for: ClientsFor) -> None:
    """A forced Redis primary failover leaves the group available again within 300 seconds."""
    import time

    aws = clients_for(outputs["environment"])
    group = redis_group(aws, outputs)
    aws("elasticache").test_failover(
        ReplicationGroupId=group["ReplicationGroupId"], NodeGroupId=group["NodeGroups"][0]["NodeGroupId"]
    )
    start = time.monotonic()
    while time.monotonic() - start < 300:
        if redis_group(aws, outputs)["Status"] == "available" and time.monotonic() - start > 10:
            return
        time.sleep(10)
    pytest.fail("replication group not available 300 s after failover")
