"""aws:route53 -- DNS records in an existing hosted zone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import drop_none, first_or_gone, none_when, refreshed, state


def _fqdn(aws: Aws, zone_id: str, name: str) -> str:
    """The record's fully qualified name: ``name`` inside the zone (the provider appends the zone name)."""
    zone_name = aws.client("route53").get_hosted_zone(Id=zone_id)["HostedZone"]["Name"].rstrip(".")
    name = name.rstrip(".")
    return name if name == zone_name or name.endswith(f".{zone_name}") else f"{name}.{zone_name}"


def _record_set(aws: Aws, zone_id: str, fqdn: str, record_type: str, set_identifier: str | None) -> dict[str, Any]:
    """The record set as ListResourceRecordSets shows it; :class:`GoneError` when the zone holds none."""
    listed = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=fqdn, StartRecordType=record_type, MaxItems="100"
    )
    found: dict[str, Any] = first_or_gone(
        (
            s
            for s in listed["ResourceRecordSets"]
            if s["Name"].rstrip(".") == fqdn and s["Type"] == record_type and s.get("SetIdentifier") == set_identifier
        ),
        f"{fqdn} {record_type}",
    )
    return found


def _record(found: Mapping[str, Any], fqdn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fqdn": fqdn,
        "name": fqdn,
        "ttl": found.get("TTL"),
        "records": [r["Value"] for r in found.get("ResourceRecords", [])] or inputs.get("records"),
    }


def create_record(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:route53/record:Record -> ChangeResourceRecordSets (CREATE, or UPSERT with allowOverwrite)."""
    zone_id = str(req.get("zoneId"))
    fqdn = _fqdn(aws, zone_id, str(req.get("name")))
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
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": record_set}]}
    )
    found = _record_set(aws, zone_id, fqdn, record_type, req.get("setIdentifier"))
    parts = [zone_id, fqdn, record_type] + ([req.get("setIdentifier")] if req.get("setIdentifier") else [])
    return "_".join(parts), state(req, **_record(found, fqdn, req.inputs))


@none_when("NoSuchHostedZone")
def read_record(aws: Aws, _record_id: str, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """ListResourceRecordSets from the record's name and type."""
    fqdn = str(recorded["fqdn"])
    found = _record_set(aws, str(recorded["zoneId"]), fqdn, str(recorded["type"]), recorded.get("setIdentifier"))
    return refreshed(recorded, **_record(found, fqdn, recorded))


@none_when("NoSuchHostedZone")
def delete_record(aws: Aws, _record_id: str, recorded: Mapping[str, Any]) -> None:
    """ChangeResourceRecordSets DELETE with the record set as it is now (the API wants an exact match)."""
    zone_id = str(recorded["zoneId"])
    found = _record_set(aws, zone_id, str(recorded["fqdn"]), str(recorded["type"]), recorded.get("setIdentifier"))
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": found}]}
    )


RESOURCES = (ResourceHandler("aws:route53/record:Record", create_record, read_record, delete_record),)
