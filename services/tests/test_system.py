"""The three services as real processes (``python -m services.<name>``) on free 127.0.0.1 ports, each given exactly the
variables its task definition declares, against the session's PostgreSQL and Redis.

End to end api -> payment -> notification, idempotent retries, validation, card-data rejection (and proof that no card
number reaches a table, a Redis value or a log line), request ids, and outages of Redis and PostgreSQL that the running
processes ride out (503 with Retry-After during, success after, same pids).
"""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.common.config import required_variables
from services.common.schemas import PaymentRequest, request_hash
from services.payment.idempotency import Record, State, redis_key
from services.tests.support import (
    MAX_BODY,
    REDIS_USER,
    REPO_ROOT,
    ServiceProcess,
    contract_env,
    free_port,
    process_env,
    run_healthcheck,
    running,
    service_values,
    wait_until,
)
from tools.localplane.postgres import LocalPostgres
from tools.localplane.redis import LocalRedis

PAN = "4111111111111111"
PAN_FORMS = (PAN, "4111 1111 1111 1111", "4111-1111-1111-1111")


@dataclass
class Stack:
    """The running services and the backends behind them."""

    api: ServiceProcess
    payment: ServiceProcess
    notification: ServiceProcess
    postgres: LocalPostgres
    redis: LocalRedis
    dbname: str

    @property
    def processes(self) -> tuple[ServiceProcess, ...]:
        """All three."""
        return (self.api, self.payment, self.notification)


@pytest.fixture(scope="module")
def stack(
    postgres: LocalPostgres, redis_server: LocalRedis, migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """api, payment and notification started together; stopped (SIGTERM, then SIGKILL) whatever happens."""
    logs = tmp_path_factory.mktemp("service-logs")
    ports = {name: free_port() for name in ("api", "payment", "notification")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    processes = {}
    for name, port in ports.items():
        values = service_values(
            name, port, pg_port=postgres.port, dbname=migrated_database, redis_port=redis_server.port, urls=urls
        )
        declared = contract_env(name, values)
        assert set(declared) == required_variables(name)
        runtime = {"BIND_ADDRESS": "127.0.0.1", **({"AWS_REGION": "eu-west-1"} if name != "api" else {})}
        processes[name] = ServiceProcess(name, {**process_env(), **declared, **runtime}, logs / f"{name}.log")
    with running(list(processes.values())):
        yield Stack(processes["api"], processes["payment"], processes["notification"], postgres, redis_server, migrated_database)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client with a short timeout (nothing may hang)."""
    with httpx.Client(timeout=10.0) as http:
        yield http


def payment_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /api/payments body."""
    return {
        "amount_minor": 1999,
        "currency": "EUR",
        "merchant_id": "m_system",
        "payment_method_token": "tok_system_0001",
        **overrides,
    }


def event_body(payment_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A valid POST /internal/events body (a fresh event id) for ``payment_id``, carrying ``data``."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "payment.authorized",
        "payment_id": payment_id,
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": data,
    }


def create(client: httpx.Client, stack: Stack, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    """POST /api/payments with an Idempotency-Key."""
    return client.post(f"{stack.api.url}/api/payments", json=body, headers={"Idempotency-Key": key or f"key-{uuid.uuid4()}"})


def events_of(client: httpx.Client, stack: Stack, payment_id: str) -> list[dict[str, Any]]:
    """Events notification recorded for a payment."""
    response = client.get(f"{stack.notification.url}/internal/events", params={"payment_id": payment_id})
    assert response.status_code == 200
    events = response.json()["events"]
    assert isinstance(events, list)
    return events


@contextmanager
def stopped(server: LocalPostgres | LocalRedis) -> Iterator[None]:
    """``server`` down for the duration of the block, started again afterwards (whatever happens in the block)."""
    server.stop()
    try:
        yield
    finally:
        server.start()


def test_end_to_end_authorize_read_capture_and_events(stack: Stack, client: httpx.Client) -> None:
    """api -> payment (ledger) -> notification: 201, read back, capture, three events recorded once each."""
    response = create(client, stack, payment_body(description="order 42"))
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "authorized" and payment["amount_minor"] == 1999 and payment["currency"] == "EUR"
    assert payment["description"] == "order 42" and payment["captured_at"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert "idempotent-replayed" not in response.headers

    read = client.get(f"{stack.api.url}/api/payments/{payment['id']}")
    assert read.status_code == 200 and read.json() == payment

    captured = client.post(f"{stack.api.url}/api/payments/{payment['id']}/capture")
    assert captured.status_code == 200
    assert captured.json()["status"] == "captured" and captured.json()["captured_at"] is not None
    again = client.post(f"{stack.api.url}/api/payments/{payment['id']}/capture")
    assert again.status_code == 200 and again.json() == captured.json()

    events = wait_until(lambda: (e := events_of(client, stack, payment["id"])) and len(e) >= 3 and e, timeout=10)
    assert sorted(e["type"] for e in events) == ["payment.authorized", "payment.captured", "payment.requested"]
    assert all(e["data"]["merchant_id"] == "m_system" and e["data"]["amount_minor"] == 1999 for e in events)
    rows = stack.postgres.query(
        "SELECT t.kind, sum(CASE e.direction WHEN 'debit' THEN e.amount_minor ELSE 0 END),"
        " sum(CASE e.direction WHEN 'credit' THEN e.amount_minor ELSE 0 END), count(*) FROM payment.ledger_entries e"
        " JOIN payment.ledger_transactions t ON t.id = e.transaction_id"
        f" WHERE t.payment_id = '{payment['id']}' GROUP BY t.kind ORDER BY 1",
        dbname=stack.dbname,
    )
    assert rows == [("authorization", 1999, 1999, 2), ("capture", 3998, 3998, 4)]

    unknown = client.get(f"{stack.api.url}/api/payments/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "payment_not_found"


def test_events_are_recorded_once_per_event_id(stack: Stack, client: httpx.Client) -> None:
    """Sending the same event twice is accepted twice and stored once."""
    payment_id = str(uuid.uuid4())
    event = event_body(payment_id, {"merchant_id": "m_x"})
    first = client.post(f"{stack.notification.url}/internal/events", json=event)
    second = client.post(f"{stack.notification.url}/internal/events", json=event)
    assert (first.status_code, first.json()["duplicate"]) == (202, False)
    assert (second.status_code, second.json()["duplicate"]) == (202, True)
    assert len(events_of(client, stack, payment_id)) == 1


def test_idempotent_retry_returns_the_same_payment(stack: Stack, client: httpx.Client) -> None:
    """Same key + same body -> the same payment (201, Idempotent-Replayed); same key + other body -> 409; one row."""
    key = f"key-{uuid.uuid4()}"
    first = create(client, stack, payment_body(merchant_id="m_retry"), key)
    retry = create(client, stack, payment_body(merchant_id="m_retry"), key)
    conflict = create(client, stack, payment_body(merchant_id="m_retry", amount_minor=1), key)
    assert first.status_code == 201 and retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_key_reused"
    assert stack.postgres.query(
        f"SELECT count(*) FROM payment.payments WHERE idempotency_key = '{key}'", dbname=stack.dbname
    ) == [(1,)]
    with stack.redis.admin_client() as admin:
        stored = admin.get(redis_key("m_retry", key))
        assert stored is not None
        record = Record.loads(stored)
        assert record.state is State.COMPLETED and record.payment_id == first.json()["id"]
        assert 86000 < admin.ttl(redis_key("m_retry", key)) <= 86400


def test_a_key_still_in_flight_answers_409_with_retry_after(stack: Stack, client: httpx.Client) -> None:
    """While the first request with a key runs (its record in flight), a retry gets 409 and Retry-After."""
    key = f"key-{uuid.uuid4()}"
    body = payment_body(merchant_id="m_inflight")
    digest = request_hash(PaymentRequest.model_validate(body))
    with stack.redis.admin_client() as admin:
        admin.set(redis_key("m_inflight", key), Record(State.IN_FLIGHT, digest, owner="someone-else").dumps(), ex=30)
    response = create(client, stack, body, key)
    assert response.status_code == 409
    assert response.json()["error"] == "request_in_progress"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"amount_minor": 0}, ["body", "amount_minor"]),
        ({"amount_minor": "100"}, ["body", "amount_minor"]),
        ({"amount_minor": 10.5}, ["body", "amount_minor"]),
        ({"currency": "eur"}, ["body", "currency"]),
        ({"currency": "EURO"}, ["body", "currency"]),
        ({"payment_method_token": "tok_short"}, ["body", "payment_method_token"]),
        ({"payment_method_token": "card_abcdefgh"}, ["body", "payment_method_token"]),
        ({"capture": "yes"}, ["body", "capture"]),
        ({"merchant_id": "m:1"}, ["body", "merchant_id"]),
        ({"unexpected": "field"}, ["body", "unexpected"]),
    ],
)
def test_invalid_requests_are_422_without_echo(
    stack: Stack, client: httpx.Client, change: dict[str, Any], location: list[str]
) -> None:
    """Field validation at the api, with the field named and the submitted value never echoed."""
    response = create(client, stack, payment_body(**change))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [error["loc"] for error in body["errors"]] == [location]
    assert all(set(error) == {"loc", "type", "msg"} for error in body["errors"])  # no "input", no "ctx"
    for value in change.values():
        if isinstance(value, str):
            assert json.dumps(value) not in response.text


def test_idempotency_key_header_is_required_and_bounded(stack: Stack, client: httpx.Client) -> None:
    """Missing, 7 or 129 characters -> 422; 8 and 128 are fine."""
    url = f"{stack.api.url}/api/payments"
    assert client.post(url, json=payment_body()).status_code == 422
    assert client.post(url, json=payment_body(), headers={"Idempotency-Key": "k" * 7}).status_code == 422
    assert client.post(url, json=payment_body(), headers={"Idempotency-Key": "k" * 129}).status_code == 422
    assert client.post(url, json=payment_body(), headers={"Idempotency-Key": f"k{uuid.uuid4().hex[:7]}"}).status_code == 201
    assert client.post(url, json=payment_body(), headers={"Idempotency-Key": "k" * 96 + uuid.uuid4().hex}).status_code == 201


def test_bodies_over_the_limit_are_413_before_parsing(stack: Stack, client: httpx.Client) -> None:
    """Declared or streamed (chunked) bodies larger than MAX_REQUEST_BODY_BYTES get 413, on every service."""
    oversized = json.dumps(payment_body(description="x" * MAX_BODY)).encode()
    for process, path in (
        (stack.api, "/api/payments"),
        (stack.payment, "/internal/payments"),
        (stack.notification, "/internal/events"),
    ):
        response = client.post(
            process.url + path, content=oversized, headers={"content-type": "application/json", "Idempotency-Key": "key-00000000"}
        )
        assert response.status_code == 413, process.name
        assert response.json() == {
            "error": "request_too_large",
            "message": f"the request body exceeds {MAX_BODY} bytes",
            "max_bytes": MAX_BODY,
            "request_id": response.headers["x-request-id"],
        }

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 512 + 2):
            yield b" " * 512

    streamed = client.post(
        f"{stack.api.url}/api/payments",
        content=chunks(),
        headers={"content-type": "application/json", "Idempotency-Key": "key-00000000"},
    )
    assert streamed.status_code == 413


def test_public_prefixes_expose_only_health(stack: Stack, client: httpx.Client) -> None:
    """Health answers 200 on each service's prefix; internal routes are unreachable through a public prefix."""
    for process in stack.processes:
        response = client.get(f"{process.url}/{process.name}/health")
        assert response.status_code == 200 and response.json() == {"status": "ok", "service": process.name}
    assert client.get(f"{stack.payment.url}/payment/internal/payments/{uuid.uuid4()}").status_code == 404
    # Sent raw (HTTP clients, httpx included, would normalise the dots away before sending).
    for raw_path in (f"/payment/../internal/payments/{uuid.uuid4()}", "/payment/%2e%2e/internal/events", "/payment//health"):
        conn = http.client.HTTPConnection("127.0.0.1", stack.payment.port, timeout=5)
        try:
            conn.request("GET", raw_path)
            traversal = conn.getresponse()
            assert traversal.status == 400, raw_path
            assert json.loads(traversal.read())["error"] == "bad_path"
        finally:
            conn.close()
    assert client.get(f"{stack.api.url}/internal/payments/{uuid.uuid4()}").status_code == 404


def test_request_id_is_propagated_east_west(stack: Stack, client: httpx.Client) -> None:
    """A well-formed incoming X-Request-Id comes back and appears on payment's access line for the forwarded call."""
    request_id = f"req-{uuid.uuid4().hex}"
    response = client.post(
        f"{stack.api.url}/api/payments",
        json=payment_body(),
        headers={"Idempotency-Key": f"key-{uuid.uuid4()}", "X-Request-Id": request_id},
    )
    assert response.status_code == 201 and response.headers["x-request-id"] == request_id

    def forwarded() -> bool:
        return any(
            r.get("request_id") == request_id and r.get("path") == "/internal/payments" for r in stack.payment.log_records()
        )

    wait_until(forwarded, timeout=5)
    bad = client.get(f"{stack.api.url}/api/health", headers={"X-Request-Id": "bad id with spaces"})
    assert bad.headers["x-request-id"] != "bad id with spaces"


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("description", "$.description"),
        ("description_spaced", "$.description"),
        ("merchant_id", "$.merchant_id"),
        ("token", "$.payment_method_token"),
        ("extra_number", "$.card_number"),
        ("nested", "$.metadata.card.number"),
        ("idempotency_header", "header idempotency-key"),
        ("query", "url"),
    ],
)
def test_card_numbers_are_rejected_without_echo(stack: Stack, client: httpx.Client, where: str, field: str) -> None:
    """A PAN in any field (body value, number, nested, key header, query) -> 422 naming where, never showing it."""
    body = payment_body()
    key = f"key-{uuid.uuid4()}"
    params: dict[str, str] = {}
    if where == "description":
        body["description"] = f"card {PAN} exp 12/29"
    elif where == "description_spaced":
        body["description"] = "4111 1111 1111 1111"
    elif where == "merchant_id":
        body["merchant_id"] = PAN
    elif where == "token":
        body["payment_method_token"] = f"tok_{PAN}"
    elif where == "extra_number":
        body["card_number"] = int(PAN)
    elif where == "nested":
        body["metadata"] = {"card": {"number": "4111-1111-1111-1111"}}
    elif where == "idempotency_header":
        key = f"key-{PAN}"
    else:
        params["card"] = PAN
    response = client.post(f"{stack.api.url}/api/payments", json=body, headers={"Idempotency-Key": key}, params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "card_data_rejected"
    assert response.json()["field"] == field
    assert not any(form in response.text for form in PAN_FORMS)


def test_card_numbers_rejected_by_internal_services_too(stack: Stack, client: httpx.Client) -> None:
    """payment and notification apply the same rule to calls that do not come through the api."""
    event = event_body(str(uuid.uuid4()), {"note": PAN})
    assert client.post(f"{stack.notification.url}/internal/events", json=event).status_code == 422
    response = client.post(
        f"{stack.payment.url}/internal/payments",
        json=payment_body(description=PAN),
        headers={"Idempotency-Key": f"key-{uuid.uuid4()}"},
    )
    assert response.status_code == 422


def test_health_check_module_against_the_running_services(stack: Stack) -> None:
    """The container health check command succeeds against each live service (with its PORT and HEALTH_CHECK_PATH)."""
    for process in stack.processes:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO_ROOT),
            "PORT": process.env["PORT"],
            "HEALTH_CHECK_PATH": process.env["HEALTH_CHECK_PATH"],
        }
        result = run_healthcheck(env)
        assert result.returncode == 0, (process.name, result.stderr)


def test_redis_outage_is_503_then_recovers_without_restart(stack: Stack, client: httpx.Client) -> None:
    """Redis down: creating a payment -> 503 + Retry-After (fast); reads (no Redis) still work; health stays 200.
    Redis back: the same payment process creates payments again."""
    existing = create(client, stack, payment_body(merchant_id="m_redis_outage"))
    assert existing.status_code == 201
    pids = [p.pid for p in stack.processes]
    with stopped(stack.redis):
        started = time.monotonic()
        during = create(client, stack, payment_body(merchant_id="m_redis_outage"))
        elapsed = time.monotonic() - started
        assert during.status_code == 503, during.text
        assert during.json()["error"] == "dependency_unavailable" and during.json()["dependency"] == "cache"
        assert during.headers["retry-after"] == "2"
        assert elapsed < 5.0
        assert client.get(f"{stack.api.url}/api/payments/{existing.json()['id']}").status_code == 200
        assert client.get(f"{stack.payment.url}/payment/health").status_code == 200
    after = wait_until(
        lambda: (r := create(client, stack, payment_body(merchant_id="m_redis_outage"))).status_code == 201 and r, timeout=15
    )
    assert after.json()["status"] == "authorized"
    assert [p.pid for p in stack.processes] == pids and all(p.popen and p.popen.poll() is None for p in stack.processes)


def test_postgres_outage_is_503_then_recovers_without_restart(stack: Stack, client: httpx.Client) -> None:
    """PostgreSQL down: payment and notification answer 503 + Retry-After within seconds; health stays 200.
    PostgreSQL back: the same processes serve again (their pools reconnect with fresh tokens)."""
    existing = create(client, stack, payment_body(merchant_id="m_pg_outage"))
    assert existing.status_code == 201
    pids = [p.pid for p in stack.processes]
    with stopped(stack.postgres):
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=3) as pool:  # concurrently: each waits for its pool checkout timeout
            during_f = pool.submit(create, client, stack, payment_body(merchant_id="m_pg_outage"))
            read_f = pool.submit(client.get, f"{stack.api.url}/api/payments/{existing.json()['id']}")
            events_f = pool.submit(
                client.get, f"{stack.notification.url}/internal/events", params={"payment_id": existing.json()["id"]}
            )
            during, read, events = during_f.result(), read_f.result(), events_f.result()
        elapsed = time.monotonic() - started
        for response in (during, read, events):
            assert response.status_code == 503, response.text
            assert response.json()["dependency"] == "database"
            assert response.headers["retry-after"] == "2"
        assert elapsed < 12.0
        for process in stack.processes:
            assert client.get(f"{process.url}/{process.name}/health").status_code == 200
    after = wait_until(
        lambda: (r := create(client, stack, payment_body(merchant_id="m_pg_outage"))).status_code == 201 and r, timeout=20
    )
    assert client.get(f"{stack.api.url}/api/payments/{after.json()['id']}").status_code == 200
    wait_until(
        lambda: (
            client.get(f"{stack.notification.url}/internal/events", params={"payment_id": str(uuid.uuid4())}).status_code == 200
        ),
        timeout=20,
    )
    assert [p.pid for p in stack.processes] == pids


def test_no_card_number_is_stored_or_logged_and_logs_are_json(stack: Stack) -> None:
    """After every test above (PANs sent many ways): no table, no Redis value and no log line holds one; every log line
    is a JSON object and every request has one access line with the path template."""
    dump = stack.postgres.query(
        "SELECT string_agg(t::text, ' ') FROM ("
        " SELECT row_to_json(p)::text AS t FROM payment.payments p UNION ALL"
        " SELECT row_to_json(e)::text FROM payment.ledger_entries e UNION ALL"
        " SELECT row_to_json(x)::text FROM payment.ledger_transactions x UNION ALL"
        " SELECT row_to_json(n)::text FROM notification.events n) rows",
        dbname=stack.dbname,
    )[0][0]
    assert dump and "m_system" in dump
    with stack.redis.admin_client() as admin:
        keys = [k.decode() for k in admin.scan_iter("*")]
        values = " ".join((admin.get(k) or b"").decode() for k in keys)
    for form in PAN_FORMS:
        assert form not in dump
        assert form not in " ".join(keys) + values
    for process in stack.processes:
        text = process.log_text()
        for form in PAN_FORMS:
            assert form not in text, process.name
        records = process.log_records()  # raises on any non-JSON line
        access = [r for r in records if r.get("logger") == "access"]
        assert access, process.name
        for record in access:
            assert {"method", "path", "status", "ms", "request_id"} <= set(record)
            assert "?" not in record["path"] and not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", record["path"]), record["path"]
    api_paths = {r["path"] for r in stack.api.log_records() if r.get("logger") == "access"}
    assert {"/api/payments", "/api/payments/{payment_id}", "/api/payments/{payment_id}/capture", "/api/health"} <= api_paths
    rejected = [r for r in stack.api.log_records() if r.get("logger") == "access" and r["status"] == 422]
    assert rejected and {r["path"] for r in rejected} == {"/api/payments"}, [r for r in rejected if r["path"] != "/api/payments"]


def test_processes_stop_gracefully_on_sigterm(stack: Stack) -> None:
    """SIGTERM (what ECS sends) stops each service within seconds; uvicorn re-raises the signal after its graceful
    shutdown, so the status is -SIGTERM (143 in a container), and the log says the shutdown completed."""
    for process in stack.processes:
        started = time.monotonic()
        status = process.stop()
        assert status == -15, (process.name, status)
        assert time.monotonic() - started < 10
        assert any(r.get("message") == "Application shutdown complete." for r in process.log_records()), process.name
    assert "REDIS_USER" in required_variables("payment") and REDIS_USER


def test_payment_starts_and_stays_live_without_its_dependencies(
    tmp_path_factory: pytest.TempPathFactory, client: httpx.Client
) -> None:
    """Started while PostgreSQL and Redis are unreachable: health is 200 (liveness only), requests get 503 quickly."""
    nothing = free_port()  # nobody listens here
    port = free_port()
    urls = {"notification": f"http://127.0.0.1:{free_port()}"}
    values = service_values("payment", port, pg_port=nothing, dbname="scalepay", redis_port=nothing, urls=urls)
    env = {**process_env(), **contract_env("payment", values), "BIND_ADDRESS": "127.0.0.1", "AWS_REGION": "eu-west-1"}
    process = ServiceProcess("payment", env, tmp_path_factory.mktemp("orphan") / "payment.log")
    with running([process]):
        assert client.get(f"{process.url}/payment/health").status_code == 200
        started = time.monotonic()
        read = client.get(f"{process.url}/internal/payments/{uuid.uuid4()}")
        assert read.status_code == 503 and read.json()["dependency"] == "database"
        created = client.post(
            f"{process.url}/internal/payments", json=payment_body(), headers={"Idempotency-Key": f"key-{uuid.uuid4()}"}
        )
        assert created.status_code == 503 and created.json()["dependency"] == "cache"
        assert time.monotonic() - started < 5.0
