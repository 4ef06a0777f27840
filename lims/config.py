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
    # restarts and every worker of one installation shares it.
    SECRET_KEY: str | None = None
    # werkzeug's password hash method; scrypt with its default cost.
    PASSWORD_HASH_METHOD = "scrypt"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
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
    # How long the answer to a write sent with an Idempotency-Key header is kept for retries.
    IDEMPOTENCY_KEY_SECONDS = 24 * 3600


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
