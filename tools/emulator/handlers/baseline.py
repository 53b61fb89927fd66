"""Account security baseline: GuardDuty, AWS Config, CloudTrail."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state, tag_list

# UpdateDetector replaces the whole feature list, so sibling DetectorFeature registrations (which Pulumi
# runs concurrently) must read-modify-write one at a time.
_FEATURES_LOCK = threading.Lock()


def detector(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:guardduty/detector:Detector -> CreateDetector, read back with GetDetector."""
    gd = aws.client("guardduty")
    detector_id = gd.create_detector(
        **drop_none(
            {
                "Enable": bool(req.get("enable", True)),
                "FindingPublishingFrequency": req.get("findingPublishingFrequency"),
                "Tags": req.get("tags") or None,
            }
        )
    )["DetectorId"]
    found = gd.get_detector(DetectorId=detector_id)
    account = aws.client("sts").get_caller_identity()["Account"]
    return detector_id, state(
        req,
        accountId=account,
        arn=aws.arn("guardduty", f"detector/{detector_id}"),
        enable=found.get("Status") == "ENABLED",
        findingPublishingFrequency=found.get("FindingPublishingFrequency"),
    )


def detector_feature(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
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
    found = next(f for f in gd.get_detector(DetectorId=detector_id).get("Features", []) if f.get("Name") == name)
    return f"{detector_id}/{name}", state(req, status=found.get("Status"))


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
        "status": found.get("Status"),
        "findingPublishingFrequency": found.get("FindingPublishingFrequency"),
        "serviceRoleArn": found.get("ServiceRole", ""),
        "features": [
            {"name": f.get("Name"), "status": f.get("Status"), "additionalConfigurations": []} for f in found.get("Features", [])
        ],
        "tags": found.get("Tags", {}),
    }


def recorder(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/recorder:Recorder -> PutConfigurationRecorder, read back with DescribeConfigurationRecorders."""
    cfg = aws.client("config")
    name = req.get("name", "default")
    group = req.get("recordingGroup") or {}
    strategy = group.get("recordingStrategies") or []
    exclusion = group.get("exclusionByResourceTypes") or []
    mode = req.get("recordingMode") or {}
    cfg.put_configuration_recorder(
        ConfigurationRecorder=drop_none(
            {
                "name": name,
                "roleARN": req.get("roleArn"),
                "recordingGroup": drop_none(
                    {
                        "allSupported": group.get("allSupported"),
                        "includeGlobalResourceTypes": group.get("includeGlobalResourceTypes"),
                        "resourceTypes": list(group.get("resourceTypes", [])) or None,
                        "exclusionByResourceTypes": {"resourceTypes": list(exclusion[0].get("resourceTypes", []))}
                        if exclusion
                        else None,
                        "recordingStrategy": {"useOnly": strategy[0]["useOnly"]} if strategy else None,
                    }
                )
                if group
                else None,
                "recordingMode": drop_none(
                    {
                        "recordingFrequency": mode.get("recordingFrequency"),
                        "recordingModeOverrides": [
                            {
                                "description": o.get("description", ""),
                                "resourceTypes": o["resourceTypes"],
                                "recordingFrequency": o["recordingFrequency"],
                            }
                            for o in mode.get("recordingModeOverride", [])
                        ]
                        or None,
                    }
                )
                if mode
                else None,
            }
        )
    )
    found = cfg.describe_configuration_recorders(ConfigurationRecorderNames=[name])["ConfigurationRecorders"][0]
    return name, state(req, name=found["name"], roleArn=found.get("roleARN"))


def delivery_channel(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/deliveryChannel:DeliveryChannel -> PutDeliveryChannel, read back with DescribeDeliveryChannels."""
    cfg = aws.client("config")
    name = req.get("name", "default")
    snapshot = req.get("snapshotDeliveryProperties") or {}
    cfg.put_delivery_channel(
        DeliveryChannel=drop_none(
            {
                "name": name,
                "s3BucketName": req.get("s3BucketName"),
                "s3KeyPrefix": req.get("s3KeyPrefix"),
                "s3KmsKeyArn": req.get("s3KmsKeyArn"),
                "snsTopicARN": req.get("snsTopicArn"),
                "configSnapshotDeliveryProperties": {"deliveryFrequency": snapshot["deliveryFrequency"]}
                if snapshot.get("deliveryFrequency")
                else None,
            }
        )
    )
    found = cfg.describe_delivery_channels(DeliveryChannelNames=[name])["DeliveryChannels"][0]
    return name, state(req, name=found["name"], s3BucketName=found.get("s3BucketName"))


def recorder_status(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/recorderStatus:RecorderStatus -> Start/StopConfigurationRecorder, read back with its status."""
    cfg = aws.client("config")
    name = req.get("name")
    if req.get("isEnabled"):
        cfg.start_configuration_recorder(ConfigurationRecorderName=name)
    else:
        cfg.stop_configuration_recorder(ConfigurationRecorderName=name)
    found = cfg.describe_configuration_recorder_status(ConfigurationRecorderNames=[name])["ConfigurationRecordersStatus"][0]
    return name, state(req, isEnabled=bool(found.get("recording")))


def config_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/rule:Rule -> PutConfigRule, read back with DescribeConfigRules."""
    cfg = aws.client("config")
    name = req.get("name")
    source = req.get("source") or {}
    scope = req.get("scope") or {}
    custom = source.get("customPolicyDetails")
    cfg.put_config_rule(
        **drop_none(
            {
                "ConfigRule": drop_none(
                    {
                        "ConfigRuleName": name,
                        "Description": req.get("description"),
                        "InputParameters": as_json(req.get("inputParameters")) if req.get("inputParameters") else None,
                        "MaximumExecutionFrequency": req.get("maximumExecutionFrequency"),
                        "Scope": drop_none(
                            {
                                "ComplianceResourceTypes": list(scope.get("complianceResourceTypes", [])) or None,
                                "ComplianceResourceId": scope.get("complianceResourceId"),
                                "TagKey": scope.get("tagKey"),
                                "TagValue": scope.get("tagValue"),
                            }
                        )
                        or None,
                        "Source": drop_none(
                            {
                                "Owner": source.get("owner"),
                                "SourceIdentifier": source.get("sourceIdentifier"),
                                "SourceDetails": [
                                    drop_none(
                                        {
                                            "EventSource": d.get("eventSource"),
                                            "MessageType": d.get("messageType"),
                                            "MaximumExecutionFrequency": d.get("maximumExecutionFrequency"),
                                        }
                                    )
                                    for d in source.get("sourceDetails", [])
                                ]
                                or None,
                                "CustomPolicyDetails": drop_none(
                                    {
                                        "PolicyRuntime": custom.get("policyRuntime"),
                                        "PolicyText": custom.get("policyText"),
                                        "EnableDebugLogDelivery": custom.get("enableDebugLogDelivery"),
                                    }
                                )
                                if custom
                                else None,
                            }
                        ),
                    }
                ),
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    found = cfg.describe_config_rules(ConfigRuleNames=[name])["ConfigRules"][0]
    return name, state(req, arn=found["ConfigRuleArn"], ruleId=found["ConfigRuleId"])


def trail(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudtrail/trail:Trail -> CreateTrail (+ PutEventSelectors, StartLogging), read back with GetTrail."""
    ct = aws.client("cloudtrail")
    name = req.physical_name("name", 128)
    arn = ct.create_trail(
        **drop_none(
            {
                "Name": name,
                "S3BucketName": req.get("s3BucketName"),
                "S3KeyPrefix": req.get("s3KeyPrefix"),
                "SnsTopicName": req.get("snsTopicName"),
                "IncludeGlobalServiceEvents": req.get("includeGlobalServiceEvents"),
                "IsMultiRegionTrail": req.get("isMultiRegionTrail"),
                "EnableLogFileValidation": req.get("enableLogFileValidation"),
                "CloudWatchLogsLogGroupArn": req.get("cloudWatchLogsGroupArn"),
                "CloudWatchLogsRoleArn": req.get("cloudWatchLogsRoleArn"),
                "KmsKeyId": req.get("kmsKeyId"),
                "IsOrganizationTrail": req.get("isOrganizationTrail"),
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
    found = ct.get_trail(Name=name)["Trail"]
    logging = ct.get_trail_status(Name=name).get("IsLogging")
    return arn, state(
        req,
        name=found["Name"],
        arn=found["TrailARN"],
        homeRegion=found.get("HomeRegion"),
        enableLogging=logging,
        enableLogFileValidation=found.get("LogFileValidationEnabled"),
        isMultiRegionTrail=found.get("IsMultiRegionTrail"),
        kmsKeyId=found.get("KmsKeyId", req.get("kmsKeyId")),
    )


HANDLERS = {
    "aws:guardduty/detector:Detector": detector,
    "aws:guardduty/detectorFeature:DetectorFeature": detector_feature,
    "aws:cfg/recorder:Recorder": recorder,
    "aws:cfg/deliveryChannel:DeliveryChannel": delivery_channel,
    "aws:cfg/recorderStatus:RecorderStatus": recorder_status,
    "aws:cfg/rule:Rule": config_rule,
    "aws:cloudtrail/trail:Trail": trail,
}

CALLS = {"aws:guardduty/getDetector:getDetector": get_detector}
