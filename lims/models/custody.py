"""The custody ledger table and the audit trail table: both append-only.

The migrations install database triggers that refuse UPDATE and DELETE on these tables (and
TRUNCATE on PostgreSQL), so even a bug or a hand-typed SQL statement cannot rewrite history.
The logic that fills them is in :mod:`lims.custody` and :mod:`lims.audit`.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lims.database import Base, UTCDateTime, exactly_one_of, one_of, utcnow

EVENT_TYPES = (
    "collect",
    "seal",
    "transfer",
    "receive",
    "open",
    "subsample",
    "store",
    "return",
    "destroy",
)

# What the signer attests by recording the event.
SIGNATURE_MEANINGS = ("performed", "witnessed", "released", "received", "approved")

SUBJECT_COLUMNS = ("seizure_id", "item_id", "sample_id", "extract_id")

APPEND_ONLY_TABLES = ("custody_event", "audit_record")


class CustodyEvent(Base):
    """One custody event on one piece of evidence, linked into the global hash chain.

    ``seq`` numbers the events 1, 2, 3… in ledger order; ``prev_hash`` is the hash of event
    ``seq - 1`` (64 zeros for the first) and ``hash`` is SHA-256 over ``prev_hash`` and the
    canonical JSON of this event (see :func:`lims.custody.event_hash`).
    """

    __tablename__ = "custody_event"
    __table_args__ = (
        one_of("event_type", EVENT_TYPES),
        one_of("signature_meaning", SIGNATURE_MEANINGS),
        exactly_one_of(SUBJECT_COLUMNS, name="one_subject"),
        sa.CheckConstraint("seq >= 1", name="seq"),
    )

    # Assigned by the ledger (head + 1), never by the database, so it stays gapless.
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    event_type: Mapped[str] = mapped_column(sa.String(16))
    seizure_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seizure.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("item.id"), index=True)
    sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    extract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("extract.id"), index=True)
    actor_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    from_holder: Mapped[str | None] = mapped_column(sa.String(200))
    to_holder: Mapped[str | None] = mapped_column(sa.String(200))
    place: Mapped[str | None] = mapped_column(sa.String(200))
    storage_location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("storage_location.id"))
    seal_numbers: Mapped[list] = mapped_column(sa.JSON, default=list)
    signature_meaning: Mapped[str] = mapped_column(sa.String(16))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    @property
    def subject(self) -> tuple[str, int]:
        """``(kind, id)`` of the evidence the event is about, e.g. ``("sample", 12)``."""
        for column in SUBJECT_COLUMNS:
            value = getattr(self, column)
            if value is not None:
                return column.removesuffix("_id"), value
        raise ValueError(f"custody event {self.seq} has no subject")


class CustodyAppendLock(Base):
    """A single row every append to a hash chain (the custody ledger, the audit trail, the
    issued reports) updates first, so appends take turns; it holds each chain's append count.

    The update holds a row lock on PostgreSQL and the write lock on SQLite until the
    appending transaction ends; the next writer waits and then reads the new head.
    """

    __tablename__ = "custody_append_lock"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # One counter per chain: custody events, audit records, issued reports.
    appends: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    audit_appends: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    report_appends: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class AuditRecord(Base):
    """One change to one record: the changed fields with old and new values, who and when.

    ``changes`` maps each field to ``{"old": ..., "new": ...}`` (JSON values; secrets and file
    contents are replaced by a marker). ``actor_id`` is not a foreign key on purpose: the
    trail must outlive anything it describes. The records are hash-chained like the custody
    ledger: ``seq`` numbers them 1, 2, 3… in the order they were appended (``id`` may have
    gaps on PostgreSQL), ``hash`` covers ``prev_hash`` and the record (see
    :data:`lims.audit.AUDIT_TRAIL`).
    """

    __tablename__ = "audit_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None]
    table_name: Mapped[str] = mapped_column(sa.String(64))
    record_id: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(8))
    changes: Mapped[dict] = mapped_column(sa.JSON)
    seq: Mapped[int] = mapped_column(sa.BigInteger, index=True, unique=True)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), index=True, unique=True)

    __table_args__ = (
        one_of("action", ("insert", "update", "delete")),
        sa.Index("ix_audit_record_table_record", "table_name", "record_id"),
    )
