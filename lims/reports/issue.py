"""The life of a report: drafted and signed by an analyst, signed by a reviewer, issued.

- :func:`draft_report`: an analyst drafts a report (``evidential``, or ``lead`` for a hit
  notification) from a finished match request and signs it as its analyst. A lead needs no
  review and is issued at once.
- :func:`sign_as_reviewer`: a reviewer — never the analyst who signed it, whatever roles they
  hold — signs an evidential draft, which issues it.
- :func:`issue`: the body is completed (signatures, custody-ledger head, time of issue,
  rendering software), hashed, rendered as HTML and PDF from one template, and stored with the
  SHA-256 of each file. The database refuses any later change (migration 0002) and any
  ``INSERT OR REPLACE`` or ``TRUNCATE`` (migration 0005). The issued report is appended to the
  chain of issued reports (:data:`ISSUED_REPORTS`, the custody ledger's machinery): its hash
  covers the previous issued report's hash, the row, its file and body hashes and its
  signatures, so a forged file, row or signature breaks the chain.
  :func:`issued_document_problem` checks one report against it before its file is served.
- :func:`amend`: an issued report is replaced by a new draft version naming it and the reason;
  the old version stays as it was.
- :func:`revise_draft` and :func:`withdraw_draft`: a draft can be changed (the analyst signs the
  new content again) or withdrawn; an issued report can be neither.

Each function adds to the session and flushes; the caller commits, so a refusal leaves
nothing behind.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lims.custody import (
    HashChain,
    canonical_json,
    check_link,
    count_appends,
    ledger_head,
    link_hash,
    locked_head,
)
from lims.custody import format_time as chain_time
from lims.database import utcnow
from lims.models import REPORT_KINDS, MatchRequest, Report, ReportSignature, User
from lims.quality.checks import report_section, unconfirmed_hits
from lims.reports.access import result_for_reader
from lims.reports.layout import present
from lims.reports.render import render_documents, renderer_versions
from matching.analysis import READABLE_FORMATS

TITLES = {"evidential": "Forensic DNA report", "lead": "Investigative lead (hit notification)"}
#: What each signature attests.
SIGNATURE_MEANINGS = {
    "analyst": "I performed or supervised the analysis and prepared this report; the results "
               "are, to the best of my knowledge, correct and complete.",
    "reviewer": "I reviewed the analysis, the data and this report technically and approve "
                "its issue.",
}


class ReportError(ValueError):
    """A report action that cannot be done; ``status`` is the HTTP status it maps to (403
    separation of duties, 409 state conflict, 422 bad input)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def format_time(moment: dt.datetime) -> str:
    """A time as reports print it: ``2024-05-01 08:30:15 UTC``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def report_number(report: Report) -> str:
    """The document number printed on a report, e.g. ``MR12-E-v2`` (request 12, evidential,
    version 2)."""
    return f"MR{report.match_request_id}-{report.kind[0].upper()}-v{report.version}"


def body_sha256(body: dict) -> str:
    """SHA-256 of a body's canonical JSON (sorted keys, no whitespace, UTF-8)."""
    return hashlib.sha256(canonical_json(body)).hexdigest()


#: The columns of an issued report that its chain hash covers (besides its signatures).
ISSUE_COLUMNS = (
    "id", "match_request_id", "version", "replaces_id", "amendment_reason", "kind", "status",
    "remarks", "body_sha256", "ledger_head_hash", "html_sha256", "pdf_sha256",
    "created_by_id", "created_at", "issued_at", "issue_seq",
)
SIGNATURE_COLUMNS = ("id", "user_id", "signer_name", "role", "meaning", "signed_at")


def canonical_issued_report(row: Mapping, signatures: Sequence[Mapping]) -> dict:
    """What the chain hash of an issued report covers: :data:`ISSUE_COLUMNS` of its row and
    :data:`SIGNATURE_COLUMNS` of each signature, times as the custody ledger writes them."""
    payload = {name: row[name] for name in ISSUE_COLUMNS}
    payload["created_at"] = chain_time(row["created_at"])
    payload["issued_at"] = chain_time(row["issued_at"])
    payload["signatures"] = [
        {**{name: signature[name] for name in SIGNATURE_COLUMNS},
         "signed_at": chain_time(signature["signed_at"])}
        for signature in sorted(signatures, key=lambda signature: signature["id"])
    ]
    return payload


_SIGNATURES = ReportSignature.__table__


def _stored_canonical(session: Session, row: Mapping) -> dict:
    signatures = session.execute(
        sa.select(_SIGNATURES).where(_SIGNATURES.c.report_id == row["id"])).mappings().all()
    return canonical_issued_report(row, signatures)


def _sha256(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()


def _document_problem(session: Session, row: Mapping) -> str | None:
    """Whether the stored body, HTML and PDF still hash to the values the chain covers."""
    for name, digest in (("HTML", _sha256(row["html"])), ("PDF", _sha256(row["pdf"]))):
        if digest != row[f"{name.lower()}_sha256"]:
            return f"the stored {name} does not match its recorded SHA-256 (altered after issue)"
    if body_sha256(row["body"]) != row["body_sha256"]:
        return "the stored body does not match its recorded SHA-256 (altered after issue)"
    return None


#: The chain of issued reports, in the order of issue.
ISSUED_REPORTS = HashChain(
    name="report chain",
    entry="issued report",
    table=Report.__table__,
    seq="issue_seq",
    prev_hash="issue_prev_hash",
    hash="issue_hash",
    counter="report_appends",
    canonical=_stored_canonical,
    members=Report.__table__.c.status == "issued",
    check_row=_document_problem,
    # Each row carries its HTML and PDF.
    batch_size=50,
)


def _link_into_chain(session: Session, report: Report) -> None:
    """Append the issued, flushed-signature ``report`` to :data:`ISSUED_REPORTS`."""
    head = locked_head(session, ISSUED_REPORTS)
    report.issue_seq = head.seq + 1
    report.issue_prev_hash = head.hash
    row = {name: getattr(report, name) for name in ISSUE_COLUMNS}
    signatures = [{name: getattr(signature, name) for name in SIGNATURE_COLUMNS}
                  for signature in report.signatures]
    report.issue_hash = link_hash(head.hash, canonical_issued_report(row, signatures))
    count_appends(session, ISSUED_REPORTS)


def issued_document_problem(session: Session, report: Report) -> str | None:
    """Why the stored documents of the issued ``report`` must not be served, or ``None``.

    The report's link in the chain of issued reports is checked against its neighbours
    (:func:`lims.custody.check_link`: its hash over its row and signatures, the previous
    report's hash, the next report's ``issue_prev_hash``) and its stored body, HTML and PDF
    against the hashes that link covers. ``dnatrack verify`` replays the whole chain.
    """
    if report.issue_seq is None:
        return "it is not in the chain of issued reports (added outside the application)"
    broken = check_link(session, ISSUED_REPORTS, report.issue_seq)
    return None if broken is None else str(broken)


def _awaited(report: Report) -> list[str]:
    signed = {signature.role for signature in report.signatures}
    needed = ["analyst"] if report.kind == "lead" else ["analyst", "reviewer"]
    return [role for role in needed if role not in signed]


def build_body(session: Session, report: Report) -> dict:
    """Everything the document shows, as JSON-ready data."""
    request = report.match_request
    status_text = "issued" if report.status == "issued" else "DRAFT, not issued"
    replaces = report.replaces
    return {
        "document": {
            "kind": report.kind,
            "title": TITLES[report.kind],
            "number": report_number(report),
            "report_id": report.id,
            "version": report.version,
            "status": report.status,
            "status_text": status_text,
            "request_id": request.id,
            "requested_by": request.requested_by.full_name,
            "requested_at": format_time(request.created_at),
            "drafted_by": report.created_by.full_name,
            "drafted_at": format_time(report.created_at),
            "issued_at": format_time(report.issued_at) if report.issued_at else None,
            "replaces": None if replaces is None else {
                "report_id": replaces.id, "version": replaces.version,
                "number": report_number(replaces)},
            "amendment_reason": report.amendment_reason,
            "remarks": report.remarks,
            "signatures_awaited": _awaited(report),
        },
        # As its requester may see it now (a share may have been withdrawn since the run).
        "result": copy.deepcopy(present(
            result_for_reader(session, request.result, request.requested_by))),
        "run": {
            "worker": request.worker,
            "started_at": format_time(request.started_at) if request.started_at else None,
            "finished_at": format_time(request.finished_at) if request.finished_at else None,
        },
        "signatures": [
            {"role": s.role, "name": s.signer_name, "meaning": s.meaning,
             "signed_at": format_time(s.signed_at)}
            for s in report.signatures
        ],
        "ledger_head": {"seq": (head := ledger_head(session)).seq, "hash": head.hash},
        "software": renderer_versions(),
        # Species tests, panel validation, hit confirmations, proficiency (lims.quality).
        "quality": report_section(session, report),
    }


def _refresh_body(session: Session, report: Report) -> None:
    """Rebuild the body of a flushed report (signatures in signing order)."""
    report.body = build_body(session, report)
    report.body_sha256 = body_sha256(report.body)
    report.ledger_head_hash = report.body["ledger_head"]["hash"]


def _sign(report: Report, user: User, role: str) -> None:
    report.signatures.append(ReportSignature(
        user_id=user.id, signer_name=user.full_name, role=role,
        meaning=SIGNATURE_MEANINGS[role], signed_at=utcnow(),
    ))


def _refuse_unconfirmed_hits(session: Session, request: MatchRequest) -> None:
    """An evidential report states no same-animal hit that the lab has not confirmed."""
    reasons = unconfirmed_hits(session, request.result or {})
    if reasons:
        raise ReportError(409, "an evidential report cannot be issued before its hits are "
                               "confirmed: " + "; ".join(reasons))


def _check_draft(report: Report) -> None:
    if report.status == "issued":
        raise ReportError(409, f"report {report_number(report)} is issued and cannot change; "
                               "amend it to issue a corrected version")


def draft_report(
    session: Session,
    request: MatchRequest,
    *,
    analyst: User,
    kind: str,
    remarks: str | None = None,
    replaces: Report | None = None,
    amendment_reason: str | None = None,
) -> Report:
    """A new report version on a finished request, signed by ``analyst`` (a lead is issued at
    once). Only one draft of a kind may be open per request."""
    if kind not in REPORT_KINDS:
        raise ReportError(422, f"kind must be one of {', '.join(REPORT_KINDS)}", "kind")
    if request.status != "done":
        raise ReportError(409, f"match request {request.id} is {request.status}; a report "
                               "needs a finished request")
    if request.result.get("format") not in READABLE_FORMATS:
        raise ReportError(409, f"the results of match request {request.id} are in an older "
                               "layout that reports no longer show; run it again")
    open_draft = session.scalar(sa.select(Report.id).where(
        Report.match_request_id == request.id, Report.kind == kind, Report.status == "draft"))
    if open_draft is not None:
        raise ReportError(409, f"report {open_draft} is already an open {kind} draft of this "
                               "request; revise, issue or withdraw it first")
    if kind == "evidential":
        _refuse_unconfirmed_hits(session, request)
    latest = session.scalar(sa.select(sa.func.max(Report.version)).where(
        Report.match_request_id == request.id, Report.kind == kind)) or 0
    report = Report(
        match_request=request,
        version=latest + 1,
        kind=kind,
        status="draft",
        remarks=remarks,
        replaces=replaces,
        amendment_reason=amendment_reason,
        created_by_id=analyst.id,
        created_at=utcnow(),
        body={},
        body_sha256="",
        ledger_head_hash="",
    )
    session.add(report)
    _sign(report, analyst, "analyst")
    session.flush()
    _refresh_body(session, report)
    if kind == "lead":
        issue(session, report)
    session.flush()
    return report


def revise_draft(session: Session, report: Report, *, analyst: User, remarks: str | None) -> None:
    """Change a draft's remarks; the analyst signs the new content (the old signature goes)."""
    _check_draft(report)
    signed = next(s for s in report.signatures if s.role == "analyst")
    if signed.user_id != analyst.id:
        raise ReportError(403, "only the analyst who signed the draft may revise it")
    report.signatures.remove(signed)
    session.flush()
    report.remarks = remarks
    _sign(report, analyst, "analyst")
    _refresh_body(session, report)
    session.flush()


def withdraw_draft(session: Session, report: Report) -> None:
    """Delete a draft (issued reports are kept for ever)."""
    _check_draft(report)
    session.delete(report)
    session.flush()


def sign_as_reviewer(session: Session, report: Report, reviewer: User) -> None:
    """The reviewer's signature on an evidential draft, which issues it."""
    _check_draft(report)
    if report.kind != "evidential":
        raise ReportError(409, "only evidential reports are reviewed")
    analyst = next(s for s in report.signatures if s.role == "analyst")
    if analyst.user_id == reviewer.id:
        raise ReportError(403, "the analyst who signed a report may not also review it")
    _sign(report, reviewer, "reviewer")
    issue(session, report)


def issue(session: Session, report: Report) -> None:
    """Complete, render and store the report; it never changes afterwards."""
    _check_draft(report)
    awaited = _awaited(report)
    if awaited:
        raise ReportError(409, f"the report still needs the {' and '.join(awaited)} signature")
    if report.kind == "evidential":
        _refuse_unconfirmed_hits(session, report.match_request)
    # The signatures get their ids, which the chain hash covers.
    session.flush()
    # The row is written once, complete: the database refuses an issued row without its files.
    with session.no_autoflush:
        report.status = "issued"
        report.issued_at = utcnow()
        _refresh_body(session, report)
        html, pdf = render_documents(report.body, body_sha256=report.body_sha256)
        report.html = html
        report.html_sha256 = _sha256(html)
        report.pdf = pdf
        report.pdf_sha256 = _sha256(pdf)
        _link_into_chain(session, report)
    session.flush()


def amend(session: Session, report: Report, *, analyst: User, reason: str,
          remarks: str | None = None) -> Report:
    """A new draft version replacing the issued ``report`` (the latest of its kind), from the
    request's current results."""
    if report.status != "issued":
        raise ReportError(409, "only an issued report is amended; revise the draft instead")
    if not reason or not reason.strip():
        raise ReportError(422, "an amendment needs its reason", "reason")
    newer = session.scalar(sa.select(Report.id).where(
        Report.match_request_id == report.match_request_id, Report.kind == report.kind,
        Report.version > report.version))
    if newer is not None:
        raise ReportError(409, f"report {newer} is a later version; amend the latest one")
    return draft_report(
        session, report.match_request, analyst=analyst, kind=report.kind,
        remarks=report.remarks if remarks is None else remarks, replaces=report,
        amendment_reason=reason.strip(),
    )
