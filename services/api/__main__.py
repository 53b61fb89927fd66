"""``python -m services.api``: validate the configuration, then run the api service."""

from __future__ import annotations

from services.common.config import load_api
from services.common.runner import run_service


def main() -> None:
    """Exit 2 with one line on a bad variable; otherwise serve until SIGTERM."""
    run_service(load_api, "services.api.app:create_api_app")


if __name__ == "__main__":
    main()
