"""KMS customer-managed keys, one per purpose, with rotation and service-scoped key policies."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, guarded_opts
from lib.config import ProtectionSettings
from lib.key_policies import KEY_PURPOSES, KeyPolicyBuilder

COMPONENT = "keys"


@dataclass(frozen=True, kw_only=True)
class KeysArgs:
    """Inputs of :class:`Keys`."""

    context: Context
    account_id: pulumi.Input[str]
    deletion_window_days: int
    protection: ProtectionSettings


class Keys(Component):
    """KMS keys: ``data`` (Aurora, Redis, Secrets Manager), ``logs`` (CloudWatch Logs),
    ``alarms`` (SNS alarm topic, usable by CloudWatch), ``audit`` (CloudTrail, Config bucket).

    One key per purpose keeps blast radius small (disabling the logs key does not lock the
    database) and lets each key policy name only the services that need that key.
    """

    data_key_arn: pulumi.Output[str]
    data_key_id: pulumi.Output[str]
    logs_key_arn: pulumi.Output[str]
    alarms_key_arn: pulumi.Output[str]
    audit_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:keys:Keys", name, None, opts)
        ctx = args.context
        # The partition (aws, aws-cn, aws-us-gov) and its DNS suffix shape ARNs and service principals.
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))

        keys: dict[str, aws.kms.Key] = {}
        for purpose, (description, build_policy) in KEY_PURPOSES.items():
            key_name = ctx.name(purpose)
            key = aws.kms.Key(
                f"{name}-{purpose}",
                description=f"{key_name}: {description}",
                enable_key_rotation=True,
                deletion_window_in_days=args.deletion_window_days,
                policy=_policy_json(build_policy, args.account_id, ctx.region, partition),
                tags=ctx.tags(COMPONENT, key_name),
                # Losing a key loses every byte it encrypted: protect/retain as the environment asks.
                opts=guarded_opts(self, args.protection),
            )
            aws.kms.Alias(
                f"{name}-{purpose}-alias",
                name=f"alias/{key_name}",
                target_key_id=key.key_id,
                opts=guarded_opts(self, args.protection),
            )
            keys[purpose] = key

        self.data_key_arn = keys["data"].arn
        self.data_key_id = keys["data"].key_id
        self.logs_key_arn = keys["logs"].arn
        self.alarms_key_arn = keys["alarms"].arn
        self.audit_key_arn = keys["audit"].arn
        self.finish()


def _policy_json(
    build: KeyPolicyBuilder,
    account_id: pulumi.Input[str],
    region: str,
    partition: pulumi.Output[aws.GetPartitionResult],
) -> pulumi.Output[str]:
    """Render a key policy once the account id and partition are known (no resources inside apply)."""
    return pulumi.Output.all(account_id, partition.partition, partition.dns_suffix).apply(
        lambda values: json.dumps(build(str(values[0]), region, str(values[1]), str(values[2])))
    )
