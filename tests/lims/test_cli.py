"""The LIMS commands: db upgrade, admin create, serve (custody verify is in test_custody)."""

from __future__ import annotations

import io

import sqlalchemy as sa
from flask import Flask

from lims.database import create_database_engine
from lims.migrate import current_revision, head_revision
from lims.models import Agency, User


def test_db_upgrade_creates_the_schema_once(tmp_path, runner):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    for _ in range(2):
        result = runner("db", "upgrade", "--database-url", url)
        assert result.status == 0, result.err
        assert result.out.strip() == f"database at revision head: {url}"
    engine = create_database_engine(url)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    engine.dispose()


def test_db_upgrade_hides_passwords_and_reports_failures_in_one_line(runner):
    result = runner(
        "db", "upgrade", "--database-url", "postgresql+psycopg://someone:secret@127.0.0.1:1/none"
    )
    assert result.status == 1
    assert result.err.startswith("dnatrack db: error: database error:")
    assert "\n" not in result.err.strip() and "secret" not in result.err


def test_admin_create_bootstraps_an_installation(runner, monkeypatch, session, client):
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    result = runner(
        "admin",
        "create",
        "--agency-code",
        "KWS",
        "--agency-name",
        "KWS lab",
        "--username",
        "root",
        "--full-name",
        "First Admin",
        "--password-stdin",
    )
    assert result.status == 0, result.err
    user = session.scalar(sa.select(User).where(User.username == "root"))
    assert user.roles == {"admin"} and user.password_hash.startswith("scrypt:")
    assert session.scalar(sa.select(Agency.name).where(Agency.id == user.agency_id)) == "KWS lab"

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    again = runner(
        "admin",
        "create",
        "--agency-code",
        "KWS",
        "--username",
        "root",
        "--full-name",
        "Twin",
        "--password-stdin",
    )
    assert again.status == 1 and "exists already" in again.err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    short = runner(
        "admin",
        "create",
        "--agency-code",
        "KWS",
        "--username",
        "other",
        "--full-name",
        "Other",
        "--password-stdin",
    )
    assert short.status == 1 and "at least 12 characters" in short.err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    no_agency = runner(
        "admin",
        "create",
        "--agency-code",
        "NEW",
        "--username",
        "other",
        "--full-name",
        "Other",
        "--password-stdin",
    )
    assert no_agency.status == 1 and "--agency-name" in no_agency.err


def test_serve_runs_the_app_on_the_given_address(runner, monkeypatch):
    calls = []
    monkeypatch.setattr(Flask, "run", lambda app, **options: calls.append((app, options)))
    result = runner("serve", "--host", "0.0.0.0", "--port", "8123")
    assert result.status == 0
    ((app, options),) = calls
    assert options == {"host": "0.0.0.0", "port": 8123, "debug": False}
    assert app.name == "lims"
