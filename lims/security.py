"""Security headers on every response, and the refusal of weak secret keys.

Pages load scripts and style sheets only from the app's own ``static`` folder (no inline
script or style, no ``style=`` attributes), so the Content-Security-Policy forbids anything
inline. Issued report documents are the exception: they are stored as rendered, style and
figures inside, and hashed, so they cannot take a nonce; they are served under a policy that
allows their inline style and ``data:`` images but no script at all. A view that sets its own
Content-Security-Policy header keeps it.
"""

from __future__ import annotations

import collections
import math

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STORED_DOCUMENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Endpoints answering with a stored report document (lims.reports.views).
STORED_DOCUMENT_ENDPOINTS = frozenset({"reports.document"})
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"

# Keys seen in tutorials, templates and tests; refused whatever their length.
KNOWN_WEAK_KEYS = frozenset(
    {
        "a", "dev", "development", "secret", "secret key", "secret-key", "secret_key",
        "changeme", "change-me", "change_me", "changeit", "password", "test", "testing",
        "test secret", "default", "key", "flask", "dnatrack", "your-secret-key",
        "super-secret", "supersecret", "insecure", "xxx",
    }
)
MIN_SECRET_KEY_LENGTH = 32
# A floor for the estimated entropy (length × Shannon entropy of the key's characters): 32
# random hexadecimal digits estimate at about 115 bits, "changeme" four times at 88.
MIN_SECRET_KEY_BITS = 96


class WeakSecretKeyError(RuntimeError):
    """The configured secret key is missing, a known default, too short or too regular."""


def _estimated_bits(text: str) -> float:
    counts = collections.Counter(text)
    total = len(text)
    return -total * sum(n / total * math.log2(n / total) for n in counts.values())


def _repeats_a_piece(text: str) -> bool:
    return any(
        len(text) % size == 0 and text[:size] * (len(text) // size) == text
        for size in range(1, len(text) // 2 + 1)
    )


def secret_key_problem(key: str | bytes | None) -> str | None:
    """Why ``key`` is too weak to sign sessions and CSRF tokens, or ``None`` if it is not."""
    if not key:
        return "is missing"
    text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
    if text.strip().lower() in KNOWN_WEAK_KEYS:
        return "is a well-known default"
    if len(text) < MIN_SECRET_KEY_LENGTH:
        return f"has {len(text)} characters, fewer than {MIN_SECRET_KEY_LENGTH}"
    if _repeats_a_piece(text) or _estimated_bits(text) < MIN_SECRET_KEY_BITS:
        return "is too regular to be random"
    return None


def check_secret_key(app: Flask) -> None:
    """Refuse to build the app with a weak secret key, unless it is a demo or a test."""
    if app.config.get("TESTING") or app.config.get("DEMO"):
        return
    problem = secret_key_problem(app.config.get("SECRET_KEY"))
    if problem:
        raise WeakSecretKeyError(
            f"refusing to start: the secret key (DNATRACK_SECRET_KEY) {problem}. Set a random "
            "one, e.g. from python -c 'import secrets; print(secrets.token_hex(32))', or leave "
            "it unset to have one generated in the instance folder; `dnatrack demo` "
            "(DNATRACK_DEMO=true) accepts any key."
        )


def _add_security_headers(response: Response) -> Response:
    policy = (
        STORED_DOCUMENT_POLICY if request.endpoint in STORED_DOCUMENT_ENDPOINTS else PAGE_POLICY
    )
    response.headers.setdefault("Content-Security-Policy", policy)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure or current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    """Check the secret key and add the security headers to every response of ``app``."""
    check_secret_key(app)
    app.after_request(_add_security_headers)
