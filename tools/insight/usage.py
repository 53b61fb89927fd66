"""Usage assumptions of the cost estimate: explicit, documented, overridable.

Prices say what a unit costs; how many units a month brings (gigabytes through the NAT gateways, log
volume, requests, storage) is not in the resource graph. Every such number is a field of :class:`Usage`
with its help text. The defaults are those of prod; :data:`PROFILES` scales the traffic-driven ones down
for dev and staging. Any of them is overridden per run::

    python -m tools.insight.cost --env prod --usage requests_millions=250 nat_processed_gb=2000
    make cost ENV=prod USAGE="requests_millions=250"

Only what scales with the number of running tasks (Fargate, per-task logs, Container Insights) differs
between the minimum and the maximum autoscaling scale; traffic-driven volumes are monthly totals and the
same at both ends, so the two figures isolate what autoscaling costs.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

HELP = "usage.help"


def assumption(default: float, help: str) -> Any:
    """A usage field with its default and its help text (shown by ``--show-usage`` and in the report)."""
    return field(default=default, metadata={HELP: help})


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Monthly usage behind the estimate (prod defaults; see :data:`PROFILES`)."""

    hours_per_month: float = assumption(730, "hours of on-demand time in a month (AWS prices a month as 730 hours)")
    # traffic
    requests_millions: float = assumption(100, "requests through the ALB (and WAF) per month, in millions")
    alb_lcu: float = assumption(5, "average Load Balancer Capacity Units per hour (the largest LCU dimension)")
    nat_processed_gb: float = assumption(500, "GB per month processed by the NAT gateways, all gateways together")
    interface_endpoint_processed_gb: float = assumption(50, "GB per month processed by each interface VPC endpoint")
    # logs (ingested GB per month)
    service_log_gb_per_task: float = assumption(2, "application and Service Connect log GB per running task per month")
    one_off_task_hours: float = assumption(2, "hours per month of one-off tasks (the migration task) per task definition")
    one_off_log_gb: float = assumption(0.1, "log GB per month of a log group only one-off tasks write to")
    container_insights_gb_per_task: float = assumption(0.3, "Container Insights performance-log GB per running task per month")
    container_insights_metrics_per_cluster: float = assumption(8, "Container Insights metrics per ECS cluster")
    container_insights_metrics_per_service: float = assumption(11, "Container Insights metrics per ECS service")
    flow_log_gb: float = assumption(100, "VPC Flow Logs GB per month (ingested, and analysed by GuardDuty)")
    dns_log_gb: float = assumption(10, "DNS query-log GB per month GuardDuty analyses")
    waf_log_gb_per_million_requests: float = assumption(1.5, "WAF log GB per million requests")
    cloudtrail_log_gb: float = assumption(5, "CloudTrail events delivered to CloudWatch Logs, GB per month")
    database_log_gb: float = assumption(10, "Aurora PostgreSQL log GB per month (pgaudit included)")
    cache_log_gb: float = assumption(0.2, "Redis slow-log GB per month")
    other_log_gb: float = assumption(0.5, "GB per month for a log group of no known kind")
    enhanced_monitoring_kb_per_sample: float = assumption(4, "size of one RDS enhanced-monitoring sample, KB")
    log_stored_ratio: float = assumption(0.15, "stored (compressed) GB per ingested GB of CloudWatch Logs")
    never_expire_retention_days: float = assumption(365, "days of logs or objects assumed stored when nothing expires them")
    # data stores
    aurora_storage_gb: float = assumption(200, "Aurora cluster volume, GB")
    aurora_io_millions: float = assumption(200, "Aurora I/O requests per month, in millions")
    aurora_backup_change_gb_per_day: float = assumption(
        5, "GB of changed data per day that backups retain beyond the free allowance"
    )
    aurora_serverless_acu_min: float = assumption(0.5, "Aurora Serverless v2 ACUs per instance at minimum scale")
    aurora_serverless_acu_max: float = assumption(8, "Aurora Serverless v2 ACUs per instance at maximum scale")
    redis_dataset_gb: float = assumption(5, "Redis data set, GB (the size of one snapshot)")
    ecr_gb_per_repository: float = assumption(3, "image GB kept per ECR repository (the lifecycle keeps 30 tagged images)")
    alb_log_gb_per_million_requests: float = assumption(0.15, "ALB access-log GB (gzip) per million requests")
    cloudtrail_bucket_gb: float = assumption(3, "CloudTrail log-file GB delivered to S3 per month")
    config_bucket_gb: float = assumption(1, "AWS Config snapshot and history GB delivered to S3 per month")
    access_log_bucket_gb: float = assumption(1, "S3 server access-log GB per month")
    other_bucket_gb: float = assumption(1, "GB per month written to a bucket of no known kind")
    # security and control plane
    cloudtrail_management_events_millions: float = assumption(3, "CloudTrail management events per month, in millions")
    cloudtrail_write_event_share: float = assumption(
        0.3, "share of management events that are write events (Insights API call rate)"
    )
    s3_data_events_millions: float = assumption(5, "S3 data events per month GuardDuty analyses, in millions")
    config_items: float = assumption(2000, "AWS Config configuration items recorded per month")
    config_evaluations_per_rule: float = assumption(1000, "AWS Config evaluations per rule per month")
    kms_requests_per_key: float = assumption(1_000_000, "KMS API requests per key per month")
    secrets_api_calls: float = assumption(100_000, "Secrets Manager API calls per secret per month")
    sns_publishes: float = assumption(5_000, "alarm notifications published per topic per month")

    @classmethod
    def fields(cls) -> list[tuple[str, str]]:
        """``(name, help)`` of every assumption, in declaration order."""
        return [(f.name, f.metadata[HELP]) for f in dataclasses.fields(cls)]


#: Per-environment departures from the prod defaults (traffic and data volumes).
PROFILES: dict[str, dict[str, float]] = {
    "dev": {
        "requests_millions": 1,
        "alb_lcu": 0.5,
        "nat_processed_gb": 30,
        "interface_endpoint_processed_gb": 1,
        "service_log_gb_per_task": 0.5,
        "flow_log_gb": 5,
        "dns_log_gb": 1,
        "cloudtrail_log_gb": 0.5,
        "database_log_gb": 0.5,
        "cache_log_gb": 0.05,
        "aurora_storage_gb": 10,
        "aurora_io_millions": 5,
        "aurora_backup_change_gb_per_day": 0.2,
        "redis_dataset_gb": 0.1,
        "ecr_gb_per_repository": 1,
        "cloudtrail_bucket_gb": 0.5,
        "config_bucket_gb": 0.2,
        "access_log_bucket_gb": 0.2,
        "cloudtrail_management_events_millions": 0.5,
        "s3_data_events_millions": 0.5,
        "config_items": 500,
        "config_evaluations_per_rule": 300,
        "kms_requests_per_key": 20_000,
        "secrets_api_calls": 5_000,
        "sns_publishes": 500,
    },
    "staging": {
        "requests_millions": 10,
        "alb_lcu": 1,
        "nat_processed_gb": 100,
        "interface_endpoint_processed_gb": 10,
        "service_log_gb_per_task": 1,
        "flow_log_gb": 20,
        "dns_log_gb": 2,
        "cloudtrail_log_gb": 1.5,
        "database_log_gb": 3,
        "cache_log_gb": 0.1,
        "aurora_storage_gb": 50,
        "aurora_io_millions": 30,
        "aurora_backup_change_gb_per_day": 1,
        "redis_dataset_gb": 1,
        "ecr_gb_per_repository": 2,
        "cloudtrail_bucket_gb": 1,
        "config_bucket_gb": 0.5,
        "access_log_bucket_gb": 0.5,
        "cloudtrail_management_events_millions": 1,
        "s3_data_events_millions": 1,
        "config_items": 1000,
        "config_evaluations_per_rule": 500,
        "kms_requests_per_key": 200_000,
        "secrets_api_calls": 30_000,
        "sns_publishes": 2_000,
    },
    "prod": {},
}


class UsageError(ValueError):
    """An unknown or malformed ``--usage key=value``; the message names the nearest keys."""


def parse_usage(pairs: Sequence[str] | str) -> dict[str, float]:
    """``["requests_millions=250"]`` (or one space-separated string) as checked, numeric overrides."""
    items = pairs.split() if isinstance(pairs, str) else [p for chunk in pairs for p in chunk.split()]
    known = [name for name, _ in Usage.fields()]
    found: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"usage {item!r}: expected key=value, e.g. requests_millions=250")
        if key not in known:
            nearest = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(nearest)}?" if nearest else "see --show-usage for the keys"
            raise UsageError(f"usage {key!r}: unknown assumption; {hint}")
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"usage {key}={raw!r}: not a number") from None
        if value < 0:
            raise UsageError(f"usage {key}={raw}: must not be negative")
        found[key] = value
    return found


def usage_for(environment: str, overrides: Mapping[str, float] | None = None) -> Usage:
    """The assumptions for an environment preset: prod defaults, the environment's profile, then ``overrides``."""
    return replace(Usage(), **{**PROFILES.get(environment, {}), **dict(overrides or {})})
