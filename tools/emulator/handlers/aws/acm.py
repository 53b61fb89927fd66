"""aws:acm -- certificates and the wait for their validation."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import (
    GoneError,
    api_params,
    delete_call,
    described,
    drop_none,
    fields,
    read_by,
    state,
    tag_list,
)

# How long CertificateValidation waits for ISSUED (the provider's default timeout is 75 minutes; the
# emulator issues after MOTO_ACM_VALIDATION_WAIT seconds, which tools.emulator.server sets to 0).
VALIDATION_TIMEOUT_SECONDS = 90.0
_NOT_FOUND = "ResourceNotFoundException"

# --- aws:acm/certificate:Certificate ---------------------------------------------------------------------


def _certificate(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeCertificate."""
    found = aws.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    options = [
        {
            "domainName": o["DomainName"],
            "resourceRecordName": o["ResourceRecord"]["Name"],
            "resourceRecordType": o["ResourceRecord"]["Type"],
            "resourceRecordValue": o["ResourceRecord"]["Value"],
        }
        for o in found.get("DomainValidationOptions", [])
        if o.get("ResourceRecord")
    ]
    return {
        "arn": arn,
        **fields(found, "DomainName", "Status", "Type", "KeyAlgorithm"),
        "notAfter": found["NotAfter"].isoformat() if found.get("NotAfter") else None,
        "notBefore": found["NotBefore"].isoformat() if found.get("NotBefore") else None,
        "subjectAlternativeNames": found.get("SubjectAlternativeNames", []),
        "domainValidationOptions": options,
        "validationEmails": [],
        "renewalEligibility": found.get("RenewalEligibility"),
        "pendingRenewal": False,
    }


def create_certificate(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:acm/certificate:Certificate -> ImportCertificate (PEM given) or RequestCertificate, read back with Describe."""
    acm = aws.client("acm")
    tags = tag_list(req.get("tags")) or None
    if req.get("certificateBody"):
        arn = acm.import_certificate(
            **drop_none(
                {
                    "Certificate": str(req.get("certificateBody")).encode(),
                    "PrivateKey": str(req.get("privateKey")).encode(),
                    "CertificateChain": str(req.get("certificateChain")).encode() if req.get("certificateChain") else None,
                    "Tags": tags,
                }
            )
        )["CertificateArn"]
    else:
        options = req.get("options") or {}
        sans = [s for s in req.get("subjectAlternativeNames", []) if s != req.get("domainName")]
        arn = acm.request_certificate(
            **drop_none(
                {
                    **api_params(req.inputs, "domainName", "keyAlgorithm", "certificateAuthorityArn"),
                    "ValidationMethod": req.get("validationMethod", "DNS"),
                    "SubjectAlternativeNames": [req.get("domainName"), *sans] if sans else None,
                    "Options": {"CertificateTransparencyLoggingPreference": options["certificateTransparencyLoggingPreference"]}
                    if options.get("certificateTransparencyLoggingPreference")
                    else None,
                    "Tags": tags,
                }
            )
        )["CertificateArn"]
    return described(aws, req, arn, _certificate)


read_certificate = read_by(_certificate, _NOT_FOUND)
# AWS refuses while a listener uses it; listeners are deleted first.
delete_certificate = delete_call("acm", "delete_certificate", "CertificateArn", _NOT_FOUND)


# --- aws:acm/certificateValidation:CertificateValidation -------------------------------------------------


def _issued(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeCertificate: the validation exists while its certificate is ISSUED."""
    status = aws.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
    if status != "ISSUED":
        raise GoneError(f"{arn} is {status}")
    return {"certificateArn": arn}


def create_certificate_validation(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:acm/certificateValidation:CertificateValidation: wait, as the provider does, until ACM says ISSUED."""
    arn = str(req.get("certificateArn"))
    deadline = time.monotonic() + VALIDATION_TIMEOUT_SECONDS
    while True:
        status = aws.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
        if status == "ISSUED":
            break
        if status not in ("PENDING_VALIDATION",) or time.monotonic() > deadline:
            raise RuntimeError(f"DescribeCertificate: {arn} is {status}, not ISSUED")
        time.sleep(1.0)
    return arn, state(req, certificateArn=arn)


read_certificate_validation = read_by(_issued, _NOT_FOUND)


def delete_certificate_validation(_aws: Aws, _arn: str, _recorded: Mapping[str, Any]) -> None:
    """Nothing to call: a validation is no AWS object (the provider only forgets it); it ends with its certificate."""


RESOURCES = (
    ResourceHandler("aws:acm/certificate:Certificate", create_certificate, read_certificate, delete_certificate),
    ResourceHandler(
        "aws:acm/certificateValidation:CertificateValidation",
        create_certificate_validation,
        read_certificate_validation,
        delete_certificate_validation,
    ),
)
