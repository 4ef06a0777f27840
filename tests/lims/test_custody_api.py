"""Custody through the API: recording events, histories, the head and verification."""

from __future__ import annotations

import threading

import pytest

from lims.custody import GENESIS_HASH
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
