"""Handlers of the ``aws`` provider: one module per token module (``aws:ec2/...`` in ``ec2.py``)."""
