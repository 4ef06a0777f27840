"""Safe retries of API writes: the ``Idempotency-Key`` request header, and commits whose
outcome is checked before an error is reported.

A client that does not see the answer to a write (a timeout, a dropped connection) cannot
tell whether it was stored. Sent with an ``Idempotency-Key`` header (any text of 1–255
visible ASCII characters, new for each new write, e.g. a UUID), the write may be sent again
with the same key: the retry is answered with the first answer — same status, body and
``Location``, plus ``Idempotent-Replayed: true`` — and stores nothing. Keys are per user and
kept for ``IDEMPOTENCY_KEY_SECONDS``; the same key sent with a different request (another
body, another endpoint) is refused with 422.

The key's row is the first thing the write's transaction inserts and the answer is stored on
it just before that transaction commits (:func:`commit_write`), so a key exists only with a
stored write, and a retry sent while the first is still running waits on the row's unique
constraint and then replays the first answer instead of writing again.

Pages use the same keys: the custody scan form carries one per rendered form
(:mod:`lims.web.custody`), so a form sent twice records once.

:func:`commit_write` is also why the API never reports a failure for a write it stored: the
answer is built before the commit, and a commit that raises (the connection lost while the
database committed) is checked on a fresh connection; if the write is there, the client gets
its answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, request
from flask_login import current_user

from lims.database import utcnow
from lims.errors import ApiError
from lims.extensions import db
from lims.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
_ROW_KEY = "dnatrack_idempotency_key_id"
# A retry that keeps losing the race to a first request that keeps rolling back gives up.
_CLAIM_TRIES = 3

_table = IdempotencyKey.__table__


def request_fingerprint() -> str:
    """SHA-256 of the method, path and parsed body: equal for a retry of the same request,
    whatever the client's JSON spacing or multipart boundaries."""
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        content: Any = {
            "form": sorted(request.form.items(multi=True)),
            "files": sorted(
                (name, upload.filename or "", _file_sha256(upload))
                for name, upload in request.files.items(multi=True)
            ),
        }
    else:
        parsed = request.get_json(silent=True)
        content = parsed if parsed is not None else request.get_data().hex()
    text = json.dumps([request.method, request.path, content], sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha256(upload) -> str:
    digest = hashlib.sha256(upload.stream.read()).hexdigest()
    upload.stream.seek(0)
    return digest


def _header_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not valid_key(key):
        raise ApiError(422, f"invalid {HEADER} header",
                       {"problems": [{"field": HEADER, "message": "must be 1 to 255 visible "
                                      "ASCII characters"}]})
    return key


def _stored(user_id: int, key: str):
    return db.session.execute(
        sa.select(_table).where(_table.c.user_id == user_id, _table.c.key == key)
    ).first()


def _replay(row, fingerprint: str):
    if row.request_sha256 != fingerprint:
        raise ApiError(422, f"this {HEADER} was already used for a different request; send a "
                       "new key with a new request",
                       {"problems": [{"field": HEADER, "message": "used for a different "
                                      "request"}]})
    logger.info("idempotent replay: user %s, %s %s, key %r answered %s from %s", row.user_id,
                request.method, request.path, row.key, row.response_status, row.created_at)
    headers = {REPLAYED_HEADER: "true"}
    if row.response_location:
        headers["Location"] = row.response_location
    return row.response_body, row.response_status, headers


def claim(key: str, fingerprint: str):
    """Insert the current user's ``key`` in the request's transaction and return None; or,
    when the key was used before, return its stored row (``request_sha256``,
    ``response_status``, ``response_body``, ``response_location``) instead.

    A concurrent request with the same key makes this wait until that request ends; its row
    is then returned. :func:`commit_write` stores the answer on an inserted key.
    """
    user_id = current_user.id
    now = utcnow()
    # Expired keys go first, in a transaction of their own: no lock is held while writing.
    with db.engine.begin() as connection:
        connection.execute(
            sa.delete(_table).where(_table.c.user_id == user_id, _table.c.expires_at <= now)
        )
    lifetime = current_app.config["IDEMPOTENCY_KEY_SECONDS"]
    for _ in range(_CLAIM_TRIES):
        row = _stored(user_id, key)
        if row is not None:
            return row
        try:
            setattr(g, _ROW_KEY, db.session.execute(
                sa.insert(_table).values(
                    user_id=user_id, key=key, request_sha256=fingerprint, created_at=now,
                    expires_at=now + dt.timedelta(seconds=lifetime),
                ).returning(_table.c.id)
            ).scalar_one())
            return None
        except sa.exc.IntegrityError:
            # A request with this key committed meanwhile (we waited on its row): replay it.
            db.session.rollback()
    raise ApiError(409, f"a request with this {HEADER} is still being processed; retry later")


def valid_key(key: str | None) -> bool:
    return key is not None and _KEY_PATTERN.fullmatch(key) is not None


def idempotent(view: Callable) -> Callable:
    """Make an API write view retry-safe with the ``Idempotency-Key`` header; the view must
    end with :func:`commit_write`."""

    @functools.wraps(view)
    def retry_safe(**arguments):
        key = _header_key()
        if key is not None:
            fingerprint = request_fingerprint()
            row = claim(key, fingerprint)
            if row is not None:
                return _replay(row, fingerprint)
        return view(**arguments)

    return retry_safe


def commit_write(body: dict, status: int, headers: dict | None = None, *,
                 proof: sa.Select) -> tuple[dict, int, dict]:
    """Store the answer on the request's idempotency key (if any), commit, and return the
    answer.

    ``proof`` selects a row that exists only if this write committed (the new record by its
    key and content). When the commit raises, it is run on a fresh connection: the commit
    may have reached the database before the connection failed, and a stored write is then
    answered as such instead of with an error that would make the client write it again.
    """
    headers = dict(headers or {})
    key_id = g.pop(_ROW_KEY, None)
    if key_id is not None:
        db.session.execute(
            sa.update(_table).where(_table.c.id == key_id).values(
                response_status=status, response_body=body,
                response_location=headers.get("Location"))
        )
    try:
        db.session.commit()
    except sa.exc.DBAPIError as error:
        db.session.rollback()
        with db.engine.connect() as connection:
            stored = connection.execute(proof).first() is not None
        if not stored:
            raise
        logger.warning("%s %s: the commit reported %s, but the write is stored; answered "
                       "as stored", request.method, request.path, type(error.orig).__name__)
    return body, status, headers
