"""aws:index -- provider-level data sources: caller identity, region, partition, availability zones."""

from __future__ import annotations

from typing import Any

from tools.emulator.engine import Aws, DataSource


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


def availability_zones(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    """aws:index/getAvailabilityZones -> EC2 DescribeAvailabilityZones."""
    filters = [{"Name": f["name"], "Values": f["values"]} for f in args.get("filters") or []]
    if args.get("state"):
        filters.append({"Name": "state", "Values": [args["state"]]})
    zones = aws.client("ec2").describe_availability_zones(**({"Filters": filters} if filters else {}))["AvailabilityZones"]
    excluded = set(args.get("excludeNames") or [])
    zones = [z for z in zones if z["ZoneName"] not in excluded]
    return {
        "id": aws.region,
        "names": [z["ZoneName"] for z in zones],
        "zoneIds": [z["ZoneId"] for z in zones],
        "groupNames": sorted({z.get("GroupName", aws.region) for z in zones}),
        "state": args.get("state"),
    }


DATA_SOURCES = (
    DataSource("aws:index/getCallerIdentity:getCallerIdentity", caller_identity),
    DataSource("aws:index/getRegion:getRegion", region),
    DataSource("aws:index/getPartition:getPartition", partition),
    DataSource("aws:index/getAvailabilityZones:getAvailabilityZones", availability_zones),
)
