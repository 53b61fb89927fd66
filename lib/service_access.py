"""Who may reach what, per service: the least-privilege map the data tier, IAM and the task definitions share.

No service holds a static credential. Each one that uses PostgreSQL connects as its own database
user with IAM database authentication (a 15-minute token signed with its task role, so nothing
expires under a running task and nothing needs rotating); each one that uses Redis connects as its
own ElastiCache user with IAM authentication (Redis 7). The master user of the Aurora cluster is
used only by the one-off ``migrate`` task, which creates those users and the schemas.

Pure data and functions: the components (cache users, task roles, container environments) and the
tests read the same map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The one-off task that applies schema migrations and creates the services' database users.
MIGRATE = "migrate"


@dataclass(frozen=True, kw_only=True)
class DataAccess:
    """What one service's tasks may reach."""

    #: PostgreSQL role the service logs in as with an IAM token (None: no database access).
    db_user: str | None = None
    #: ElastiCache access string of the service's Redis user (None: no Redis access). ElastiCache
    #: access strings are Redis ACL rules: key patterns and command categories.
    cache_access: str | None = None
    #: Services it calls east-west (through ECS Service Connect, never through the internet-facing ALB).
    calls: tuple[str, ...] = ()


#: api only fronts the others; payment owns the ledger (PostgreSQL) and the idempotency keys (Redis);
#: notification records events in its own schema. ``-@dangerous`` keeps FLUSHALL, KEYS, CONFIG... out
#: of reach even inside the service's own key space.
SERVICE_DATA_ACCESS: Mapping[str, DataAccess] = {
    "api": DataAccess(calls=("payment", "notification")),
    "payment": DataAccess(
        db_user="scalepay_payment",
        cache_access="on ~payments:* -@all +@read +@write +@connection -@dangerous",
        calls=("notification",),
    ),
    "notification": DataAccess(db_user="scalepay_notification"),
}

#: The ElastiCache access string of the mandatory ``default`` user: disabled, no commands, no keys.
DISABLED_DEFAULT_USER_ACCESS = "off -@all"


def data_access(service: str) -> DataAccess:
    """The data stores ``service`` may reach; an unknown service fails instead of getting everything."""
    try:
        return SERVICE_DATA_ACCESS[service]
    except KeyError:
        raise ValueError(
            f"service {service!r} has no data-access entry; known services: {', '.join(sorted(SERVICE_DATA_ACCESS))}"
        ) from None


def db_service_users(services: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``{service: database user}`` for the services that use PostgreSQL, in the order given."""
    return {s: user for s in services if (user := data_access(s).db_user) is not None}


def cache_clients(services: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``{service: access string}`` for the services that use Redis, in the order given."""
    return {s: access for s in services if (access := data_access(s).cache_access) is not None}


def db_service_users_variable(users: Mapping[str, str]) -> str:
    """The migrate task's ``DB_SERVICE_USERS`` value: ``payment=scalepay_payment,notification=...``."""
    return ",".join(f"{service}={user}" for service, user in users.items())
