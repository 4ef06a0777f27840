"""Custody through the API: recording events, histories, the head and verification."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.orm import Session

from lims.custody import GENESIS_HASH
from lims.extensions import db
from lims.models import AuditRecord, IdempotencyKey
from tests.lims.factories import make_case_tree


@pytest.fixture
def trees(session, agencies):
    return {
        "A": make_case_tree(session, agencies["A"], "KE"),
        "B": make_case_tree(session, agencies["B"], "UG"),
    }


def event(subject_id: int, event_type: str = "seal", **fields) -> dict:
    body = {
        "event_type": event_type,
        "subject_type": "sample",
        "subject_id": subject_id,
        "signature_meaning": "performed",
    }
    if event_type == "seal":
        body["seal_numbers"] = ["KE-0001"]
    return body | fields


def test_recording_and_reading_custody_events(login, trees):
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    sealed = custodian.post(
        "/api/v1/custody-events", json=event(sample_id, occurred_at="2024-03-01T09:00:00+03:00")
    )
    assert sealed.status_code == 201, sealed.json
    assert sealed.json["seq"] == 1 and sealed.json["prev_hash"] == GENESIS_HASH
    assert sealed.json["occurred_at"] == "2024-03-01T06:00:00+00:00"
    assert sealed.json["actor_id"] == custodian.user_id
    moved = custodian.post(
        "/api/v1/custody-events",
        json=event(
            sample_id,
            "transfer",
            signature_meaning="released",
            from_holder="store",
            to_holder="lab",
        ),
    )
    assert moved.json["prev_hash"] == sealed.json["hash"]

    assert custodian.get("/api/v1/custody-events/2").json == moved.json
    listed = custodian.get(f"/api/v1/custody-events?sample_id={sample_id}").json
    assert [item["seq"] for item in listed["items"]] == [1, 2]
    head = custodian.get("/api/v1/custody/head").json
    assert head == {"seq": 2, "hash": moved.json["hash"]}
    history = custodian.get(f"/api/v1/samples/{sample_id}/custody").json
    assert history["barcode"] == "KE-S1"
    assert [item["event_type"] for item in history["events"]] == ["seal", "transfer"]

    assert custodian.get("/api/v1/custody/verification").status_code == 403
    verification = login("reviewer").get("/api/v1/custody/verification").json
    assert verification == {
        "ok": True,
        "n_events": 2,
        "head_seq": 2,
        "head_hash": moved.json["hash"],
        "broken_seq": None,
        "reason": None,
    }


def test_histories_and_lists_filter_by_when_events_happened(login, trees):
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    happened = ["2024-03-05T10:00:00+00:00", "2024-03-01T10:00:00+00:00"]
    for moment in happened:  # recorded late, the earlier one last
        response = custodian.post(
            "/api/v1/custody-events", json=event(sample_id, occurred_at=moment)
        )
        assert response.status_code == 201, response.json
    history = custodian.get(f"/api/v1/samples/{sample_id}/custody").json["events"]
    assert [item["seq"] for item in history] == [2, 1]
    assert [item["occurred_at"] for item in history] == sorted(happened)
    assert all(item["recorded_at"] > item["occurred_at"] for item in history)

    window = "occurred_from=2024-03-02T00:00:00Z&occurred_to=2024-03-06T00:00:00Z"
    history = custodian.get(f"/api/v1/samples/{sample_id}/custody?{window}").json["events"]
    assert [item["seq"] for item in history] == [1]
    listed = custodian.get(f"/api/v1/custody-events?{window}").json["items"]
    assert [item["seq"] for item in listed] == [1]
    listed = custodian.get("/api/v1/custody-events?occurred_to=2024-03-02T00:00:00Z").json
    assert [item["seq"] for item in listed["items"]] == [2]
    naive = custodian.get(f"/api/v1/samples/{sample_id}/custody?occurred_from=2024-03-02")
    assert naive.status_code == 400
    assert naive.json["details"]["problems"][0]["field"] == "occurred_from"


def test_bad_events_are_refused_by_field(login, trees):
    custodian = login("custodian")
    own, foreign = trees["A"].sample_ids[0], trees["B"].sample_ids[0]
    cases = [
        (event(own, "transfer", from_holder="store"), "to_holder"),
        (event(foreign), "subject_id"),
        (event(own, "store", storage_location_id=999999), "storage_location_id"),
        (event(own, "seal", seal_numbers=[]), "seal_numbers"),
        (event(own, "seal", occurred_at="2024-03-01T09:00:00"), "occurred_at"),
    ]
    for body, field in cases:
        response = custodian.post("/api/v1/custody-events", json=body)
        assert response.status_code == 422, body
        assert response.json["details"]["problems"][0]["field"] == field
    assert custodian.get("/api/v1/custody/head").json["seq"] == 0
    assert login("researcher").post("/api/v1/custody-events", json=event(own)).status_code == 403
    outsider = login("custodian", agency="B")
    assert outsider.get(f"/api/v1/samples/{own}/custody").status_code == 404


def test_storage_moves_go_through_the_ledger(login, trees):
    custodian = login("custodian")
    freezer = custodian.post(
        "/api/v1/storage-locations", json={"name": "Freezer 1", "kind": "freezer"}
    ).json
    sample_id = trees["A"].sample_ids[0]
    direct = custodian.patch(
        f"/api/v1/samples/{sample_id}", json={"storage_location_id": freezer["id"]}
    )
    assert direct.status_code == 422
    assert direct.json["details"]["problems"] == [
        {"field": "storage_location_id", "message": "cannot be set here"}
    ]
    stored = custodian.post(
        "/api/v1/custody-events", json=event(sample_id, "store", storage_location_id=freezer["id"])
    )
    assert stored.status_code == 201
    assert (
        custodian.get(f"/api/v1/samples/{sample_id}").json["storage_location_id"] == (freezer["id"])
    )


def test_concurrent_appends_never_fork_the_chain(app, login, trees):
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    statuses = []

    def append_five():
        client = app.test_client()
        for _ in range(5):
            response = client.post(
                "/api/v1/custody-events", json=event(sample_id, "open"), headers=custodian.headers
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=append_five) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 20
    verification = login("reviewer").get("/api/v1/custody/verification").json
    assert verification["ok"] and verification["n_events"] == 20


# --------------------------------------------------------------------------- retries
def ledger_length(login) -> int:
    return login("reviewer").get("/api/v1/custody/verification").json["n_events"]


def post_with_key(caller, body: dict, key: str, client=None):
    return (client or caller.client).post(
        "/api/v1/custody-events", json=body, headers={**caller.headers, "Idempotency-Key": key})


def test_a_retry_with_the_same_key_gets_the_first_answer_and_appends_nothing(app, login, trees,
                                                                            caplog):
    caplog.set_level(logging.INFO, logger="lims")
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    body = event(sample_id)
    first = post_with_key(custodian, body, "hand-over-7f3a")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    retry = post_with_key(custodian, body, "hand-over-7f3a")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == first.json and retry.headers["Location"] == first.headers["Location"]
    assert ledger_length(login) == 1
    logged = [record.getMessage() for record in caplog.records]
    assert logged.count(f"custody event 1 (seal of sample {sample_id}) recorded by user "
                        f"{custodian.user_id}") == 1
    assert any(message.startswith(f"idempotent replay: user {custodian.user_id}, POST "
                                  "/api/v1/custody-events, key 'hand-over-7f3a' answered 201")
               for message in logged)
    # The key is kept beside the write, not in the audit trail of LIMS records.
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditRecord).where(
            AuditRecord.table_name == IdempotencyKey.__tablename__)) == 0
    # A new key is a new event; without a key every request is one.
    assert post_with_key(custodian, body, "hand-over-7f3b").json["seq"] == 2
    assert custodian.post("/api/v1/custody-events", json=body).json["seq"] == 3
    assert ledger_length(login) == 3


def test_a_key_reused_for_another_request_is_refused(login, trees):
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    assert post_with_key(custodian, event(sample_id), "k-1").status_code == 201
    other = post_with_key(custodian, event(sample_id, "open"), "k-1")
    assert other.status_code == 422
    assert other.json["details"]["problems"][0]["field"] == "Idempotency-Key"
    assert ledger_length(login) == 1


def test_keys_belong_to_their_user(login, trees):
    first, second = login("custodian"), login("custodian")
    body = event(trees["A"].sample_ids[0])
    assert post_with_key(first, body, "shared-key").json["seq"] == 1
    answer = post_with_key(second, body, "shared-key")
    assert answer.json["seq"] == 2 and "Idempotent-Replayed" not in answer.headers
    assert answer.json["actor_id"] == second.user_id


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
def test_a_malformed_key_is_refused_naming_the_header(login, trees, key):
    custodian = login("custodian")
    response = custodian.client.post(
        "/api/v1/custody-events", json=event(trees["A"].sample_ids[0]),
        headers={**custodian.headers, "Idempotency-Key": key.encode().decode("latin-1")})
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "Idempotency-Key"
    assert ledger_length(login) == 0


def test_a_refused_write_keeps_no_key(login, trees):
    custodian = login("custodian")
    sample_id = trees["A"].sample_ids[0]
    incomplete = event(sample_id, "transfer")
    assert post_with_key(custodian, incomplete, "k-2").status_code == 422
    # Nothing was kept under the key: the corrected request may use it.
    complete = event(sample_id, "transfer", from_holder="Customs", to_holder="Lab")
    assert post_with_key(custodian, complete, "k-2").status_code == 201


def test_keys_expire(app, login, trees):
    app.config["IDEMPOTENCY_KEY_SECONDS"] = 0.3
    custodian = login("custodian")
    body = event(trees["A"].sample_ids[0])
    assert post_with_key(custodian, body, "k-4").json["seq"] == 1
    time.sleep(0.4)
    later = post_with_key(custodian, body, "k-4")
    assert later.json["seq"] == 2 and "Idempotent-Replayed" not in later.headers
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 1


def test_concurrent_retries_with_one_key_append_once(app, login, trees):
    custodian = login("custodian")
    body = event(trees["A"].sample_ids[0], "open")
    start = threading.Barrier(4)
    answers = []

    def send():
        client = app.test_client()
        start.wait()
        answer = post_with_key(custodian, body, "one-hand-over", client)
        answers.append((answer.status_code, answer.json))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [201] * 4
    assert {answer["seq"] for _, answer in answers} == {1}
    assert ledger_length(login) == 1


def fail_the_custody_commit(monkeypatch, *, after_committing: bool) -> None:
    """Make the commit of ``POST /custody-events`` raise as when the database connection is
    lost during COMMIT: after the database committed, or before."""
    real_commit = Session.commit

    def commit(self):
        if not (has_request_context() and request.path == "/api/v1/custody-events"):
            return real_commit(self)
        if after_committing:
            real_commit(self)
        else:
            self.rollback()
        raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("connection lost"))

    monkeypatch.setattr(Session, "commit", commit)


def test_a_write_committed_before_the_connection_failed_is_answered_as_stored(
        login, trees, monkeypatch):
    custodian = login("custodian")
    fail_the_custody_commit(monkeypatch, after_committing=True)
    answer = post_with_key(custodian, event(trees["A"].sample_ids[0]), "k-5")
    assert answer.status_code == 201 and answer.json["seq"] == 1
    monkeypatch.undo()
    assert ledger_length(login) == 1
    retry = post_with_key(custodian, event(trees["A"].sample_ids[0]), "k-5")
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.json == answer.json


def test_a_write_lost_with_the_connection_is_reported_as_failed(login, trees, monkeypatch):
    custodian = login("custodian")
    fail_the_custody_commit(monkeypatch, after_committing=False)
    answer = custodian.post("/api/v1/custody-events", json=event(trees["A"].sample_ids[0]))
    assert answer.status_code == 500
    monkeypatch.undo()
    assert ledger_length(login) == 0
