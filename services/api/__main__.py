"""``python -m services.api``: validate the configuration, then run the api service."""

from __future__ import annotations

import os

from services.common.config import exit_on_config_error, load_api


def main() -> None:
    """Exit 2 with one line on a bad variable; otherwise serve until SIGTERM."""
    with exit_on_config_error():
        config = load_api(os.environ)
    # Imported only once the configuration is known good: a misconfigured task fails in milliseconds.
    from services.api.app import create_api_app
    from services.common.runner import run_service

    run_service(config.service, create_api_app(config))


if __name__ == "__main__":
    main()
