"""High availability: zones, a NAT per zone, Aurora and Redis redundancy."""

from __future__ import annotations

from tests.expectations import EXPECTED
from tests.integration.conftest import Deployed
from tests.integration.support import (
    aurora_cluster,
    ecs_services,
    redis_group,
)


def test_subnets_span_the_planned_zones(deployed: Deployed) -> None:
    """Losing one availability zone leaves every tier running in another."""
    o, aws = deployed.outputs, deployed.aws
    for tier in ("publicSubnetIds", "privateSubnetIds", "databaseSubnetIds"):
        subnets = aws("ec2").describe_subnets(SubnetIds=o[tier])["Subnets"]
        assert len({s["AvailabilityZone"] for s in subnets}) == EXPECTED[deployed.env].az_count, tier


def test_nat_gateway_per_zone_where_it_matters(deployed: Deployed) -> None:
    """Staging and prod survive a zone outage without losing outbound access; dev shares one NAT to save cost."""
    o, aws = deployed.outputs, deployed.aws
    gateways = aws("ec2").describe_nat_gateways(NatGatewayIds=o["natGatewayIds"])["NatGateways"]
    expected = EXPECTED[deployed.env].nat_gateways
    assert len(gateways) == expected
    zones = {s["AvailabilityZone"] for s in aws("ec2").describe_subnets(SubnetIds=[g["SubnetId"] for g in gateways])["Subnets"]}
    assert len(zones) == expected


def test_aurora_instances_spread_over_zones(ha_deployed: Deployed) -> None:
    """A zone failure promotes a reader in another zone instead of taking payments down."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    members = aurora_cluster(aws, o)["DBClusterMembers"]
    assert len(members) == EXPECTED[ha_deployed.env].db_instance_count
    assert sum(1 for m in members if m["IsClusterWriter"]) == 1
    zones = set()
    for member in members:
        instance = aws("rds").describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])["DBInstances"][0]
        zones.add(instance["AvailabilityZone"])
    # One instance per zone as far as the zones go (README: "2 (Multi-AZ)", "3 (one per AZ)").
    assert len(zones) == min(len(members), EXPECTED[ha_deployed.env].az_count)


def test_redis_fails_over_automatically(ha_deployed: Deployed) -> None:
    """The cache keeps serving idempotency keys when its primary node fails."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    group = redis_group(aws, o)
    assert group["AutomaticFailover"] == "enabled"
    assert group["MultiAZ"] == "enabled"
    assert len(group["MemberClusters"]) == EXPECTED[ha_deployed.env].cache_node_count


def test_services_keep_a_task_in_every_zone(ha_deployed: Deployed) -> None:
    """Services are placed across all private subnets so one zone can fail."""
    o, aws = ha_deployed.outputs, ha_deployed.aws
    for service in ecs_services(aws, o):
        assert set(service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == set(o["privateSubnetIds"])
