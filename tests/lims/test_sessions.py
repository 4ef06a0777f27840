"""Page sessions: server-side records that logging out revokes, and that end when the
user's password, roles or active flag change; a password change revokes API tokens too."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from lims.audit import REDACTED
from lims.models import ApiToken, AuditRecord, User, UserSession, hash_token
from tests.lims.web_support import PASSWORD, Browser, csrf_token, make_browser

NEW_PASSWORD = "a brand new passphrase"


def log_in(app, username: str, password: str = PASSWORD) -> Browser | None:
    """A browser logged in as ``username`` through the form, or ``None`` when refused."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page)},
    )
    if response.status_code != 302:
        return None
    return Browser(client, 0, username)


def signed_in(browser: Browser) -> bool:
    return browser.get("/api/v1/me").status_code == 200


@pytest.fixture
def admin(login):
    return login("admin")


@pytest.mark.parametrize(
    ("change", "logs_in_again_with"),
    [
        ({"password": NEW_PASSWORD}, NEW_PASSWORD),
        ({"roles": ["reviewer"]}, PASSWORD),
        ({"active": False}, None),
    ],
    ids=["password", "roles", "deactivated"],
)
def test_a_change_of_credentials_ends_every_session_of_the_user(
    app, agencies, admin, change, logs_in_again_with
):
    first = make_browser(app, agencies, "analyst")
    second = log_in(app, first.username)
    bystander = make_browser(app, agencies, "analyst")
    assert signed_in(first) and signed_in(second)

    assert admin.patch(f"/api/v1/users/{first.user_id}", json=change).status_code == 200
    assert not signed_in(first) and not signed_in(second)
    page = first.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert signed_in(bystander)

    again = log_in(app, first.username, logs_in_again_with or PASSWORD)
    if logs_in_again_with is None:
        assert again is None
    else:
        me = again.get("/api/v1/me").json
        assert me["roles"] == change.get("roles", ["analyst"])


def test_changes_that_leave_the_credentials_alone_keep_the_sessions(app, agencies, admin):
    browser = make_browser(app, agencies, "analyst", "reviewer")
    for change in (
        {"full_name": "Someone Else", "email": "someone@example.org"},
        {"roles": ["reviewer", "analyst"]},
        {"active": True},
    ):
        assert admin.patch(f"/api/v1/users/{browser.user_id}", json=change).status_code == 200
        assert signed_in(browser), change


def test_each_change_moves_the_session_version_on_once(app, agencies, admin, session):
    browser = make_browser(app, agencies, "analyst")

    def version() -> int:
        session.expire_all()
        return session.get(User, browser.user_id).session_version

    assert version() == 1  # a new user starts at 1: a user being created has no sessions
    admin.patch(f"/api/v1/users/{browser.user_id}", json={"full_name": "Renamed"})
    assert version() == 1
    admin.patch(f"/api/v1/users/{browser.user_id}", json={"password": NEW_PASSWORD})
    assert version() == 2
    admin.patch(f"/api/v1/users/{browser.user_id}", json={"roles": ["custodian"]})
    assert version() == 3
    admin.patch(f"/api/v1/users/{browser.user_id}", json={"active": False})
    assert version() == 4


def test_a_password_reset_outside_the_api_ends_the_sessions_too(app, agencies, session):
    browser = make_browser(app, agencies, "analyst")
    user = session.get(User, browser.user_id)
    user.password_hash = "scrypt:reset-by-a-script"
    session.commit()
    assert not signed_in(browser)


def test_a_cookie_of_the_old_kind_is_logged_out(app, agencies):
    """Cookies from before server-side sessions (the user id and session version alone, no
    session id) end at the first request."""
    browser = make_browser(app, agencies, "analyst")
    with browser.client.session_transaction() as cookie_session:
        del cookie_session["session_id"]
        cookie_session["session_version"] = 1
    assert not signed_in(browser)


def copy_of_cookie(app, browser: Browser):
    """A second client holding a copy of ``browser``'s session cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie("session", browser.client.get_cookie("session").value)
    return thief


def log_out(browser: Browser) -> None:
    assert browser.post("/logout").status_code == 302


def test_a_cookie_copied_before_logout_is_refused_afterwards(app, agencies):
    browser = make_browser(app, agencies, "custodian")
    thief = copy_of_cookie(app, browser)
    assert thief.get("/api/v1/me").status_code == 200
    assert thief.get("/cases").status_code == 200

    log_out(browser)
    assert thief.get("/api/v1/me").status_code == 401
    page = thief.get("/cases")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert not signed_in(browser)


def test_logging_out_ends_only_that_session(app, agencies):
    laptop = make_browser(app, agencies, "analyst")
    tablet = log_in(app, laptop.username)
    log_out(laptop)
    assert not signed_in(laptop)
    assert signed_in(tablet)


def test_sessions_are_stored_by_the_hash_of_their_id(app, agencies, session):
    browser = make_browser(app, agencies, "analyst")
    with browser.client.session_transaction() as cookie_session:
        session_id = cookie_session["session_id"]
    record = session.scalars(sa.select(UserSession)).one()
    assert record.user_id == browser.user_id and record.revoked_at is None
    assert record.token_hash == hash_token(session_id) != session_id
    # The audit trail names the session opened, without its hash.
    (opened,) = session.scalars(
        sa.select(AuditRecord).where(AuditRecord.table_name == "user_session")
    ).all()
    assert opened.actor_id == browser.user_id
    assert opened.changes["token_hash"]["new"] == REDACTED
    log_out(browser)
    session.expire_all()
    assert session.get(UserSession, record.id).revoked_at is not None


def test_a_session_ends_after_its_lifetime(app, agencies, session):
    browser = make_browser(app, agencies, "analyst")
    record = session.scalars(sa.select(UserSession)).one()
    lifetime = record.expires_at - record.created_at
    assert lifetime == dt.timedelta(seconds=app.config["SESSION_LIFETIME_SECONDS"])
    record.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    session.commit()
    assert not signed_in(browser)


def test_changing_ones_own_password_ends_ones_own_session(app, agencies):
    browser = make_browser(app, agencies, "admin")
    csrf = browser.get("/api/v1/me").json["csrf_token"]
    response = browser.client.patch(
        f"/api/v1/users/{browser.user_id}",
        json={"password": NEW_PASSWORD},
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 200
    assert not signed_in(browser)
    assert signed_in(log_in(app, browser.username, NEW_PASSWORD))


def live_tokens(session, user_id: int) -> list[str]:
    session.expire_all()
    return session.scalars(
        sa.select(ApiToken.name).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()


def test_a_password_change_by_an_administrator_revokes_the_users_api_tokens(
    app, login, admin, session
):
    caller = login("analyst", password=PASSWORD)
    colleague = login("analyst")
    assert caller.post(f"/api/v1/users/{caller.user_id}/tokens", json={"name": "script"})
    assert sorted(live_tokens(session, caller.user_id)) == ["script", "tests"]

    admin.patch(f"/api/v1/users/{caller.user_id}", json={"full_name": "Renamed"})
    assert caller.get("/api/v1/me").status_code == 200
    assert admin.patch(
        f"/api/v1/users/{caller.user_id}", json={"password": NEW_PASSWORD}
    ).status_code == 200
    assert caller.get("/api/v1/me").status_code == 401
    assert live_tokens(session, caller.user_id) == []
    assert colleague.get("/api/v1/me").status_code == 200
    # Each revocation is in the audit trail, made by the administrator.
    token_ids = session.scalars(
        sa.select(ApiToken.id).where(ApiToken.user_id == caller.user_id)
    ).all()
    revocations = session.scalars(
        sa.select(AuditRecord).where(
            AuditRecord.table_name == "api_token",
            AuditRecord.action == "update",
            AuditRecord.record_id.in_([str(token_id) for token_id in token_ids]),
        )
    ).all()
    assert len(revocations) == 2
    assert all(entry.actor_id == admin.user_id for entry in revocations)
    assert all(entry.changes["revoked_at"]["old"] is None for entry in revocations)


def test_changing_ones_own_password_revokes_ones_own_api_tokens(login, session):
    admin = login("admin", password=PASSWORD)
    response = admin.patch(f"/api/v1/users/{admin.user_id}", json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert admin.get("/api/v1/me").status_code == 401
    assert live_tokens(session, admin.user_id) == []


def test_a_password_reset_outside_the_api_revokes_the_tokens_too(login, session):
    caller = login("analyst", password=PASSWORD)
    user = session.get(User, caller.user_id)
    user.password_hash = "scrypt:reset-by-a-script"
    session.commit()
    assert caller.get("/api/v1/me").status_code == 401
