"""Shared fixtures of the front door, Service Connect and ALB-config tests (imported explicitly by those modules).

* ``tls_files``: a test CA and a server certificate for 127.0.0.1/localhost, as PEM files;
* ``upstreams``: a factory of real upstream HTTP apps (uvicorn + Starlette on free 127.0.0.1 ports) that
  echo their identity and the request they received, can be told to fail their health checks, and keep a
  timeline of health checks and requests; all stopped at teardown, pass or fail;
* ``breaker``: a TCP server that reads a request and closes the connection without answering;
* ``raw_servers``: a factory of TCP servers with a hand-written connection handler (misbehaving targets);
* helpers: ``dead_port``, ``client_context`` (polling: ``tests.polling.wait_until``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tools.localplane.upstreams import LOCALHOST, AsgiApp, AsgiListener, BackgroundLoop, HealthCheck, Target

#: Fast health checks: a target is healthy 2 checks (~50 ms) after registration.
FAST_HEALTH = HealthCheck(
    path="/health", interval_s=0.05, timeout_s=0.5, healthy_threshold=2, unhealthy_threshold=2, matcher="200-299"
)


def dead_port() -> int:
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


# --- TLS material -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test CA and of a server certificate it signed (SAN 127.0.0.1, localhost)."""

    ca_path: str
    cert_path: str
    key_path: str
    cert_pem: bytes
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a 127.0.0.1/localhost server certificate (EC P-256: fast to generate)."""
    directory: Path = tmp_path_factory.mktemp("frontdoor-tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ScalePayments local test CA"))
        .issuer_name(_name("ScalePayments local test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("frontdoor.local"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOCALHOST))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    paths = {"ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM), "server.pem": cert_pem, "server.key": key_pem}
    for filename, content in paths.items():
        (directory / filename).write_bytes(content)
    (directory / "server.key").chmod(0o600)
    return TlsFiles(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"), cert_pem, key_pem)


def client_context(tls: TlsFiles, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that trusts only the test CA, optionally pinned to one TLS version."""
    context = ssl.create_default_context(cafile=tls.ca_path)
    if version is not None:
        if version < ssl.TLSVersion.TLSv1_2:
            # Let OpenSSL offer legacy protocols at all, so that a refusal comes from the server's policy.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = version
        context.maximum_version = version
    return context


# --- upstream apps ------------------------------------------------------------------------------------------


@dataclass
class Upstream:
    """A running upstream app: ``name`` identifies it in responses; ``healthy`` drives ``/health``."""

    name: str
    listener: AsgiListener
    healthy: bool = True
    events: list[tuple[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def target(self) -> Target:
        return Target(LOCALHOST, self.listener.port)

    def checks(self) -> list[bool]:
        return [ok for kind, ok in list(self.events) if kind == "check"]

    def requests(self) -> list[str]:
        return [path for kind, path in list(self.events) if kind == "request"]


def _upstream_app(upstream_ref: list[Upstream]) -> Starlette:
    async def health(_request: Request) -> Response:
        upstream = upstream_ref[0]
        upstream.events.append(("check", upstream.healthy))
        return JSONResponse({"ok": upstream.healthy}, status_code=200 if upstream.healthy else 503)

    async def echo(request: Request) -> Response:
        upstream = upstream_ref[0]
        body = await request.body()
        upstream.events.append(("request", request.url.path))
        seen = {
            "identity": upstream.name,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw],
            "body_len": len(body),
            "peer_port": request.client.port if request.client else 0,  # tells reused connections apart
        }
        upstream.received.append(seen)
        if "sleep" in request.query_params:
            await asyncio.sleep(float(request.query_params["sleep"]))
        if "chunks" in request.query_params:

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(int(request.query_params["chunks"])):
                    yield f"chunk-{i};".encode()
                    await asyncio.sleep(0.01)

            return StreamingResponse(chunks(), media_type="text/plain", headers={"x-upstream": upstream.name})
        return JSONResponse(seen, headers={"x-upstream": upstream.name})

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return Starlette(routes=[Route("/health", health), Route("/{path:path}", echo, methods=methods)])


class UpstreamFactory:
    """Starts named upstream apps on one background loop; ``close()`` stops them all."""

    def __init__(self) -> None:
        self.loop = BackgroundLoop("test-upstreams")
        self.started: list[Upstream] = []
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Upstream:
        ref: list[Upstream] = []
        listener = AsgiListener(cast(AsgiApp, _upstream_app(ref)), port=0, keep_alive_s=5, graceful_shutdown_s=1, name=name)
        upstream = Upstream(name, listener)
        ref.append(upstream)
        self.loop.run(listener.start())
        with self._lock:
            self.started.append(upstream)
        return upstream

    def stop(self, upstream: Upstream) -> None:
        self.loop.run(upstream.listener.stop())

    def close(self) -> None:
        async def stop_all() -> None:
            await asyncio.gather(*(u.listener.stop() for u in self.started), return_exceptions=True)

        try:
            self.loop.run(stop_all())
        finally:
            self.loop.close()


@pytest.fixture
def upstreams() -> Iterator[UpstreamFactory]:
    """``upstreams("a")`` starts an upstream app named ``a``; everything is stopped when the test ends."""
    with contextlib.closing(UpstreamFactory()) as factory:
        yield factory


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServers:
    """Starts TCP servers on free 127.0.0.1 ports with a given connection handler; ``close()`` stops them."""

    def __init__(self) -> None:
        self.loop = BackgroundLoop("test-raw-servers")
        self.servers: list[asyncio.Server] = []

    def __call__(self, handler: RawHandler) -> Target:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(handler, LOCALHOST, 0)

        server = self.loop.run(start())
        self.servers.append(server)
        return Target(LOCALHOST, int(server.sockets[0].getsockname()[1]))

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.close()  # handlers still running are cancelled when the loop closes

        with contextlib.suppress(Exception):
            self.loop.run(stop(), timeout=5)
        self.loop.close()


@dataclass
class Breaker:
    """A target that accepts a connection, reads the request head and hangs up without a response."""

    target: Target
    hits: list[bytes]


@pytest.fixture
def breaker() -> Iterator[Breaker]:
    """A started :class:`Breaker` on a free 127.0.0.1 port; closed at teardown."""
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    with contextlib.closing(RawServers()) as servers:
        yield Breaker(servers(handle), hits)


@pytest.fixture
def raw_servers() -> Iterator[RawServers]:
    """``raw_servers(handler)`` starts a misbehaving target and returns it; all are closed at teardown."""
    with contextlib.closing(RawServers()) as servers:
        yield servers
