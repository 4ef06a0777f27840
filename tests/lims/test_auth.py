"""Logging in, API tokens, CSRF, roles and permissions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from lims import create_app
from lims.extensions import db
from lims.models import ApiToken, User, hash_token
from lims.permissions import PERMISSIONS, ROLE_PERMISSIONS, ROLES, permissions_of, roles_with

PASSWORD = "correct horse battery"


def csrf_token_of(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]


def log_in(client, username: str, password: str = PASSWORD, next_page: str | None = None):
    token = csrf_token_of(client.get("/login").text)
    url = "/login" + (f"?next={next_page}" if next_page else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/")


def test_password_login_opens_a_session(login, client):
    user = login("analyst", password=PASSWORD)
    response = log_in(client, user.username)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert user.username in page.text and "profile.write" in page.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json["auth_method"] == "session" and me.json["csrf_token"]


def test_passwords_are_stored_with_scrypt(login, session):
    user = login("analyst", password=PASSWORD)
    stored = session.get(User, user.user_id).password_hash
    assert stored.startswith("scrypt:") and PASSWORD not in stored


@pytest.mark.parametrize("password", ["wrong password", ""])
def test_a_wrong_password_opens_no_session(login, client, password):
    user = login("analyst", password=PASSWORD)
    response = log_in(client, user.username, password)
    assert response.status_code in (400, 401)
    assert client.get("/api/v1/me").status_code == 401


def test_unknown_users_and_token_only_accounts_cannot_log_in(login, client):
    token_only = login("analyst")
    for username in ("nobody", token_only.username):
        response = log_in(client, username)
        assert response.status_code == 401
        assert "Invalid username or password." in response.text


def test_login_form_without_csrf_token_is_refused(login, client):
    user = login("analyst", password=PASSWORD)
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/api/v1/me").status_code == 401


def test_login_redirects_only_within_the_site(login, client):
    user = login("analyst", password=PASSWORD)
    response = log_in(client, user.username, next_page="https://evil.example/")
    assert response.headers["Location"] == "/"


def test_logout_needs_its_csrf_token(login, client):
    user = login("analyst", password=PASSWORD)
    log_in(client, user.username)
    assert client.post("/logout").status_code == 400
    assert client.get("/api/v1/me").status_code == 200
    token = csrf_token_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_session_api_writes_need_the_csrf_header(login, client):
    user = login("custodian", password=PASSWORD)
    log_in(client, user.username)
    case = {"reference": "C-1", "title": "Mombasa", "kind": "investigation"}
    refused = client.post("/api/v1/cases", json=case)
    assert refused.status_code == 400
    assert refused.json["error"] == "csrf_failed"
    token = client.get("/api/v1/me").json["csrf_token"]
    accepted = client.post("/api/v1/cases", json=case, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.json


def test_token_api_writes_need_no_csrf(login):
    custodian = login("custodian")
    response = custodian.post(
        "/api/v1/cases", json={"reference": "C-1", "title": "t", "kind": "investigation"}
    )
    assert response.status_code == 201
    me = custodian.get("/api/v1/me").json
    assert me["auth_method"] == "token" and me["csrf_token"] is None


def test_a_bearer_header_is_the_only_credential_used(login, client):
    user = login("analyst", password=PASSWORD)
    log_in(client, user.username)
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json == {
        "error": "unauthorized",
        "message": "invalid, expired or revoked token",
        "details": None,
    }


def test_tokens_are_stored_hashed_and_shown_once(login, client, session):
    analyst = login("analyst")
    created = analyst.post(f"/api/v1/users/{analyst.user_id}/tokens", json={"name": "script"})
    assert created.status_code == 201
    token = created.json["token"]
    stored = session.scalars(sa.select(ApiToken.token_hash)).all()
    assert hash_token(token) in stored and token not in stored
    assert all(len(value) == 64 for value in stored)
    listed = analyst.get(f"/api/v1/users/{analyst.user_id}/tokens").json["items"]
    assert {item["name"] for item in listed} == {"tests", "script"}
    assert all("token" not in item for item in listed)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["username"] == analyst.username


def test_revoked_and_expired_tokens_and_inactive_users_are_refused(login, app, session):
    revoked, expired, inactive = login("analyst"), login("analyst"), login("analyst")
    token_id = session.scalar(
        sa.select(ApiToken.id).where(ApiToken.token_hash == hash_token(revoked.token))
    )
    assert revoked.post(f"/api/v1/tokens/{token_id}/revoke").status_code == 200
    assert revoked.get("/api/v1/me").status_code == 401
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.token_hash == hash_token(expired.token))
        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    session.execute(sa.update(User).where(User.id == inactive.user_id).values(active=False))
    session.commit()
    assert expired.get("/api/v1/me").status_code == 401
    assert inactive.get("/api/v1/me").status_code == 401


def test_only_administrators_manage_other_users_tokens(login):
    admin, analyst, colleague = login("admin"), login("analyst"), login("analyst")
    other_agency = login("admin", agency="B")
    assert analyst.get(f"/api/v1/users/{colleague.user_id}/tokens").status_code == 403
    assert admin.get(f"/api/v1/users/{colleague.user_id}/tokens").status_code == 200
    assert other_agency.get(f"/api/v1/users/{colleague.user_id}/tokens").status_code == 404


def test_admins_create_users_with_roles_and_hashed_passwords(login, session):
    admin = login("admin")
    body = {
        "username": "wanjiru",
        "full_name": "Wanjiru K.",
        "roles": ["analyst", "reviewer"],
        "password": "long enough password",
    }
    response = admin.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.json
    assert response.json["roles"] == ["analyst", "reviewer"]
    assert "password" not in response.json
    assert response.json["agency_id"] == admin.agency_id
    short = admin.post("/api/v1/users", json={**body, "username": "x", "password": "short"})
    assert short.status_code == 422
    assert short.json["details"]["problems"][0]["field"] == "password"
    bad_role = admin.post("/api/v1/users", json={**body, "username": "y", "roles": ["king"]})
    assert bad_role.status_code == 422
    assert admin.post("/api/v1/users", json=body).status_code == 409
    myself = admin.patch(f"/api/v1/users/{admin.user_id}", json={"roles": ["analyst"]})
    assert myself.status_code == 409


def test_permission_matrix_is_consistent():
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    for granted in ROLE_PERMISSIONS.values():
        assert granted <= set(PERMISSIONS)
    assert "profile.review" not in permissions_of(["analyst"])
    assert roles_with("profile.review") == ("reviewer",)
    with pytest.raises(ValueError, match="unknown role"):
        permissions_of(["king"])


CASE = {"reference": "C-9", "title": "t", "kind": "investigation"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_its_permissions(login, role):
    caller = login(role)
    granted = permissions_of([role])
    created = caller.post("/api/v1/cases", json=CASE)
    assert created.status_code == (201 if "case.write" in granted else 403)
    listed = caller.get("/api/v1/cases")
    assert listed.status_code == (200 if "record.read" in granted else 403)
    users = caller.get("/api/v1/users")
    assert users.status_code == (200 if "user.manage" in granted else 403)
    agency = caller.post("/api/v1/agencies", json={"code": "N", "name": "N", "kind": "other"})
    assert agency.status_code == (201 if "agency.manage" in granted else 403)
    audit = caller.get("/api/v1/audit-records")
    assert audit.status_code == (200 if "audit.read" in granted else 403)
    if created.status_code == 403:
        assert created.json["error"] == "forbidden"
        assert "case.write" in created.json["message"]


def _data_changing_rules():
    app = create_app(
        {"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "INSTANCE_PATH": "/tmp"}
    )
    rules = [
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"})
        # Logging in is what anonymous users are for.
        if rule.endpoint != "auth.login"
    ]
    db.engine_for(app).dispose()
    return rules


@pytest.mark.parametrize(("rule", "method"), _data_changing_rules())
def test_every_data_changing_endpoint_refuses_anonymous_requests(client, agencies, rule, method):
    url = re.sub(r"<(?:\w+:)?\w+>", "1", rule)
    response = client.open(url, method=method, json={})
    if rule.startswith("/api/"):
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"
    else:
        # Pages: the CSRF check (400) or the login requirement (redirect) turns it away.
        assert response.status_code in (400, 302)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login")
