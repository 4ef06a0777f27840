"""Match requests and their reports (filled in by the reports work; tables only here)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lims.database import Base, UTCDateTime, one_of, utcnow

MATCH_KINDS = ("identity", "kinship", "assignment")
MATCH_STATUSES = ("queued", "running", "done", "failed")
REPORT_KINDS = ("evidential", "lead")


class MatchRequest(Base):
    """An investigator's request to search a seizure or case against released profiles."""

    __tablename__ = "match_request"
    __table_args__ = (
        one_of("kind", MATCH_KINDS),
        one_of("status", MATCH_STATUSES),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    seizure_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seizure.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    parameters: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Report(Base):
    """A versioned report on a match request; an amendment names the version it replaces."""

    __tablename__ = "report"
    __table_args__ = (
        one_of("kind", REPORT_KINDS),
        sa.UniqueConstraint("match_request_id", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_request_id: Mapped[int] = mapped_column(sa.ForeignKey("match_request.id"))
    version: Mapped[int] = mapped_column(default=1)
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("report.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    body: Mapped[dict] = mapped_column(sa.JSON)
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    ledger_head_hash: Mapped[str] = mapped_column(sa.String(64))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
