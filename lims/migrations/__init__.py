"""Alembic migrations of the LIMS schema (run through lims.migrate)."""
