"""aws:sns -- topics, their access policies and subscriptions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import as_json, delete_call, described, drop_none, fields, none_when, read_by, tag_list

_NOT_FOUND = "NotFound"

# Topic inputs that are plain topic attributes (input name -> attribute name).
_TOPIC_ATTRIBUTES = {
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "deliveryPolicy": "DeliveryPolicy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
    "fifoTopic": "FifoTopic",
    "contentBasedDeduplication": "ContentBasedDeduplication",
}


def _attributes(req: Request, names: Mapping[str, str]) -> dict[str, str]:
    """The inputs of ``names`` (input -> attribute name) that are set, as the API's attribute strings.

    Booleans are lower case; a policy (``...Policy``) is JSON, given as a string or as a block.
    """
    values = {attribute: req.get(key) for key, attribute in names.items() if req.get(key) is not None}
    return {
        attribute: str(value).lower()
        if isinstance(value, bool)
        else as_json(value)
        if attribute.endswith("Policy")
        else str(value)
        for attribute, value in values.items()
    }


# --- aws:sns/topic:Topic ---------------------------------------------------------------------------------


def _topic(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetTopicAttributes (the name is the ARN's last part)."""
    found = aws.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    return {
        "name": arn.rsplit(":", 1)[-1],
        "arn": found.get("TopicArn", arn),
        **fields(found, "Owner", "KmsMasterKeyId", "Policy", "DisplayName"),
    }


def create_topic(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topic:Topic -> CreateTopic, read back with GetTopicAttributes."""
    name = req.physical_name("name", 256)
    attributes = _attributes(req, _TOPIC_ATTRIBUTES)
    if req.get("policy"):
        attributes["Policy"] = as_json(req.get("policy"))
    arn = aws.client("sns").create_topic(
        **drop_none({"Name": name, "Attributes": attributes or None, "Tags": tag_list(req.get("tags")) or None})
    )["TopicArn"]
    return described(aws, req, arn, _topic)


read_topic = read_by(_topic, _NOT_FOUND)
# Its subscriptions go with it.
delete_topic = delete_call("sns", "delete_topic", "TopicArn", _NOT_FOUND)


# --- aws:sns/topicPolicy:TopicPolicy ---------------------------------------------------------------------


def _topic_policy(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetTopicAttributes (the policy exists as long as its topic)."""
    found = aws.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    return {"owner": found.get("Owner"), "policy": found.get("Policy")}


def default_topic_policy(topic_arn: str, owner: str) -> str:
    """The access policy AWS gives a new topic (the provider restores it when a TopicPolicy is deleted)."""
    return json.dumps(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "SNS:GetTopicAttributes",
                        "SNS:SetTopicAttributes",
                        "SNS:AddPermission",
                        "SNS:RemovePermission",
                        "SNS:DeleteTopic",
                        "SNS:Subscribe",
                        "SNS:ListSubscriptionsByTopic",
                        "SNS:Publish",
                    ],
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": owner}},
                }
            ],
        }
    )


def create_topic_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topicPolicy:TopicPolicy -> SetTopicAttributes(Policy), read back with GetTopicAttributes."""
    arn = req.get("arn")
    aws.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=as_json(req.get("policy")))
    return described(aws, req, arn, _topic_policy)


read_topic_policy = read_by(_topic_policy, _NOT_FOUND)


@none_when(_NOT_FOUND)
def delete_topic_policy(aws: Aws, arn: str, recorded: Mapping[str, Any]) -> None:
    """SetTopicAttributes back to the default policy, as the provider does (a topic always has a policy)."""
    owner = _topic_policy(aws, arn, recorded)["owner"] or aws.account_id
    aws.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=default_topic_policy(arn, owner))


# --- aws:sns/topicSubscription:TopicSubscription ---------------------------------------------------------

_SUBSCRIPTION_ATTRIBUTES = {
    "rawMessageDelivery": "RawMessageDelivery",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "redrivePolicy": "RedrivePolicy",
    "deliveryPolicy": "DeliveryPolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def _subscription(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetSubscriptionAttributes."""
    found = aws.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    return {
        "arn": arn,
        "ownerId": found.get("Owner"),
        "pendingConfirmation": found.get("PendingConfirmation") == "true",
        "confirmationWasAuthenticated": found.get("ConfirmationWasAuthenticated") == "true",
    }


def create_topic_subscription(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:sns/topicSubscription:TopicSubscription -> Subscribe, read back with GetSubscriptionAttributes."""
    attributes = _attributes(req, _SUBSCRIPTION_ATTRIBUTES)
    arn = aws.client("sns").subscribe(
        **drop_none(
            {
                "TopicArn": req.get("topic"),
                "Protocol": req.get("protocol"),
                "Endpoint": req.get("endpoint"),
                "Attributes": attributes or None,
                "ReturnSubscriptionArn": True,
            }
        )
    )["SubscriptionArn"]
    return described(aws, req, arn, _subscription)


read_topic_subscription = read_by(_subscription, _NOT_FOUND)
delete_topic_subscription = delete_call("sns", "unsubscribe", "SubscriptionArn", _NOT_FOUND)


RESOURCES = (
    ResourceHandler("aws:sns/topic:Topic", create_topic, read_topic, delete_topic),
    ResourceHandler("aws:sns/topicPolicy:TopicPolicy", create_topic_policy, read_topic_policy, delete_topic_policy),
    ResourceHandler(
        "aws:sns/topicSubscription:TopicSubscription",
        create_topic_subscription,
        read_topic_subscription,
        delete_topic_subscription,
    ),
)
