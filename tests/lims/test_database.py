"""The app factory's configuration, the migrations, and the database layer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from lims import create_app
from lims.audit import AUDIT_TRAIL
from lims.custody import canonical_json, verify_chain
from lims.database import Base, UTCDateTime, create_database_engine
from lims.extensions import db
from lims.migrate import alembic_config, current_revision, head_revision, upgrade
from lims.models import APPEND_ONLY_TABLES, Agency, Case, Report
from lims.reports.issue import ISSUED_REPORTS, issued_document_problem
from tests.lims.conftest import BACKENDS, POSTGRESQL_URL


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
    monkeypatch.setenv("DNATRACK_SECRET_KEY", "key from the environment 7f3a9c2e51b84d06")
    app = create_app({"API_PAGE_SIZE": 9, "INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'env.sqlite'}"
    assert app.config["SECRET_KEY"] == "key from the environment 7f3a9c2e51b84d06"
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


#: The triggers guarding each table with append-only rows, per database.
GUARD_TRIGGERS = {
    "postgresql": {
        "custody_event": {"custody_event_append_only", "custody_event_no_truncate"},
        "audit_record": {"audit_record_append_only", "audit_record_no_truncate"},
        "report": {"report_issued_immutable", "report_no_truncate"},
        "report_signature": {"report_signature_immutable", "report_signature_no_truncate"},
    },
    "sqlite": {
        "custody_event": {"custody_event_no_update", "custody_event_no_delete",
                          "custody_event_no_replace"},
        "audit_record": {"audit_record_no_update", "audit_record_no_delete",
                         "audit_record_no_replace"},
        "report": {"report_issued_no_update", "report_issued_no_delete", "report_no_replace",
                   "report_no_replace_on_update"},
        "report_signature": {"report_signature_no_update", "report_signature_no_delete",
                             "report_signature_no_replace"},
    },
}


def trigger_names(connection, table: str) -> set[str]:
    if connection.dialect.name == "postgresql":
        statement = ("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                     "AND NOT tgisinternal")
    else:
        statement = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
    return set(connection.execute(sa.text(statement), {"t": table}).scalars())


@pytest.mark.parametrize("table", [*APPEND_ONLY_TABLES, "report", "report_signature"])
def test_append_only_tables_have_their_triggers(database_url, table):
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        assert trigger_names(connection, table) == GUARD_TRIGGERS[engine.dialect.name][table]
    engine.dispose()


# --------------------------------------------------------------------------- migration 0003
@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    """The URL of a database without tables (SQLite file or PostgreSQL schema of its own),
    for migrating step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steps.sqlite'}"
        return
    schema = f"dnatrack_steps_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRESQL_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRESQL_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


WHEN = dt.datetime(2024, 5, 1, 12, 0)

ROWS_AT_0002 = {
    "agency": [
        {"id": 1, "code": "A", "name": "Agency A", "kind": "laboratory", "created_at": WHEN},
        {"id": 2, "code": "B", "name": "Agency B", "kind": "laboratory", "created_at": WHEN},
    ],
    "user_account": [
        {
            "id": 1,
            "agency_id": 1,
            "username": "ana",
            "full_name": "Ana",
            "active": True,
            "created_at": WHEN,
        },
        {
            "id": 2,
            "agency_id": 1,
            "username": "rev",
            "full_name": "Rev",
            "active": True,
            "created_at": WHEN,
        },
    ],
    "case_file": [
        {
            "id": 1,
            "agency_id": 1,
            "reference": "C-1",
            "title": "One",
            "kind": "investigation",
            "status": "open",
            "created_at": WHEN,
        },
        {
            "id": 2,
            "agency_id": 2,
            "reference": "C-2",
            "title": "Two",
            "kind": "investigation",
            "status": "open",
            "created_at": WHEN,
        },
    ],
    "seizure": [
        {"id": 1, "case_id": 1, "reference": "SZ-1", "created_at": WHEN},
        {"id": 2, "case_id": 2, "reference": "SZ-2", "created_at": WHEN},
    ],
    "item": [{"id": 1, "seizure_id": 1, "label": "T1", "kind": "tusk", "created_at": WHEN}],
    "sample": [
        {
            "id": id_,
            "barcode": f"S{id_}",
            "case_id": 1,
            "sample_type": "powder",
            "item_id": 1,
            "consumed": False,
            "created_at": WHEN,
        }
        for id_ in (1, 2)
    ],
    # Sample 2 was destroyed, and its consumed flag cleared afterwards (as the API allowed).
    "custody_event": [
        {
            "seq": 1,
            "event_type": "destroy",
            "sample_id": 2,
            "actor_id": 1,
            "seal_numbers": [],
            "signature_meaning": "performed",
            "occurred_at": WHEN,
            "recorded_at": WHEN,
            "prev_hash": "0" * 64,
            "hash": "1" * 64,
        },
    ],
    # Sample 1: a rejected version and a live one on the same panel.
    "genotype_profile": [
        {
            "id": 1,
            "sample_id": 1,
            "panel": "P",
            "alleles": {},
            "n_loci_typed": 0,
            "state": "rejected",
            "rejection_reason": "failed run",
            "analyst_id": 1,
            "reviewer_id": 2,
            "version": 1,
            "superseded": False,
            "created_at": WHEN,
        },
        {
            "id": 2,
            "sample_id": 1,
            "panel": "P",
            "alleles": {},
            "n_loci_typed": 0,
            "state": "pending",
            "analyst_id": 1,
            "version": 1,
            "superseded": False,
            "created_at": WHEN,
        },
    ],
}


def insert_rows(connection, table: str, rows: list[dict]) -> None:
    """Rows into a table as it is in the database (the models describe the newest schema)."""
    reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
    for row in rows:
        connection.execute(reflected.insert().values(row))


def migrated_to_0002_with_rows(url: str, rows: dict = ROWS_AT_0002) -> None:
    upgrade(url, revision="0002")
    engine = create_database_engine(url)
    with engine.begin() as connection:
        for table, table_rows in rows.items():
            insert_rows(connection, table, table_rows)
    engine.dispose()


def test_0003_upgrades_a_filled_0002_database(empty_database_url):
    migrated_to_0002_with_rows(empty_database_url)
    upgrade(empty_database_url, revision="0003")
    engine = create_database_engine(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0003"
        assert connection.execute(
            sa.text("SELECT id, session_version FROM user_account ORDER BY id")
        ).all() == [(1, 1), (2, 1)]
        # Seizures got their case's agency.
        assert connection.execute(
            sa.text("SELECT id, agency_id FROM seizure ORDER BY id")
        ).all() == [(1, 1), (2, 2)]
        # The destroyed sample is consumed again, and the audit trail says so.
        assert connection.execute(sa.text("SELECT id, consumed FROM sample ORDER BY id")).all() == [
            (1, False),
            (2, True),
        ]
        (audit,) = connection.execute(
            sa.text("SELECT table_name, record_id, action, actor_id, changes FROM audit_record")
        ).all()
        changes = audit.changes if isinstance(audit.changes, dict) else json.loads(audit.changes)
        assert audit[:4] == ("sample", "2", "update", None)
        assert changes == {"consumed": {"old": False, "new": True}}
    with engine.begin() as connection:
        # References are unique per agency: agency B may now use agency A's.
        insert_rows(
            connection, "case_file", [{**ROWS_AT_0002["case_file"][1], "id": 3, "reference": "C-1"}]
        )
        insert_rows(
            connection,
            "seizure",
            [{"id": 3, "case_id": 3, "agency_id": 2, "reference": "SZ-1", "created_at": WHEN}],
        )
    for table, row in (
        ("case_file", {**ROWS_AT_0002["case_file"][0], "id": 4}),
        (
            "seizure",
            {"id": 4, "case_id": 1, "agency_id": 1, "reference": "SZ-1", "created_at": WHEN},
        ),
        ("genotype_profile", {**ROWS_AT_0002["genotype_profile"][1], "id": 3}),
    ):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            insert_rows(connection, table, [row])
    engine.dispose()


def test_0003_refuses_two_live_profiles_of_one_sample_and_panel(empty_database_url):
    second_live = {
        **ROWS_AT_0002["genotype_profile"][0],
        "id": 3,
        "state": "reviewed",
        "rejection_reason": None,
    }
    rows = {**ROWS_AT_0002, "genotype_profile": [*ROWS_AT_0002["genotype_profile"], second_live]}
    migrated_to_0002_with_rows(empty_database_url, rows)
    with pytest.raises(RuntimeError, match=r"more than one live profile.*: 1, P, 2"):
        upgrade(empty_database_url)
    engine = create_database_engine(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0002"
    engine.dispose()


def downgraded_without_agency(url: str, revision: str, table: str) -> sa.Engine:
    """Downgrade to ``revision``, which takes ``table``'s ``agency_id`` away; an engine on it."""
    command.downgrade(alembic_config(url), revision)
    engine = create_database_engine(url)
    with engine.connect() as connection:
        assert current_revision(connection) == revision
        columns = {column["name"] for column in sa.inspect(connection).get_columns(table)}
        assert "agency_id" not in columns
    return engine


def test_0003_downgrades_while_no_reference_is_shared(empty_database_url):
    migrated_to_0002_with_rows(empty_database_url)
    upgrade(empty_database_url)
    config = alembic_config(empty_database_url)
    engine = downgraded_without_agency(empty_database_url, "0002", "seizure")
    with engine.begin() as connection:
        # Back to references unique across agencies; the rows kept.
        assert connection.execute(sa.text("SELECT COUNT(*) FROM seizure")).scalar() == 2
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(
            connection, "case_file", [{**ROWS_AT_0002["case_file"][1], "id": 3, "reference": "C-1"}]
        )
    upgrade(empty_database_url)
    with engine.begin() as connection:
        insert_rows(
            connection, "case_file", [{**ROWS_AT_0002["case_file"][1], "id": 3, "reference": "C-1"}]
        )
    with pytest.raises(RuntimeError, match="case_file references used by more than one agency"):
        command.downgrade(config, "0002")
    engine.dispose()


def test_migrations_keep_every_check_constraint(database_url):
    """Batch mode rebuilds SQLite tables; the CHECK constraints (which Alembic's comparison
    leaves out) must come through."""
    engine = create_database_engine(database_url)
    inspector = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        modelled = {
            constraint.name
            for constraint in table.constraints
            if isinstance(constraint, sa.CheckConstraint)
        }
        stored = {check["name"] for check in inspector.get_check_constraints(table.name)}
        assert stored == modelled, table.name
    engine.dispose()


# --------------------------------------------------------------------------- migration 0004
def animal(id_: int, case_id: int, identifier: str, agency_id: int | None = None) -> dict:
    """A carcass row; ``agency_id`` once 0004 has added the column."""
    row = {
        "id": id_,
        "case_id": case_id,
        "identifier": identifier,
        "kind": "carcass",
        "created_at": WHEN,
    }
    if agency_id is not None:
        row["agency_id"] = agency_id
    return row


def migrated_to_0003_with_animals(url: str) -> None:
    """The rows of 0002, a carcass in each agency's case and a sample taken from agency A's
    (rebuilding the table on SQLite must keep the sample's foreign key intact), at 0003."""
    migrated_to_0002_with_rows(url)
    upgrade(url, revision="0003")
    engine = create_database_engine(url)
    with engine.begin() as connection:
        insert_rows(connection, "source_animal", [animal(1, 1, "CARC-1"), animal(2, 2, "CARC-2")])
        taken = {"id": 3, "barcode": "S3", "item_id": None, "source_animal_id": 1}
        insert_rows(connection, "sample", [{**ROWS_AT_0002["sample"][0], **taken}])
    engine.dispose()


def test_0004_upgrades_a_filled_0003_database(empty_database_url):
    migrated_to_0003_with_animals(empty_database_url)
    upgrade(empty_database_url, revision="0004")
    engine = create_database_engine(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
        # Source animals got their case's agency; the sample still points at its carcass.
        assert connection.execute(
            sa.text("SELECT id, agency_id, identifier FROM source_animal ORDER BY id")
        ).all() == [(1, 1, "CARC-1"), (2, 2, "CARC-2")]
        assert (
            connection.execute(
                sa.text("SELECT source_animal_id FROM sample WHERE id = 3")
            ).scalar_one()
            == 1
        )
    with engine.begin() as connection:
        # Identifiers are unique per agency: agency B may now use agency A's.
        insert_rows(connection, "source_animal", [animal(3, 2, "CARC-1", agency_id=2)])
    for row in (animal(4, 1, "CARC-1", agency_id=1), animal(5, 1, "CARC-9", agency_id=99)):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            insert_rows(connection, "source_animal", [row])
    engine.dispose()


def test_0004_downgrades_while_no_identifier_is_shared(empty_database_url):
    migrated_to_0003_with_animals(empty_database_url)
    upgrade(empty_database_url, revision="0004")
    config = alembic_config(empty_database_url)
    engine = downgraded_without_agency(empty_database_url, "0003", "source_animal")
    with engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT id, identifier FROM source_animal ORDER BY id")
        ).all() == [(1, "CARC-1"), (2, "CARC-2")]
    # Back to identifiers unique across agencies.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, "source_animal", [animal(3, 2, "CARC-1")])
    upgrade(empty_database_url, revision="0004")
    with engine.begin() as connection:
        insert_rows(connection, "source_animal", [animal(3, 2, "CARC-1", agency_id=2)])
    with pytest.raises(RuntimeError, match=r"identifiers used by more than one agency.*CARC-1, 2"):
        command.downgrade(config, "0003")
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
    engine.dispose()


# --------------------------------------------------------------------------- migration 0007
MATCH_REQUEST_AT_0004 = {
    "id": 1, "case_id": 1, "seizure_id": 1, "analyses": ["identity"],
    "reference_sets": ["savanna_elephant_simulated"], "parameters": {}, "status": "done",
    "progress": 1.0, "result": {"analyses": ["identity"]}, "requested_by_id": 1,
    "created_at": WHEN,
}


def test_0007_upgrades_a_filled_0004_database_and_downgrades(empty_database_url):
    migrated_to_0003_with_animals(empty_database_url)
    upgrade(empty_database_url, revision="0004")
    engine = create_database_engine(empty_database_url)
    with engine.begin() as connection:
        insert_rows(connection, "match_request", [MATCH_REQUEST_AT_0004])
    upgrade(empty_database_url, revision="0007")
    with engine.connect() as connection:
        assert current_revision(connection) == "0007"
        # The request that ran before attempts were counted starts at 0, its result kept.
        assert connection.execute(
            sa.text("SELECT attempts, status, result FROM match_request")
        ).one()[:2] == (0, "done")
    key = {"user_id": 1, "key": "k-1", "request_sha256": "0" * 64, "response_status": 201,
           "response_body": {"seq": 1}, "created_at": WHEN, "expires_at": WHEN}
    with engine.begin() as connection:
        insert_rows(connection, "idempotency_key", [key])
    # One key per user: a second row with the same key is refused, another user's is not.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, "idempotency_key", [{**key, "response_status": 200}])
    with engine.begin() as connection:
        insert_rows(connection, "idempotency_key", [{**key, "user_id": 2}])
    command.downgrade(alembic_config(empty_database_url), "0004")
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
        assert "idempotency_key" not in sa.inspect(connection).get_table_names()
        columns = {column["name"] for column in sa.inspect(connection).get_columns(
            "match_request")}
        assert "attempts" not in columns
        assert connection.execute(sa.text("SELECT id, status FROM match_request")).all() == [
            (1, "done")]
    engine.dispose()


# --------------------------------------------------------------------------- migration 0005
HTML, PDF = b"<html>issued</html>", b"%PDF-1.4 issued"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def issued_report_rows(report_id: int, version: int, issued_at: dt.datetime) -> dict:
    """An issued report of match request 1 (the files and body consistent with their hashes)
    and its two signatures, as rows of the 0004 schema."""
    return {
        "report": [{
            "id": report_id, "match_request_id": 1, "version": version, "kind": "evidential",
            "status": "issued", "body": {"n": version},
            "body_sha256": sha256(canonical_json({"n": version})), "ledger_head_hash": "0" * 64,
            "html": HTML, "html_sha256": sha256(HTML), "pdf": PDF, "pdf_sha256": sha256(PDF),
            "created_by_id": 1, "created_at": WHEN, "issued_at": issued_at,
        }],
        "report_signature": [
            {"id": 2 * report_id + k, "report_id": report_id, "user_id": user, "role": role,
             "signer_name": name, "meaning": "signed", "signed_at": issued_at}
            for k, (user, role, name) in enumerate(((1, "analyst", "Ana"), (2, "reviewer", "Rev")))
        ],
    }


def migrated_to_0004_with_reports(url: str) -> None:
    """The rows of 0003 (with its audit record), a done match request with two issued reports
    (the later one issued first) and a draft, at 0004."""
    migrated_to_0003_with_animals(url)
    upgrade(url, revision="0004")
    engine = create_database_engine(url)
    with engine.begin() as connection:
        insert_rows(connection, "match_request", [{
            "id": 1, "case_id": 1, "analyses": ["identity"], "reference_sets": ["R"],
            "parameters": {}, "status": "done", "progress": 1.0, "result": {"format": 1},
            "requested_by_id": 1, "created_at": WHEN}])
        later, earlier = WHEN + dt.timedelta(hours=2), WHEN + dt.timedelta(hours=1)
        for rows in (issued_report_rows(1, 1, later), issued_report_rows(2, 2, earlier)):
            for table, table_rows in rows.items():
                insert_rows(connection, table, table_rows)
        insert_rows(connection, "report", [{
            "id": 3, "match_request_id": 1, "version": 1, "kind": "lead", "status": "draft",
            "body": {}, "body_sha256": "", "ledger_head_hash": "", "created_by_id": 1,
            "created_at": WHEN}])
        insert_rows(connection, "audit_record", [{
            "occurred_at": WHEN, "actor_id": 1, "table_name": "case_file", "record_id": "1",
            "action": "update", "changes": {"title": {"old": "One", "new": "Uno"}}}])
    engine.dispose()


def test_0005_chains_the_audit_trail_and_issued_reports_of_a_filled_0004_database(
        empty_database_url):
    migrated_to_0004_with_reports(empty_database_url)
    upgrade(empty_database_url, revision="0005")
    engine = create_database_engine(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0005"
        # Issued reports in the order of issue; the draft stays out of the chain.
        assert connection.execute(sa.text(
            "SELECT id, issue_seq FROM report ORDER BY id")).all() == [(1, 2), (2, 1), (3, None)]
        assert connection.execute(sa.text(
            "SELECT seq FROM audit_record ORDER BY id")).scalars().all() == [1, 2]
        assert connection.execute(sa.text(
            "SELECT appends, audit_appends, report_appends FROM custody_append_lock")
        ).one() == (0, 2, 2)
    with Session(engine) as session:
        for chain in (AUDIT_TRAIL, ISSUED_REPORTS):
            verified = verify_chain(session, chain)
            assert verified.ok, verified.first_break
            assert verified.n_events == 2
        # The chain covers the signatures the reports had.
        report = session.get(Report, 1)
        assert issued_document_problem(session, report) is None
    # The guards are in place on the migrated tables, the rebuilt audit trail's included.
    with engine.connect() as connection:
        for table in ("audit_record", "report", "report_signature"):
            assert trigger_names(connection, table) == GUARD_TRIGGERS[engine.dialect.name][table]
    engine.dispose()


def test_0005_downgrades_keeping_the_rows(empty_database_url):
    migrated_to_0004_with_reports(empty_database_url)
    upgrade(empty_database_url)
    command.downgrade(alembic_config(empty_database_url), "0004")
    engine = create_database_engine(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0004"
        inspector = sa.inspect(connection)
        for table, gone in (("audit_record", "seq"), ("report", "issue_seq"),
                            ("custody_append_lock", "audit_appends")):
            assert gone not in {column["name"] for column in inspector.get_columns(table)}
        assert connection.execute(sa.text("SELECT COUNT(*) FROM audit_record")).scalar() == 2
        assert connection.execute(sa.text("SELECT COUNT(*) FROM report_signature")).scalar() == 4
        expected = {"sqlite": {"custody_event_no_update", "custody_event_no_delete"},
                    "postgresql": {"custody_event_append_only", "custody_event_no_truncate"}}
        assert trigger_names(connection, "custody_event") == expected[engine.dialect.name]
    engine.dispose()
    upgrade(empty_database_url)
    engine = create_database_engine(empty_database_url)
    with Session(engine) as session:
        assert verify_chain(session, ISSUED_REPORTS).ok
    engine.dispose()
