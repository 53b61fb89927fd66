"""``python -m services.payment``: validate the configuration, then run the payment service."""

from __future__ import annotations

from services.common.config import load_payment
from services.common.runner import run_service


def main() -> None:
    """Exit 2 with one line on a bad variable; otherwise serve until SIGTERM."""
    run_service(load_payment, "services.payment.app:create_payment_app")


if __name__ == "__main__":
    main()
