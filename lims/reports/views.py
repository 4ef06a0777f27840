"""Pages for match requests and reports: request analyses of a seizure or case, follow the job,
draft, sign, amend and download reports.

Every action goes through the same functions as the API (:mod:`lims.api.requests`,
:mod:`lims.reports.issue`) with the same permissions and need-to-know, so a page can do
nothing the API would refuse. A queued or running request's page refreshes itself every few
seconds (a plain ``<meta http-equiv="refresh">``; no JavaScript).
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length, Optional

from dnatrack.reference import load_reference_set
from lims import jobs
from lims.access import visible
from lims.api.requests import new_match_request, report_document, requeue
from lims.api.routing import load_visible
from lims.errors import ApiError
from lims.extensions import db
from lims.models import (
    ANALYSES,
    REPORT_KINDS,
    Agency,
    Case,
    GenotypeProfile,
    MatchRequest,
    Report,
    Sample,
    Seizure,
)
from lims.reports.access import (
    records_withdrawn_from,
    report_scope,
    request_scope,
    result_for_reader,
)
from lims.reports.analysis import seizure_barcodes
from lims.reports.issue import (
    ReportError,
    amend,
    draft_report,
    report_number,
    revise_draft,
    sign_as_reviewer,
    withdraw_draft,
)
from lims.reports.layout import present
from lims.web.common import NavLink, add_nav_link, choice_list, holds, page, show_problems
from matching.identity import STRINGENCIES
from reference_data import list_reference_sets

bp = Blueprint("reports", __name__)

add_nav_link(NavLink("reports.match_requests", "Match requests", ("record.read",)))

ANALYSIS_LABELS = {
    "identity": "Identity (same animal, direct match)",
    "kinship": "Kinship (parent–offspring, siblings)",
    "assignment": "Population assignment",
    "mixture": "Seizure mixture proportions",
    "geographic": "Geographic origin (map)",
}
#: Seconds between automatic refreshes of a request that is still queued or running.
REFRESH_SECONDS = 3


#: API field names of match-request problems → the form's field names.
FORM_FIELDS = {"seizure_id": "subject", "case_id": "subject", "parameters.theta": "theta",
               "parameters.stringency": "stringency", "parameters": "theta"}


def _named_for_form(error: ApiError) -> ApiError:
    """The same refusal with its problems named by the request form's fields."""
    problems = (error.details or {}).get("problems")
    if not problems:
        return error
    renamed = [{**problem, "field": FORM_FIELDS.get(problem["field"], problem["field"])}
               for problem in problems]
    return ApiError(error.status, error.message, {"problems": renamed})


class MultiCheckboxField(SelectMultipleField):
    """Several choices as check boxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class MatchRequestForm(FlaskForm):
    subject = SelectField("Seizure or case", validators=[DataRequired()])
    analyses = MultiCheckboxField("Analyses", validators=[DataRequired()])
    reference_sets = MultiCheckboxField("Reference sets", validators=[DataRequired()])
    theta = StringField("θ override", validators=[Optional(), Length(max=50)])
    stringency = SelectField("Identity stringency", default="moderate")


class DraftForm(FlaskForm):
    kind = SelectField("Document", choices=choice_list(
        [("evidential", "Evidential report"), ("lead", "Hit notification (investigative lead)")]))
    remarks = TextAreaField("Remarks", validators=[Optional(), Length(max=5000)])


class ReviseForm(FlaskForm):
    remarks = TextAreaField("Remarks", validators=[Optional(), Length(max=5000)])


class AmendForm(FlaskForm):
    reason = TextAreaField("Reason for the amendment", validators=[DataRequired(),
                                                                   Length(max=5000)])
    remarks = TextAreaField("Remarks of the new version", validators=[Optional(),
                                                                      Length(max=5000)])


class ActionForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""


def _subject_choices() -> list[tuple[str, str]]:
    """Seizures and cases the user may add to, as ``("seizure:<id>", label)`` choices; another
    agency's (a case shared for contributing) name that agency, as references are unique per
    agency only."""
    seizures = db.session.execute(
        sa.select(Seizure.id, Seizure.reference, Case.reference, Case.agency_id, Agency.name)
        .join(Case, Case.id == Seizure.case_id)
        .join(Agency, Agency.id == Case.agency_id)
        .where(visible(Seizure, current_user, for_writing=True))
        .order_by(Case.reference, Seizure.reference, Agency.name)
    ).all()
    cases = db.session.execute(
        sa.select(Case.id, Case.reference, Case.title, Case.agency_id, Agency.name)
        .join(Agency, Agency.id == Case.agency_id)
        .where(visible(Case, current_user, for_writing=True))
        .order_by(Case.reference, Agency.name)
    ).all()

    def held(agency_id: int, agency: str) -> str:
        return "" if agency_id == current_user.agency_id else f" held by {agency}"

    return ([(f"seizure:{sid}", f"Seizure {ref} (case {case_ref}{held(agency_id, agency)})")
             for sid, ref, case_ref, agency_id, agency in seizures]
            + [(f"case:{cid}", f"Every seizure and animal of case {ref}{held(agency_id, agency)}"
                               f" — {title}")
               for cid, ref, title, agency_id, agency in cases])


def _subject_panel(kind: str, record_id: int) -> str | None:
    """The panel most of the subject's released profiles are typed on (a seizure's: those of
    samples taken from its items and of their aliquots, as the analysis counts them), to
    preselect its reference sets."""
    statement = (
        sa.select(GenotypeProfile.panel, sa.func.count())
        .join(Sample, Sample.id == GenotypeProfile.sample_id)
        .where(GenotypeProfile.state == "released", GenotypeProfile.superseded.is_(False))
        .group_by(GenotypeProfile.panel)
    )
    if kind == "case":
        statement = statement.where(Sample.case_id == record_id)
    else:
        statement = statement.where(
            Sample.barcode.in_(seizure_barcodes(db.session, record_id)))
    counts = db.session.execute(statement).all()
    return max(counts, key=lambda row: (row[1], row[0]))[0] if counts else None


@functools.cache
def _bundled_references() -> dict[str, tuple[str, str | None, bool]]:
    """``name -> (species, panel, simulated)`` of the bundled reference sets (read once)."""
    described = {}
    for name in list_reference_sets():
        reference = load_reference_set(name)
        described[name] = (reference.species, reference.panel, reference.simulated)
    return described


def _reference_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} ({species}, panel {panel}{', SIMULATED' if simulated else ''})")
            for name, (species, panel, simulated) in _bundled_references().items()]


@bp.route("/match-requests")
@page("record.read")
def match_requests():
    requests = db.session.scalars(
        sa.select(MatchRequest).where(request_scope(MatchRequest, current_user, False))
        .order_by(MatchRequest.created_at.desc()).limit(200)
    ).all()
    return render_template("reports/request_list.html", requests=requests,
                           may_request=holds("match.request"))


@bp.route("/match-requests/new", methods=["GET", "POST"])
@page("match.request")
def new_match_request_page():
    form = MatchRequestForm()
    form.subject.choices = choice_list(_subject_choices())
    form.analyses.choices = choice_list(list(ANALYSIS_LABELS.items()))
    references = _reference_choices()
    form.reference_sets.choices = choice_list(references)
    form.stringency.choices = choice_list(STRINGENCIES)
    if request.method == "GET":
        for kind in ("seizure", "case"):
            record_id = request.args.get(f"{kind}_id", type=int)
            if record_id is not None and f"{kind}:{record_id}" in dict(_subject_choices()):
                form.subject.data = f"{kind}:{record_id}"
                # Every set of the panel, so that assignment can tell the species apart and
                # each profile's statistics use the frequencies of its own species.
                panel = _subject_panel(kind, record_id)
                form.reference_sets.data = [
                    name for name, (_, set_panel, _) in _bundled_references().items()
                    if set_panel == panel]
        form.analyses.data = list(ANALYSES)
    status = 200
    if form.validate_on_submit():
        kind, _, record_id = form.subject.data.partition(":")
        parameters = {"stringency": form.stringency.data}
        if form.theta.data:
            theta = form.theta.data.strip()
            try:
                parameters["theta"] = float(theta)
            except ValueError:
                parameters["theta"] = theta
        values = {f"{kind}_id": int(record_id), "analyses": form.analyses.data,
                  "reference_sets": form.reference_sets.data, "parameters": parameters}
        try:
            created = new_match_request(values)
        except ApiError as error:
            status = show_problems(form, _named_for_form(error))
        else:
            db.session.commit()
            jobs.notify(current_app)
            flash(f"Match request {created.id} is queued.", "success")
            return redirect(url_for("reports.match_request", request_id=created.id))
    elif form.is_submitted():
        status = 422
    return render_template("reports/request_new.html", form=form), status


@bp.route("/match-requests/<int:request_id>")
@page("record.read")
def match_request(request_id: int):
    record = load_visible(MatchRequest, request_id, "match request", scope=request_scope)
    reports = db.session.scalars(
        sa.select(Report).where(Report.match_request_id == record.id)
        .order_by(Report.kind, Report.version)
    ).all()
    may_write = bool(db.session.scalar(sa.select(sa.literal(True)).where(
        MatchRequest.id == record.id, request_scope(MatchRequest, current_user, True))))
    return render_template(
        "reports/request.html",
        record=record,
        result=present(result_for_reader(db.session, record.result, current_user))
        if record.status == "done" else None,
        reports=reports,
        number=report_number,
        analysis_labels=ANALYSIS_LABELS,
        may_draft=may_write and holds("report.prepare") and record.status == "done",
        may_rerun=may_write and holds("match.request") and record.status in ("done", "failed"),
        draft_form=DraftForm(),
        action_form=ActionForm(),
        refresh=REFRESH_SECONDS if record.status in ("queued", "running") else None,
    )


def _writable_request(request_id: int) -> MatchRequest:
    return load_visible(MatchRequest, request_id, "match request", for_writing=True,
                        scope=request_scope)


@bp.route("/match-requests/<int:request_id>/run", methods=["POST"])
@page("match.request")
def rerun(request_id: int):
    record = _writable_request(request_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        requeue(record)
    except ApiError as error:
        flash(error.message, "error")
    else:
        db.session.commit()
        jobs.notify(current_app)
        flash(f"Match request {record.id} is queued again.", "success")
    return redirect(url_for("reports.match_request", request_id=record.id))


@bp.route("/match-requests/<int:request_id>/reports", methods=["POST"])
@page("report.prepare")
def draft(request_id: int):
    record = _writable_request(request_id)
    form = DraftForm()
    if not form.validate_on_submit() or form.kind.data not in REPORT_KINDS:
        flash("The report could not be drafted: choose the kind of document.", "error")
        return redirect(url_for("reports.match_request", request_id=record.id))
    try:
        report = draft_report(db.session, record, analyst=current_user, kind=form.kind.data,
                              remarks=form.remarks.data or None)
    except ReportError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("reports.match_request", request_id=record.id))
    db.session.commit()
    flash(f"{report_number(report)} is {report.status}.", "success")
    return redirect(url_for("reports.report", report_id=report.id))


@bp.route("/reports/<int:report_id>")
@page("record.read")
def report(report_id: int):
    record = load_visible(Report, report_id, "report", scope=report_scope)
    may_write = bool(db.session.scalar(sa.select(sa.literal(True)).where(
        Report.id == record.id, report_scope(Report, current_user, True))))
    analyst = next((s for s in record.signatures if s.role == "analyst"), None)
    versions = db.session.scalars(
        sa.select(Report).where(Report.match_request_id == record.match_request_id,
                                Report.kind == record.kind).order_by(Report.version)
    ).all()
    draft_open = record.status == "draft"
    withheld = record.status == "issued" and bool(
        records_withdrawn_from(db.session, record.body.get("result"), current_user))
    return render_template(
        "reports/report.html",
        record=record,
        withheld=withheld,
        number=report_number,
        versions=versions,
        may_sign=may_write and draft_open and record.kind == "evidential"
        and holds("report.review") and analyst is not None and analyst.user_id != current_user.id,
        may_revise=may_write and draft_open and holds("report.prepare")
        and analyst is not None and analyst.user_id == current_user.id,
        may_withdraw=may_write and draft_open and holds("report.prepare"),
        may_amend=may_write and record.status == "issued" and holds("report.prepare")
        and versions[-1].id == record.id,
        action_form=ActionForm(),
        revise_form=ReviseForm(remarks=record.remarks),
        amend_form=AmendForm(),
    )


def _writable_report(report_id: int) -> Report:
    return load_visible(Report, report_id, "report", for_writing=True, scope=report_scope)


def _report_action(report_id: int, form: FlaskForm, action, done: str):
    record = _writable_report(report_id)
    number = report_number(record)
    if not form.validate_on_submit():
        flash("Nothing was changed: " + "; ".join(
            message for messages in form.errors.values() for message in messages), "error")
        return redirect(url_for("reports.report", report_id=record.id))
    try:
        outcome = action(record)
    except ReportError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("reports.report", report_id=record.id))
    db.session.commit()
    if outcome == "withdrawn":
        flash(done.format(number=number), "success")
        return redirect(url_for("reports.match_request", request_id=record.match_request_id))
    target = outcome if isinstance(outcome, Report) else record
    flash(done.format(number=report_number(target)), "success")
    return redirect(url_for("reports.report", report_id=target.id))


@bp.route("/reports/<int:report_id>/sign", methods=["POST"])
@page("report.review")
def sign(report_id: int):
    return _report_action(
        report_id, ActionForm(),
        lambda record: sign_as_reviewer(db.session, record, current_user),
        "{number} is signed and issued.")


@bp.route("/reports/<int:report_id>/revise", methods=["POST"])
@page("report.prepare")
def revise(report_id: int):
    form = ReviseForm()
    return _report_action(
        report_id, form,
        lambda record: revise_draft(db.session, record, analyst=current_user,
                                    remarks=form.remarks.data or None),
        "{number} is revised and signed again.")


@bp.route("/reports/<int:report_id>/withdraw", methods=["POST"])
@page("report.prepare")
def withdraw(report_id: int):
    def action(record: Report) -> str:
        withdraw_draft(db.session, record)
        return "withdrawn"

    return _report_action(report_id, ActionForm(), action, "The draft {number} is withdrawn.")


@bp.route("/reports/<int:report_id>/amend", methods=["POST"])
@page("report.prepare")
def amend_page(report_id: int):
    form = AmendForm()
    return _report_action(
        report_id, form,
        lambda record: amend(db.session, record, analyst=current_user,
                             reason=form.reason.data, remarks=form.remarks.data or None),
        "{number} is drafted; it replaces the issued version once issued.")


@bp.route("/reports/<int:report_id>/document.<kind>")
@page("record.read")
def document(report_id: int, kind: str):
    if kind not in ("html", "pdf"):
        abort(404)
    return report_document(load_visible(Report, report_id, "report", scope=report_scope), kind)
