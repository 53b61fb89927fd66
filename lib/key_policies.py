"""KMS key policy documents: plain functions returning dicts, no Pulumi.

One function per key purpose, all with the same signature ``(account_id, region, partition,
dns_suffix)``. Every policy starts with :func:`account_admin_statement`, the default statement
AWS writes into every key policy: without it the account itself loses the ability to administer
the key, and IAM policies could never grant its use (KMS only honours IAM when the key policy
delegates to the account). The other statements let exactly the AWS services that must use the
key do so, each scoped by a condition to this account (and to the encryption context where the
service sends one).

Callers ``json.dumps`` the result; tests read the dicts directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.iam_policies import PolicyDocument, Statement, policy_document, policy_statement

#: ``(account_id, region, partition, dns_suffix) -> policy document``
KeyPolicyBuilder = Callable[[str, str, str, str], PolicyDocument]

#: What CloudWatch Logs needs to encrypt and read a log group ("Encrypt log data in CloudWatch Logs using AWS KMS").
LOGS_SERVICE_ACTIONS: tuple[str, ...] = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)
#: What a service publishing to a KMS-encrypted SNS topic needs (SNS "Encryption at rest").
SNS_PUBLISHER_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey*")
#: What AWS Config needs to deliver configuration snapshots to an SSE-KMS bucket.
CONFIG_DELIVERY_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")


def account_root_arn(account_id: str, partition: str) -> str:
    """ARN of the account principal (``arn:<partition>:iam::<account>:root``)."""
    return f"arn:{partition}:iam::{account_id}:root"


def account_admin_statement(account_id: str, partition: str) -> Statement:
    """The AWS default key-policy statement: the account (root) administers the key, IAM decides who uses it.

    ``kms:*`` on ``*`` is the statement AWS itself writes into every key policy; in a key policy
    ``*`` means "this key" (a key policy cannot reach any other resource).
    """
    return policy_statement(
        "EnableAccountAdministration",
        "kms:*",
        principal={"AWS": account_root_arn(account_id, partition)},
        resource="*",
    )


def _service_grant(sid: str, service: str, action: str | list[str], condition: dict[str, Any] | None = None) -> Statement:
    """Let one AWS service principal use the key (``*`` in a key policy is this key), under ``condition`` if given."""
    return policy_statement(sid, action, principal={"Service": service}, resource="*", condition=condition)


def data_key_policy(account_id: str, region: str, partition: str, dns_suffix: str = "amazonaws.com") -> PolicyDocument:
    """Key for Aurora, Redis and Secrets Manager.

    These services use the key on behalf of the calling IAM principal (through grants), so the
    account statement is all the policy needs: who may use the data is decided in IAM.
    """
    del region, dns_suffix  # same signature as the other builders; nothing here is regional
    return policy_document(account_admin_statement(account_id, partition))


def logs_service_principal(region: str, dns_suffix: str = "amazonaws.com") -> str:
    """The regional CloudWatch Logs service principal (``logs.<region>.amazonaws.com``)."""
    return f"logs.{region}.{dns_suffix}"


def logs_key_policy(account_id: str, region: str, partition: str, dns_suffix: str = "amazonaws.com") -> PolicyDocument:
    """Key for CloudWatch Logs groups: the region's Logs service may use it for this account's groups only."""
    return policy_document(
        account_admin_statement(account_id, partition),
        _service_grant(
            "AllowCloudWatchLogs",
            logs_service_principal(region, dns_suffix),
            list(LOGS_SERVICE_ACTIONS),
            # The encryption context Logs sends is the log group ARN: only this account's groups
            # in this region can use the key, even though the principal is a shared service.
            {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:*"}},
        ),
    )


def alarms_key_policy(account_id: str, region: str, partition: str, dns_suffix: str = "amazonaws.com") -> PolicyDocument:
    """Key for the SNS alarm topic: CloudWatch alarms (and SNS itself) must be able to use it.

    Without the CloudWatch statement an alarm fires but its notification is silently dropped.
    The CloudWatch statement is the one AWS documents, without a condition: CloudWatch does not
    send an encryption context or source account that a condition could pin.
    """
    del region, dns_suffix
    return policy_document(
        account_admin_statement(account_id, partition),
        _service_grant("AllowCloudWatchAlarmsToPublish", "cloudwatch.amazonaws.com", list(SNS_PUBLISHER_ACTIONS)),
        _service_grant(
            "AllowSnsToUseTheKey",
            "sns.amazonaws.com",
            list(SNS_PUBLISHER_ACTIONS),
            {"StringEquals": {"aws:SourceAccount": account_id}},
        ),
    )


def audit_key_policy(account_id: str, region: str, partition: str, dns_suffix: str = "amazonaws.com") -> PolicyDocument:
    """Key for CloudTrail log files and the AWS Config delivery bucket.

    CloudTrail may only generate data keys for this account's trails (encryption-context
    condition, as in "Configure AWS KMS key policies for CloudTrail") and describe the key;
    AWS Config may encrypt what it delivers for this account.
    """
    del region, dns_suffix  # a trail may be multi-region: its encryption context names any region
    this_account = {"StringEquals": {"aws:SourceAccount": account_id}}
    return policy_document(
        account_admin_statement(account_id, partition),
        _service_grant(
            "AllowCloudTrailToEncryptLogs",
            "cloudtrail.amazonaws.com",
            "kms:GenerateDataKey*",
            {
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account_id}:trail/*"},
                **this_account,
            },
        ),
        _service_grant("AllowCloudTrailToDescribeKey", "cloudtrail.amazonaws.com", "kms:DescribeKey"),
        _service_grant("AllowConfigToEncryptDeliveries", "config.amazonaws.com", list(CONFIG_DELIVERY_ACTIONS), this_account),
    )


#: key purpose -> (what it encrypts, key policy builder); the Keys component creates one key per entry.
KEY_PURPOSES: dict[str, tuple[str, KeyPolicyBuilder]] = {
    "data": ("Aurora, Redis and Secrets Manager data at rest", data_key_policy),
    "logs": ("CloudWatch Logs log groups", logs_key_policy),
    "alarms": ("SNS alarm topic (CloudWatch alarms publish to it)", alarms_key_policy),
    "audit": ("CloudTrail log files and the AWS Config delivery bucket", audit_key_policy),
}
