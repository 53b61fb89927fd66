"""A local certificate authority for the data plane's TLS endpoints (stand-in for the RDS CA / Amazon Trust Services).

Clients get :attr:`LocalCA.ca_path` as their trust anchor (``sslrootcert`` for libpq, ``ssl_ca_certs`` for redis-py)
exactly as they would get the RDS CA bundle on AWS. Differences from AWS: one self-signed root with no intermediate,
P-256 keys, server certificates valid for 30 days and re-issued on demand, no revocation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalCA", "client_ssl_context", "server_ssl_context", "tls_version"]

SERVER_CERT_DAYS = 30
CA_DAYS = 365


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int, *, ca: bool
) -> x509.CertificateBuilder:
    """A certificate for ``key`` valid for ``days`` (from 5 minutes ago, for clock skew) with a random serial, and
    the critical basic constraints and key usage of either a CA (signs certificates and CRLs, no intermediates below
    it) or a TLS server (signs handshakes)."""
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


@dataclass
class LocalCA:
    """A self-signed root CA kept in a directory (``ca.pem``, ``ca.key``), issuing server certificates."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def ca_path(self) -> Path:
        """The CA certificate (PEM) clients trust."""
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path, common_name: str = "ScalePayments local data plane CA") -> LocalCA:
        """Create a new CA in ``directory`` (replacing any there)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ScalePayments (local)"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            _certificate_builder(name, name, key, CA_DAYS, ca=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(directory / "ca.key", _key_pem(key))
        (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, key, cert)

    @classmethod
    def load(cls, directory: Path) -> LocalCA:
        """Load a CA previously made by :meth:`create`."""
        directory = Path(directory)
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("ca.key is not an EC key")
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        return cls(directory, key, cert)

    @classmethod
    def load_or_create(cls, directory: Path) -> LocalCA:
        """Load the CA in ``directory`` if there is one, else create it."""
        if (Path(directory) / "ca.key").exists() and (Path(directory) / "ca.pem").exists():
            return cls.load(directory)
        return cls.create(directory)

    def issue_server_cert(self, hostnames: list[str], ips: list[str] | None = None) -> tuple[Path, Path]:
        """Issue a server certificate for ``hostnames`` (DNS SANs) and ``ips`` (IP SANs); returns (cert, key) paths.

        The certificate file holds the leaf only; the CN is the first host name (or IP). Valid for 30 days, usable for
        TLS server authentication only.
        """
        ips = list(ips or [])
        if not hostnames and not ips:
            raise ValueError("a server certificate needs at least one host name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        common_name = (hostnames or ips)[0]
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
        cert = (
            _certificate_builder(subject, self.cert.subject, key, SERVER_CERT_DAYS, ca=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = re.sub(r"[^A-Za-z0-9.-]+", "_", common_name)[:60] + f"-{cert.serial_number % 10**8:08d}"
        cert_path = self.directory / f"{stem}.pem"
        key_path = self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, _key_pem(key))
        return cert_path, key_path


_TLS_VERSIONS = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def tls_version(name: str) -> ssl.TLSVersion:
    """Map a PostgreSQL-style ``ssl_min_protocol_version`` value ('TLSv1.2', 'TLSv1.3') to ssl.TLSVersion.

    TLS 1.0/1.1 are refused on purpose: the platform requires TLS 1.2 or later.
    """
    try:
        return _TLS_VERSIONS[name]
    except KeyError:
        raise ValueError(f"unsupported minimum TLS version {name!r}; use one of {sorted(_TLS_VERSIONS)}") from None


def server_ssl_context(cert_path: Path, key_path: Path, min_version: str = "TLSv1.2") -> ssl.SSLContext:
    """A server-side TLS context with the given certificate and minimum protocol version (no client certificates)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = tls_version(min_version)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def client_ssl_context(ca_path: Path) -> ssl.SSLContext:
    """A client-side TLS context that trusts only ``ca_path`` and checks host names."""
    ctx = ssl.create_default_context(cafile=str(ca_path))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
