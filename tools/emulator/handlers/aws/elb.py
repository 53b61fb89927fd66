"""aws:elb -- the getServiceAccount data source (the regional account that writes ALB access logs)."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, DataSource

# The regional Elastic Load Balancing account that writes ALB access logs. The provider answers this
# data source from the same built-in table (there is no API for it): it is published AWS data, not state.
ELB_SERVICE_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-central-1": "054676820928",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
}


def service_account(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:elb/getServiceAccount -> the provider's regional table (a local lookup in the real provider too)."""
    name = args.get("region") or aws.region
    account = ELB_SERVICE_ACCOUNTS.get(name)
    if account is None:
        raise RuntimeError(f"no ELB service account known for region {name}")
    return {"id": account, "arn": f"arn:{aws.partition}:iam::{account}:root", "region": name}


DATA_SOURCES = (DataSource("aws:elb/getServiceAccount:getServiceAccount", service_account),)
