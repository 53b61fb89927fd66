"""The one-off database migration job (``python -m services.migrate``): roles, schemas, migrations, grants."""
