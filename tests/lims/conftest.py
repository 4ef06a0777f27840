"""Fixtures for the LIMS tests: a migrated database per test, the app, clients, and callers
logged in with given roles.

Every test runs on SQLite and, when ``DNATRACK_TEST_DATABASE_URL`` names a PostgreSQL
database, on PostgreSQL too (the database fixtures are parametrised over both). SQLite: the
migrations run once into a template file, copied for each test. PostgreSQL: the migrations
run once into a fresh schema for the test session (dropped at the end), and every table is
emptied after each test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dnatrack.cli import main as dnatrack_main
from lims import create_app
from lims.auth import new_api_token
from lims.database import Base, create_database_engine
from lims.extensions import db
from lims.migrate import upgrade
from lims.models import Agency, ApiToken, CustodyAppendLock, User, hash_token

POSTGRESQL_URL = os.environ.get("DNATRACK_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRESQL_URL else [])

# Cheap scrypt parameters: tests create many password hashes.
TEST_PASSWORD_METHOD = "scrypt:1024:8:1"
# Commands build the app as production does (not TESTING), which refuses weak secret keys.
CLI_SECRET_KEY = secrets.token_hex(32)

TEST_PANEL = {
    "name": "test_str4",
    "species": "Loxodonta africana",
    "marker_type": "STR",
    "description": "Four made-up STR loci for the LIMS tests.",
    "loci": [
        {"name": "FH67", "repeat_unit": 2, "min_size": 100, "max_size": 200},
        {"name": "FH71", "repeat_unit": 2, "min_size": 150, "max_size": 250},
        {"name": "LA5", "repeat_unit": 4, "min_size": 80, "max_size": 160},
        {"name": "LAT24", "repeat_unit": 4, "min_size": 180, "max_size": 300},
    ],
}


class PostgresqlTestSchema:
    """A schema of its own for this test session, created by the migrations."""

    def __init__(self, base_url: str) -> None:
        self.name = f"dnatrack_test_{uuid.uuid4().hex[:10]}"
        url = make_url(base_url)
        self.admin_engine = sa.create_engine(url)
        with self.admin_engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{self.name}"'))
        in_schema = url.update_query_dict({"options": f"-csearch_path={self.name}"})
        self.url = in_schema.render_as_string(hide_password=False)
        upgrade(self.url)
        self.engine = create_database_engine(self.url)

    def empty(self) -> None:
        """Remove every row but the chains' append lock, whose counts go back to zero.
        The replica role switches off triggers, so the ledger's refusal and foreign-key
        checks stand aside; DELETE is much faster than TRUNCATE on tiny tables. Ids keep
        counting up; no test relies on them."""
        lock = CustodyAppendLock.__table__
        with self.engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in reversed(Base.metadata.sorted_tables):
                if table is not lock:
                    connection.execute(table.delete())
            connection.execute(lock.update().values(appends=0, audit_appends=0, report_appends=0))

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin_engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin_engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_backend(request, tmp_path_factory):
    """``(backend name, template)``: a migrated SQLite file, or a PostgreSQL test schema."""
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("lims-template") / "template.sqlite"
        upgrade(f"sqlite:///{template}")
        yield "sqlite", template
    else:
        schema = PostgresqlTestSchema(POSTGRESQL_URL)
        yield "postgresql", schema
        schema.drop()


@pytest.fixture
def database_url(database_backend, tmp_path):
    """The URL of an empty, migrated database for one test."""
    backend, template = database_backend
    if backend == "sqlite":
        path = tmp_path / "lims.sqlite"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
    else:
        try:
            yield template.url
        finally:
            template.empty()


@pytest.fixture
def panel_directory(tmp_path) -> Path:
    folder = tmp_path / "panels"
    folder.mkdir()
    (folder / f"{TEST_PANEL['name']}.json").write_text(json.dumps(TEST_PANEL))
    return folder


@pytest.fixture
def app_factory(database_url, panel_directory, tmp_path):
    """``app_factory(**config)``: an application on the test database with the test settings
    and ``config`` on top; each call is another app on the same database, as another web
    process of the installation would be."""
    made = []

    def make(**config):
        application = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test secret",
                "PASSWORD_HASH_METHOD": TEST_PASSWORD_METHOD,
                "PANEL_DIRECTORY": str(panel_directory),
                "INSTANCE_PATH": str(tmp_path / f"instance-{len(made)}"),
                **config,
            }
        )
        made.append(application)
        return application

    yield make
    for application in made:
        db.engine_for(application).dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A session of its own on the test database, for arranging and checking data.

    It is deliberately not the application's request session, and no application context
    stays pushed: each test-client request then gets a fresh context and session, as in
    production.
    """
    with Session(db.engine_for(app), expire_on_commit=False) as own_session:
        yield own_session


@dataclass
class CliResult:
    status: int
    out: str
    err: str


@pytest.fixture
def runner(database_url, capsys, monkeypatch):
    """Run ``dnatrack …`` against the test database; returns status and captured output."""
    monkeypatch.setenv("DNATRACK_DATABASE_URL", database_url)
    monkeypatch.setenv("DNATRACK_SECRET_KEY", CLI_SECRET_KEY)

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        status = dnatrack_main(list(argv))
        captured = capsys.readouterr()
        return CliResult(status, captured.out, captured.err)

    return run


@dataclass
class Caller:
    """A test client acting as one user through an API token."""

    client: object
    user_id: int
    agency_id: int
    username: str
    token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **options):
        return self.client.get(url, headers=self.headers, **options)

    def post(self, url: str, json=None, **options):
        return self.client.post(url, json=json, headers=self.headers, **options)

    def patch(self, url: str, json=None, **options):
        return self.client.patch(url, json=json, headers=self.headers, **options)

    def put(self, url: str, json=None, **options):
        return self.client.put(url, json=json, headers=self.headers, **options)

    def delete(self, url: str, **options):
        return self.client.delete(url, headers=self.headers, **options)


@pytest.fixture
def agencies(app) -> dict[str, int]:
    """Two agencies: ``"A"`` (a laboratory) and ``"B"`` (another laboratory)."""
    with app.app_context():
        created = {
            code: Agency(code=code, name=f"Agency {code}", kind="laboratory") for code in ("A", "B")
        }
        db.session.add_all(created.values())
        db.session.commit()
        return {code: agency.id for code, agency in created.items()}


@pytest.fixture
def login(app, client, agencies):
    """``login(*roles, agency="A", password=None)``: a new user with those roles and a
    :class:`Caller` authenticated as them by an API token."""
    counter = iter(range(1, 10_000))

    def make(*roles: str, agency: str = "A", password: str | None = None) -> Caller:
        from lims.auth import hash_password

        username = f"{'-'.join(roles) or 'nobody'}-{agency}-{next(counter)}"
        token = new_api_token()
        with app.app_context():
            user = User(
                agency_id=agencies[agency],
                username=username,
                full_name=username.title(),
                password_hash=hash_password(password) if password else None,
            )
            user.set_roles(set(roles))
            db.session.add(user)
            db.session.flush()
            db.session.add(ApiToken(user_id=user.id, name="tests", token_hash=hash_token(token)))
            db.session.commit()
            return Caller(client, user.id, agencies[agency], username, token)

    return make
