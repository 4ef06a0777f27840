"""Logging configured by DNATRACK_LOG_*: a line per request, login lines, text or JSON, to
standard error or a file, never a password, token or cookie."""

from __future__ import annotations

import json
import logging

import pytest

from lims.logging_config import PACKAGE_LOGGERS
from tests.lims.web_support import PASSWORD, csrf_token


@pytest.fixture
def logged_app(app_factory):
    """``logged_app(**config)``: the LIMS with logging settings; the project's handlers are
    taken away afterwards."""
    yield app_factory
    for name in PACKAGE_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if getattr(h, "dnatrack_handler", False)]:
            logger.removeHandler(handler)
            handler.close()


def log_in_and_out(app, username: str, password: str = PASSWORD):
    client = app.test_client()
    token = csrf_token(client.get("/login").text)
    client.post("/login", data={"username": username, "password": "not it", "csrf_token": token})
    client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    cookie = client.get_cookie("session").value
    me = client.get("/api/v1/me", headers={"X-Request-ID": "trace-42"})
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").text)})
    return cookie, me


def test_json_lines_in_a_file_with_a_line_per_request(logged_app, login, tmp_path):
    log_file = tmp_path / "lims.log"
    app = logged_app(LOG_FORMAT="json", LOG_FILE=str(log_file))
    user = login("analyst", password=PASSWORD)
    cookie, me = log_in_and_out(app, user.username)

    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "lims.requests"]
    assert [(line["method"], line["path"], line["status"]) for line in requests] == [
        ("GET", "/login", 200),
        ("POST", "/login", 401),
        ("POST", "/login", 302),
        ("GET", "/api/v1/me", 200),
        ("GET", "/", 200),
        ("POST", "/logout", 302),
    ]
    assert all(line["duration_ms"] >= 0 and line["level"] == "INFO" for line in requests)
    assert [line["user_id"] for line in requests] == [None, None] + [user.user_id] * 4
    # The client's request id is kept and sent back; others get one of their own.
    assert requests[3]["request_id"] == "trace-42" == me.headers["X-Request-ID"]
    assert len({line["request_id"] for line in requests}) == len(requests)
    events = [line["message"].split(":")[0] for line in lines if line["logger"] == "lims.auth"]
    assert events == ["login failed", "login", "logout"]
    # Never a password, a token or a session cookie.
    for secret in (PASSWORD, "not it", user.token, cookie, me.json["csrf_token"]):
        assert secret not in text


def test_text_lines_on_standard_error(logged_app, login, capsys):
    app = logged_app()
    user = login("analyst", password=PASSWORD)
    capsys.readouterr()
    log_in_and_out(app, user.username)
    lines = capsys.readouterr().err.splitlines()
    request_line = next(line for line in lines if "GET /api/v1/me 200" in line)
    assert " INFO lims.requests [request=trace-42 " f"user={user.user_id}]" in request_line
    assert request_line.endswith("address=127.0.0.1")
    assert any("WARNING lims.auth" in line and "login failed" in line for line in lines)


def test_the_level_comes_from_the_environment(logged_app, login, capsys, monkeypatch):
    monkeypatch.setenv("DNATRACK_LOG_LEVEL", "WARNING")
    app = logged_app()
    user = login("analyst", password=PASSWORD)
    capsys.readouterr()
    log_in_and_out(app, user.username)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(" WARNING " in line for line in lines)


def test_a_second_app_does_not_write_every_line_twice(logged_app, capsys):
    logged_app()
    app = logged_app()
    capsys.readouterr()
    app.test_client().get("/login")
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_an_unusable_client_request_id_is_replaced(logged_app):
    app = logged_app()
    forged = "bad id; user=1 " + "x" * 80
    response = app.test_client().get("/login", headers={"X-Request-ID": forged})
    assert response.headers["X-Request-ID"].isalnum()


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("LOG_FORMAT", "xml", "DNATRACK_LOG_FORMAT must be one of text, json"),
        ("LOG_LEVEL", "LOUD", "DNATRACK_LOG_LEVEL is not a logging level"),
    ],
)
def test_bad_settings_are_named(logged_app, setting, value, message):
    with pytest.raises(ValueError, match=message):
        logged_app(**{setting: value})


def test_a_typed_line_break_cannot_forge_a_log_line(logged_app, capsys):
    app = logged_app()
    client = app.test_client()
    token = csrf_token(client.get("/login").text)
    capsys.readouterr()
    forged = "nobody\n2026-12-03 12:00:00,000 INFO lims.auth login: user_id=1 username=admin"
    client.post("/login", data={"username": forged, "password": "x", "csrf_token": token})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # the failure and the request
    assert "login failed: username=nobody\\n2026-12-03" in lines[0]
