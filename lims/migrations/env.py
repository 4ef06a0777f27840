"""Alembic environment for the LIMS schema.

Run through :mod:`lims.migrate` (``dnatrack db upgrade``), which passes either an open
connection (``config.attributes["connection"]``) or a database URL (``sqlalchemy.url``).
"""

import contextlib

from alembic import context

import lims.models  # noqa: F401  (registers every table on the metadata)
from lims.database import Base, create_database_engine

config = context.config
target_metadata = Base.metadata


@contextlib.contextmanager
def _sqlite_foreign_keys_unenforced(connection):
    """On SQLite, stop enforcing foreign keys while the migrations run, then check them.

    Batch mode alters a SQLite table by copying it, dropping the original and renaming the
    copy; with foreign keys enforced, dropping a table that other rows refer to fails. SQLite
    only switches enforcement outside a transaction, so this wraps the migrations' one; a
    connection handed over inside a transaction is left as it is.
    """
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield
        return
    enforced = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")
        connection.commit()


def _check_sqlite_foreign_keys(connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        listed = "; ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in broken[:20])
        raise RuntimeError(f"the migrations would leave rows referring to nothing: {listed}")


def run_migrations(connection) -> None:
    with _sqlite_foreign_keys_unenforced(connection):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite alters tables by copying them; batch mode does that for later migrations.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            _check_sqlite_foreign_keys(connection)


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
