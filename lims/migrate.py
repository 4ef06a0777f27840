"""Schema migrations: the Alembic scripts shipped in ``lims/migrations``, run from Python.

The schema of every LIMS database is created and changed only by these migrations (the tests
check that the migrated schema equals the models).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic configuration for the LIMS migrations, on a URL or an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url is not None:
        # Alembic's ini interpolation treats % specially (URL-encoded passwords contain it).
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(
    database_url: str | None = None, *, connection: Connection | None = None, revision: str = "head"
) -> None:
    """Bring the database at ``database_url`` (or on ``connection``) up to ``revision``."""
    if (database_url is None) == (connection is None):
        raise ValueError("give either a database URL or a connection")
    command.upgrade(alembic_config(database_url, connection), revision)


def head_revision() -> str:
    """The newest migration shipped with this version of the LIMS."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at (``None`` for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()
