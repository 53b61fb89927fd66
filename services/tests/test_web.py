"""The request middleware and error mapping, in process (no server): ids, 500s, 503s, 404/405, and masked logs."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg_pool
import pytest
import redis.exceptions
from fastapi import APIRouter

from services.common.config import ServiceConfig
from services.common.eastwest import UpstreamUnavailableError
from services.common.web import create_app
from services.tests.support import captured_logging

PAN = "4111111111111111"
CONFIG = ServiceConfig("api", "dev", 8080, "/api/health", 1024, "ScalePayments/api", "127.0.0.1")

router = APIRouter(prefix="/api")


@router.get("/boom")
async def boom() -> None:
    """An unexpected failure whose message carries a card number."""
    raise RuntimeError(f"unexpected state for card {PAN}")


@router.get("/db")
async def db_down() -> None:
    """The pool could not hand out a connection in time."""
    raise psycopg_pool.PoolTimeout("couldn't get a connection after 2.00 sec")


@router.get("/cache")
async def cache_down() -> None:
    """Redis refused the connection."""
    raise redis.exceptions.ConnectionError("Error 111 connecting")


@router.get("/upstream")
async def upstream_down() -> None:
    """An east-west call found nobody listening."""
    raise UpstreamUnavailableError("payment", "connect failed")


@router.post("/items/{item_id}")
async def create_item(item_id: int) -> dict[str, int]:
    """A route with a path template."""
    return {"item_id": item_id}


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Service logging into a buffer (restored afterwards)."""
    with captured_logging("api") as stream:
        yield stream


class Client:
    """Requests straight into the ASGI app (httpx's ASGI transport: no server, no sockets)."""

    def __init__(self, config: ServiceConfig = CONFIG) -> None:
        self.app = create_app(config, title="test", routers=[router])

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, answered by the app."""

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test") as http:
                return await http.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST."""
        return self.request("POST", path, **kwargs)


@pytest.fixture
def client() -> Client:
    """The app under test, in process."""
    return Client()


def access_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The access log lines written so far."""
    return [record for record in map(json.loads, stream.getvalue().splitlines()) if record["logger"] == "access"]


def test_unexpected_error_is_500_with_request_id_and_a_masked_traceback(client: Client, logged: io.StringIO) -> None:
    """The client gets a generic 500 with the request id; the log has the traceback with the card number masked."""
    response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "internal error",
        "request_id": response.headers["x-request-id"],
    }
    text = logged.getvalue()
    assert PAN not in text and "RuntimeError: unexpected state for card [REDACTED-PAN]" in text
    assert access_lines(logged)[-1]["status"] == 500 and access_lines(logged)[-1]["path"] == "/api/boom"


@pytest.mark.parametrize(("path", "dependency"), [("/api/db", "database"), ("/api/cache", "cache"), ("/api/upstream", "payment")])
def test_dependency_failures_are_503_with_retry_after(client: Client, path: str, dependency: str) -> None:
    """Outages of the database, the cache or an upstream service: 503, Retry-After, the dependency named."""
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["dependency"] == dependency and response.json()["error"] == "dependency_unavailable"


def test_unknown_routes_and_methods(client: Client, logged: io.StringIO) -> None:
    """404 and 405 come as JSON errors with request ids; the access line names the template, or <unmatched>."""
    missing = client.get("/api/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found" and missing.headers["x-request-id"]
    wrong = client.get("/api/items/7")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert [line["path"] for line in access_lines(logged)] == ["<unmatched>", "/api/items/{item_id}"]


def test_rejected_requests_are_logged_with_their_route_template(client: Client, logged: io.StringIO) -> None:
    """413 and 422 (card data) are decided before routing; the access line still names the route, never the raw path."""
    assert client.post("/api/items/7", content=b"x" * 2000).status_code == 413
    assert client.post("/api/items/7", json={"note": PAN}).status_code == 422
    assert client.post(f"/api/items/{PAN}").status_code == 422
    lines = access_lines(logged)
    assert [(line["status"], line["path"]) for line in lines] == [
        (413, "/api/items/{item_id}"),
        (422, "/api/items/{item_id}"),
        (422, "/api/items/{item_id}"),
    ]
    assert PAN not in logged.getvalue()


def test_hostile_bodies_are_refused_cleanly(client: Client) -> None:
    """Deeply nested JSON within the size limit, and card data in a non-JSON body, get 4xx, never a 500."""
    roomy = Client(dataclasses.replace(CONFIG, max_request_body_bytes=65536))
    deep = roomy.post("/api/items/7", content=b"[" * 20000 + b"]" * 20000, headers={"content-type": "application/json"})
    assert deep.status_code == 422 and deep.json()["message"] == "the request body is nested too deeply"
    text = client.post("/api/items/7", content=f"card={PAN}".encode(), headers={"content-type": "text/plain"})
    assert text.status_code == 422 and text.json()["field"] == "body"


def test_request_ids(client: Client) -> None:
    """A well-formed caller id is kept; a malformed or card-like one is replaced by a fresh id."""
    assert client.get("/api/health", headers={"x-request-id": "abc-123-XYZ.9"}).headers["x-request-id"] == "abc-123-XYZ.9"
    for bad in ("short", "has space in it", f"id-{PAN}"):
        replaced = client.get("/api/health", headers={"x-request-id": bad}).headers["x-request-id"]
        assert replaced != bad and len(replaced) == 32
    assert client.get("/api/health").headers["x-request-id"] != client.get("/api/health").headers["x-request-id"]
