"""The app factory's configuration, the migrations, and the database layer."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from lims import create_app
from lims.database import Base, UTCDateTime, create_database_engine
from lims.extensions import db
from lims.migrate import current_revision, head_revision, upgrade
from lims.models import APPEND_ONLY_TABLES, Agency, Case


def test_migrations_create_exactly_the_modelled_schema(database_url):
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert current_revision(connection) == head_revision()
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_upgrade_of_an_up_to_date_database_changes_nothing(database_url):
    upgrade(database_url)
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    engine.dispose()


def test_upgrade_needs_exactly_one_target():
    with pytest.raises(ValueError, match="either a database URL or a connection"):
        upgrade()


def test_configuration_comes_from_prefixed_environment_then_argument(monkeypatch, tmp_path):
    monkeypatch.setenv("DNATRACK_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv("DNATRACK_API_PAGE_SIZE", "7")
    monkeypatch.setenv("DNATRACK_SECRET_KEY", "from the environment")
    app = create_app({"API_PAGE_SIZE": 9, "INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'env.sqlite'}"
    assert app.config["SECRET_KEY"] == "from the environment"
    # The argument wins over the environment, which wins over the defaults.
    assert app.config["API_PAGE_SIZE"] == 9
    assert app.config["API_MAX_PAGE_SIZE"] == 500
    db.engine_for(app).dispose()


def test_default_database_and_secret_key_live_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DNATRACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("DNATRACK_SECRET_KEY", raising=False)
    monkeypatch.setenv("DNATRACK_INSTANCE_PATH", str(tmp_path / "instance"))
    first = create_app()
    second = create_app()
    assert first.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'dnatrack.sqlite'}"
    key_file = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # Workers of one installation share the key, so their sessions are interchangeable.
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert len(first.config["SECRET_KEY"]) == 64
    for app in (first, second):
        db.engine_for(app).dispose()


def test_timestamps_are_stored_as_utc_and_read_back_aware(session):
    nairobi = dt.timezone(dt.timedelta(hours=3))
    moment = dt.datetime(2024, 5, 1, 11, 30, 15, 123456, tzinfo=nairobi)
    agency = Agency(code="T", name="Time", kind="other", created_at=moment)
    session.add(agency)
    session.commit()
    stored = session.execute(
        sa.text("SELECT created_at FROM agency WHERE id = :id"), {"id": agency.id}
    ).scalar_one()
    assert str(stored).startswith("2024-05-01 08:30:15.123456")
    session.expire_all()
    reread = session.get(Agency, agency.id).created_at
    assert reread == moment and reread.tzinfo == dt.UTC


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(dt.datetime(2024, 1, 1), None)


def test_foreign_keys_are_enforced(session):
    session.add(Case(agency_id=999, reference="C-1", title="Orphan", kind="investigation"))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_append_only_tables_have_their_triggers(database_url, table):
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            names = connection.execute(
                sa.text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                    "AND NOT tgisinternal"
                ),
                {"t": table},
            ).scalars()
            expected = {f"{table}_append_only", f"{table}_no_truncate"}
        else:
            names = connection.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            ).scalars()
            expected = {f"{table}_no_update", f"{table}_no_delete"}
        assert set(names) == expected
    engine.dispose()
