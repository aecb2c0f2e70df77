"""Alembic migrations of the records database; `orchard.records.db.migrate` runs them at every service start."""
