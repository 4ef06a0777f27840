"""Match requests (background jobs) and their reports.

A request is created ``queued`` and run by a worker (:mod:`lims.jobs`); its ``status``,
``progress`` and ``stage`` show how far it got, ``error`` why it failed, and
``/match-requests/{id}/result`` its results once ``done``. Reports are drafted from a done
request by an analyst, signed by a reviewer (evidential reports) and then issued; an issued
report's HTML and PDF never change, and changes to it are refused (409): amend it instead.

Results and draft reports are shown as the reader may see them now
(:func:`lims.reports.access.result_for_reader`). An issued document is served only after its
stored file has been checked against the chain of issued reports
(:func:`lims.reports.issue.issued_document_problem`; a forged one is refused with a 500 and
logged) and only to readers who may still see every record it names in full (otherwise 403,
logged; see :mod:`lims.reports.access` for why it is not redacted instead).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Response, current_app, url_for
from flask_login import current_user

from lims import jobs
from lims.api.people import CREATED_AT, ID
from lims.api.routing import Resource, equals, json_body, load_reference, load_visible, route
from lims.api.schema import Field, Schema, invalid, read_only
from lims.errors import ApiError
from lims.extensions import db
from lims.models import (
    ANALYSES,
    MATCH_STATUSES,
    REPORT_KINDS,
    REPORT_STATUSES,
    Case,
    MatchRequest,
    Report,
    Seizure,
)
from lims.reports.access import (
    body_for_reader,
    records_withdrawn_from,
    report_scope,
    request_scope,
    result_for_reader,
)
from lims.reports.analysis import (
    AnalysisError,
    AnalysisSettings,
    check_analyses,
    check_reference_sets,
    panel_of,
    subject_profile_count,
)
from lims.reports.issue import (
    ReportError,
    amend,
    body_sha256,
    draft_report,
    issued_document_problem,
    report_number,
    revise_draft,
    sign_as_reviewer,
    withdraw_draft,
)
from lims.reports.render import render_html, render_pdf
from matching.analysis import AnalysisResult, upgrade

logger = logging.getLogger(__name__)


def _report_ids(request: MatchRequest) -> list[int]:
    return list(db.session.scalars(
        sa.select(Report.id).where(Report.match_request_id == request.id).order_by(Report.id)))


MATCH_REQUEST = Schema(
    "match_request",
    (
        ID,
        Field("case_id", "integer", "The case; defaults to the seizure's. Without a seizure, "
              "every profile of the case is analysed.", update=False),
        Field("seizure_id", "integer", "The seizure to analyse.", update=False),
        Field("analyses", "array", f"Any of {', '.join(ANALYSES)}.", items="string",
              choices=ANALYSES, required=True, nullable=False, update=False),
        Field("reference_sets", "array", "Bundled reference set names (one panel), in any "
              "order. Assignment uses all of them; each subject profile's likelihood ratios "
              "and match probabilities use the allele frequencies and θ of the set it is "
              "assigned to (the result's frequencies say which, and why).", items="string",
              required=True, nullable=False, update=False),
        Field("parameters", "object", "Settings: theta, dropout_rate, miscall_rate, "
              "relationships, min_loci, stringency, max_mismatches, max_dropouts, "
              "exclusion_simulations, mixture_sweeps, mixture_burn_in, geo_cells, seed.",
              nullable=False, update=False),
        read_only("status", "string", " → ".join(MATCH_STATUSES[:3]) + ", or failed.",
                  nullable=False),
        read_only("progress", "number", "Share of the work done, 0 to 1.", nullable=False),
        read_only("stage", "string", "What the job is doing now."),
        read_only("error", "string", "Why the job failed."),
        read_only("worker", "string", "Host, process and thread that ran it."),
        read_only("attempts", "integer", "Workers that took it since it was last queued by a "
                  "user; one whose heartbeat stops gives it back to the queue.",
                  nullable=False),
        read_only("requested_by_id", "integer", nullable=False),
        CREATED_AT,
        read_only("started_at", "date-time"),
        read_only("finished_at", "date-time"),
        read_only("report_ids", "array", "Reports drafted from it.", items="integer",
                  nullable=False, getter=lambda request: _report_ids(request)),
    ),
)


def _signatures(report: Report) -> list[dict]:
    return [{"role": s.role, "user_id": s.user_id, "name": s.signer_name, "meaning": s.meaning,
             "signed_at": s.signed_at.isoformat()} for s in report.signatures]


REPORT = Schema(
    "report",
    (
        ID,
        read_only("number", "string", "Document number, e.g. MR12-E-v2.", nullable=False,
                  getter=report_number),
        read_only("match_request_id", "integer", nullable=False),
        Field("kind", "string", "evidential, or lead (a hit notification).", required=True,
              nullable=False, choices=REPORT_KINDS, update=False),
        read_only("version", "integer", "Version among the request's reports of this kind.",
                  nullable=False),
        read_only("status", "string", "draft, or issued (then it never changes).",
                  nullable=False),
        Field("remarks", "string", "The analyst's remarks, printed on the report."),
        read_only("replaces_id", "integer", "The issued report this version amends."),
        read_only("amendment_reason", "string"),
        read_only("signatures", "array", "E-signatures: role, user, name, meaning, time.",
                  items="object", nullable=False, getter=_signatures),
        read_only("warnings", "array", "Proficiency warnings of its signers (lims.quality).",
                  items="string", nullable=False,
                  getter=lambda report: ((report.body or {}).get("quality") or {}).get(
                      "proficiency_warnings", [])),
        read_only("body_sha256", "string", "SHA-256 of the body's canonical JSON.",
                  nullable=False),
        read_only("ledger_head_hash", "string", "Custody-ledger head printed on the report.",
                  nullable=False),
        read_only("html_sha256", "string", "SHA-256 of the issued HTML file."),
        read_only("pdf_sha256", "string", "SHA-256 of the issued PDF file."),
        read_only("created_by_id", "integer", nullable=False),
        CREATED_AT,
        read_only("issued_at", "date-time"),
    ),
)
AMENDMENT = Schema(
    "report_amendment",
    (
        Field("reason", "string", "Why the issued report is amended.", required=True,
              nullable=False),
        Field("remarks", "string", "Remarks of the new version (default: the old ones)."),
    ),
)

Resource(
    "/match-requests",
    "match request",
    MatchRequest,
    MATCH_REQUEST,
    "reports",
    ("match.request",),
    scope=request_scope,
    filters=(
        equals(MatchRequest, "status", "string", "Job status.", choices=MATCH_STATUSES),
        equals(MatchRequest, "case_id", "integer", "Requests on this case."),
        equals(MatchRequest, "seizure_id", "integer", "Requests on this seizure."),
    ),
).register()

Resource(
    "/reports",
    "report",
    Report,
    REPORT,
    "reports",
    ("report.prepare",),
    scope=report_scope,
    filters=(
        equals(Report, "match_request_id", "integer", "Reports of this match request."),
        equals(Report, "kind", "string", "Evidential report or lead.", choices=REPORT_KINDS),
        equals(Report, "status", "string", "Draft or issued.", choices=REPORT_STATUSES),
    ),
).register()


def _analysis_error(error: AnalysisError) -> ApiError:
    return ApiError(422, str(error), {"problems": error.problems} if error.problems else None)


def _report_error(error: ReportError) -> ApiError:
    details = None
    if error.field is not None:
        details = {"problems": [{"field": error.field, "message": str(error)}]}
    return ApiError(error.status, str(error), details)


def new_match_request(values: dict) -> MatchRequest:
    """Check a match request's input (API field names) and add it, queued, to the session.

    The subject must be a case or seizure the caller may add to; the analyses, reference sets
    and parameters must fit; and the subject must have released profiles on the reference
    sets' panel. Raises :class:`~lims.errors.ApiError` naming the fields.
    """
    seizure = load_reference(Seizure, values.get("seizure_id"), "seizure_id", "seizure")
    case = load_reference(Case, values.get("case_id"), "case_id", "case")
    if seizure is None and case is None:
        raise invalid("seizure_id", "or case_id is required")
    if seizure is not None and case is not None and seizure.case_id != case.id:
        raise invalid("seizure_id", f"is not a seizure of case {case.id}")
    case = case or seizure.case
    try:
        analyses = check_analyses(values.get("analyses"))
        references = check_reference_sets(values.get("reference_sets"))
        AnalysisSettings.from_parameters(values.get("parameters"))
    except AnalysisError as error:
        raise _analysis_error(error) from None
    panel = panel_of(references, current_app.config.get("PANEL_DIRECTORY"))
    if subject_profile_count(db.session, case, seizure, panel) == 0:
        field = "seizure_id" if seizure is not None else "case_id"
        raise invalid(field, f"has no released genotype profiles on panel {panel.name}")
    request = MatchRequest(
        case_id=case.id,
        seizure_id=seizure.id if seizure is not None else None,
        analyses=analyses,
        reference_sets=list(values["reference_sets"]),
        parameters=dict(values.get("parameters") or {}),
        status="queued",
        progress=0.0,
        requested_by_id=current_user.id,
    )
    db.session.add(request)
    return request


@route(
    "/match-requests",
    "POST",
    summary="Request analyses of a seizure or case; runs as a background job",
    tag="reports",
    permission="match.request",
    request=MATCH_REQUEST,
    response=MATCH_REQUEST,
    response_status=201,
    description="Answers at once with the queued request; poll it for status and progress.",
)
def create_match_request():
    values = MATCH_REQUEST.load(json_body(), mode="create")
    request = new_match_request(values)
    db.session.commit()
    jobs.notify(current_app, request.id)
    location = url_for("api.get_match_request", record_id=request.id)
    return MATCH_REQUEST.dump(request), 201, {"Location": location}


def requeue(request: MatchRequest) -> None:
    """Queue a finished or failed request again (not while a report draft depends on it)."""
    if request.status not in ("done", "failed"):
        raise ApiError(409, f"match request {request.id} is {request.status}")
    draft = db.session.scalar(sa.select(Report.id).where(
        Report.match_request_id == request.id, Report.status == "draft"))
    if draft is not None:
        raise ApiError(409, f"report {draft} is a draft on these results; issue or withdraw "
                            "it first")
    request.status = "queued"
    request.progress = 0.0
    request.attempts = 0
    for name in ("stage", "error", "worker", "started_at", "heartbeat_at", "finished_at"):
        setattr(request, name, None)


@route(
    "/match-requests/<int:record_id>/run",
    "POST",
    summary="Run a finished or failed match request again",
    tag="reports",
    permission="match.request",
    response=MATCH_REQUEST,
    description="Issued reports keep the results they were issued with.",
)
def rerun_match_request(record_id: int):
    request = load_visible(MatchRequest, record_id, "match request", for_writing=True,
                           scope=request_scope)
    requeue(request)
    db.session.commit()
    jobs.notify(current_app, request.id)
    return MATCH_REQUEST.dump(request)


@route(
    "/match-requests/<int:record_id>/result",
    "GET",
    summary="The results of a finished match request",
    tag="reports",
    permission="record.read",
    response_type=AnalysisResult,
    description="The analysis result in layout 4 (format = 4; a result stored in an earlier "
    "layout is answered in layout 4): identity and kinship pairs, links between seizures, the "
    "reference set whose frequencies weighed each profile, population assignment, mixture "
    "proportions and geographic surfaces, with the scope of the search (pairs compared, "
    "thresholds applied), every parameter, the software versions and the content hashes "
    "(content_sha256 of the analytical content, parameters_sha256). Numbers are numbers; a "
    "missing likelihood ratio or match probability is null. Records you may not read now "
    "(another agency's, or a share withdrawn since the run) are reduced to their reference "
    "and holding agency (visible = false).",
)
def match_request_result(record_id: int):
    request = load_visible(MatchRequest, record_id, "match request", scope=request_scope)
    if request.status != "done":
        raise ApiError(409, f"match request {record_id} is {request.status}; no result yet")
    stored = upgrade(request.result) if request.result is not None else None
    return result_for_reader(db.session, stored, current_user)


@route(
    "/match-requests/<int:record_id>/reports",
    "POST",
    summary="Draft a report from a finished request, signed by you as its analyst",
    tag="reports",
    permission="report.prepare",
    request=REPORT,
    response=REPORT,
    response_status=201,
    description="A lead (hit notification) needs no review and is issued at once.",
)
def create_report(record_id: int):
    request = load_visible(MatchRequest, record_id, "match request", for_writing=True,
                           scope=request_scope)
    values = REPORT.load(json_body(), mode="create")
    try:
        report = draft_report(db.session, request, analyst=current_user, kind=values["kind"],
                              remarks=values.get("remarks"))
    except ReportError as error:
        raise _report_error(error) from None
    db.session.commit()
    return REPORT.dump(report), 201, {"Location": url_for("api.get_report", record_id=report.id)}


def _writable_report(record_id: int) -> Report:
    return load_visible(Report, record_id, "report", for_writing=True, scope=report_scope)


@route(
    "/reports/<int:record_id>",
    "PATCH",
    summary="Revise a draft's remarks (you sign the new content); issued reports are refused",
    tag="reports",
    permission="report.prepare",
    request=REPORT,
    request_mode="update",
    response=REPORT,
)
def update_report(record_id: int):
    report = _writable_report(record_id)
    values = REPORT.load(json_body(), mode="update")
    try:
        revise_draft(db.session, report, analyst=current_user,
                     remarks=values.get("remarks", report.remarks))
    except ReportError as error:
        raise _report_error(error) from None
    db.session.commit()
    return REPORT.dump(report)


@route(
    "/reports/<int:record_id>",
    "DELETE",
    summary="Withdraw a draft; issued reports are refused",
    tag="reports",
    permission="report.prepare",
    response_status=204,
)
def delete_report(record_id: int):
    report = _writable_report(record_id)
    try:
        withdraw_draft(db.session, report)
    except ReportError as error:
        raise _report_error(error) from None
    db.session.commit()
    return "", 204


@route(
    "/reports/<int:record_id>/sign",
    "POST",
    summary="Sign an evidential draft as its reviewer, which issues it",
    tag="reports",
    permission="report.review",
    response=REPORT,
    description="The reviewer must not be the analyst who signed the draft.",
)
def sign_report(record_id: int):
    report = _writable_report(record_id)
    try:
        sign_as_reviewer(db.session, report, current_user)
    except ReportError as error:
        raise _report_error(error) from None
    db.session.commit()
    return REPORT.dump(report)


@route(
    "/reports/<int:record_id>/amendments",
    "POST",
    summary="Amend an issued report: a new draft version naming the one it replaces",
    tag="reports",
    permission="report.prepare",
    request=AMENDMENT,
    response=REPORT,
    response_status=201,
)
def amend_report(record_id: int):
    report = _writable_report(record_id)
    values = AMENDMENT.load(json_body(), mode="create")
    try:
        amended = amend(db.session, report, analyst=current_user, reason=values["reason"],
                        remarks=values.get("remarks"))
    except ReportError as error:
        raise _report_error(error) from None
    db.session.commit()
    return REPORT.dump(amended), 201, {"Location": url_for("api.get_report",
                                                           record_id=amended.id)}


def _check_issued_document(report: Report, kind: str) -> None:
    """Refuse to serve an issued document that was altered, or that names records the
    reader may no longer see in full."""
    number = report_number(report)
    problem = issued_document_problem(db.session, report)
    if problem is not None:
        logger.error("report %s (id %s): %s withheld, its integrity check failed: %s",
                     number, report.id, kind.upper(), problem)
        raise ApiError(
            500,
            f"report {number} is withheld: its stored documents do not match what was issued "
            f"({problem}). This has been logged; the laboratory should run 'dnatrack verify'.",
            {"report_id": report.id, "integrity": problem}, error="document_altered")
    withdrawn = records_withdrawn_from(db.session, report.body.get("result"), current_user)
    if withdrawn:
        logger.warning("report %s (id %s): %s withheld from user %s: %d record(s) it names "
                       "are no longer shared with them", number, report.id, kind.upper(),
                       current_user.id, len(withdrawn))
        agencies = sorted({report.body["result"]["nodes"][key]["agency"] for key in withdrawn})
        raise ApiError(
            403,
            f"issued report {number} names {len(withdrawn)} seizure(s) or animal(s) of "
            f"{', '.join(agencies)} that are no longer shared with you; an issued report is "
            "never redacted, so it is withheld. Its metadata and hashes remain readable; an "
            "amended version drafted from the results as you may see them now can be issued.",
            {"report_id": report.id, "withheld_records": len(withdrawn)})


def report_document(report: Report, kind: str) -> Response:
    """The issued file as stored (checked first, see :func:`_check_issued_document`), or for
    a draft a preview rendered now (marked DRAFT) as the reader may see it."""
    if report.status == "issued":
        _check_issued_document(report, kind)
        content = report.html if kind == "html" else report.pdf
    else:
        body = body_for_reader(db.session, report.body, current_user)
        content = render_html(body, body_sha256=body_sha256(body)).encode("utf-8") \
            if kind == "html" else render_pdf(body, body_sha256=body_sha256(body))
    media = "text/html; charset=utf-8" if kind == "html" else "application/pdf"
    name = f"{report_number(report)}{'' if report.status == 'issued' else '-DRAFT'}.{kind}"
    response = Response(content, mimetype=media)
    disposition = "inline" if kind == "html" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    if report.status == "issued":
        response.headers["X-Content-SHA256"] = (
            report.html_sha256 if kind == "html" else report.pdf_sha256)
    return response


@route(
    "/reports/<int:record_id>/html",
    "GET",
    summary="The report as HTML (issued: the stored file; draft: a preview)",
    tag="reports",
    permission="record.read",
    response_media_type="text/html",
)
def report_html(record_id: int):
    return report_document(load_visible(Report, record_id, "report", scope=report_scope), "html")


@route(
    "/reports/<int:record_id>/pdf",
    "GET",
    summary="The report as PDF (issued: the stored file; draft: a preview)",
    tag="reports",
    permission="record.read",
    response_media_type="application/pdf",
)
def report_pdf(record_id: int):
    return report_document(load_visible(Report, record_id, "report", scope=report_scope), "pdf")
