"""Login throttling: lockout per account name and per client address, the same answer for
unknown names, back-off, an administrator's unlock, audit entries and log lines."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
import sqlalchemy as sa

from lims.models import AuditRecord, LoginFailure, LoginLockout
from tests.lims.web_support import PASSWORD, csrf_token

LIMITS = {
    "LOGIN_ACCOUNT_FAILURE_LIMIT": 3,
    "LOGIN_ADDRESS_FAILURE_LIMIT": 6,
    "LOGIN_FAILURE_WINDOW_SECONDS": 600,
    "LOGIN_LOCKOUT_SECONDS": 60,
    "LOGIN_LOCKOUT_MAX_SECONDS": 3600,
}


@pytest.fixture
def app(app_factory):
    return app_factory(**LIMITS)


def attempt(app, username: str, password: str, address: str = "192.0.2.1"):
    """One login through the form from ``address``, in a client of its own."""
    client = app.test_client()
    environ = {"REMOTE_ADDR": address}
    token = csrf_token(client.get("/login", environ_base=environ).text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ,
    )


def lockouts(session) -> list[tuple[str, str, dt.timedelta]]:
    session.expire_all()
    return [
        (row.scope, row.subject, row.locked_until - row.locked_at)
        for row in session.scalars(sa.select(LoginLockout).order_by(LoginLockout.id))
    ]


def test_guessing_locks_the_account_and_then_the_right_password_is_refused(
    app, login, session
):
    user = login("analyst", password=PASSWORD)
    for _ in range(LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"] - 1):
        assert attempt(app, user.username, "wrong guess").status_code == 401
    locked = attempt(app, user.username, "wrong guess")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= LIMITS["LOGIN_LOCKOUT_SECONDS"]
    assert "Too many failed logins" in locked.text

    right = attempt(app, user.username, PASSWORD)
    assert right.status_code == 429 and "Set-Cookie" not in right.headers
    assert lockouts(session) == [("account", user.username, dt.timedelta(seconds=60))]
    # Refusals while locked are not failures: they cannot lengthen the lockout.
    assert session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 3


def without_tokens(page: str) -> str:
    """The page without what differs in every answer (CSRF tokens, the clock's minute)."""
    page = re.sub(r'(name="csrf_token" type="hidden" value|name="csrf-token" content)="[^"]+"',
                  r"\1=TOKEN", page)
    return re.sub(r"\d\d:\d\d UTC", "HH:MM UTC", page)


def test_unknown_names_get_the_same_answers_as_real_ones(app, login):
    user = login("analyst", password=PASSWORD)
    answers = {}
    for username in (user.username, "nobody-at-all"):
        responses = [
            attempt(app, username, "wrong guess", address=f"198.51.100.{len(answers)}")
            for _ in range(LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"] + 1)
        ]
        answers[username] = [
            (response.status_code, response.headers.get("Retry-After") is not None,
             without_tokens(response.text).replace(username, "NAME"))
            for response in responses
        ]
    assert answers[user.username] == answers["nobody-at-all"]


def test_one_address_trying_many_accounts_is_locked_out(app, login, session):
    users = [login("analyst", password=PASSWORD) for _ in range(3)]
    limit = LIMITS["LOGIN_ADDRESS_FAILURE_LIMIT"]
    statuses = [
        attempt(app, users[number % 3].username, "wrong guess", address="203.0.113.9").status_code
        for number in range(limit)
    ]
    # Two failures per account stay under the account limit; the sixth locks the address.
    assert statuses == [401] * (limit - 1) + [429]
    assert lockouts(session) == [("address", "203.0.113.9", dt.timedelta(seconds=60))]
    assert attempt(app, users[0].username, PASSWORD, address="203.0.113.9").status_code == 429
    assert attempt(app, users[0].username, PASSWORD, address="203.0.113.10").status_code == 302


def move_back(session, seconds: float) -> None:
    """Move every failure and lockout ``seconds`` into the past, as if that time had passed."""
    shift = dt.timedelta(seconds=seconds)
    for failure in session.scalars(sa.select(LoginFailure)):
        failure.occurred_at -= shift
    for lockout in session.scalars(sa.select(LoginLockout)):
        lockout.locked_at -= shift
        lockout.locked_until -= shift
    session.commit()


def test_each_further_lockout_lasts_twice_as_long_and_a_login_starts_again(app, login, session):
    user = login("analyst", password=PASSWORD)
    limit = LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"]
    for round_, expected in enumerate((60, 120, 240)):
        # From another address each round, so the address limit stays out of the way.
        for _ in range(limit):
            last = attempt(app, user.username, "wrong guess", address=f"192.0.2.{round_}")
        assert last.status_code == 429
        assert lockouts(session)[-1][2] == dt.timedelta(seconds=expected)
        move_back(session, expected + 1)
    # Once the lockout is over, the right password logs in, and the next lockout is short.
    assert attempt(app, user.username, PASSWORD).status_code == 302
    for _ in range(limit):
        attempt(app, user.username, "wrong guess")
    assert lockouts(session)[-1][2] == dt.timedelta(seconds=60)


def test_failures_outside_the_window_do_not_count(app, login, session):
    user = login("analyst", password=PASSWORD)
    for _ in range(LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"] - 1):
        attempt(app, user.username, "wrong guess")
    move_back(session, LIMITS["LOGIN_FAILURE_WINDOW_SECONDS"] + 1)
    assert attempt(app, user.username, "wrong guess").status_code == 401
    assert lockouts(session) == []


def test_an_administrator_unlocks_a_colleagues_account(app, login, session):
    admin, other_admin = login("admin"), login("admin", agency="B")
    user = login("analyst", password=PASSWORD)
    for _ in range(LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"]):
        attempt(app, user.username, "wrong guess")
    assert attempt(app, user.username, PASSWORD).status_code == 429

    assert other_admin.post(f"/api/v1/users/{user.user_id}/unlock").status_code == 404
    assert login("analyst").post(f"/api/v1/users/{user.user_id}/unlock").status_code == 403
    unlocked = admin.post(f"/api/v1/users/{user.user_id}/unlock")
    assert unlocked.status_code == 200
    assert unlocked.json == {"user_id": user.user_id, "lockouts_lifted": 1}
    assert attempt(app, user.username, PASSWORD).status_code == 302
    # The unlock is in the audit trail, by the administrator; the lifted lockout does not
    # lengthen the next one.
    (lockout_id,) = session.scalars(sa.select(LoginLockout.id)).all()
    entries = session.scalars(
        sa.select(AuditRecord)
        .where(AuditRecord.table_name == "login_lockout", AuditRecord.record_id == str(lockout_id))
        .order_by(AuditRecord.id)
    ).all()
    assert [(entry.action, entry.actor_id) for entry in entries] == [
        ("insert", None),
        ("update", admin.user_id),
    ]
    seen = admin.get("/api/v1/audit-records", query_string={"per_page": 500}).json["items"]
    assert {"login_lockout", "login_failure"} <= {entry["table_name"] for entry in seen}
    assert admin.post(f"/api/v1/users/{user.user_id}/unlock").json["lockouts_lifted"] == 0


def test_logins_failures_and_lockouts_are_logged(app, login, caplog):
    user = login("analyst", password=PASSWORD)
    with caplog.at_level(logging.INFO, logger="lims"):
        attempt(app, user.username, PASSWORD)
        for _ in range(LIMITS["LOGIN_ACCOUNT_FAILURE_LIMIT"] + 1):
            attempt(app, user.username, "wrong guess")
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("lims")]
    assert f"login: user_id={user.user_id} username={user.username} address=192.0.2.1" in messages
    assert messages.count(f"login failed: username={user.username} address=192.0.2.1") == 3
    assert any(message.startswith("login lockout: scope=account") for message in messages)
    assert any(message.startswith("login refused, locked out") for message in messages)
    assert not any("wrong guess" in message or PASSWORD in message for message in messages)


def test_the_throttle_counts_across_processes(app, app_factory, login):
    other = app_factory(**LIMITS)
    user = login("analyst", password=PASSWORD)
    processes = (app, other, app)
    statuses = [attempt(process, user.username, "wrong").status_code for process in processes]
    assert statuses == [401, 401, 429]
    assert attempt(other, user.username, PASSWORD).status_code == 429


def test_the_client_address_comes_from_the_proxy_when_configured(
    app_factory, login, session
):
    behind_proxy = app_factory(**LIMITS, PROXY_COUNT=1)
    user = login("analyst", password=PASSWORD)
    client = behind_proxy.test_client()
    headers = {"X-Forwarded-For": "192.0.2.77"}
    token = csrf_token(client.get("/login", headers=headers).text)
    client.post(
        "/login",
        data={"username": user.username, "password": "wrong", "csrf_token": token},
        headers=headers,
    )
    assert session.scalars(sa.select(LoginFailure.client_address)).all() == ["192.0.2.77"]


def test_a_forwarded_address_that_is_no_address_is_cut_to_fit(app_factory, session):
    behind_proxy = app_factory(**LIMITS, PROXY_COUNT=1)
    client = behind_proxy.test_client()
    headers = {"X-Forwarded-For": "not-an-address-" + "x" * 100}
    token = csrf_token(client.get("/login", headers=headers).text)
    response = client.post(
        "/login", data={"username": "someone", "password": "wrong", "csrf_token": token},
        headers=headers,
    )
    assert response.status_code == 401
    assert session.scalars(sa.select(LoginFailure.client_address)).all() == [
        ("not-an-address-" + "x" * 100)[:64]
    ]
