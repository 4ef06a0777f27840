"""Alembic environment for the LIMS schema.

Run through :mod:`lims.migrate` (``dnatrack db upgrade``), which passes either an open
connection (``config.attributes["connection"]``) or a database URL (``sqlalchemy.url``).
"""

from alembic import context

import lims.models  # noqa: F401  (registers every table on the metadata)
from lims.database import Base, create_database_engine

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = create_database_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; give a database URL")
run_migrations_online()
