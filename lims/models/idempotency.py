"""Idempotency keys: the first answer to a write, kept so that a retried request gets it again.

A client that sends a write with an ``Idempotency-Key`` header and does not see the answer (a
timeout, a dropped connection) sends it again with the same key. The first request stores its
key here in the transaction of its write, and the answer with it; a retry finds the row and is
answered from it, so nothing is written twice. The unique constraint on (user, key) makes
concurrent retries take turns: the second waits on the first's row, then replays its answer.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lims.database import Base, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """One client-chosen key of one user, the request it came with and the answer given.

    ``request_sha256`` fingerprints the request (method, path and parsed body), so the same key
    sent with another request is refused instead of answered with the wrong record. The
    ``response_*`` columns are filled in the same transaction as the write, before it commits;
    a row whose write rolled back never exists.
    """

    __tablename__ = "idempotency_key"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[dict | None] = mapped_column(sa.JSON)
    response_location: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
