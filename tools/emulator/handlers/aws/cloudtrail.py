"""aws:cloudtrail -- the account's trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import api_params, drop_none, none_when, read_by, state, tag_list

_NOT_FOUND = "TrailNotFoundException"


def _trail(aws: Aws, trail: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetTrail + GetTrailStatus, by the trail's name (the API takes the ARN too)."""
    ct = aws.client("cloudtrail")
    name = inputs.get("name") or trail
    found = ct.get_trail(Name=name)["Trail"]
    logging = ct.get_trail_status(Name=name).get("IsLogging")
    return {
        "name": found["Name"],
        "arn": found["TrailARN"],
        "homeRegion": found.get("HomeRegion"),
        "enableLogging": logging,
        "enableLogFileValidation": found.get("LogFileValidationEnabled"),
        "isMultiRegionTrail": found.get("IsMultiRegionTrail"),
        "kmsKeyId": found.get("KmsKeyId", inputs.get("kmsKeyId")),
    }


def create_trail(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudtrail/trail:Trail -> CreateTrail (+ PutEventSelectors, StartLogging), read back with GetTrail."""
    ct = aws.client("cloudtrail")
    name = req.physical_name("name", 128)
    arn = ct.create_trail(
        **drop_none(
            {
                "Name": name,
                **api_params(
                    req.inputs,
                    "s3BucketName",
                    "s3KeyPrefix",
                    "snsTopicName",
                    "includeGlobalServiceEvents",
                    "isMultiRegionTrail",
                    "enableLogFileValidation",
                    "cloudWatchLogsRoleArn",
                    "kmsKeyId",
                    "isOrganizationTrail",
                ),
                "CloudWatchLogsLogGroupArn": req.get("cloudWatchLogsGroupArn"),
                "TagsList": tag_list(req.get("tags")) or None,
            }
        )
    )["TrailARN"]
    selectors = req.get("eventSelectors", [])
    if selectors:
        ct.put_event_selectors(
            TrailName=name,
            EventSelectors=[
                drop_none(
                    {
                        "ReadWriteType": s.get("readWriteType"),
                        "IncludeManagementEvents": s.get("includeManagementEvents"),
                        "ExcludeManagementEventSources": list(s.get("excludeManagementEventSources", [])) or None,
                        "DataResources": [{"Type": d["type"], "Values": list(d["values"])} for d in s.get("dataResources", [])]
                        or None,
                    }
                )
                for s in selectors
            ],
        )
    insights = req.get("insightSelectors", [])
    if insights:
        ct.put_insight_selectors(TrailName=name, InsightSelectors=[{"InsightType": i["insightType"]} for i in insights])
    if req.get("enableLogging", True):
        ct.start_logging(Name=name)
    # The id is the ARN the API answered with, as before; the state carries the one read back.
    return arn, state(req, **_trail(aws, name, req.inputs))


read_trail = read_by(_trail, _NOT_FOUND)


@none_when(_NOT_FOUND)
def delete_trail(aws: Aws, arn: str, recorded: Mapping[str, Any]) -> None:
    """DeleteTrail."""
    aws.client("cloudtrail").delete_trail(Name=recorded.get("name") or arn)


RESOURCES = (ResourceHandler("aws:cloudtrail/trail:Trail", create_trail, read_trail, delete_trail),)
