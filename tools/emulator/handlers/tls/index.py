"""tls:index -- private keys and self-signed certificates, computed locally as the real provider does.

They exist only in Pulumi's state: read returns the recorded state and delete has nothing to call.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import delete_nothing, read_recorded, state

LOCAL = "computed locally by the provider: it exists only in Pulumi's state"


def create_private_key(_aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """tls:index/privateKey:PrivateKey: a real RSA or ECDSA key, in the provider's PEM and OpenSSH encodings."""
    algorithm = req.get("algorithm", "RSA")
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(req.get("rsaBits", 2048)))
    elif algorithm == "ECDSA":
        curve = {"P224": ec.SECP224R1(), "P256": ec.SECP256R1(), "P384": ec.SECP384R1(), "P521": ec.SECP521R1()}[
            req.get("ecdsaCurve", "P224")
        ]
        key = ec.generate_private_key(curve)
    else:
        raise RuntimeError(f"PrivateKey: unsupported algorithm {algorithm}")
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    pem = key.private_bytes(serialization.Encoding.PEM, traditional, serialization.NoEncryption()).decode()
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key()
    public_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + "\n"
    blob = base64.b64decode(openssh.split()[1])
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    sha256 = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return hashlib.sha1(public_pem.encode(), usedforsecurity=False).hexdigest(), state(
        req,
        algorithm=algorithm,
        privateKeyPem=pem,
        privateKeyPemPkcs8=pkcs8,
        publicKeyPem=public_pem,
        publicKeyOpenssh=openssh,
        publicKeyFingerprintMd5=":".join(md5[i : i + 2] for i in range(0, len(md5), 2)),
        publicKeyFingerprintSha256=f"SHA256:{sha256}",
    )


_SUBJECT_FIELDS = {
    "commonName": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "country": NameOID.COUNTRY_NAME,
    "province": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "postalCode": NameOID.POSTAL_CODE,
    "serialNumber": NameOID.SERIAL_NUMBER,
}


def self_signed(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    name: x509.Name,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """A certificate of ``key`` that ``name`` both holds and issues, valid between the two times, with a random serial,
    the given ``(extension, critical)`` pairs and a SHA-256 signature by ``key``.

    It serves the provider's resource here and an operator's listener certificate (:func:`tools.deploy.operator_certificate`).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def create_self_signed_cert(_aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """tls:index/selfSignedCert:SelfSignedCert: a real X.509 certificate signed by the given key."""
    key = serialization.load_pem_private_key(str(req.get("privateKeyPem")).encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RuntimeError("SelfSignedCert: only RSA and ECDSA keys are supported")
    subjects = req.get("subject")
    subject = (subjects[0] if isinstance(subjects, list) and subjects else subjects) or {}
    name = x509.Name([x509.NameAttribute(oid, str(subject[k])) for k, oid in _SUBJECT_FIELDS.items() if subject.get(k)])
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    end = start + datetime.timedelta(hours=int(req.get("validityPeriodHours", 24)))
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in req.get("dnsNames", [])]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in req.get("ipAddresses", [])]
    alt_names += [x509.UniformResourceIdentifier(u) for u in req.get("uris", [])]
    if alt_names:
        extensions.append((x509.SubjectAlternativeName(alt_names), False))
    uses = set(req.get("allowedUses", []))
    usages = {u for u in ("server_auth", "client_auth") if u in uses}
    if usages:
        oids = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
        extensions.append((x509.ExtendedKeyUsage([oids[u] for u in sorted(usages)]), False))
    is_ca = bool(req.get("isCaCertificate", False))
    extensions.append((x509.BasicConstraints(ca=is_ca, path_length=None), True))
    cert = self_signed(key, name, start, end, extensions)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return str(cert.serial_number), state(
        req,
        certPem=pem,
        validityStartTime=start.isoformat().replace("+00:00", "Z"),
        validityEndTime=end.isoformat().replace("+00:00", "Z"),
        keyAlgorithm="RSA" if isinstance(key, rsa.RSAPrivateKey) else "ECDSA",
        readyForRenewal=False,
    )


RESOURCES = (
    ResourceHandler("tls:index/privateKey:PrivateKey", create_private_key, read_recorded, delete_nothing, retained=LOCAL),
    ResourceHandler(
        "tls:index/selfSignedCert:SelfSignedCert", create_self_signed_cert, read_recorded, delete_nothing, retained=LOCAL
    ),
)
