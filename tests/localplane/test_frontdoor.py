"""FrontDoor (the ALB stand-in) against real upstream apps: listeners, TLS, routing, health, draining, WAF, logs."""

# ruff: noqa: F811 - fixtures imported from frontdoor_fixtures are requested by parameter name

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from frontdoor_fixtures import (  # noqa: F401 - fixtures, requested by parameter name
    FAST_HEALTH,
    Breaker,
    TlsFiles,
    Upstream,
    UpstreamFactory,
    breaker,
    client_context,
    dead_port,
    tls_files,
    upstreams,
)

from tests.polling import wait_until
from tools.localplane.frontdoor import (
    BodySizeRule,
    FixedResponse,
    FrontDoor,
    FrontDoorConfig,
    NotEmulatedRule,
    RateRule,
    RedirectConfig,
    Rule,
    TargetGroupConfig,
    WafConfig,
    compile_path_pattern,
)
from tools.localplane.upstreams import BackgroundLoop, HealthCheck, Target, TargetState

API, PAYMENT, SPECIAL = "arn:tg/api", "arn:tg/payment", "arn:tg/special"
StartFrontDoor = Callable[[FrontDoorConfig], FrontDoor]
StartApiDoor = Callable[..., FrontDoor]
NOT_FOUND = '{"error":"not found"}'


class Registry:
    """A mutable target source: what tests register is what the front door polls."""

    def __init__(self) -> None:
        self.targets: dict[str, list[Target]] = {}

    def __call__(self, arn: str) -> list[Target]:
        return list(self.targets.get(arn, []))


def make_config(tls: TlsFiles, **overrides: object) -> FrontDoorConfig:
    config = FrontDoorConfig(
        cert_path=tls.cert_path,
        key_path=tls.key_path,
        # Deliberately not in priority order: the priority decides, not the list position.
        rules=[
            Rule(20, ["/payment/*"], PAYMENT),
            Rule(10, ["/api/*"], API),
            Rule(5, ["/api/special/*", "/api/v?/special"], SPECIAL),
        ],
        default_response=FixedResponse(404, "application/json", NOT_FOUND),
        target_groups={
            API: TargetGroupConfig("api-tg", FAST_HEALTH),
            PAYMENT: TargetGroupConfig("payment-tg", FAST_HEALTH),
            SPECIAL: TargetGroupConfig("special-tg", FAST_HEALTH),
        },
        redirect=RedirectConfig(),
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def start_front_door(registry: Registry) -> Iterator[StartFrontDoor]:
    """Start front doors polling ``registry`` every 50 ms; all are stopped at teardown."""
    started: list[FrontDoor] = []

    def start(config: FrontDoorConfig) -> FrontDoor:
        door = FrontDoor(config, registry, poll_interval_s=0.05)
        door.start()
        started.append(door)
        return door

    try:
        yield start
    finally:
        for door in started:
            door.stop()


@pytest.fixture
def api(upstreams: UpstreamFactory, registry: Registry) -> Upstream:
    """An upstream app ``api``, registered as the only target of the API target group."""
    upstream = upstreams("api")
    registry.targets = {API: [upstream.target]}
    return upstream


@pytest.fixture
def start_api_door(tls_files: TlsFiles, api: Upstream, start_front_door: StartFrontDoor) -> StartApiDoor:
    """``start_api_door(**overrides)``: a front door (``make_config`` with ``overrides``), once ``api`` is healthy behind it."""

    def start(**overrides: object) -> FrontDoor:
        door = start_front_door(make_config(tls_files, **overrides))
        wait_until(lambda: healthy(door, API, api.target))
        return door

    return start


@pytest.fixture
def client(tls_files: TlsFiles) -> Iterator[httpx.Client]:
    with httpx.Client(verify=client_context(tls_files), timeout=5, trust_env=False) as c:
        yield c


def healthy(door: FrontDoor, arn: str, *targets: Target) -> bool:
    snapshot = door.pools[arn].snapshot()
    return all(t in snapshot and snapshot[t].state is TargetState.HEALTHY for t in targets)


def identities(client: httpx.Client, url: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        response = client.get(url)
        assert response.status_code == 200, response.text
        out.append(response.json()["identity"])
    return out


# --- listeners and TLS ------------------------------------------------------------------------------------------


def test_http_listener_redirects_to_the_https_port_with_path_and_query(
    tls_files: TlsFiles, start_front_door: StartFrontDoor
) -> None:
    door = start_front_door(make_config(tls_files))
    assert door.http_url is not None and door.http_port not in (0, door.https_port)
    with httpx.Client(trust_env=False, follow_redirects=False) as plain:
        response = plain.get(f"{door.http_url}/payment/v1/charges?limit=5&cursor=a%20b")
        assert response.status_code == 301
        assert response.headers["location"] == f"https://127.0.0.1:{door.https_port}/payment/v1/charges?limit=5&cursor=a%20b"
        # The host comes from the Host header, the port is always the local HTTPS listener's.
        response = plain.post(f"{door.http_url}/", headers={"host": "localhost:80"}, content=b"x")
        assert response.status_code == 301
        assert response.headers["location"] == f"https://localhost:{door.https_port}/"


def test_https_is_served_with_the_listener_certificate_only_to_clients_trusting_it(
    tls_files: TlsFiles, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    door = start_front_door(make_config(tls_files))
    response = client.get(f"{door.https_url}/nowhere")
    assert response.status_code == 404
    with httpx.Client(trust_env=False) as untrusting, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get(f"{door.https_url}/nowhere")


def _handshake(port: int, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


def _can_speak_tls11(tls: TlsFiles) -> bool:
    """Whether this OpenSSL can negotiate TLS 1.1 at all (in memory, with a permissive server context)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.minimum_version = ssl.TLSVersion.TLSv1
    server.load_cert_chain(tls.cert_path, tls.key_path)
    client = client_context(tls, ssl.TLSVersion.TLSv1_1)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    try:
        for _ in range(10):
            for side in (c, s):
                try:
                    side.do_handshake()
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        return c.version() == "TLSv1.1"
    except ssl.SSLError:
        return False


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # legacy versions on purpose
def test_tls_1_1_is_refused_and_tls_1_2_and_1_3_are_accepted(tls_files: TlsFiles, start_front_door: StartFrontDoor) -> None:
    door = start_front_door(make_config(tls_files))
    assert _handshake(door.https_port, client_context(tls_files, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert _handshake(door.https_port, client_context(tls_files, ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    if not _can_speak_tls11(tls_files):
        pytest.skip("this OpenSSL cannot negotiate TLS 1.1 even with a permissive server: refusal would prove nothing")
    with pytest.raises(ssl.SSLError):
        _handshake(door.https_port, client_context(tls_files, ssl.TLSVersion.TLSv1_1))


def test_a_tls_1_3_policy_refuses_tls_1_2(tls_files: TlsFiles, start_front_door: StartFrontDoor) -> None:
    door = start_front_door(make_config(tls_files, min_tls_version="TLSv1.3"))
    assert _handshake(door.https_port, client_context(tls_files, ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        _handshake(door.https_port, client_context(tls_files, ssl.TLSVersion.TLSv1_2))


# --- routing --------------------------------------------------------------------------------------------------


def test_path_patterns_follow_alb_semantics() -> None:
    pattern = compile_path_pattern("/api/*")
    assert pattern.fullmatch("/api/") and pattern.fullmatch("/api/v1/a/b") and pattern.fullmatch("/api/x\ny")
    assert not pattern.fullmatch("/api") and not pattern.fullmatch("/API/x") and not pattern.fullmatch("/v1/api/x")
    one = compile_path_pattern("/v?/x.json")
    assert one.fullmatch("/v1/x.json") and not one.fullmatch("/v10/x.json") and not one.fullmatch("/v1/xxjson")


def test_rules_route_by_priority_and_unknown_paths_get_the_default_action(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    api, payment, special = upstreams("api"), upstreams("payment"), upstreams("special")
    registry.targets = {API: [api.target], PAYMENT: [payment.target], SPECIAL: [special.target]}
    door = start_front_door(make_config(tls_files))
    wait_until(
        lambda: (
            healthy(door, API, api.target) and healthy(door, PAYMENT, payment.target) and healthy(door, SPECIAL, special.target)
        )
    )

    expected = {
        "/api/v1/charges": "api",
        "/api/special/x": "special",  # priority 5 beats /api/* at 10
        "/api/v2/special": "special",  # '?' is one character
        "/api/v22/special": "api",
        "/payment/v1/x": "payment",
    }
    for path, identity in expected.items():
        response = client.get(f"{door.https_url}{path}?q=1")
        assert response.status_code == 200, path
        assert response.json()["identity"] == identity, path
        assert response.json()["path"] == path and response.json()["query"] == "q=1"

    for path in ("/", "/API/v1/charges", "/payment", "/notification/x"):
        response = client.get(f"{door.https_url}{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert response.text == NOT_FOUND
    assert door.stats()["status"] == {200: 5, 404: 4}


def test_request_reaches_the_target_whole_with_forwarded_headers(start_api_door: StartApiDoor, client: httpx.Client) -> None:
    door = start_api_door()

    body = b"amount=1000&currency=EUR"
    response = client.put(
        f"{door.https_url}/api/v1/charges/ch_1?expand=customer",
        content=body,
        headers={
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-proto": "http",  # forged by the client: the front door overwrites it
            "x-custom": "kept",
            "x-secret-hop": "dropped",
            "connection": "keep-alive, x-secret-hop",
            "te": "trailers",
            "authorization": "Bearer abc",
        },
    )
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "api"
    seen = response.json()
    headers = {}
    for name, value in seen["headers"]:
        assert name not in headers, f"duplicate header {name}"
        headers[name] = value
    assert (seen["method"], seen["path"], seen["query"], seen["body_len"]) == (
        "PUT",
        "/api/v1/charges/ch_1",
        "expand=customer",
        len(body),
    )
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == str(door.https_port)
    assert headers["x-amzn-trace-id"].startswith("Root=1-") and len(headers["x-amzn-trace-id"]) == len("Root=1-") + 8 + 1 + 24
    assert headers["x-custom"] == "kept" and headers["authorization"] == "Bearer abc"
    assert headers["content-length"] == str(len(body))
    assert headers["host"] == f"127.0.0.1:{door.https_port}"
    for hop in ("te", "x-secret-hop", "keep-alive", "transfer-encoding"):
        assert hop not in headers
    assert headers.get("connection", "keep-alive") == "keep-alive"  # the front door's own upstream connection


# --- health and rotation --------------------------------------------------------------------------------------


def test_new_target_gets_no_traffic_before_healthy_threshold_passing_checks(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    old, new = upstreams("old"), upstreams("new")
    registry.targets = {API: [old.target]}
    health = HealthCheck("/health", interval_s=0.03, timeout_s=0.5, healthy_threshold=4, unhealthy_threshold=2, matcher="200")
    door = start_front_door(
        make_config(tls_files, target_groups={API: TargetGroupConfig("api-tg", health)}, rules=[Rule(1, ["/api/*"], API)])
    )
    wait_until(lambda: healthy(door, API, old.target))

    new.healthy = False
    registry.targets = {API: [old.target, new.target]}
    wait_until(lambda: len(new.checks()) >= 3)
    assert door.pools[API].snapshot()[new.target].state is TargetState.UNHEALTHY
    assert set(identities(client, f"{door.https_url}/api/x", 10)) == {"old"}

    new.healthy = True
    deadline = time.monotonic() + 3
    seen: list[str] = []
    while "new" not in seen and time.monotonic() < deadline:
        seen += identities(client, f"{door.https_url}/api/x", 2)
    assert "new" in seen
    # The timeline as the new target saw it: at least 4 consecutive passing checks before its first request.
    timeline = list(new.events)
    first_request = next(i for i, (kind, _) in enumerate(timeline) if kind == "request")
    checks_before = [ok for kind, ok in timeline[:first_request] if kind == "check"]
    assert checks_before[-4:] == [True] * 4
    assert door.pools[API].snapshot()[new.target].state is TargetState.HEALTHY


def test_failing_target_leaves_rotation_after_unhealthy_threshold_and_returns_after_recovering(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    a, b = upstreams("a"), upstreams("b")
    registry.targets = {API: [a.target, b.target]}
    health = HealthCheck("/health", interval_s=0.1, timeout_s=0.5, healthy_threshold=2, unhealthy_threshold=3, matcher="200-299")
    door = start_front_door(
        make_config(tls_files, target_groups={API: TargetGroupConfig("api-tg", health)}, rules=[Rule(1, ["/api/*"], API)])
    )
    wait_until(lambda: healthy(door, API, a.target, b.target))
    pool = door.pools[API]

    checks_before = len(b.checks())
    b.healthy = False
    wait_until(lambda: len(b.checks()) >= checks_before + 1)
    status = pool.snapshot()[b.target]
    assert status.state is TargetState.HEALTHY and status.consecutive_failures <= 1  # one failure is not enough

    wait_until(lambda: pool.snapshot()[b.target].state is TargetState.UNHEALTHY)
    assert pool.snapshot()[b.target].consecutive_failures == 3
    assert b.checks()[checks_before:][:3] == [False, False, False]
    assert set(identities(client, f"{door.https_url}/api/x", 10)) == {"a"}

    b.healthy = True
    wait_until(lambda: pool.snapshot()[b.target].state is TargetState.HEALTHY)
    assert pool.snapshot()[b.target].consecutive_successes >= 2
    names = identities(client, f"{door.https_url}/api/x", 10)
    assert names.count("a") == 5 and names.count("b") == 5


def test_round_robin_spreads_requests_evenly_over_healthy_targets(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    targets = [upstreams(name) for name in ("t1", "t2", "t3")]
    registry.targets = {API: [t.target for t in targets]}
    door = start_front_door(make_config(tls_files))
    wait_until(lambda: healthy(door, API, *(t.target for t in targets)))
    names = identities(client, f"{door.https_url}/api/x", 30)
    assert {n: names.count(n) for n in set(names)} == {"t1": 10, "t2": 10, "t3": 10}
    per_target = door.stats()["per_target"]
    assert sorted(per_target.values()) == [10, 10, 10]
    assert {status.requests for status in door.pools[API].snapshot().values()} == {10}


def test_503_when_the_target_group_has_no_healthy_target(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    sick = upstreams("sick")
    sick.healthy = False
    registry.targets = {API: [sick.target]}  # PAYMENT has no target at all
    door = start_front_door(make_config(tls_files))
    wait_until(lambda: len(sick.checks()) >= 2)
    for path in ("/api/x", "/payment/x"):
        response = client.get(f"{door.https_url}{path}")
        assert response.status_code == 503
        assert response.json() == {"error": "service unavailable"}
    assert sick.requests() == []


def test_deregistered_target_drains_in_flight_requests_and_gets_no_new_ones(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    a, b = upstreams("a"), upstreams("b")
    registry.targets = {API: [a.target, b.target]}
    door = start_front_door(make_config(tls_files))
    wait_until(lambda: healthy(door, API, a.target, b.target))
    pool = door.pools[API]

    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool_executor,
        httpx.Client(verify=client_context(tls_files), trust_env=False) as slow,
    ):
        # Round robin starts with the first registered target: the slow request is on "a".
        in_flight = pool_executor.submit(slow.get, f"{door.https_url}/api/slow?sleep=0.6")
        wait_until(lambda: a.requests() == ["/api/slow"])
        registry.targets = {API: [b.target]}
        wait_until(lambda: pool.snapshot()[a.target].state is TargetState.DRAINING)
        assert pool.snapshot()[a.target].in_flight == 1
        assert set(identities(client, f"{door.https_url}/api/x", 6)) == {"b"}
        response = in_flight.result(timeout=5)
    assert response.status_code == 200 and response.json()["identity"] == "a"
    wait_until(lambda: a.target not in pool.snapshot())
    assert a.requests() == ["/api/slow"]


def test_502_when_the_target_refuses_and_504_after_the_idle_timeout(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    slow = upstreams("slow")
    registry.targets = {API: [Target("127.0.0.1", dead_port())], PAYMENT: [slow.target]}
    # No active checks: targets are in rotation at once, so the refusing one is tried.
    groups = {
        API: TargetGroupConfig("api-tg", None),
        PAYMENT: TargetGroupConfig("payment-tg", None),
        SPECIAL: TargetGroupConfig("s", None),
    }
    door = start_front_door(make_config(tls_files, target_groups=groups, idle_timeout_s=0.2))
    wait_until(lambda: door.pools[PAYMENT].healthy_targets())

    response = client.get(f"{door.https_url}/api/x")
    assert response.status_code == 502 and response.json() == {"error": "bad gateway"}
    started = time.monotonic()
    response = client.get(f"{door.https_url}/payment/x?sleep=0.6")
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and response.json() == {"error": "gateway timeout"}
    # 504 (not the upstream's 200 after 0.6 s) shows the idle timeout fired; the lower bound, that it waited for it.
    # No upper bound: on a loaded machine the answer may come late, and that is not what this test is about.
    assert elapsed >= 0.2
    assert door.stats()["status"] == {502: 1, 504: 1}


# --- WAF --------------------------------------------------------------------------------------------------------


def test_waf_rate_rule_blocks_the_request_over_the_limit_per_client_ip(
    tls_files: TlsFiles, api: Upstream, start_api_door: StartApiDoor, client: httpx.Client
) -> None:
    waf = WafConfig(
        rate_rules=[RateRule("rate-limit-per-ip", 0, limit=5, window_s=300)],
        not_emulated=[NotEmulatedRule("AWSManagedRulesCommonRuleSet", 20, "managed rule group")],
    )
    door = start_api_door(waf=waf)

    statuses = [client.get(f"{door.https_url}/api/x").status_code for _ in range(5)]
    assert statuses == [200] * 5
    blocked = client.get(f"{door.https_url}/api/x")
    assert blocked.status_code == 403 and blocked.json() == {"error": "forbidden"}
    assert client.get(f"{door.https_url}/nowhere").status_code == 403  # the WAF runs before routing
    assert len(api.requests()) == 5

    # Another client address is counted on its own (127.0.0.2 is loopback too; nothing listens on it).
    transport = httpx.HTTPTransport(verify=client_context(tls_files), local_address="127.0.0.2")
    with httpx.Client(transport=transport, trust_env=False) as other:
        assert other.get(f"{door.https_url}/api/x").status_code == 200
    assert door.stats()["blocked"] == {"rate-limit-per-ip": 2}


def test_waf_rate_window_slides(start_api_door: StartApiDoor, client: httpx.Client) -> None:
    door = start_api_door(waf=WafConfig(rate_rules=[RateRule("rate", 0, limit=2, window_s=0.4)]))
    assert [client.get(f"{door.https_url}/api/x").status_code for _ in range(3)] == [200, 200, 403]
    time.sleep(0.45)
    assert client.get(f"{door.https_url}/api/x").status_code == 200


def test_waf_body_size_rules_block_large_bodies_on_their_path_prefix_only(
    tls_files: TlsFiles, upstreams: UpstreamFactory, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    api, payment = upstreams("api"), upstreams("payment")
    registry.targets = {API: [api.target], PAYMENT: [payment.target]}
    waf = WafConfig(
        body_size_rules=[
            BodySizeRule("payment-body-size", 2, max_bytes=1024, path_prefix="/payment/"),
            BodySizeRule("any-body-size", 3, max_bytes=8192),
        ]
    )
    door = start_front_door(make_config(tls_files, waf=waf))
    wait_until(lambda: healthy(door, API, api.target) and healthy(door, PAYMENT, payment.target))

    def post(path: str, size: int) -> int:
        return client.post(f"{door.https_url}{path}", content=b"x" * size).status_code

    assert post("/payment/v1/charges", 1024) == 200
    assert post("/payment/v1/charges", 1025) == 403
    assert post("/api/v1/charges", 4096) == 200  # over the payment limit, but not on its prefix
    assert post("/api/v1/charges", 8193) == 403  # the rule without a prefix applies everywhere
    assert door.stats()["blocked"] == {"payment-body-size": 1, "any-body-size": 1}
    assert [r["body_len"] for r in payment.received] == [1024]


# --- access log, configuration, loops -------------------------------------------------------------------------------


def test_access_log_has_one_json_line_per_request_without_bodies_or_credentials(
    api: Upstream, start_api_door: StartApiDoor, client: httpx.Client, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "access.jsonl"
    door = start_api_door(access_log_path=str(log))
    client.post(
        f"{door.https_url}/api/v1/charges?card=4111111111111111",
        content=b'{"pan":"4111111111111111"}',
        headers={"authorization": "Bearer s3cr3t-token", "cookie": "session=c00kie"},
    )
    client.get(f"{door.https_url}/missing")
    with httpx.Client(trust_env=False) as plain:
        plain.get(f"{door.http_url}/api/x")

    # A line is written once its response has gone out, so the last one may trail the client by a moment.
    text = wait_until(lambda: (content := log.read_text()).count("\n") == 3 and content)
    for secret in ("s3cr3t-token", "c00kie", "4111111111111111", "pan"):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(r["type"], r["method"], r["path"], r["status"]) for r in lines] == [
        ("https", "POST", "/api/v1/charges", 200),
        ("https", "GET", "/missing", 404),
        ("http", "GET", "/api/x", 301),
    ]
    first = lines[0]
    assert first["target"] == str(api.target) and first["target_group"] == "api-tg" and first["target_status"] == 200
    assert first["client"].startswith("127.0.0.1:") and first["elapsed_ms"] > 0 and first["time"].endswith("Z")
    assert first["trace_id"].startswith("Root=1-")
    assert lines[1]["target"] == "-"


def test_config_round_trips_through_json(tls_files: TlsFiles) -> None:
    config = make_config(
        tls_files,
        waf=WafConfig(
            rate_rules=[RateRule("r", 0, 100, 60.0)],
            body_size_rules=[BodySizeRule("b", 1, 10, "/p/", lowercase_path=True)],
            not_emulated=[NotEmulatedRule("m", 2, "managed")],
            name="acl",
        ),
        target_groups={API: TargetGroupConfig("api-tg", None, 8080), PAYMENT: TargetGroupConfig("p", FAST_HEALTH)},
        not_emulated=["listener rule priority 40: condition 'host-header' is not emulated (rule skipped)"],
    )
    assert FrontDoorConfig.from_json(config.to_json()) == config
    assert config.not_emulated_summary() == [
        "listener rule priority 40: condition 'host-header' is not emulated (rule skipped)",
        "WAF rule 'm' (priority 2): managed",
    ]
    faster = config.with_health_check_interval(1.0)
    assert faster.target_groups[PAYMENT].health == HealthCheck("/health", 1.0, 0.5, 2, 2, "200-299")
    assert faster.target_groups[API].health is None


def test_unknown_target_group_in_rules_is_rejected(tls_files: TlsFiles) -> None:
    with pytest.raises(ValueError, match="not configured"):
        FrontDoor(make_config(tls_files, target_groups={}), Registry())


def test_runs_on_a_loop_passed_in_from_another_thread(
    tls_files: TlsFiles, api: Upstream, registry: Registry, client: httpx.Client
) -> None:
    loop = BackgroundLoop("caller-loop")
    door = FrontDoor(make_config(tls_files), registry, loop=loop.loop, poll_interval_s=0.05)
    try:
        door.start()
        wait_until(lambda: healthy(door, API, api.target))
        assert client.get(f"{door.https_url}/api/x").json()["identity"] == "api"
    finally:
        door.stop()
        loop.close()
    with pytest.raises(httpx.ConnectError):
        client.get(f"{door.https_url}/api/x")


@pytest.mark.usefixtures("api")
def test_runs_on_the_callers_running_loop(tls_files: TlsFiles, registry: Registry) -> None:
    async def scenario() -> tuple[int, str]:
        door = FrontDoor(make_config(tls_files), registry, poll_interval_s=0.05)
        await door.astart()
        try:
            with pytest.raises(RuntimeError, match="use the async variant"):
                FrontDoor(make_config(tls_files), registry, loop=asyncio.get_running_loop()).start()
            async with httpx.AsyncClient(verify=client_context(tls_files), trust_env=False) as c:
                for _ in range(100):
                    if door.pools[API].healthy_targets():
                        break
                    await asyncio.sleep(0.02)
                response = await c.get(f"{door.https_url}/api/x")
                return response.status_code, response.json()["identity"]
        finally:
            await door.astop()

    assert asyncio.run(scenario()) == (200, "api")


def test_502_when_the_target_hangs_up_after_receiving_the_request(
    tls_files: TlsFiles, breaker: Breaker, registry: Registry, start_front_door: StartFrontDoor, client: httpx.Client
) -> None:
    registry.targets = {API: [breaker.target]}
    groups = {
        API: TargetGroupConfig("api-tg", None),
        PAYMENT: TargetGroupConfig("p", None),
        SPECIAL: TargetGroupConfig("s", None),
    }
    door = start_front_door(make_config(tls_files, target_groups=groups))
    wait_until(lambda: door.pools[API].healthy_targets())
    response = client.post(f"{door.https_url}/api/x", content=b"{}")
    assert response.status_code == 502
    assert len(breaker.hits) == 1 and breaker.hits[0].startswith(b"POST /api/x HTTP/1.1")
    assert door.pools[API].snapshot()[breaker.target].errors == 1


def test_streamed_and_head_responses_pass_through(api: Upstream, start_api_door: StartApiDoor, client: httpx.Client) -> None:
    door = start_api_door()
    response = client.get(f"{door.https_url}/api/events?chunks=4")
    assert response.status_code == 200 and response.text == "chunk-0;chunk-1;chunk-2;chunk-3;"
    assert response.headers["content-type"].startswith("text/plain") and "content-length" not in response.headers
    head = client.head(f"{door.https_url}/api/x")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    assert client.get(f"{door.https_url}/api/x").json()["identity"] == "api"
    # Sequential requests reuse one pooled connection to the target (the health checks use their own).
    assert len(api.received) == 3 and len({seen["peer_port"] for seen in api.received}) == 1
