"""The payment service: authorizes and captures payments, with a double-entry ledger and idempotency keys."""
