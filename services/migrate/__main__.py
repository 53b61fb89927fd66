"""``python -m services.migrate``: run the migration job once; exit 0 on success, else 1 (2: configuration error)."""

from __future__ import annotations

import logging
import os
import sys

from services.common.config import exit_on_config_error, load_migrate

log = logging.getLogger("services.migrate")


def main() -> int:
    """Run the job and turn any failure into one line on stderr."""
    with exit_on_config_error():
        config = load_migrate(os.environ)
    # Imported only once the configuration is known good.
    import psycopg

    from services.common.logs import configure_logging, mask_sensitive
    from services.migrate.job import MigrationError, run

    configure_logging("migrate", "")
    try:
        report = run(config)
    except (MigrationError, psycopg.Error, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"migrate failed: {mask_sensitive(reason)}", file=sys.stderr, flush=True)
        return 1
    log.info(
        "migrations complete",
        extra={
            "changed": report.changed,
            "roles_created": report.roles_created,
            "memberships_granted": report.memberships_granted,
            "schemas_created": report.schemas_created,
            "migrations_applied": report.migrations_applied,
            "privileges_changed": report.privileges_changed,
            "pgaudit": report.pgaudit,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
