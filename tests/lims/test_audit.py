"""The audit trail: every insert, update and delete, with old and new values, who and when."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from lims.audit import REDACTED
from lims.models import Agency, AuditRecord, User


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
    assert updated.changes == {"password_hash": {"old": REDACTED, "new": REDACTED}}
    role_records = records(session, "user_role")
    assert sorted(r.record_id for r in role_records) == [
        f"user_id={user.id},role=analyst",
        f"user_id={user.id},role=reviewer",
    ]


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
    agency_id = response.json["id"]
    assert admin.patch(f"/api/v1/agencies/{agency_id}", json={"country": "KE"}).status_code == 200
    trail = records(session, "agency", str(agency_id))
    assert [(r.action, r.actor_id) for r in trail] == [
        ("insert", admin.user_id),
        ("update", admin.user_id),
    ]
    assert trail[1].changes == {"country": {"old": None, "new": "KE"}}

    listed = admin.get(f"/api/v1/audit-records?table_name=agency&record_id={agency_id}")
    assert listed.status_code == 200
    assert [item["action"] for item in listed.json["items"]] == ["insert", "update"]
