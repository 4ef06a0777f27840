"""Issued reports, the audit trail and the custody ledger are tamper-evident by the database
and by hash (issue 13, item 4): the probes that once rewrote or removed them through SQLite's
``INSERT OR REPLACE`` and PostgreSQL's ``TRUNCATE``, the hash chains of the audit trail and of
issued reports with ``dnatrack verify`` naming the first broken link, concurrent writers, and
the server refusing to serve a forged document.

Hashes are recomputed here from the stored rows with hashlib and json, not with the code under
test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading

import pytest
import sqlalchemy as sa

from lims.audit import AUDIT_TRAIL
from lims.custody import GENESIS_HASH, format_time, record_event, verify_chain, verify_ledger
from lims.database import create_database_engine
from lims.models import Agency, AuditRecord, Report, ReportSignature, Seizure, User
from lims.reports.issue import ISSUED_REPORTS
from tests.lims.test_custody import tamper
from tests.lims.test_reports import issued_report, staff, world  # noqa: F401 (fixtures)
from tests.lims.web_support import make_browser

GUARDED_TABLES = ("custody_event", "audit_record", "report", "report_signature")


def sha256_link(prev_hash: str, payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + text.encode()).hexdigest()


@pytest.fixture
def evidence(app, world, staff, session):  # noqa: F811 (fixtures of test_reports)
    """An issued report (identity search only, which is quick), a custody event and audit
    records: one row of each guarded table. Returns ``(key column, key, a column, a forged
    value)`` by table, and the staff (``"staff"``) who made them."""
    _, report = issued_report(app, world, staff, analyses=["identity"])
    actor = session.get(User, staff["analyst"].user_id)
    seizure = session.get(Seizure, world.seizure_ids["SZ-A"])
    event = record_event(session, event_type="collect", subject=seizure, actor=actor,
                         signature_meaning="performed", place="Mombasa port")
    session.commit()
    signature = session.scalar(sa.select(ReportSignature.id).where(
        ReportSignature.report_id == report["id"]).order_by(ReportSignature.id))
    audit = session.scalar(sa.select(sa.func.min(AuditRecord.id)))
    seq = event.seq
    session.rollback()  # holds no lock a TRUNCATE would wait for
    return {"custody_event": ("seq", seq, "notes", "forged"),
            "audit_record": ("id", audit, "record_id", "forged"),
            "report": ("id", report["id"], "html", b"<html>forged</html>"),
            "report_signature": ("id", signature, "signer_name", "Forged Name"),
            "staff": staff}


def rewrite_statement(connection, table: str, key: str, column: str) -> str:
    """SQL that writes a copy of one row with ``column`` changed over the row itself:
    SQLite's INSERT OR REPLACE, PostgreSQL's upsert."""
    columns = [c["name"] for c in sa.inspect(connection).get_columns(table)]
    selected = ", ".join(f":forged AS {name}" if name == column else name for name in columns)
    statement = (f"INTO {table} ({', '.join(columns)}) SELECT {selected} FROM {table} "
                 f"WHERE {key} = :key")
    if connection.dialect.name == "sqlite":
        return f"INSERT OR REPLACE {statement}"
    return f"INSERT {statement} ON CONFLICT ({key}) DO UPDATE SET {column} = EXCLUDED.{column}"


@pytest.mark.parametrize("table", GUARDED_TABLES)
def test_insert_or_replace_cannot_rewrite_an_append_only_row(evidence, database_url, session,
                                                             table):
    key, value, column, forged = evidence[table]
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            statement = rewrite_statement(connection, table, key, column)
            before = connection.execute(sa.text(f"SELECT * FROM {table} WHERE {key} = :key"),
                                        {"key": value}).one()
        with pytest.raises(sa.exc.DBAPIError, match="append-only|issued|cannot change"):
            with engine.begin() as connection:
                connection.execute(sa.text(statement), {"forged": forged, "key": value})
        with engine.connect() as connection:
            after = connection.execute(sa.text(f"SELECT * FROM {table} WHERE {key} = :key"),
                                       {"key": value}).one()
    finally:
        engine.dispose()
    assert after == before
    for chain in (AUDIT_TRAIL, ISSUED_REPORTS):
        assert verify_chain(session, chain).ok
    assert verify_ledger(session).ok


def test_a_draft_cannot_be_updated_onto_an_issued_reports_key(evidence, database_url):
    """UPDATE OR REPLACE of a draft onto an issued report's (request, kind, version) would
    delete the issued report without its delete trigger."""
    issued_id = evidence["report"][1]
    analyst = evidence["staff"]["analyst"]
    request_id = analyst.get(f"/api/v1/reports/{issued_id}").json["match_request_id"]
    amended = analyst.post(f"/api/v1/reports/{issued_id}/amendments", json={"reason": "typo"})
    assert amended.status_code == 201
    engine = create_database_engine(database_url)
    or_replace = "OR REPLACE " if engine.dialect.name == "sqlite" else ""
    try:
        with pytest.raises(sa.exc.DBAPIError):
            with engine.begin() as connection:
                connection.execute(sa.text(
                    f"UPDATE {or_replace}report SET version = 1 WHERE id = :id"),
                    {"id": amended.json["id"]})
    finally:
        engine.dispose()
    listed = analyst.get(f"/api/v1/reports?match_request_id={request_id}").json["items"]
    assert [(r["id"], r["status"]) for r in listed] == [
        (issued_id, "issued"), (amended.json["id"], "draft")]


@pytest.mark.parametrize("statement", [
    *(f"TRUNCATE {table}" for table in GUARDED_TABLES),
    "TRUNCATE report CASCADE",
    "TRUNCATE match_request CASCADE",
])
def test_truncate_is_refused_on_every_append_only_table(evidence, database_url, statement):
    engine = create_database_engine(database_url)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        pytest.skip("SQLite has no TRUNCATE (its DELETE is refused by the triggers)")

    def counts():
        with engine.connect() as connection:
            return [connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
                    for table in GUARDED_TABLES]

    try:
        before = counts()
        # A referenced table without CASCADE is refused by its foreign keys first.
        with pytest.raises(sa.exc.DBAPIError, match="append-only: TRUNCATE refused|"
                                                    "cannot truncate a table referenced"):
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
        assert counts() == before and all(before)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- audit chain
def audited_changes(session) -> list[AuditRecord]:
    """A few audited changes (an agency made, renamed, and deleted); the trail in order."""
    agency = Agency(code="T", name="Trail", kind="other")
    session.add(agency)
    session.commit()
    agency.name = "Trail renamed"
    session.commit()
    session.delete(agency)
    session.commit()
    return list(session.scalars(sa.select(AuditRecord).order_by(AuditRecord.seq)))


def test_audit_records_are_hash_chained_in_order(session):
    records = audited_changes(session)
    assert [record.seq for record in records] == [1, 2, 3]
    prev_hash = GENESIS_HASH
    for record in records:
        payload = {"seq": record.seq, "occurred_at": format_time(record.occurred_at),
                   "actor_id": record.actor_id, "table_name": record.table_name,
                   "record_id": record.record_id, "action": record.action,
                   "changes": record.changes}
        assert record.prev_hash == prev_hash
        assert record.hash == sha256_link(prev_hash, payload)
        prev_hash = record.hash
    verified = verify_chain(session, AUDIT_TRAIL)
    assert verified.ok and verified.n_events == 3 and verified.head.hash == prev_hash


@pytest.mark.parametrize(("statement", "broken_seq", "reason"), [
    ("UPDATE audit_record SET record_id = 'x' WHERE seq = 2", 2,
     "its stored fields do not match its hash (altered after recording)"),
    ("DELETE FROM audit_record WHERE seq = 2", 2, "missing (the next stored record is 3)"),
    ("DELETE FROM audit_record WHERE seq = 3", 3, "audit trail truncated: 3 records recorded, "
                                                  "2 present"),
])
def test_verify_names_the_first_broken_link_of_the_audit_trail(session, database_url, runner,
                                                               statement, broken_seq, reason):
    audited_changes(session)
    tamper(database_url, statement)
    broken = verify_chain(session, AUDIT_TRAIL).first_break
    assert broken.seq == broken_seq and broken.reason.startswith(reason)
    result = runner("verify")
    assert result.status == 1
    assert f"audit trail: chain broken at audit record {broken_seq}: {reason}" in result.err
    assert "custody ledger intact: 0 events" in result.out


def test_concurrent_writers_never_fork_the_audit_trail(app, login, session):
    caller = login("custodian")
    statuses = []

    def create_cases(thread: int):
        client = app.test_client()
        for n in range(5):
            response = client.post("/api/v1/cases", headers=caller.headers, json={
                "reference": f"C-{thread}-{n}", "title": "Concurrent", "kind": "investigation"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=create_cases, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 20
    verified = verify_chain(session, AUDIT_TRAIL)
    assert verified.ok, verified.first_break
    seqs = session.scalars(sa.select(AuditRecord.seq).order_by(AuditRecord.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(session.scalars(sa.select(AuditRecord.id).where(
        AuditRecord.table_name == "case_file")).all()) == 20


# --------------------------------------------------------------------------- report chain
def test_issued_reports_are_hash_chained_over_their_row_files_and_signatures(evidence,
                                                                              session, runner):
    report = session.get(Report, evidence["report"][1])
    signatures = [
        {"id": s.id, "user_id": s.user_id, "signer_name": s.signer_name, "role": s.role,
         "meaning": s.meaning, "signed_at": format_time(s.signed_at)}
        for s in sorted(report.signatures, key=lambda s: s.id)]
    assert [s["role"] for s in signatures] == ["analyst", "reviewer"]
    row = {name: getattr(report, name) for name in (
        "id", "match_request_id", "version", "replaces_id", "amendment_reason", "kind",
        "status", "remarks", "body_sha256", "ledger_head_hash", "html_sha256", "pdf_sha256",
        "created_by_id", "issue_seq")}
    payload = {**row, "created_at": format_time(report.created_at),
               "issued_at": format_time(report.issued_at), "signatures": signatures}
    assert (report.issue_seq, report.issue_prev_hash) == (1, GENESIS_HASH)
    assert report.issue_hash == sha256_link(GENESIS_HASH, payload)
    assert report.html_sha256 == hashlib.sha256(report.html).hexdigest()
    result = runner("verify")
    assert result.status == 0, result.err
    assert f"issued reports intact: 1 reports; head 1 {report.issue_hash}" in result.out
    assert "custody ledger intact: 1 events" in result.out
    assert "audit trail intact:" in result.out


FORGED = b"<html><body>Forged: no link between the seizures.</body></html>"


@pytest.mark.parametrize(("forgery", "problem"), [
    # The probe: the HTML rewritten, its recorded hash (served as X-Content-SHA256) kept.
    ({"html": FORGED}, "the stored HTML does not match its recorded SHA-256"),
    # The recorded hash rewritten to match: the chain hash covering it no longer holds.
    ({"html": FORGED, "html_sha256": hashlib.sha256(FORGED).hexdigest()},
     "its stored fields do not match its hash"),
    ({"remarks": "Forged remarks."}, "its stored fields do not match its hash"),
])
def test_a_forged_document_is_refused_and_logged_not_served(
        evidence, database_url, app, agencies, runner, caplog, forgery, problem):
    report_id = evidence["report"][1]
    reader = evidence["staff"]["investigator"]
    genuine = reader.get(f"/api/v1/reports/{report_id}/html")
    assert genuine.status_code == 200
    columns = ", ".join(f"{name} = :{name}" for name in forgery)
    tamper(database_url, (f"UPDATE report SET {columns} WHERE id = {report_id}", forgery))
    with caplog.at_level(logging.ERROR, logger="lims.api.requests"):
        for kind in ("html", "pdf"):
            refused = reader.get(f"/api/v1/reports/{report_id}/{kind}")
            assert refused.status_code == 500 and refused.json["error"] == "document_altered"
            assert problem in refused.json["message"]
            assert FORGED not in refused.data
    logged = [r.getMessage() for r in caplog.records if r.name == "lims.api.requests"]
    assert len(logged) == 2 and all(problem in line and "withheld" in line for line in logged)
    page = make_browser(app, agencies, "investigator", username="page-reader").get(
        f"/reports/{report_id}/document.html")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert "is withheld" in page.get_data(as_text=True)
    assert FORGED not in page.data
    result = runner("verify")
    assert result.status == 1
    assert f"issued reports: chain broken at issued report 1: {problem}" in result.err


def test_a_report_cut_off_the_chain_is_reported_missing(evidence, database_url, session):
    report_id = evidence["report"][1]
    tamper(database_url, f"DELETE FROM report_signature WHERE report_id = {report_id}",
           f"DELETE FROM report WHERE id = {report_id}")
    broken = verify_chain(session, ISSUED_REPORTS).first_break
    assert broken.seq == 1 and broken.reason.startswith(
        "report chain truncated: 1 reports recorded, 0 present")
    investigator = evidence["staff"]["investigator"]
    assert investigator.get(f"/api/v1/reports/{report_id}/html").status_code == 404


def test_custody_verify_still_covers_the_ledger_alone(evidence, database_url, runner):
    tamper(database_url, "UPDATE custody_event SET notes = 'x' WHERE seq = 1",
           "UPDATE audit_record SET record_id = 'x' WHERE seq = 1")
    custody = runner("custody", "verify")
    assert custody.status == 1
    assert "custody ledger: chain broken at custody event 1: its stored fields" in custody.err
    assert "audit trail" not in custody.err + custody.out
