"""ServiceConnectProxy / ServiceConnectMesh against real upstream apps: balancing, retries, 503s, health, aliases."""

# ruff: noqa: F811 - fixtures imported from frontdoor_fixtures are requested by parameter name

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from frontdoor_fixtures import (  # noqa: F401 - fixtures, requested by parameter name
    FAST_HEALTH,
    Breaker,
    RawServers,
    UpstreamFactory,
    breaker,
    dead_port,
    raw_servers,
    upstreams,
)

from tests.polling import wait_until
from tools.localplane.service_connect import ServiceConnectMesh, ServiceConnectProxy
from tools.localplane.upstreams import Target, TargetState


@pytest.fixture
def proxy() -> Iterator[ServiceConnectProxy]:
    """A started ``payment:8080`` proxy without active health checks, stopped at teardown."""
    p = ServiceConnectProxy("payment:8080", None, max_retries=2)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as c:
        yield c


def test_proxy_balances_round_robin_over_the_service_tasks(
    proxy: ServiceConnectProxy, upstreams: UpstreamFactory, client: httpx.Client
) -> None:
    tasks = [upstreams(name) for name in ("p1", "p2", "p3")]
    proxy.set_targets([t.target for t in tasks])
    assert proxy.url == f"http://127.0.0.1:{proxy.port}" and proxy.port > 0

    names = [client.get(f"{proxy.url}/v1/charges?x=1", headers={"host": "payment:8080"}).json()["identity"] for _ in range(30)]
    assert {n: names.count(n) for n in set(names)} == {"p1": 10, "p2": 10, "p3": 10}

    seen = client.post(f"{proxy.url}/v1/charges", content=b"12345", headers={"host": "payment:8080"}).json()
    headers = dict(seen["headers"])
    assert (seen["method"], seen["path"], seen["body_len"]) == ("POST", "/v1/charges", 5)
    assert headers["host"] == "payment:8080"  # the alias the client used, as Envoy passes it on
    assert len(headers["x-request-id"]) == 32
    assert proxy.stats()["status"] == {200: 31}


def test_proxy_answers_503_without_tasks_and_when_every_task_refuses(proxy: ServiceConnectProxy, client: httpx.Client) -> None:
    response = client.get(f"{proxy.url}/v1/x")
    assert response.status_code == 503 and response.json() == {"error": "no healthy upstream"}

    proxy.set_targets([Target("127.0.0.1", dead_port()) for _ in range(4)])
    response = client.get(f"{proxy.url}/v1/x")
    assert response.status_code == 503
    assert response.json() == {"error": "upstream connect error or disconnect/reset before headers"}
    stats = proxy.stats()
    assert stats["retries"] == 2  # max_retries further attempts, then give up
    assert sum(stats["per_target"].values()) == 3


def test_proxy_retries_failed_connections_on_another_task(
    proxy: ServiceConnectProxy, upstreams: UpstreamFactory, client: httpx.Client
) -> None:
    good = upstreams("good")
    dead = Target("127.0.0.1", dead_port())
    proxy.set_targets([dead, good.target])
    # Connection refused: the request never reached a task, so even POST is retried elsewhere.
    for method in ("GET", "POST", "GET", "POST"):
        response = client.request(method, f"{proxy.url}/v1/refunds", content=b"{}" if method == "POST" else None)
        assert response.status_code == 200 and response.json()["identity"] == "good"
    # The retry takes the next target in the rotation, so each request starts on the refusing task again.
    stats = proxy.stats()
    assert stats["retries"] == 4 and stats["per_target"] == {str(dead): 4, str(good.target): 4}
    assert [status.errors for status in proxy.pool.snapshot().values()] == [4, 0]


def test_proxy_retries_only_idempotent_requests_once_the_request_was_sent(
    proxy: ServiceConnectProxy, breaker: Breaker, upstreams: UpstreamFactory, client: httpx.Client
) -> None:
    good = upstreams("good")
    proxy.set_targets([breaker.target, good.target])
    # Round robin alternates the first attempt: breaker, good, breaker, good.
    statuses = [client.post(f"{proxy.url}/v1/charges", content=b"{}").status_code for _ in range(4)]
    assert statuses == [503, 200, 503, 200]
    assert len(breaker.hits) == 2  # each failed POST reached the task once and was not sent again
    assert [r["method"] for r in good.received] == ["POST", "POST"]

    for method in ("GET", "PUT", "DELETE"):
        assert client.request(method, f"{proxy.url}/v1/charges/1").status_code == 200
    assert [r["method"] for r in good.received][2:] == ["GET", "PUT", "DELETE"]


def test_proxy_with_a_health_check_admits_tasks_only_when_healthy(upstreams: UpstreamFactory, client: httpx.Client) -> None:
    old, new = upstreams("old"), upstreams("new")
    new.healthy = False
    p = ServiceConnectProxy("notification:8080", FAST_HEALTH)
    p.start()
    try:
        p.set_targets([old.target, new.target])
        wait_until(lambda: p.pool.snapshot()[old.target].state is TargetState.HEALTHY)
        wait_until(lambda: len(new.checks()) >= 2)
        assert p.pool.snapshot()[new.target].state is TargetState.UNHEALTHY
        assert {client.get(f"{p.url}/x").json()["identity"] for _ in range(6)} == {"old"}
        new.healthy = True
        wait_until(lambda: p.pool.snapshot()[new.target].state is TargetState.HEALTHY)
        assert sorted(client.get(f"{p.url}/x").json()["identity"] for _ in range(4)) == ["new", "new", "old", "old"]
    finally:
        p.stop()


def test_mesh_gives_each_alias_its_own_local_endpoint_and_rewrites_urls(upstreams: UpstreamFactory, client: httpx.Client) -> None:
    api, payment, notification = upstreams("api"), upstreams("payment"), upstreams("notification")
    mesh = ServiceConnectMesh("scalepay-dev.local")
    mesh.add("api:8080")
    mesh.add("payment:8080")
    mesh.start()
    try:
        assert len(set(mesh.endpoints().values())) == 2
        mesh.add("notification:8080")  # added while running: started at once
        mesh.set_targets("api:8080", [api.target])
        mesh.set_targets("payment:8080", [payment.target])
        mesh.set_targets("notification:8080", [notification.target])
        endpoints = mesh.endpoints()
        assert set(endpoints) == {"api:8080", "payment:8080", "notification:8080"}
        assert all(url.startswith("http://127.0.0.1:") for url in endpoints.values())
        for alias, identity in (("api:8080", "api"), ("payment:8080", "payment"), ("notification:8080", "notification")):
            assert client.get(f"{endpoints[alias]}/ping").json()["identity"] == identity
        assert mesh.rewrite("http://payment:8080/v1/charges?x=1") == f"{endpoints['payment:8080']}/v1/charges?x=1"
        assert mesh.rewrite("http://unknown:8080/x") == "http://unknown:8080/x"
        with pytest.raises(ValueError, match="already exists"):
            mesh.add("api:8080")
    finally:
        mesh.stop()
    with pytest.raises(httpx.ConnectError):
        client.get(f"{endpoints['payment:8080']}/ping")


OK_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


def test_stale_keep_alive_connection_is_replaced_for_idempotent_requests_only(
    proxy: ServiceConnectProxy, raw_servers: RawServers, client: httpx.Client
) -> None:
    """A target that closes a kept-alive connection just as the next request arrives (the keep-alive race)."""
    requests: list[bytes] = []

    async def answer_first_request_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(OK_RESPONSE)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))  # read the second request, then hang up unanswered
        writer.close()

    target = raw_servers(answer_first_request_per_connection)
    proxy.set_targets([target])
    assert client.get(f"{proxy.url}/a").text == "ok"  # leaves the connection in the proxy's pool
    # GET on the pooled connection is read and dropped: the forwarder retries it once on a fresh connection.
    assert client.get(f"{proxy.url}/b").text == "ok"
    assert [r.split(b" ", 2)[:2] for r in requests] == [[b"GET", b"/a"], [b"GET", b"/b"], [b"GET", b"/b"]]
    # A POST may have been processed: it is not sent again.
    response = client.post(f"{proxy.url}/c", content=b"{}")
    assert response.status_code == 503
    assert [r.split(b" ", 2)[:2] for r in requests[3:]] == [[b"POST", b"/c"]]
    assert proxy.stats()["retries"] == 0  # the proxy itself has no second task to try


def test_streamed_and_truncated_target_responses(
    proxy: ServiceConnectProxy, upstreams: UpstreamFactory, raw_servers: RawServers
) -> None:
    streaming = upstreams("streaming")

    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        await writer.drain()
        writer.close()

    truncating = raw_servers(truncate)
    proxy.set_targets([streaming.target])
    with httpx.Client(timeout=5, trust_env=False) as c:
        response = c.get(f"{proxy.url}/events?chunks=5")
        assert response.status_code == 200 and response.text == "chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;"
        assert response.headers["x-upstream"] == "streaming" and "content-length" not in response.headers
        head = c.head(f"{proxy.url}/x")
        assert head.status_code == 200 and head.content == b""

        proxy.set_targets([truncating])
        with pytest.raises(httpx.RemoteProtocolError):
            c.get(f"{proxy.url}/x")  # the status went out; the cut body becomes a cut connection
