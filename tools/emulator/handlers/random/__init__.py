"""Handlers of the ``random`` provider (computed locally, as the real provider does)."""
