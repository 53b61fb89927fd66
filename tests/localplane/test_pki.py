"""LocalCA: server certificates clients can verify like the RDS / ElastiCache ones."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from tools.localplane.pki import LocalCA, client_ssl_context, server_ssl_context, tls_version


def test_server_certificate_contents(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca")
    cert_path, key_path = ca.issue_server_cert(["db.local", "payments.cluster-x.us-east-1.rds.amazonaws.com"], ["127.0.0.1"])
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.local", "payments.cluster-x.us-east-1.rds.amazonaws.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=30, minutes=5)
    assert cert.issuer == ca.cert.subject
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((ca.directory / "ca.key").stat().st_mode) == 0o600
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True

    store = Store([x509.load_pem_x509_certificate(ca.ca_path.read_bytes())])
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName("db.local"))
    assert verifier.verify(cert, [])[-1] == ca.cert
    with pytest.raises(Exception):  # noqa: B017 - any verification failure will do
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("other.local")).verify(cert, [])
    assert LocalCA.load(ca.directory).cert == ca.cert
    assert LocalCA.load_or_create(ca.directory).cert == ca.cert


def test_tls_handshake_with_min_version(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path / "ca")
    cert, key = ca.issue_server_cert(["db.local"], ["127.0.0.1"])
    server_ctx = server_ssl_context(cert, key, "TLSv1.3")
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve() -> None:
            for _ in range(2):
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = client_ssl_context(ca.ca_path)
        with socket.create_connection(("127.0.0.1", port)) as raw, client.wrap_socket(raw, server_hostname="db.local") as tls:
            assert tls.recv(2) == b"ok"
            assert tls.version() == "TLSv1.3"
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises(ssl.SSLError):
            client.wrap_socket(raw, server_hostname="db.local")
        thread.join(5)
    with pytest.raises(ValueError):
        tls_version("TLSv1.1")
    with pytest.raises(ValueError):
        ca.issue_server_cert([], [])
