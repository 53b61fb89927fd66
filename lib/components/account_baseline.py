"""Account security: GuardDuty, AWS Config with PCI DSS rules, CloudTrail (staging and prod)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from lib.components.base import Context
from lib.config import AccountSecuritySettings


@dataclass(frozen=True)
class AccountBaselineArgs:
    """Inputs of :class:`AccountBaseline`."""

    context: Context
    settings: AccountSecuritySettings
    account_id: pulumi.Input[str]
    audit_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    protect: bool
    retain_on_delete: bool


class AccountBaseline(pulumi.ComponentResource):
    """GuardDuty detector, Config recorder + delivery channel + rules, CloudTrail trail.

    With ``manage_account_singletons`` false the stack creates none of the per-account
    singletons and reports the account's existing detector and recorder instead.
    """

    guardduty_detector_id: pulumi.Output[str]
    config_recorder_name: pulumi.Output[str]
    cloudtrail_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AccountBaselineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:account:AccountBaseline", name, None, opts)
        # SCAFFOLD: replaced by the real implementation.
        self.guardduty_detector_id = pulumi.Output.from_input("detector")
        self.config_recorder_name = pulumi.Output.from_input("recorder")
        self.cloudtrail_arn = None
        self.register_outputs({"guardduty_detector_id": self.guardduty_detector_id})
