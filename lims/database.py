"""The database layer: declarative base, column types, engines and sessions.

Web requests get one session each (``db.session``, opened on first use and closed when the
application context ends); the command line opens sessions on an engine directly with
:func:`create_database_engine`. Both paths go through the same engine setup, so SQLite
foreign keys and PostgreSQL settings are the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import os

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Named constraints let Alembic alter them later (SQLite batch mode needs the names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every LIMS table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def unstorable_text_problem(text: str) -> str | None:
    """Why neither database can store ``text``, or ``None``: PostgreSQL refuses NUL, and no
    encoding holds a lone surrogate (JSON carries both, as \\u0000 and \\ud800)."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if not text.isascii() and any(0xD800 <= ord(character) <= 0xDFFF for character in text):
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC, to the microsecond."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored as naive UTC and read back as timezone-aware UTC.

    SQLite keeps no time zone and PostgreSQL's ``timestamptz`` converts to the session's zone;
    storing naive UTC everywhere makes a value read back identical on both, which the custody
    ledger's hashes rely on.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give timestamps with a time zone")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=dt.UTC)


def _enable_sqlite_foreign_keys(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def create_database_engine(url: str, **options) -> Engine:
    """An engine for ``url`` with the LIMS's connection settings.

    SQLite connections enforce foreign keys (off by default in SQLite); a SQLite file's folder
    must exist.
    """
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def default_database_url(instance_path: str | os.PathLike) -> str:
    """The SQLite file in the instance folder, used when no database URL is configured."""
    os.makedirs(instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(os.fspath(instance_path), 'dnatrack.sqlite')}"


class Database:
    """Flask extension holding one engine per application and one session per app context."""

    _EXTENSION_KEY = "dnatrack_database"

    def init_app(self, app: Flask) -> None:
        url = app.config.get("DATABASE_URL") or default_database_url(app.instance_path)
        app.config["DATABASE_URL"] = url
        engine = create_database_engine(url, **app.config.get("DATABASE_ENGINE_OPTIONS", {}))
        app.extensions[self._EXTENSION_KEY] = sessionmaker(bind=engine, expire_on_commit=False)
        app.teardown_appcontext(self._close_session)

    def engine_for(self, app: Flask) -> Engine:
        return app.extensions[self._EXTENSION_KEY].kw["bind"]

    @property
    def engine(self) -> Engine:
        return self.engine_for(current_app)

    @property
    def session(self) -> Session:
        """The session of the current application context (opened on first use)."""
        if "db_session" not in g:
            g.db_session = current_app.extensions[self._EXTENSION_KEY]()
        return g.db_session

    @staticmethod
    def _close_session(exception: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if exception is not None:
                session.rollback()
            session.close()


def one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """A CHECK constraint (named after the column) that ``column`` takes one of ``values``."""
    listed = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=column)


def exactly_one_of(columns: tuple[str, ...], name: str) -> sa.CheckConstraint:
    """A CHECK constraint that exactly one of ``columns`` is set (portable SQL)."""
    count = " + ".join(f"(CASE WHEN {column} IS NULL THEN 0 ELSE 1 END)" for column in columns)
    return sa.CheckConstraint(f"{count} = 1", name=name)
