"""Alembic migrations of the records database; `orchard.db.migrate` runs them at every service start."""
