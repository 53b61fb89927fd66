"""Tests of the reference services: ``.venv/bin/pytest services/tests -p no:cacheprovider``."""
