"""``python -m services.notification``: validate the configuration, then run the notification service."""

from __future__ import annotations

import os

from services.common.config import exit_on_config_error, load_notification


def main() -> None:
    """Exit 2 with one line on a bad variable; otherwise serve until SIGTERM."""
    with exit_on_config_error():
        config = load_notification(os.environ)
    # Imported only once the configuration is known good: a misconfigured task fails in milliseconds.
    from services.common.runner import run_service
    from services.notification.app import create_notification_app

    run_service(config.service, create_notification_app(config))


if __name__ == "__main__":
    main()
