"""aws:cfg -- AWS Config: the configuration recorder, its delivery channel and status, and config rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers import moto_fixes
from tools.emulator.handlers.translate import as_json, delete_call, described, drop_none, read_by, tag_list

_NO_RECORDER = "NoSuchConfigurationRecorderException"
_NO_CHANNEL = "NoSuchDeliveryChannelException"
_NO_RULE = "NoSuchConfigRuleException"

# --- aws:cfg/recorder:Recorder ---------------------------------------------------------------------------


def _recorder(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeConfigurationRecorders."""
    found = aws.client("config").describe_configuration_recorders(ConfigurationRecorderNames=[name])["ConfigurationRecorders"][0]
    return {"name": found["name"], "roleArn": found.get("roleARN")}


def create_recorder(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/recorder:Recorder -> PutConfigurationRecorder, read back with DescribeConfigurationRecorders."""
    name = req.get("name", "default")
    group = req.get("recordingGroup") or {}
    strategy = group.get("recordingStrategies") or []
    exclusion = group.get("exclusionByResourceTypes") or []
    mode = req.get("recordingMode") or {}
    aws.client("config").put_configuration_recorder(
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
    return described(aws, req, name, _recorder)


read_recorder = read_by(_recorder, _NO_RECORDER)
delete_recorder = delete_call("config", "delete_configuration_recorder", "ConfigurationRecorderName", _NO_RECORDER)


# --- aws:cfg/deliveryChannel:DeliveryChannel -------------------------------------------------------------


def _delivery_channel(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeDeliveryChannels."""
    found = aws.client("config").describe_delivery_channels(DeliveryChannelNames=[name])["DeliveryChannels"][0]
    return {"name": found["name"], "s3BucketName": found.get("s3BucketName")}


def create_delivery_channel(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/deliveryChannel:DeliveryChannel -> PutDeliveryChannel, read back with DescribeDeliveryChannels."""
    name = req.get("name", "default")
    snapshot = req.get("snapshotDeliveryProperties") or {}
    aws.client("config").put_delivery_channel(
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
    return described(aws, req, name, _delivery_channel)


read_delivery_channel = read_by(_delivery_channel, _NO_CHANNEL)
# AWS refuses while the recorder records; the RecorderStatus delete stops it first.
delete_delivery_channel = delete_call("config", "delete_delivery_channel", "DeliveryChannelName", _NO_CHANNEL)


# --- aws:cfg/recorderStatus:RecorderStatus ---------------------------------------------------------------


def _recorder_status(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeConfigurationRecorderStatus (the status exists as long as its recorder)."""
    found = aws.client("config").describe_configuration_recorder_status(ConfigurationRecorderNames=[name])[
        "ConfigurationRecordersStatus"
    ][0]
    return {"isEnabled": bool(found.get("recording"))}


def create_recorder_status(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/recorderStatus:RecorderStatus -> Start/StopConfigurationRecorder, read back with its status."""
    cfg = aws.client("config")
    name = req.get("name")
    if req.get("isEnabled"):
        cfg.start_configuration_recorder(ConfigurationRecorderName=name)
    else:
        cfg.stop_configuration_recorder(ConfigurationRecorderName=name)
    return described(aws, req, name, _recorder_status)


read_recorder_status = read_by(_recorder_status, _NO_RECORDER)
# StopConfigurationRecorder, as the provider does: a status has no delete call of its own.
delete_recorder_status = delete_call("config", "stop_configuration_recorder", "ConfigurationRecorderName", _NO_RECORDER)


# --- aws:cfg/rule:Rule -----------------------------------------------------------------------------------


def _config_rule(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeConfigRules."""
    found = moto_fixes.config_rule(aws.client("config").describe_config_rules(ConfigRuleNames=[name]), name)
    return {"arn": found["ConfigRuleArn"], "ruleId": found["ConfigRuleId"]}


def create_config_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cfg/rule:Rule -> PutConfigRule, read back with DescribeConfigRules."""
    name = req.get("name")
    source = req.get("source") or {}
    scope = req.get("scope") or {}
    custom = source.get("customPolicyDetails")
    aws.client("config").put_config_rule(
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
    return described(aws, req, name, _config_rule)


read_config_rule = read_by(_config_rule, _NO_RULE)
delete_config_rule = delete_call("config", "delete_config_rule", "ConfigRuleName", _NO_RULE)


RESOURCES = (
    ResourceHandler("aws:cfg/recorder:Recorder", create_recorder, read_recorder, delete_recorder),
    ResourceHandler(
        "aws:cfg/deliveryChannel:DeliveryChannel", create_delivery_channel, read_delivery_channel, delete_delivery_channel
    ),
    ResourceHandler(
        "aws:cfg/recorderStatus:RecorderStatus", create_recorder_status, read_recorder_status, delete_recorder_status
    ),
    ResourceHandler("aws:cfg/rule:Rule", create_config_rule, read_config_rule, delete_config_rule),
)
