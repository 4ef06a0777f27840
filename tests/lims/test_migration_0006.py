"""Migration 0006 (server-side sessions, login throttling) on a filled database, and back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from lims.database import create_database_engine
from lims.migrate import alembic_config, current_revision, upgrade
from tests.lims import test_database
from tests.lims.test_database import WHEN, insert_rows, migrated_to_0003_with_animals

# The step-by-step migration tests' fixture: an empty database on each backend.
empty_database_url = test_database.empty_database_url

NEW_TABLES = {"user_session", "login_failure", "login_lockout"}


def tables(engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def filled_at_0004(url: str) -> sa.Engine:
    migrated_to_0003_with_animals(url)
    upgrade(url, revision="0004")
    return create_database_engine(url)


def test_0006_upgrades_a_filled_0004_database(empty_database_url):
    engine = filled_at_0004(empty_database_url)
    upgrade(empty_database_url, revision="0006")
    with engine.connect() as connection:
        assert current_revision(connection) == "0006"
        assert connection.execute(
            sa.text("SELECT id, username, session_version FROM user_account ORDER BY id")
        ).all() == [(1, "ana", 1), (2, "rev", 1)]
    assert NEW_TABLES <= tables(engine)
    session = {"id": 1, "user_id": 1, "token_hash": "a" * 64, "session_version": 1,
               "created_at": WHEN, "expires_at": WHEN}
    with engine.begin() as connection:
        insert_rows(connection, "user_session", [session])
        insert_rows(connection, "login_failure", [
            {"id": 1, "occurred_at": WHEN, "username": "nobody", "client_address": "192.0.2.1"}
        ])
        insert_rows(connection, "login_lockout", [
            {"id": 1, "scope": "account", "subject": "ana", "failures": 5, "locked_at": WHEN,
             "locked_until": WHEN}
        ])
    refused = [
        ("user_session", {**session, "id": 2}),  # the same session id hash twice
        ("user_session", {**session, "id": 3, "token_hash": "b" * 64, "user_id": 99}),
        ("login_lockout", {"id": 2, "scope": "planet", "subject": "x", "failures": 1,
                           "locked_at": WHEN, "locked_until": WHEN}),
    ]
    for table, row in refused:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            insert_rows(connection, table, [row])
    engine.dispose()


def test_0006_downgrades_to_0004_and_up_again(empty_database_url):
    engine = filled_at_0004(empty_database_url)
    upgrade(empty_database_url, revision="0006")
    with engine.begin() as connection:
        insert_rows(connection, "login_failure", [
            {"id": 1, "occurred_at": WHEN, "username": "ana", "client_address": "192.0.2.1"}
        ])
    command.downgrade(alembic_config(empty_database_url), "0004")
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
        assert connection.execute(sa.text("SELECT COUNT(*) FROM user_account")).scalar() == 2
    assert not NEW_TABLES & tables(engine)
    upgrade(empty_database_url, revision="0006")
    assert NEW_TABLES <= tables(engine)
    engine.dispose()
