"""Match requests, the jobs that run them, and their versioned, signed reports.

A match request asks for analyses of a seizure or a whole case against chosen reference
sets; a background job (:mod:`lims.jobs`) runs it — ``queued`` → ``running`` → ``done`` or
``failed`` — and stores the engine's results on the request in one write. Reports are drafted
from a done request, signed by an analyst and (for an evidential report) a reviewer, and then
issued: the rendered HTML and PDF are stored with their SHA-256 and never change again; the
database refuses to update or delete an issued report or its signatures (triggers of
migration 0002). An amendment is a new version of the report naming the one it replaces.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from lims.database import Base, UTCDateTime, one_of, utcnow
from lims.models.evidence import Case, Seizure
from lims.models.people import User

#: Analyses a match request can ask for.
ANALYSES = ("identity", "kinship", "assignment", "mixture", "geographic")
MATCH_STATUSES = ("queued", "running", "done", "failed")
REPORT_KINDS = ("evidential", "lead")
REPORT_STATUSES = ("draft", "issued")
#: Who signs a report, in signing order.
SIGNATURE_ROLES = ("analyst", "reviewer")


class MatchRequest(Base):
    """A request to analyse a seizure (or every seizure of a case) against released profiles.

    ``parameters`` holds the statistical settings (θ override, error rates, identity
    stringency…); ``progress``, ``stage`` and ``heartbeat_at`` are written by the job while it
    runs and ``attempts`` counts the workers that took it; ``result`` (the assembled,
    need-to-know-filtered engine results) is written once, when the job finishes.
    """

    __tablename__ = "match_request"
    __table_args__ = (
        one_of("status", MATCH_STATUSES),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name="progress"),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failure_reason"),
        sa.CheckConstraint("status <> 'done' OR result IS NOT NULL", name="done_result"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    seizure_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seizure.id"))
    analyses: Mapped[list] = mapped_column(sa.JSON)
    reference_sets: Mapped[list] = mapped_column(sa.JSON)
    parameters: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    stage: Mapped[str | None] = mapped_column(sa.String(200))
    error: Mapped[str | None] = mapped_column(sa.Text)
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    # Times a worker took the request since it was (re)queued by a user; a worker that stops
    # sending heartbeats gives it back to the queue until JOB_MAX_ATTEMPTS is reached.
    attempts: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    result: Mapped[dict | None] = deferred(mapped_column(sa.JSON))
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()
    seizure: Mapped[Seizure | None] = relationship()
    requested_by: Mapped[User] = relationship()


class Report(Base):
    """One version of a report on a match request.

    ``body`` is everything the document shows (results, propositions, versions, signatures,
    ledger head); ``body_sha256`` is over its canonical JSON. Issuing renders ``html`` and
    ``pdf`` from it and stores their SHA-256; from then on the row is immutable. Issued
    reports are hash-chained in the order of issue (``issue_seq``, ``issue_prev_hash``,
    ``issue_hash``), the hash covering the row, its file hashes and its signatures.
    """

    __tablename__ = "report"
    __table_args__ = (
        one_of("kind", REPORT_KINDS),
        one_of("status", REPORT_STATUSES),
        sa.UniqueConstraint("match_request_id", "kind", "version"),
        sa.CheckConstraint(
            "replaces_id IS NULL OR amendment_reason IS NOT NULL", name="amendment_reason"
        ),
        sa.CheckConstraint(
            "status <> 'issued' OR (issued_at IS NOT NULL AND html_sha256 IS NOT NULL "
            "AND pdf_sha256 IS NOT NULL)",
            name="issued_documents",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    match_request_id: Mapped[int] = mapped_column(sa.ForeignKey("match_request.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("report.id"))
    amendment_reason: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    remarks: Mapped[str | None] = mapped_column(sa.Text)
    body: Mapped[dict] = deferred(mapped_column(sa.JSON, nullable=False))
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    ledger_head_hash: Mapped[str] = mapped_column(sa.String(64))
    html: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    html_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    pdf: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The chain of issued reports (see lims.reports.issue.ISSUED_REPORTS); null on drafts.
    issue_seq: Mapped[int | None] = mapped_column(index=True, unique=True)
    issue_prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    issue_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True, unique=True)

    match_request: Mapped[MatchRequest] = relationship()
    replaces: Mapped[Report | None] = relationship(remote_side=[id])
    created_by: Mapped[User] = relationship()
    signatures: Mapped[list[ReportSignature]] = relationship(
        back_populates="report",
        cascade="all, delete-orphan",
        order_by="ReportSignature.signed_at",
        lazy="selectin",
    )


class ReportSignature(Base):
    """An e-signature on a report: who (their name as it was then), as what, meaning what,
    when."""

    __tablename__ = "report_signature"
    __table_args__ = (one_of("role", SIGNATURE_ROLES), sa.UniqueConstraint("report_id", "role"))

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("report.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    signer_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    meaning: Mapped[str] = mapped_column(sa.Text)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    report: Mapped[Report] = relationship(back_populates="signatures")
