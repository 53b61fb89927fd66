"""The running platform: payments through the front door, onto PostgreSQL and Redis, through failures.

These scenarios need the local platform running (``make integration`` starts it; by hand: ``make run ENV=all
ENDPOINT=...`` beside ``make integration-only``). Each drives the deployed services the way a client and an
operator would: HTTPS through the front door, the master secret from Secrets Manager for the database, and the
platform's control endpoint to stop a server or kill a task. Their real-AWS counterparts (latency, surge,
failover timing) are in test_live_traffic.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import AwsClients
from tests.integration.running import RunningStack, platform_file
from tests.polling import wait_until

Running = Callable[[str], RunningStack]


@pytest.fixture(scope="session")
def running(all_outputs: dict[str, dict[str, Any]], clients_for: Callable[[str], AwsClients]) -> Running:
    """``running(env)``: the running platform of a deployed environment."""

    def get(env: str) -> RunningStack:
        path = platform_file(env)
        if not path.exists():
            pytest.skip(f"no running platform for {env}: start one with make run ENV=all ENDPOINT=<emulator>")
        return RunningStack(env, all_outputs[env], clients_for(env), json.loads(path.read_text()))

    return get


def _ledger(stack: RunningStack, payment_id: str) -> dict[str, list[tuple[str, str, int]]]:
    rows = stack.query(
        "SELECT t.kind, e.account, e.direction, e.amount_minor FROM payment.ledger_transactions t "
        "JOIN payment.ledger_entries e ON e.transaction_id = t.id WHERE t.payment_id = %s ORDER BY e.id",
        payment_id,
    )
    found: dict[str, list[tuple[str, str, int]]] = {}
    for kind, account, direction, amount in rows:
        found.setdefault(kind, []).append((account, direction, int(amount)))
    return found


def _event_types(stack: RunningStack, payment_id: str) -> set[str]:
    return {row[0] for row in stack.query("SELECT event_type FROM notification.events WHERE payment_id = %s", payment_id)}


@pytest.mark.category("payment path")
def test_a_payment_flows_from_the_front_door_to_the_ledger(running: Running) -> None:
    """A payment through HTTPS, api, payment and notification lands in the ledger, balanced: the money is accounted for."""
    dev = running("dev")
    key = f"it-e2e-{uuid.uuid4()}"
    created = dev.create_payment(key, amount_minor=4200)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert (payment["status"], payment["amount_minor"], payment["currency"]) == ("authorized", 4200, "EUR")
    assert dev.request("GET", f"/api/payments/{payment['id']}").json() == payment
    captured = dev.request("POST", f"/api/payments/{payment['id']}/capture")
    assert captured.status_code == 200 and captured.json()["status"] == "captured", captured.text

    row = dev.query(
        "SELECT amount_minor, currency, status, idempotency_key, payment_method_token FROM payment.payments WHERE id = %s",
        payment["id"],
    )
    assert row == [(4200, "EUR", "captured", key, "tok_it_visa_0001")]
    ledger = _ledger(dev, payment["id"])
    assert sorted(ledger["authorization"]) == [
        ("authorizations_receivable", "debit", 4200),
        ("merchant_pending:merchant_it", "credit", 4200),
    ]
    assert sorted(ledger["capture"]) == [
        ("authorizations_receivable", "credit", 4200),
        ("merchant_payable:merchant_it", "credit", 4200),
        ("merchant_pending:merchant_it", "debit", 4200),
        ("settlement_receivable", "debit", 4200),
    ]
    for kind, entries in ledger.items():
        debits = sum(amount for _, direction, amount in entries if direction == "debit")
        assert debits == sum(amount for _, direction, amount in entries if direction == "credit"), f"{kind} unbalanced"

    idempotency = dev.action(
        "caches", dev.outputs["redisReplicationGroupId"], "scan", {"match": f"payments:idem:merchant_it:{key}"}
    )
    assert list(idempotency["keys"]) == [f"payments:idem:merchant_it:{key}"]
    assert 0 < idempotency["keys"][f"payments:idem:merchant_it:{key}"] <= 24 * 3600, "the key must expire within 24 h"
    wanted = {"payment.requested", "payment.authorized", "payment.captured"}
    wait_until(lambda: wanted <= _event_types(dev, payment["id"]), 10, 0.2, "notification recording every payment event")


@pytest.mark.category("payment path")
def test_a_retried_payment_is_the_same_payment(running: Running) -> None:
    """A client retry with the same Idempotency-Key gets the same payment: a network blip never charges twice."""
    dev = running("dev")
    key = f"it-retry-{uuid.uuid4()}"
    first = dev.create_payment(key)
    again = dev.create_payment(key)
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = dev.create_payment(key, amount_minor=9999)
    assert reused.status_code == 409 and reused.json()["error"] == "idempotency_key_reused", reused.text
    assert dev.query("SELECT count(*) FROM payment.payments WHERE idempotency_key = %s", key) == [(1,)]


def _payments_get_a_retryable_503_while_stopped(stack: RunningStack, kind: str, identifier: str) -> None:
    """Stop server ``identifier`` of ``kind`` (databases, caches): meanwhile a payment gets a retryable 503; start it again."""
    stack.action(kind, identifier, "stop")
    try:
        down = stack.create_payment()
        assert down.status_code == 503 and down.headers.get("Retry-After"), down.text
    finally:
        stack.action(kind, identifier, "start")


@pytest.mark.category("disaster recovery")
def test_services_recover_when_postgresql_restarts(running: Running) -> None:
    """With the database down payments get a retryable 503, and they work again once it is back, without restarting a task."""
    dev = running("dev")
    cluster = dev.outputs["auroraClusterIdentifier"]
    pids = dev.task_pids()
    _payments_get_a_retryable_503_while_stopped(dev, "databases", cluster)
    wait_until(lambda: dev.create_payment().status_code == 201, 20, 0.2, "a payment after PostgreSQL came back")
    assert dev.task_pids() == pids, "a task was restarted: the services must reconnect by themselves"


@pytest.mark.category("disaster recovery")
def test_services_recover_when_redis_restarts(running: Running) -> None:
    """With Redis down payments get a retryable 503; after a restart, which empties it, a retry still finds its payment."""
    dev = running("dev")
    group = dev.outputs["redisReplicationGroupId"]
    key = f"it-redis-{uuid.uuid4()}"
    before = dev.create_payment(key)
    assert before.status_code == 201, before.text
    pids = dev.task_pids()
    _payments_get_a_retryable_503_while_stopped(dev, "caches", group)
    assert dev.action("caches", group, "scan", {"match": "payments:*"})["keys"] == {}, "a restarted node starts empty"
    retry = wait_until(lambda: (r := dev.create_payment(key)).status_code == 201 and r, 20, 0.2, "a retry after Redis came back")
    assert retry.json()["id"] == before.json()["id"], "PostgreSQL's unique key is the backstop when Redis lost the key"
    assert dev.task_pids() == pids, "a task was restarted: the services must reconnect by themselves"


@pytest.mark.category("high availability")
def test_a_killed_task_is_replaced_and_taken_out_of_rotation(running: Running) -> None:
    """A task that dies gets no more traffic within the health-check window and is replaced: customers see no errors."""
    prod = running("prod")
    api = prod.service_name("api")
    status = prod.status()["services"][api]
    assert status["running"] == status["desired"] == 3
    victim = status["tasks"][0]
    timings = prod.detail["healthChecks"]
    # The longest a dead target can stay in rotation: failing the unhealthy threshold of checks, plus one poll of
    # the target group's registrations (ECS deregisters a stopped task at once; the ALB notices within a poll).
    window = timings["unhealthyThreshold"] * timings["intervalSeconds"] + timings["targetPollSeconds"]
    killed_at = time.monotonic()
    prod.action("services", api, "kill", {"taskId": victim["taskId"]})
    wait_until(
        lambda: victim["taskId"] not in {t["taskId"] for t in prod.status()["services"][api]["tasks"]},
        window,
        0.2,
        "the killed task leaving the service",
    )
    time.sleep(max(0.0, killed_at + window - time.monotonic()))
    statuses = [prod.request("GET", "/api/health").status_code for _ in range(30)]
    assert statuses == [200] * 30, f"the front door sent requests to the dead task: {statuses}"
    replaced = wait_until(
        lambda: (s := prod.status()["services"][api])["running"] == 3 and s["healthy"] == 3 and s,
        30,
        0.2,
        "three healthy api tasks again",
    )
    assert victim["taskId"] not in {t["taskId"] for t in replaced["tasks"]}
    assert replaced["replaced"] >= 1


@pytest.mark.category("cross-environment")
def test_dev_services_cannot_reach_prod_data_stores(running: Running) -> None:
    """dev's payment task, with its own role, cannot log in to prod's database or cache: a dev compromise stays in dev."""
    dev, prod = running("dev"), running("prod")
    payment = dev.service_name("payment")
    probe = ["python", "-m", "tests.integration.probe"]
    own_db = json.loads(dev.action("services", payment, "exec", {"argv": [*probe, "database"]})["stdout"])
    own_cache = json.loads(dev.action("services", payment, "exec", {"argv": [*probe, "cache"]})["stdout"])
    assert own_db["ok"] and own_cache["ok"], (own_db, own_cache)  # the probe works: dev reaches its own stores

    db_host, db_port = prod.local_address(prod.outputs["auroraWriterEndpoint"], int(prod.outputs["auroraPort"]))
    cache_host, cache_port = prod.local_address(prod.outputs["redisPrimaryEndpoint"], int(prod.outputs["redisPort"]))
    prod_db = {"DB_HOST": db_host, "DB_PORT": str(db_port), "DB_NAME": prod.outputs["auroraDatabaseName"]}
    prod_cache = {
        "REDIS_HOST": cache_host,
        "REDIS_PORT": str(cache_port),
        "REDIS_CACHE_NAME": prod.outputs["redisReplicationGroupId"],
        "REDIS_USER": str(prod.outputs["redisUserIds"]["payment"]),
    }
    into_db = json.loads(dev.action("services", payment, "exec", {"argv": [*probe, "database"], "env": prod_db})["stdout"])
    into_cache = json.loads(dev.action("services", payment, "exec", {"argv": [*probe, "cache"], "env": prod_cache})["stdout"])
    assert not into_db["ok"] and "authentication failed" in into_db["error"], into_db
    # WRONGPASS, which redis-py raises as AuthenticationError: the front refused dev's role for prod's user.
    assert not into_cache["ok"] and into_cache["error"].startswith("AuthenticationError: invalid username-password"), into_cache


@pytest.mark.category("security and PCI")
def test_plain_http_is_redirected_to_https(running: Running) -> None:
    """The front door answers plain HTTP only with a redirect to HTTPS: card tokens never travel in clear text."""
    import httpx

    prod = running("prod")
    response = httpx.get(f"{prod.door['http']}/api/health", headers={"Host": prod.door["host"]}, follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"].startswith(f"https://{prod.door['host']}")
