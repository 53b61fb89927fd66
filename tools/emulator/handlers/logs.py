"""CloudWatch Logs: log groups."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, Request
from tools.emulator.handlers.common import as_json, drop_none, state


def log_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/logGroup:LogGroup -> CreateLogGroup + PutRetentionPolicy, read back with DescribeLogGroups."""
    logs = aws.client("logs")
    name = req.physical_name("name", 512)
    logs.create_log_group(
        **drop_none(
            {
                "logGroupName": name,
                "kmsKeyId": req.get("kmsKeyId"),
                "logGroupClass": req.get("logGroupClass"),
                "tags": req.get("tags") or None,
            }
        )
    )
    if req.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(req.get("retentionInDays")))
    found = next(g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name)
    return name, state(
        req,
        name=name,
        # The provider strips the ":*" suffix DescribeLogGroups puts on the ARN.
        arn=found["arn"].removesuffix(":*"),
        retentionInDays=found.get("retentionInDays", 0),
        kmsKeyId=found.get("kmsKeyId", req.get("kmsKeyId", "")),
        logGroupClass=found.get("logGroupClass", req.get("logGroupClass", "STANDARD")),
    )


def log_resource_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:cloudwatch/logResourcePolicy:LogResourcePolicy -> PutResourcePolicy, read back with DescribeResourcePolicies."""
    logs = aws.client("logs")
    name = req.get("policyName")
    logs.put_resource_policy(policyName=name, policyDocument=as_json(req.get("policyDocument")))
    found = next(p for p in logs.describe_resource_policies()["resourcePolicies"] if p["policyName"] == name)
    return name, state(req, policyName=name, policyDocument=found["policyDocument"])


HANDLERS = {
    "aws:cloudwatch/logGroup:LogGroup": log_group,
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": log_resource_policy,
}
