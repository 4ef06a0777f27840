"""Agencies, users and API tokens through the API: who may change what."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from lims.models import Agency, ApiToken, User, hash_token

PASSWORD = "correct horse battery"
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


# --------------------------------------------------------------------------- agencies
def test_an_admin_changes_their_own_agency_only(login, agencies, session):
    admin = login("admin")
    own = admin.patch(f"/api/v1/agencies/{agencies['A']}", json={"country": "Kenya"})
    assert own.status_code == 200 and own.json["country"] == "Kenya"
    other = admin.patch(f"/api/v1/agencies/{agencies['B']}", json={"name": "Taken over"})
    assert other.status_code == 403
    assert session.get(Agency, agencies["B"]).name == "Agency B"
    assert admin.get(f"/api/v1/agencies/{agencies['B']}").status_code == 200


def test_an_admin_registers_an_agency_but_only_its_own_admins_change_it(login, session):
    admin = login("admin")
    created = admin.post(
        "/api/v1/agencies", json={"code": "CUS", "name": "Customs", "kind": "enforcement"}
    )
    assert created.status_code == 201, created.json
    agency_id = created.json["id"]
    assert admin.patch(f"/api/v1/agencies/{agency_id}", json={"name": "X"}).status_code == 403
    assert session.get(Agency, agency_id).name == "Customs"
    listed = login("researcher", agency="B").get("/api/v1/agencies").json["items"]
    assert "CUS" in {agency["code"] for agency in listed}


@pytest.mark.parametrize("role", ["custodian", "analyst", "reviewer", "investigator", "researcher"])
def test_only_admins_touch_agencies(login, agencies, role):
    caller = login(role)
    body = {"code": "N", "name": "N", "kind": "other"}
    assert caller.post("/api/v1/agencies", json=body).status_code == 403
    assert caller.patch(f"/api/v1/agencies/{agencies['A']}", json={"name": "N"}).status_code == 403


# --------------------------------------------------------------------------- tokens
def tokens_of(session, user_id: int) -> list[ApiToken]:
    session.expire_all()
    return list(session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user_id)))


def test_tokens_are_created_by_their_holder_only(login, session):
    admin, analyst = login("admin"), login("analyst")
    refused = admin.post(f"/api/v1/users/{analyst.user_id}/tokens", json={"name": "for you"})
    assert refused.status_code == 403
    assert "only by its holder" in refused.json["message"]
    assert [token.name for token in tokens_of(session, analyst.user_id)] == ["tests"]
    # Nor for users of another agency, whose existence is not revealed either.
    outsider = login("analyst", agency="B")
    assert (
        admin.post(f"/api/v1/users/{outsider.user_id}/tokens", json={"name": "x"}).status_code
        == 403
    )

    own = analyst.post(f"/api/v1/users/{analyst.user_id}/tokens", json={"name": "mine"})
    assert own.status_code == 201 and own.json["user_id"] == analyst.user_id


def test_an_admin_lists_and_revokes_a_colleagues_tokens(login, session):
    admin, analyst = login("admin"), login("analyst")
    listed = admin.get(f"/api/v1/users/{analyst.user_id}/tokens").json["items"]
    assert [token["name"] for token in listed] == ["tests"]
    revoked = admin.post(f"/api/v1/tokens/{listed[0]['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    assert analyst.get("/api/v1/me").status_code == 401


def set_expiry(session, caller, moment: dt.datetime | None) -> None:
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.token_hash == hash_token(caller.token))
        .values(expires_at=moment)
    )
    session.commit()


@pytest.mark.parametrize(
    ("asked", "accepted"),
    [
        (None, False),  # never expiring
        (LATER + dt.timedelta(seconds=1), False),
        (LATER, True),
        (LATER - dt.timedelta(days=1), True),
    ],
)
def test_a_token_made_with_an_expiring_token_expires_no_later(login, session, asked, accepted):
    analyst = login("analyst")
    set_expiry(session, analyst, LATER)
    body = {"name": "child"} | ({"expires_at": iso(asked)} if asked else {})
    response = analyst.post(f"/api/v1/users/{analyst.user_id}/tokens", json=body)
    if accepted:
        assert response.status_code == 201, response.json
        assert dt.datetime.fromisoformat(response.json["expires_at"]) == asked
    else:
        assert response.status_code == 422
        [problem] = response.json["details"]["problems"]
        assert problem["field"] == "expires_at" and "no later than" in problem["message"]
        assert len(tokens_of(session, analyst.user_id)) == 1


def test_a_lasting_token_or_a_password_session_may_make_a_lasting_token(login, client, session):
    analyst = login("analyst", password=PASSWORD)
    lasting = analyst.post(f"/api/v1/users/{analyst.user_id}/tokens", json={"name": "a"})
    assert lasting.status_code == 201 and lasting.json["expires_at"] is None

    set_expiry(session, analyst, LATER)
    log_in(client, analyst.username)
    csrf = client.get("/api/v1/me").json["csrf_token"]
    by_session = client.post(
        f"/api/v1/users/{analyst.user_id}/tokens",
        json={"name": "b"},
        headers={"X-CSRFToken": csrf},
    )
    assert by_session.status_code == 201 and by_session.json["expires_at"] is None


# --------------------------------------------------------------------------- page sessions
def log_in(client, username: str) -> None:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "change",
    [
        {"password": "another long password"},
        {"roles": ["analyst", "reviewer"]},
        {"active": False},
    ],
)
def test_changing_a_users_password_roles_or_activity_ends_their_page_sessions(
    login, app, session, change
):
    admin, analyst = login("admin"), login("analyst", password=PASSWORD)
    browser = app.test_client()
    log_in(browser, analyst.username)
    assert browser.get("/api/v1/me").status_code == 200
    assert admin.patch(f"/api/v1/users/{analyst.user_id}", json=change).status_code == 200
    assert browser.get("/api/v1/me").status_code == 401
    unchanged = login("analyst", password=PASSWORD)
    other_browser = app.test_client()
    log_in(other_browser, unchanged.username)
    assert (
        admin.patch(f"/api/v1/users/{unchanged.user_id}", json={"full_name": "Renamed"}).status_code
        == 200
    )
    assert other_browser.get("/api/v1/me").status_code == 200
    assert session.get(User, unchanged.user_id).full_name == "Renamed"
