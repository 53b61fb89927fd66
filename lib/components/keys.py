"""KMS customer-managed keys, one per purpose, with rotation and service-scoped key policies."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context


@dataclass(frozen=True)
class KeysArgs:
    """Inputs of :class:`Keys`."""

    context: Context
    account_id: pulumi.Input[str]
    deletion_window_days: int
    protect: bool
    retain_on_delete: bool


class Keys(pulumi.ComponentResource):
    """KMS keys: ``data`` (Aurora, Redis, Secrets Manager), ``logs`` (CloudWatch Logs),
    ``alarms`` (SNS alarm topic, usable by CloudWatch), ``audit`` (CloudTrail, Config bucket)."""

    data_key_arn: pulumi.Output[str]
    data_key_id: pulumi.Output[str]
    logs_key_arn: pulumi.Output[str]
    alarms_key_arn: pulumi.Output[str]
    audit_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:keys:Keys", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.data_key_arn = pulumi.Output.from_input("arn:aws:kms:us-east-1:123456789012:key/data")
        self.data_key_id = pulumi.Output.from_input("data")
        self.logs_key_arn = pulumi.Output.from_input("arn:aws:kms:us-east-1:123456789012:key/logs")
        self.alarms_key_arn = pulumi.Output.from_input("arn:aws:kms:us-east-1:123456789012:key/alarms")
        self.audit_key_arn = pulumi.Output.from_input("arn:aws:kms:us-east-1:123456789012:key/audit")
        self.register_outputs({"data_key_arn": self.data_key_arn})
