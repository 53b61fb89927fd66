"""Edge services: ACM certificates, Route 53 records, WAFv2 web ACLs and their association and logging."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import drop_none, state, tag_list

# How long CertificateValidation waits for ISSUED (the provider's default timeout is 75 minutes; the
# emulator issues after MOTO_ACM_VALIDATION_WAIT seconds, which tools.deploy sets to 0).
VALIDATION_TIMEOUT_SECONDS = 90.0


def _certificate_state(aws: Aws, arn: str) -> dict[str, Any]:
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
        "domainName": found.get("DomainName"),
        "status": found.get("Status"),
        "type": found.get("Type"),
        "keyAlgorithm": found.get("KeyAlgorithm"),
        "notAfter": found["NotAfter"].isoformat() if found.get("NotAfter") else None,
        "notBefore": found["NotBefore"].isoformat() if found.get("NotBefore") else None,
        "subjectAlternativeNames": found.get("SubjectAlternativeNames", []),
        "domainValidationOptions": options,
        "validationEmails": [],
        "renewalEligibility": found.get("RenewalEligibility"),
        "pendingRenewal": False,
    }


def certificate(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
                    "DomainName": req.get("domainName"),
                    "ValidationMethod": req.get("validationMethod", "DNS"),
                    "SubjectAlternativeNames": [req.get("domainName"), *sans] if sans else None,
                    "KeyAlgorithm": req.get("keyAlgorithm"),
                    "CertificateAuthorityArn": req.get("certificateAuthorityArn"),
                    "Options": {"CertificateTransparencyLoggingPreference": options["certificateTransparencyLoggingPreference"]}
                    if options.get("certificateTransparencyLoggingPreference")
                    else None,
                    "Tags": tags,
                }
            )
        )["CertificateArn"]
    return arn, state(req, **_certificate_state(aws, arn))


def certificate_validation(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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


def record(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:route53/record:Record -> ChangeResourceRecordSets (CREATE, or UPSERT with allowOverwrite)."""
    r53 = aws.client("route53")
    zone_id = str(req.get("zoneId"))
    zone_name = r53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"].rstrip(".")
    name = str(req.get("name")).rstrip(".")
    fqdn = name if name == zone_name or name.endswith(f".{zone_name}") else f"{name}.{zone_name}"
    record_type = req.get("type")
    aliases: list[Mapping[str, Any]] = req.get("aliases", [])
    record_set = drop_none(
        {
            "Name": fqdn,
            "Type": record_type,
            "SetIdentifier": req.get("setIdentifier"),
            "TTL": req.get("ttl") if not aliases else None,
            "ResourceRecords": [{"Value": v} for v in req.get("records", [])] or None,
            "AliasTarget": {
                "HostedZoneId": aliases[0]["zoneId"],
                "DNSName": aliases[0]["name"],
                "EvaluateTargetHealth": bool(aliases[0].get("evaluateTargetHealth")),
            }
            if aliases
            else None,
        }
    )
    action = "UPSERT" if req.get("allowOverwrite") else "CREATE"
    r53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record_set}]}
    )
    listed = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=fqdn, StartRecordType=record_type, MaxItems="1")
    found = next(s for s in listed["ResourceRecordSets"] if s["Name"].rstrip(".") == fqdn and s["Type"] == record_type)
    parts = [zone_id, fqdn, record_type] + ([req.get("setIdentifier")] if req.get("setIdentifier") else [])
    return "_".join(parts), state(
        req,
        fqdn=fqdn,
        name=fqdn,
        ttl=found.get("TTL"),
        records=[r["Value"] for r in found.get("ResourceRecords", [])] or req.get("records"),
    )


# camelCase -> PascalCase exceptions in the WAFv2 API.
_WAF_KEYS = {
    "cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled",
    "ipSetReferenceStatement": "IPSetReferenceStatement",
    "ipSetForwardedIpConfig": "IPSetForwardedIPConfig",
    "forwardedIpConfig": "ForwardedIPConfig",
    "arn": "ARN",
}


def _waf(value: Any) -> Any:
    """Pulumi's WAFv2 blocks mirror the API one to one: convert keys to the API's PascalCase."""
    if isinstance(value, Mapping):
        return {_WAF_KEYS.get(k, k[:1].upper() + k[1:]): _waf(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_waf(v) for v in value]
    return value


def _waf_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    converted = _waf(rule)
    # Pulumi's ``ruleLabels`` is the API's RuleLabels ([{Name}]); everything else converts by key.
    return {k: v for k, v in converted.items() if v not in ({}, [], None) or k in ("Action", "OverrideAction")}


def web_acl(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAcl:WebAcl -> CreateWebACL, read back with GetWebACL."""
    waf = aws.client("wafv2")
    name = req.physical_name("name", 128)
    scope = req.get("scope", "REGIONAL")
    summary = waf.create_web_acl(
        **drop_none(
            {
                "Name": name,
                "Scope": scope,
                "Description": req.get("description"),
                "DefaultAction": _waf(req.get("defaultAction")),
                "Rules": [_waf_rule(r) for r in req.get("rules", [])],
                "VisibilityConfig": _waf(req.get("visibilityConfig")),
                "CustomResponseBodies": {
                    b["key"]: {"ContentType": b["contentType"], "Content": b["content"]}
                    for b in req.get("customResponseBodies", [])
                }
                or None,
                "TokenDomains": list(req.get("tokenDomains", [])) or None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["Summary"]
    found = waf.get_web_acl(Name=name, Scope=scope, Id=summary["Id"])
    acl = found["WebACL"]
    return summary["Id"], state(
        req,
        name=acl["Name"],
        arn=acl["ARN"],
        capacity=acl.get("Capacity"),
        lockToken=found.get("LockToken"),
        applicationIntegrationUrl=found.get("ApplicationIntegrationURL"),
    )


def web_acl_association(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAclAssociation:WebAclAssociation -> AssociateWebACL, checked with GetWebACLForResource."""
    waf = aws.client("wafv2")
    acl_arn, resource_arn = req.get("webAclArn"), req.get("resourceArn")
    waf.associate_web_acl(WebACLArn=acl_arn, ResourceArn=resource_arn)
    found = waf.get_web_acl_for_resource(ResourceArn=resource_arn).get("WebACL") or {}
    if found.get("ARN") != acl_arn:
        raise RuntimeError(f"GetWebACLForResource: {resource_arn} is not associated with {acl_arn}")
    return f"{acl_arn},{resource_arn}", state(req, webAclArn=found["ARN"])


def web_acl_logging(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:wafv2/webAclLoggingConfiguration -> PutLoggingConfiguration, read back with GetLoggingConfiguration."""
    waf = aws.client("wafv2")
    resource_arn = req.get("resourceArn")
    waf.put_logging_configuration(
        LoggingConfiguration=drop_none(
            {
                "ResourceArn": resource_arn,
                "LogDestinationConfigs": list(req.get("logDestinationConfigs", [])),
                "RedactedFields": [_waf(f) for f in req.get("redactedFields", [])] or None,
                "LoggingFilter": _waf(req.get("loggingFilter")) if req.get("loggingFilter") else None,
            }
        )
    )
    found = waf.get_logging_configuration(ResourceArn=resource_arn)["LoggingConfiguration"]
    return resource_arn, state(req, logDestinationConfigs=found.get("LogDestinationConfigs", []))


HANDLERS = {
    "aws:acm/certificate:Certificate": certificate,
    "aws:acm/certificateValidation:CertificateValidation": certificate_validation,
    "aws:route53/record:Record": record,
    "aws:wafv2/webAcl:WebAcl": web_acl,
    "aws:wafv2/webAclAssociation:WebAclAssociation": web_acl_association,
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": web_acl_logging,
}
