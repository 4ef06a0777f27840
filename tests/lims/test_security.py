"""Security headers on every response; weak secret keys refused outside demos and tests."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from lims import create_app
from lims.extensions import db
from lims.security import (
    PAGE_POLICY,
    STORED_DOCUMENT_ENDPOINTS,
    WeakSecretKeyError,
    secret_key_problem,
)
from tests.lims.web_support import make_browser

TEMPLATES = Path(__file__).resolve().parents[2] / "lims" / "templates"
# Report documents are stored and hashed as rendered, so their style stays inside them; they
# are served under their own policy (lims.security.STORED_DOCUMENT_POLICY).
STORED_DOCUMENT_TEMPLATES = {"reports/_document.html"}


def policy(response) -> dict[str, str]:
    directives = (part.strip() for part in response.headers["Content-Security-Policy"].split(";"))
    return dict(directive.split(" ", 1) for directive in directives if directive)


EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": PAGE_POLICY,
    "Strict-Transport-Security": None,
}


def security_headers(response) -> dict[str, str | None]:
    response.close()
    return {name: response.headers.get(name) for name in EXPECTED}


def test_every_kind_of_response_carries_the_security_headers(app, agencies, client):
    browser = make_browser(app, agencies, "custodian")
    responses = {
        "login page": client.get("/login"),
        "redirect to login": client.get("/cases"),
        "static file": client.get("/static/lims.css"),
        "anonymous API call": client.get("/api/v1/me"),
        "OpenAPI document": client.get("/api/v1/openapi.json"),
        "page not found": client.get("/no-such-page"),
        "start page": browser.get("/"),
        "case list": browser.get("/cases"),
        "API call": browser.get("/api/v1/me"),
        "refused write": browser.post("/logout", csrf=False),
    }
    for name, response in responses.items():
        assert security_headers(response) == EXPECTED, name
    assert policy(responses["start page"])["frame-ancestors"] == "'none'"


def test_the_page_policy_allows_nothing_inline():
    directives = dict(part.strip().split(" ", 1) for part in PAGE_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in PAGE_POLICY


PAGE_TEMPLATES = sorted(
    {str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")}
    - STORED_DOCUMENT_TEMPLATES
)


@pytest.mark.parametrize("template", PAGE_TEMPLATES)
def test_pages_have_no_inline_script_or_style(template):
    """What the page policy would block: script without src, style elements or attributes,
    event-handler attributes and javascript: links."""
    html = (TEMPLATES / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", html, re.I)


def test_stored_documents_are_served_under_their_own_policy(app):
    assert STORED_DOCUMENT_ENDPOINTS <= set(app.view_functions)


def test_hsts_over_https_and_with_secure_cookies(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    https = client.get("/login", base_url="https://lims.example")
    assert https.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    app.config["SESSION_COOKIE_SECURE"] = True
    assert "max-age=" in client.get("/login").headers["Strict-Transport-Security"]


def build(tmp_path, **config):
    app = create_app({"DATABASE_URL": "sqlite://", "INSTANCE_PATH": str(tmp_path), **config})
    db.engine_for(app).dispose()
    return app


WEAK_KEYS = [
    "a",
    "dev",
    "secret",
    "changeme",
    "CHANGEME",
    "test secret",
    "Tr0ub4dor&3",
    "x" * 64,
    "changeme" * 4,
    "abababababababababababababababab",
    "0000000000000000000000000000000000000000000000000000000000000001",
]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_production_refuses_a_weak_secret_key(tmp_path, key):
    assert secret_key_problem(key) is not None
    with pytest.raises(WeakSecretKeyError, match=r"refusing to start: the secret key"):
        build(tmp_path, SECRET_KEY=key)


def test_a_weak_key_from_the_environment_is_refused_too(tmp_path, monkeypatch):
    monkeypatch.setenv("DNATRACK_SECRET_KEY", "a")
    with pytest.raises(WeakSecretKeyError, match="is a well-known default"):
        build(tmp_path)


@pytest.mark.parametrize(
    "key",
    [secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_hex(16),
     "plough-saffron-ivory-lantern-47-quartz-meadow"],
    ids=["hex64", "urlsafe", "hex32", "passphrase"],
)
def test_strong_keys_are_accepted(tmp_path, key):
    assert secret_key_problem(key) is None
    assert build(tmp_path, SECRET_KEY=key).config["SECRET_KEY"] == key


def test_a_missing_key_is_generated_strong_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DNATRACK_SECRET_KEY", raising=False)
    key = build(tmp_path).config["SECRET_KEY"]
    assert secret_key_problem(key) is None
    assert (tmp_path / "secret_key").read_text() == key


def test_a_weak_key_written_into_the_instance_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("DNATRACK_SECRET_KEY", raising=False)
    (tmp_path / "secret_key").write_text("dev\n")
    with pytest.raises(WeakSecretKeyError):
        build(tmp_path)


@pytest.mark.parametrize("flag", ["DEMO", "TESTING"])
def test_demos_and_tests_may_use_any_key(tmp_path, flag):
    assert build(tmp_path, SECRET_KEY="a", **{flag: True}).config["SECRET_KEY"] == "a"

