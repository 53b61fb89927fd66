"""Property tests of the pure CIDR plan (lib/cidr.plan_subnets): no Pulumi involved."""

from __future__ import annotations

import ipaddress
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.cidr import MAX_AZS, SMALLEST_PREFIX, CidrPlanError, plan_subnets

#: Largest VPC prefix whose public/database pieces (prefix + 6) are still at least /27.
LARGEST_PLANNABLE_PREFIX = SMALLEST_PREFIX - 6


def _network(address: int, prefix: int) -> str:
    """The ``/prefix`` network containing ``address`` (host bits cleared), as a string."""
    return str(ipaddress.ip_network((address, prefix), strict=False))


vpc_blocks = st.builds(
    _network,
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=16, max_value=LARGEST_PLANNABLE_PREFIX),
)
az_counts = st.integers(min_value=1, max_value=MAX_AZS)


@settings(max_examples=200, deadline=None)
@given(vpc=vpc_blocks, azs=az_counts)
def test_every_subnet_lies_inside_the_vpc(vpc: str, azs: int) -> None:
    network = ipaddress.IPv4Network(vpc)
    for cidr in plan_subnets(vpc, azs).all():
        assert ipaddress.IPv4Network(cidr).subnet_of(network), f"{cidr} is outside {vpc}"


@settings(max_examples=200, deadline=None)
@given(vpc=vpc_blocks, azs=az_counts)
def test_no_two_subnets_overlap(vpc: str, azs: int) -> None:
    subnets = [ipaddress.ip_network(c) for c in plan_subnets(vpc, azs).all()]
    for a, b in combinations(subnets, 2):
        assert not a.overlaps(b), f"{a} overlaps {b} in the plan for {vpc} x {azs} AZs"


@settings(max_examples=200, deadline=None)
@given(vpc=vpc_blocks, azs=az_counts)
def test_each_tier_has_one_subnet_per_az(vpc: str, azs: int) -> None:
    plan = plan_subnets(vpc, azs)
    for tier, cidrs in (("public", plan.public), ("private", plan.private), ("database", plan.database)):
        assert len(cidrs) == azs, f"{tier} tier of {vpc} has {len(cidrs)} subnets for {azs} AZs"
        assert len(set(cidrs)) == azs, f"{tier} tier of {vpc} repeats a subnet: {cidrs}"


@settings(max_examples=200, deadline=None)
@given(vpc=vpc_blocks, azs=az_counts)
def test_public_and_database_subnets_are_big_enough_for_an_alb(vpc: str, azs: int) -> None:
    plan = plan_subnets(vpc, azs)
    for cidr in plan.public + plan.database:
        assert ipaddress.ip_network(cidr).prefixlen <= SMALLEST_PREFIX, f"{cidr} is smaller than /{SMALLEST_PREFIX}"


@settings(max_examples=200, deadline=None)
@given(vpc=vpc_blocks, azs=az_counts)
def test_private_subnets_are_the_largest_tier(vpc: str, azs: int) -> None:
    """Every Fargate task takes an IP in a private subnet, so that tier gets the most addresses."""
    plan = plan_subnets(vpc, azs)
    smallest_private = min(ipaddress.ip_network(c).num_addresses for c in plan.private)
    largest_other = max(ipaddress.ip_network(c).num_addresses for c in plan.public + plan.database)
    assert smallest_private > largest_other, f"private subnets of {vpc} are not larger than the others: {plan}"


@settings(max_examples=50, deadline=None)
@given(vpc=vpc_blocks, azs=st.integers(min_value=1, max_value=MAX_AZS - 1))
def test_adding_an_az_keeps_existing_subnets(vpc: str, azs: int) -> None:
    """Growing from n to n+1 AZs must not renumber (and so replace) the subnets already deployed."""
    smaller, larger = plan_subnets(vpc, azs), plan_subnets(vpc, azs + 1)
    assert larger.public[:azs] == smaller.public
    assert larger.private[:azs] == smaller.private
    assert larger.database[:azs] == smaller.database


@given(vpc=vpc_blocks, azs=st.integers(min_value=MAX_AZS + 1, max_value=16))
def test_more_than_three_azs_is_refused(vpc: str, azs: int) -> None:
    with pytest.raises(CidrPlanError, match="at most 3 availability zones"):
        plan_subnets(vpc, azs)


@given(vpc=vpc_blocks, azs=st.integers(max_value=0))
def test_zero_or_negative_azs_is_refused(vpc: str, azs: int) -> None:
    with pytest.raises(CidrPlanError, match="at least 1"):
        plan_subnets(vpc, azs)


@given(
    vpc=st.builds(
        _network,
        st.integers(min_value=0, max_value=2**32 - 1),
        st.integers(min_value=LARGEST_PLANNABLE_PREFIX + 1, max_value=28),
    ),
    azs=az_counts,
)
def test_too_small_vpc_is_refused_with_the_reason(vpc: str, azs: int) -> None:
    with pytest.raises(CidrPlanError, match=f"too small.*at least /{SMALLEST_PREFIX}"):
        plan_subnets(vpc, azs)


def test_host_bits_in_the_vpc_block_are_refused() -> None:
    with pytest.raises(ValueError, match="host bits"):
        plan_subnets("10.0.0.1/16", 2)


@pytest.mark.parametrize("vpc", ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"])
def test_environment_blocks_follow_the_documented_layout(vpc: str) -> None:
    """Quarters 0..2 are private; quarter 3 is cut in 16: public at 0..2, database at 8..10."""
    network = ipaddress.IPv4Network(vpc)
    quarters = list(network.subnets(new_prefix=18))
    pieces = list(quarters[3].subnets(new_prefix=22))
    plan = plan_subnets(vpc, 3)
    assert plan.private == tuple(str(q) for q in quarters[:3])
    assert plan.public == tuple(str(p) for p in pieces[:3])
    assert plan.database == tuple(str(p) for p in pieces[8:11])


def test_an_ipv6_block_is_refused() -> None:
    with pytest.raises(CidrPlanError, match="IPv4"):
        plan_subnets("fd00::/56", 2)
