"""Resource names: ``scalepay-<component>-<environment>[-<suffix>]``, checked against AWS limits.

Every physical name in the stack comes from :class:`Namer`, so the convention and the AWS
length rules live in one place. Names are explicit (not Pulumi auto-names) so that an operator
can find a resource in the console from the convention alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

PROJECT_PREFIX = "scalepay"


class NameKind(Enum):
    """AWS resource families whose names have a length (or character) limit we must respect.

    Values are (label, limit) pairs so that kinds sharing a limit stay distinct members.
    """

    GENERIC = ("resource", 255)
    ALB = ("load balancer", 32)
    TARGET_GROUP = ("target group", 32)
    ELASTICACHE_REPLICATION_GROUP = ("ElastiCache replication group", 40)
    ELASTICACHE_USER = ("ElastiCache user", 40)
    RDS_IDENTIFIER = ("RDS identifier", 63)
    IAM_ROLE = ("IAM role", 64)
    S3_BUCKET = ("S3 bucket", 63)

    @property
    def label(self) -> str:
        """Human-readable resource kind, used in error messages."""
        return str(self.value[0])

    @property
    def limit(self) -> int:
        """Maximum length AWS accepts for this kind of name."""
        return int(self.value[1])


class NameTooLongError(ValueError):
    """A generated name exceeds the AWS limit for its resource type."""


_LOWER_ALNUM_DASH = re.compile(r"^[a-z][a-z0-9-]*$")

#: Kinds whose names must start with a letter and use only lowercase letters, digits and single hyphens.
_LOWERCASE_KINDS = frozenset(
    {NameKind.ELASTICACHE_REPLICATION_GROUP, NameKind.ELASTICACHE_USER, NameKind.S3_BUCKET, NameKind.RDS_IDENTIFIER}
)


@dataclass(frozen=True)
class Namer:
    """Builds convention-following names for one environment (and optional ephemeral suffix)."""

    environment: str
    suffix: str | None = None

    def name(self, component: str, kind: NameKind = NameKind.GENERIC) -> str:
        """Return ``scalepay-<component>-<environment>[-<suffix>]``, validated for ``kind``.

        Raises NameTooLongError naming the resource kind, the name and the limit.
        """
        parts = [PROJECT_PREFIX, component, self.environment]
        if self.suffix:
            parts.append(self.suffix)
        value = "-".join(parts)
        if len(value) > kind.limit:
            raise NameTooLongError(f"name '{value}' for {kind.label} is {len(value)} characters; AWS allows at most {kind.limit}")
        if kind in (
            NameKind.ELASTICACHE_REPLICATION_GROUP,
            NameKind.ELASTICACHE_USER,
            NameKind.S3_BUCKET,
            NameKind.RDS_IDENTIFIER,
        ):
            # These AWS names must start with a letter and use lowercase letters, digits, hyphens.
            if not _LOWER_ALNUM_DASH.match(value) or "--" in value or value.endswith("-"):
                raise NameTooLongError(
                    f"name '{value}' for {kind.label} must start with a letter "
                    "and contain only lowercase letters, digits and single hyphens"
                )
        return value

    def bucket(self, component: str, account_id: str) -> str:
        """Return a globally unique S3 bucket name: the convention plus the 12-digit account id."""
        return Namer(self.environment, f"{self.suffix}-{account_id}" if self.suffix else account_id).name(
            component, NameKind.S3_BUCKET
        )
