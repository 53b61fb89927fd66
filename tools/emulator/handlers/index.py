"""Provider-level data sources: caller identity, region, partition, ELB service account."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws

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


def caller_identity(aws: Aws, _args: dict[str, Any]) -> dict[str, Any]:
    """aws:index/getCallerIdentity -> STS GetCallerIdentity (the assumed deployer role of this account)."""
    found = aws.client("sts").get_caller_identity()
    return {"id": found["Account"], "accountId": found["Account"], "arn": found["Arn"], "userId": found["UserId"]}


def region(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:index/getRegion -> EC2 DescribeRegions for the client's region (or the one asked for)."""
    name = args.get("region") or args.get("name") or aws.region
    found = aws.client("ec2").describe_regions(RegionNames=[name])["Regions"][0]
    return {
        "id": found["RegionName"],
        "name": found["RegionName"],
        "region": found["RegionName"],
        "endpoint": found.get("Endpoint", ""),
        "description": found["RegionName"],
    }


def partition(aws: Aws, _args: dict[str, Any]) -> dict[str, Any]:
    """aws:index/getPartition -> the partition of the caller's ARN (STS GetCallerIdentity)."""
    name = aws.client("sts").get_caller_identity()["Arn"].split(":")[1]
    suffix = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}.get(name, "amazonaws.com")
    return {"id": name, "partition": name, "dnsSuffix": suffix, "reverseDnsPrefix": "com.amazonaws"}


def elb_service_account(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:elb/getServiceAccount -> the provider's regional table (a local lookup in the real provider too)."""
    name = args.get("region") or aws.region
    account = ELB_SERVICE_ACCOUNTS.get(name)
    if account is None:
        raise RuntimeError(f"no ELB service account known for region {name}")
    return {"id": account, "arn": f"arn:{aws.partition}:iam::{account}:root", "region": name}


CALLS = {
    "aws:index/getCallerIdentity:getCallerIdentity": caller_identity,
    "aws:index/getRegion:getRegion": region,
    "aws:index/getPartition:getPartition": partition,
    "aws:elb/getServiceAccount:getServiceAccount": elb_service_account,
}
