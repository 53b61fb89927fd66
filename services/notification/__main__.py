"""``python -m services.notification``: validate the configuration, then run the notification service."""

from __future__ import annotations

from services.common.config import load_notification
from services.common.runner import run_service


def main() -> None:
    """Exit 2 with one line on a bad variable; otherwise serve until SIGTERM."""
    run_service(load_notification, "services.notification.app:create_notification_app")


if __name__ == "__main__":
    main()
