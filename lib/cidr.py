"""CIDR planning for the three subnet tiers: a pure function, no Pulumi.

Layout of a VPC block (a /16 shown; any /16-/20 scales the same way):

* quarters 0..2 -> one private subnet per AZ (the big tier: every Fargate task takes an IP);
* quarter 3 is cut into 16 pieces -> public subnets at pieces 0..7, database subnets at 8..15.

So a plan holds at most 3 AZs, and the tiers can never overlap each other.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_AZS = 3
#: An ALB needs a subnet of at least /27 in each AZ it uses.
SMALLEST_PREFIX = 27


class CidrPlanError(ValueError):
    """The VPC block cannot hold the requested subnet layout."""


@dataclass(frozen=True)
class SubnetPlan:
    """Subnet CIDRs per tier, index i being availability zone i."""

    public: tuple[str, ...]
    private: tuple[str, ...]
    database: tuple[str, ...]

    def all(self) -> tuple[str, ...]:
        """Every subnet CIDR of the plan."""
        return self.public + self.private + self.database


def plan_subnets(vpc_cidr: str, az_count: int) -> SubnetPlan:
    """Split ``vpc_cidr`` into public, private and database subnets for ``az_count`` AZs."""
    vpc = ipaddress.ip_network(vpc_cidr, strict=True)
    if not isinstance(vpc, ipaddress.IPv4Network):
        raise CidrPlanError(f"{vpc_cidr} is not an IPv4 block: the VPC's primary CIDR must be IPv4")
    if az_count < 1:
        raise CidrPlanError(f"az_count must be at least 1, got {az_count}")
    if az_count > MAX_AZS:
        raise CidrPlanError(f"the plan holds at most {MAX_AZS} availability zones, got {az_count}")
    piece_prefix = vpc.prefixlen + 2 + 4  # checked before splitting: a /27 VPC has no /33 pieces to make
    if piece_prefix > SMALLEST_PREFIX:
        raise CidrPlanError(
            f"{vpc_cidr} is too small: public and database subnets would be /{piece_prefix}, "
            f"an ALB needs at least /{SMALLEST_PREFIX}"
        )
    quarters = list(vpc.subnets(new_prefix=vpc.prefixlen + 2))
    pieces = list(quarters[3].subnets(new_prefix=piece_prefix))
    return SubnetPlan(
        public=tuple(str(pieces[i]) for i in range(az_count)),
        private=tuple(str(quarters[i]) for i in range(az_count)),
        database=tuple(str(pieces[8 + i]) for i in range(az_count)),
    )
