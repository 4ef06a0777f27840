"""Configuration defaults; each can be overridden by a ``DNATRACK_<NAME>`` environment variable.

``create_app`` applies, in order: :class:`Config`, the environment (values are parsed as JSON
when they look like JSON, so ``DNATRACK_API_PAGE_SIZE=100`` is a number), then the mapping
passed to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class Config:
    """Defaults for a single-laboratory installation on a SQLite file."""

    # ``None``: the SQLite file ``dnatrack.sqlite`` in the instance folder.
    DATABASE_URL: str | None = None
    DATABASE_ENGINE_OPTIONS: dict = {}
    # ``None``: a random key kept in the instance folder (``secret_key``), so sessions survive
    # restarts and every worker of one installation shares it. A key that is set must be
    # strong (see lims.security.check_secret_key) unless DEMO or TESTING is true.
    SECRET_KEY: str | None = None
    # True for `dnatrack demo`: a weak secret key is accepted.
    DEMO = False
    # werkzeug's password hash method; scrypt with its default cost.
    PASSWORD_HASH_METHOD = "scrypt"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Set true behind HTTPS: the cookie is then sent only over HTTPS, and every response
    # carries Strict-Transport-Security.
    SESSION_COOKIE_SECURE = False
    # A page session ends this long after the login at the latest (seconds).
    SESSION_LIFETIME_SECONDS = 12 * 3600
    # Login throttling (lims.login_throttle): this many refused logins within the window lock
    # the account name, or the client address, out. The first lockout lasts
    # LOGIN_LOCKOUT_SECONDS; each further one within LOGIN_LOCKOUT_MAX_SECONDS lasts twice as
    # long as the one before, up to LOGIN_LOCKOUT_MAX_SECONDS.
    LOGIN_ACCOUNT_FAILURE_LIMIT = 5
    LOGIN_ADDRESS_FAILURE_LIMIT = 30
    LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
    LOGIN_LOCKOUT_SECONDS = 5 * 60
    LOGIN_LOCKOUT_MAX_SECONDS = 24 * 3600
    # How many reverse proxies in front of the app set X-Forwarded-For (0: none; the client
    # address is then the connection's). Throttling per address needs the real client's.
    PROXY_COUNT = 0
    # Logging (lims.logging_config): level, "text" or "json" lines, and a file to append to
    # (None: standard error).
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"
    LOG_FILE: str | None = None
    API_PAGE_SIZE = 50
    API_MAX_PAGE_SIZE = 500
    # Largest upload (attachments, genotype files), bytes.
    MAX_CONTENT_LENGTH = 32 * 1024 * 1024
    # A folder of extra marker panel JSON files, searched before the bundled panels.
    PANEL_DIRECTORY: str | None = None
    # Flask-WTF reads the CSRF token of JSON requests from these headers.
    WTF_CSRF_HEADERS = ["X-CSRFToken", "X-CSRF-Token"]
    WTF_CSRF_TIME_LIMIT = None
    # Match-request worker threads in each web process (None: 2, or 0 under TESTING; 0 when
    # only `dnatrack worker` processes run them), how long an idle worker waits before
    # looking at the queue again, how often a running job sends a heartbeat, after how long
    # without one its worker counts as gone (the request goes back to the queue), and how
    # many workers may take a request before it fails (see lims.jobs).
    JOB_WORKERS: int | None = None
    JOB_POLL_SECONDS = 5.0
    JOB_HEARTBEAT_SECONDS = 10.0
    JOB_STALE_SECONDS = 40.0
    JOB_MAX_ATTEMPTS = 3
    # The growing network (lims.network): each release queues a search of the new profiles
    # against all released ones. Reference sets per panel (None: every bundled set typed on
    # the panel), the search's settings (a match request's parameters) and the number of
    # pairs its cutoffs are calibrated for, whatever the size of a batch.
    NETWORK_REFERENCE_SETS: dict | None = None
    NETWORK_SEARCH_PARAMETERS: dict = {}
    NETWORK_PAIRS_COMPARED = 1e6
    # How long the answer to a write sent with an Idempotency-Key header is kept for retries.
    IDEMPOTENCY_KEY_SECONDS = 24 * 3600
    # Exchange with partner instances (lims.exchange): the instance's Ed25519 signing key
    # (None: exchange_signing_key.pem in the instance folder, created on first use), how long a
    # partner may take to answer (seconds), and the most profiles one partner search may send.
    EXCHANGE_SIGNING_KEY_FILE: str | None = None
    # The key that encrypts partners' tokens at rest (None: exchange_token_key in the instance
    # folder, created on first use, owner-only).
    EXCHANGE_TOKEN_KEY_FILE: str | None = None
    EXCHANGE_TIMEOUT_SECONDS = 10.0
    EXCHANGE_MAX_SEARCH_PROFILES = 10_000


def instance_secret_key(instance_path: str | os.PathLike) -> str:
    """The installation's secret key from ``<instance>/secret_key``, created on first use."""
    path = Path(instance_path) / "secret_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create exclusively with owner-only permissions; a concurrent creator wins the race.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()
