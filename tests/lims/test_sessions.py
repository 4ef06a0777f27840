"""Page sessions end when the user's password, roles or active flag change."""

from __future__ import annotations

import pytest

from lims.models import User
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


def test_a_session_without_a_version_is_logged_out(app, agencies):
    """Sessions opened before session versions existed end at the first request."""
    browser = make_browser(app, agencies, "analyst")
    with browser.client.session_transaction() as cookie_session:
        del cookie_session["session_version"]
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


def test_api_tokens_are_not_sessions(app, login, admin):
    caller = login("analyst", password=PASSWORD)
    browser = log_in(app, caller.username)
    admin.patch(f"/api/v1/users/{caller.user_id}", json={"password": NEW_PASSWORD})
    assert not signed_in(browser)
    # Tokens are revoked on their own (and refused for inactive users).
    assert caller.get("/api/v1/me").status_code == 200
