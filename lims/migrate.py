"""Schema migrations: the Alembic scripts shipped in ``lims/migrations``, run from Python.

The schema of every LIMS database is created and changed only by these migrations (the tests
check that the migrated schema equals the models).
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(
    database_url: str | None = None,
    connection: Connection | None = None,
    token_key_file: str | os.PathLike | None = None,
) -> Config:
    """An Alembic configuration for the LIMS migrations, on a URL or an open connection;
    ``token_key_file`` is the instance's exchange token key (migration 0012 encrypts partners'
    tokens with it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url is not None:
        # Alembic's ini interpolation treats % specially (URL-encoded passwords contain it).
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    if token_key_file is not None:
        config.attributes["exchange_token_key_file"] = os.fspath(token_key_file)
    return config


def upgrade(
    database_url: str | None = None,
    *,
    connection: Connection | None = None,
    revision: str = "head",
    token_key_file: str | os.PathLike | None = None,
) -> None:
    """Bring the database at ``database_url`` (or on ``connection``) up to ``revision``."""
    if (database_url is None) == (connection is None):
        raise ValueError("give either a database URL or a connection")
    command.upgrade(alembic_config(database_url, connection, token_key_file), revision)


def downgrade(
    database_url: str, revision: str, *, token_key_file: str | os.PathLike | None = None
) -> None:
    """Take the database at ``database_url`` back to ``revision``."""
    command.downgrade(alembic_config(database_url, token_key_file=token_key_file), revision)


def head_revision() -> str:
    """The newest migration shipped with this version of the LIMS."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at (``None`` for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()
