"""Handlers of the ``tls`` provider (computed locally, as the real provider does)."""
