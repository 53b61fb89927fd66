"""aws:guardduty -- the account's detector and its features; the getDetector data source."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, DataSource, Request, ResourceHandler
from tools.emulator.handlers.translate import delete_call, described, drop_none, fields, first_or_gone, read_by

# GetDetector for a detector that does not exist (AWS answers BadRequestException, moto its own class name).
_NOT_FOUND = ("BadRequestException", "DetectorNotFoundException", "ResourceNotFoundException")

# UpdateDetector replaces the whole feature list, so sibling DetectorFeature registrations (which Pulumi
# runs concurrently) must read-modify-write one at a time.
_FEATURES_LOCK = threading.Lock()

# --- aws:guardduty/detector:Detector ---------------------------------------------------------------------


def _detector(aws: Aws, detector_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetDetector."""
    found = aws.client("guardduty").get_detector(DetectorId=detector_id)
    account = aws.client("sts").get_caller_identity()["Account"]
    return {
        "accountId": account,
        "arn": aws.arn("guardduty", f"detector/{detector_id}"),
        "enable": found.get("Status") == "ENABLED",
        "findingPublishingFrequency": found.get("FindingPublishingFrequency"),
    }


def create_detector(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:guardduty/detector:Detector -> CreateDetector, read back with GetDetector."""
    detector_id = aws.client("guardduty").create_detector(
        **drop_none(
            {
                "Enable": bool(req.get("enable", True)),
                "FindingPublishingFrequency": req.get("findingPublishingFrequency"),
                "Tags": req.get("tags") or None,
            }
        )
    )["DetectorId"]
    return described(aws, req, detector_id, _detector)


read_detector = read_by(_detector, *_NOT_FOUND)
# Its features go with it. Only while it exists: AWS errors on a missing one, and gone is fine here.
delete_detector = delete_call("guardduty", "delete_detector", "DetectorId", *_NOT_FOUND, exists=_detector)


# --- aws:guardduty/detectorFeature:DetectorFeature -------------------------------------------------------


def _feature_inputs(features: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """GetDetector's features -> UpdateDetector's input shape."""
    return [
        drop_none(
            {
                "Name": f.get("Name"),
                "Status": f.get("Status"),
                "AdditionalConfiguration": [
                    {"Name": c["Name"], "Status": c["Status"]} for c in f.get("AdditionalConfiguration", [])
                ]
                or None,
            }
        )
        for f in features
    ]


def _feature(aws: Aws, feature_id: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetDetector, then the named feature (the id is ``<detector id>/<feature name>``)."""
    detector_id, name = feature_id.split("/", 1)
    features = aws.client("guardduty").get_detector(DetectorId=detector_id).get("Features", [])
    found = first_or_gone((f for f in features if f.get("Name") == name), feature_id)
    return {"status": found.get("Status")}


def create_detector_feature(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:guardduty/detectorFeature:DetectorFeature -> UpdateDetector(Features=[...]), read back with GetDetector."""
    gd = aws.client("guardduty")
    detector_id, name = req.get("detectorId"), req.get("name")
    feature = drop_none(
        {
            "Name": name,
            "Status": req.get("status"),
            "AdditionalConfiguration": [
                {"Name": c["name"], "Status": c["status"]} for c in req.get("additionalConfigurations", [])
            ]
            or None,
        }
    )
    with _FEATURES_LOCK:
        # Keep the features set by sibling DetectorFeature resources.
        current = [f for f in gd.get_detector(DetectorId=detector_id).get("Features", []) if f.get("Name") != name]
        gd.update_detector(DetectorId=detector_id, Features=[*_feature_inputs(current), feature])
    return described(aws, req, f"{detector_id}/{name}", _feature)


read_detector_feature = read_by(_feature, *_NOT_FOUND)


def delete_detector_feature(_aws: Aws, _feature_id: str, _recorded: Mapping[str, Any]) -> None:
    """Nothing to call: a feature cannot be deleted, only configured; it ends with its detector (the provider does the same)."""


# --- aws:guardduty/getDetector ---------------------------------------------------------------------------


def get_detector(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:guardduty/getDetector -> ListDetectors (+ GetDetector); errors when the account has none, like the provider."""
    gd = aws.client("guardduty")
    detector_id = args.get("id") or next(iter(gd.list_detectors().get("DetectorIds", [])), None)
    if detector_id is None:
        raise RuntimeError("ListDetectors: no GuardDuty detector found in this account and region")
    found = gd.get_detector(DetectorId=detector_id)
    return {
        "id": detector_id,
        "arn": aws.arn("guardduty", f"detector/{detector_id}"),
        **fields(found, "Status", "FindingPublishingFrequency"),
        "serviceRoleArn": found.get("ServiceRole", ""),
        "features": [
            {"name": f.get("Name"), "status": f.get("Status"), "additionalConfigurations": []} for f in found.get("Features", [])
        ],
        "tags": found.get("Tags", {}),
    }


RESOURCES = (
    ResourceHandler("aws:guardduty/detector:Detector", create_detector, read_detector, delete_detector),
    ResourceHandler(
        "aws:guardduty/detectorFeature:DetectorFeature", create_detector_feature, read_detector_feature, delete_detector_feature
    ),
)
DATA_SOURCES = (DataSource("aws:guardduty/getDetector:getDetector", get_detector),)
