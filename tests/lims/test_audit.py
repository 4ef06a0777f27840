"""The audit trail: every insert, update and delete, with old and new values, who and when."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lims.api.audit import AUDITED_MODELS
from lims.audit import REDACTED
from lims.database import Base
from lims.models import (
    APPEND_ONLY_TABLES,
    Agency,
    ApiToken,
    AuditRecord,
    Case,
    CaseShare,
    CustodyAppendLock,
    IdempotencyKey,
    Seizure,
    User,
)


def records(session, table: str, record_id: str | None = None) -> list[AuditRecord]:
    statement = sa.select(AuditRecord).where(AuditRecord.table_name == table)
    if record_id is not None:
        statement = statement.where(AuditRecord.record_id == record_id)
    return list(session.scalars(statement.order_by(AuditRecord.id)))


def test_insert_update_delete_keep_old_and_new_values_and_actor(session):
    session.info["actor_id"] = 42
    agency = Agency(code="KWS", name="Kenya Wildlife Service", kind="wildlife_authority")
    session.add(agency)
    session.commit()
    agency.name = "KWS Forensic Laboratory"
    agency.kind = "wildlife_authority"  # same value: not a change
    session.commit()
    session.delete(agency)
    session.commit()

    inserted, updated, deleted = records(session, "agency", str(agency.id))
    assert inserted.action == "insert"
    assert inserted.changes["code"] == {"old": None, "new": "KWS"}
    assert inserted.changes["name"] == {"old": None, "new": "Kenya Wildlife Service"}
    assert updated.action == "update"
    assert updated.changes == {
        "name": {"old": "Kenya Wildlife Service", "new": "KWS Forensic Laboratory"}
    }
    assert deleted.action == "delete"
    assert deleted.changes["name"] == {"old": "KWS Forensic Laboratory", "new": None}
    assert {r.actor_id for r in (inserted, updated, deleted)} == {42}
    now = dt.datetime.now(dt.UTC)
    assert all(now - r.occurred_at < dt.timedelta(minutes=1) for r in (inserted, deleted))


def test_old_value_never_loaded_is_read_from_the_database(session):
    agency = Agency(code="X", name="Before", kind="other")
    session.add(agency)
    session.commit()
    session.expire(agency, ["name"])
    agency.name = "After"
    session.commit()
    assert records(session, "agency")[-1].changes == {"name": {"old": "Before", "new": "After"}}


def test_secrets_are_redacted_but_their_change_is_recorded(session):
    agency = Agency(code="A", name="A", kind="laboratory")
    user = User(agency=agency, username="ana", full_name="Ana", password_hash="scrypt$old")
    user.set_roles({"analyst", "reviewer"})
    session.add(user)
    session.commit()
    user.password_hash = "scrypt$new"
    session.commit()
    inserted, updated = records(session, "user_account", str(user.id))
    assert inserted.changes["password_hash"] == {"old": None, "new": REDACTED}
    assert updated.changes["password_hash"] == {"old": REDACTED, "new": REDACTED}
    role_records = records(session, "user_role")
    assert sorted(r.record_id for r in role_records) == [
        f"user_id={user.id},role=analyst",
        f"user_id={user.id},role=reviewer",
    ]


def test_rows_deleted_as_orphans_and_unloaded_old_values_are_kept(session):
    agency = Agency(code="O", name="Orphans", kind="laboratory")
    user = User(agency=agency, username="ori", full_name="Ori")
    user.set_roles({"analyst", "reviewer"})
    session.add(user)
    session.commit()
    user.set_roles({"analyst"})  # the reviewer row is deleted as an orphan
    session.commit()
    [taken] = [r for r in records(session, "user_role") if r.action == "delete"]
    assert taken.record_id == f"user_id={user.id},role=reviewer"
    assert taken.changes == {
        "user_id": {"old": user.id, "new": None},
        "role": {"old": "reviewer", "new": None},
    }
    stranger = Agency(code="E", name="Expired", kind="other", country="KE")
    session.add(stranger)
    session.commit()
    session.expire(stranger)
    session.delete(stranger)
    session.commit()
    deleted = records(session, "agency", str(stranger.id))[-1]
    assert deleted.action == "delete"
    assert deleted.changes["name"] == {"old": "Expired", "new": None}
    assert deleted.changes["country"] == {"old": "KE", "new": None}


def test_rolled_back_changes_leave_no_trail(session):
    agency = Agency(code="R", name="Rolled back", kind="other")
    session.add(agency)
    session.flush()
    assert len(records(session, "agency")) == 1
    session.rollback()
    assert records(session, "agency") == []


def test_api_changes_name_the_user_behind_them(login, session):
    admin = login("admin")
    response = admin.post(
        "/api/v1/agencies", json={"code": "CUS", "name": "Customs", "kind": "enforcement"}
    )
    assert response.status_code == 201, response.json
    registered = response.json["id"]
    own = admin.agency_id
    assert admin.patch(f"/api/v1/agencies/{own}", json={"country": "KE"}).status_code == 200
    assert [(r.action, r.actor_id) for r in records(session, "agency", str(registered))] == [
        ("insert", admin.user_id)
    ]
    trail = records(session, "agency", str(own))
    assert (trail[-1].action, trail[-1].actor_id) == ("update", admin.user_id)
    assert trail[-1].changes == {"country": {"old": None, "new": "KE"}}

    listed = admin.get(f"/api/v1/audit-records?table_name=agency&record_id={own}")
    assert listed.status_code == 200
    assert [item["action"] for item in listed.json["items"]] == ["insert", "update"]


# --------------------------------------------------------------------------- need-to-know
def _readable_cases(session, agency_id: int) -> set[int]:
    own = session.scalars(sa.select(Case.id).where(Case.agency_id == agency_id))
    shared = session.scalars(sa.select(CaseShare.case_id).where(CaseShare.agency_id == agency_id))
    return set(own) | set(shared)


def _key_part(record_id: str, name: str) -> int:
    return int(dict(part.split("=", 1) for part in record_id.split(","))[name])


def _may_see(session, entry: AuditRecord, agency_id: int) -> bool:
    """The need-to-know rule written out for the tables of these tests, record by record."""
    cases = _readable_cases(session, agency_id)
    table, key = entry.table_name, entry.record_id
    if table == "agency":
        return int(key) == agency_id
    if table == "user_account":
        return session.get(User, int(key)).agency_id == agency_id
    if table == "user_role":
        return session.get(User, _key_part(key, "user_id")).agency_id == agency_id
    if table == "api_token":
        return session.get(ApiToken, int(key)).user.agency_id == agency_id
    if table == "case_share":
        return _key_part(key, "case_id") in cases
    if table == "case_file":
        return int(key) in cases
    if table == "seizure":
        return session.get(Seizure, int(key)).case_id in cases
    raise AssertionError(f"no rule written out for {table}")


def _trail_seen_by(caller) -> list[dict]:
    response = caller.get("/api/v1/audit-records?per_page=500")
    assert response.status_code == 200, response.json
    assert response.json["total"] == len(response.json["items"])
    return response.json["items"]


def _change_of(items: list[dict], table: str, record_id: int, field: str) -> set:
    return {
        (item["actor_id"], item["changes"][field]["new"])
        for item in items
        if item["table_name"] == table
        and item["record_id"] == str(record_id)
        and field in item["changes"]
    }


def test_the_trail_is_seen_by_need_to_know_on_its_records_not_by_who_made_the_changes(
    login, agencies, session
):
    custodian_a, admin_a = login("custodian"), login("admin")
    custodian_b, reviewer_b = login("custodian", agency="B"), login("reviewer", agency="B")
    case_ids, seizure_ids = {}, {}
    for name in ("shared", "private"):
        case = custodian_a.post(
            "/api/v1/cases", json={"reference": name, "title": name, "kind": "investigation"}
        ).json
        case_ids[name] = case["id"]
        seizure_ids[name] = custodian_a.post(
            "/api/v1/seizures", json={"case_id": case["id"], "reference": f"SZ-{name}"}
        ).json["id"]
        share_url = f"/api/v1/cases/{case['id']}/shares/{agencies['B']}"
        assert custodian_a.put(share_url, json={"access": "contribute"}).status_code == 201
        # Agency B changes a record of A's case while it may.
        changed = custodian_b.patch(
            f"/api/v1/seizures/{seizure_ids[name]}", json={"place": f"B was at {name}"}
        )
        assert changed.status_code == 200
    # A changes the shared seizure; A stops sharing the private case.
    assert (
        custodian_a.patch(
            f"/api/v1/seizures/{seizure_ids['shared']}", json={"place": "A was here"}
        ).status_code
        == 200
    )
    private_share = f"/api/v1/cases/{case_ids['private']}/shares/{agencies['B']}"
    assert custodian_a.delete(private_share).status_code == 204
    # A role change deletes a user_role row: A's business only.
    assert (
        admin_a.patch(
            f"/api/v1/users/{custodian_a.user_id}", json={"roles": ["analyst"]}
        ).status_code
        == 200
    )

    seen_by_b = _trail_seen_by(reviewer_b)
    seen_by_a = _trail_seen_by(admin_a)
    everything = session.scalars(sa.select(AuditRecord)).all()
    for caller, seen in ((reviewer_b, seen_by_b), (admin_a, seen_by_a)):
        expected = {e.id for e in everything if _may_see(session, e, caller.agency_id)}
        assert {item["id"] for item in seen} == expected

    # B sees A's change to the shared seizure, and its own.
    assert _change_of(seen_by_b, "seizure", seizure_ids["shared"], "place") == {
        (custodian_b.user_id, "B was at shared"),
        (custodian_a.user_id, "A was here"),
    }
    # Nothing of the case no longer shared, not even B's own change to it.
    assert not [
        i
        for i in seen_by_b
        if i["table_name"] == "seizure" and i["record_id"] == str(seizure_ids["private"])
    ]
    assert not [
        i
        for i in seen_by_b
        if i["table_name"] == "case_file" and i["record_id"] == str(case_ids["private"])
    ]
    assert _change_of(seen_by_a, "seizure", seizure_ids["private"], "place") == {
        (custodian_b.user_id, "B was at private")
    }
    # The withdrawn share's trail, deletion included, stays with the case's agency.
    share_key = f"case_id={case_ids['private']},agency_id={agencies['B']}"
    share_trail = [(i["action"], i["actor_id"]) for i in seen_by_a if i["record_id"] == share_key]
    assert share_trail == [("insert", custodian_a.user_id), ("delete", custodian_a.user_id)]
    assert not [i for i in seen_by_b if i["record_id"] == share_key]
    role_key = f"user_id={custodian_a.user_id},role=custodian"
    assert ("delete", admin_a.user_id) in {
        (i["action"], i["actor_id"]) for i in seen_by_a if i["record_id"] == role_key
    }
    assert not [
        i
        for i in seen_by_b
        if i["table_name"] in ("user_role", "user_account")
        and i["record_id"].startswith(f"user_id={custodian_a.user_id},")
    ]
    # One record at a time: the same answer.
    private_entry = next(i for i in seen_by_a if i["record_id"] == share_key)
    assert reviewer_b.get(f"/api/v1/audit-records/{private_entry['id']}").status_code == 404
    assert admin_a.get(f"/api/v1/audit-records/{private_entry['id']}").status_code == 200


def test_every_audited_table_has_a_need_to_know_rule():
    audited = (
        {table.name for table in Base.metadata.sorted_tables}
        - set(APPEND_ONLY_TABLES)
        - {CustodyAppendLock.__tablename__}
        # Written with Core statements only, outside the audited session events (a key and
        # the answer it got are no LIMS record; tests/lims/test_custody_api.py checks).
        - {IdempotencyKey.__tablename__}
    )
    assert {model.__tablename__ for model in AUDITED_MODELS} == audited
