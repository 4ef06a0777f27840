"""Quality pages: import a genotyping run (its hold and the reason shown at once), a run's
plate and controls with the reviewer's disposition, and the open contamination flags."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, StringField, TextAreaField

from lims.access import visible
from lims.api.routing import load_visible
from lims.extensions import db
from lims.genotype_import import GenotypeImportError
from lims.genotyping import ProfileError, resolve_panel
from lims.models import ContaminationFlag, GenotypeProfile, GenotypingRun
from lims.quality import QualityError
from lims.quality.runs import dispose_run, import_run
from lims.web.common import NavLink, add_nav_link, bp, choice_list, holds, page, render_form
from lims.web.genotypes import available_panels

add_nav_link(NavLink("web.runs", "Runs", ("profile.write", "profile.review")))


class RunForm(FlaskForm):
    file = FileField("GeneMapper export of the run")
    plate_map = FileField("Plate map, CSV or XLSX (well, kind, name, extract), optional")
    panel = SelectField("Marker panel")
    name = StringField("Run name")
    instrument = StringField("Instrument")
    kit = StringField("Amplification kit")
    kit_lot = StringField("Kit lot")
    allelic_ladder = StringField("Allelic ladder")
    run_on = DateField("Run date", default=dt.date.today)
    negative_controls = StringField("PCR blanks (names, comma-separated), optional")


class DispositionForm(FlaskForm):
    outcome = SelectField("Disposition", choices=choice_list(
        [("accepted", "accept the run (lift the hold)"),
         ("rejected", "reject the run and its profiles")]))
    reason = TextAreaField("Reason")


def _own_runs():
    return sa.select(GenotypingRun).where(GenotypingRun.agency_id == current_user.agency_id)


@bp.route("/quality/runs", methods=["GET", "POST"])
@page("profile.write", "profile.review")
def runs():
    form = RunForm()
    form.panel.choices = choice_list((name, name) for name in available_panels())
    status, problems = 200, []
    if form.is_submitted() and form.validate():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors.append("choose the run's export")
            status = 422
        else:
            plate_map = form.plate_map.data
            fields = {name: getattr(form, name).data or "" for name in (
                "name", "instrument", "kit", "kit_lot", "allelic_ladder")}
            fields["run_on"] = form.run_on.data
            try:
                from lims.api.routing import require_permission

                require_permission("profile.write")
                run = import_run(
                    db.session, upload.read(), filename=upload.filename,
                    panel=resolve_panel(form.panel.data,
                                        current_app.config.get("PANEL_DIRECTORY")),
                    analyst=current_user, fields=fields,
                    plate_map=plate_map.read() if plate_map and plate_map.filename else None,
                    negative_controls=(form.negative_controls.data or "").split(","))
            except GenotypeImportError as error:
                db.session.rollback()
                problems = error.problems
                form.file.errors.append(str(error))
                status = 422
            except (ProfileError, ValueError) as error:
                db.session.rollback()
                form.form_errors.append(str(error))
                status = 422
            else:
                db.session.commit()
                if run.held:
                    flash(f"Run {run.name} is ON HOLD: {run.hold_reason}", "error")
                else:
                    flash(f"Run {run.name} imported; its controls are in order.", "success")
                return redirect(url_for("web.run", run_id=run.id))
    listed = db.session.scalars(_own_runs().order_by(GenotypingRun.id.desc()).limit(50)).all()
    return render_form("quality/runs.html", form, status, problems=problems, runs=listed)


@bp.route("/quality/runs/<int:run_id>", methods=["GET", "POST"])
@page("profile.write", "profile.review")
def run(run_id: int):
    record = load_visible(GenotypingRun, run_id, "run",
                          scope=lambda model, user, _: model.agency_id == user.agency_id)
    form = DispositionForm()
    status = 200
    if form.is_submitted() and form.validate():
        from lims.api.routing import require_permission

        require_permission("profile.review")
        try:
            dispose_run(db.session, record, current_user, form.outcome.data, form.reason.data)
        except (QualityError, ProfileError) as error:
            db.session.rollback()
            form.form_errors.append(str(error))
            status = error.status
        else:
            db.session.commit()
            flash(f"Run {record.name}: disposition recorded ({record.status}).", "success")
            return redirect(url_for("web.run", run_id=record.id))
    flags = db.session.scalars(
        sa.select(ContaminationFlag).where(ContaminationFlag.run_id == record.id)
        .order_by(ContaminationFlag.id)).all()
    return render_form("quality/run.html", form, status, run=record, flags=flags,
                       can_review=holds("profile.review"))


@bp.route("/quality/flags")
@page("record.read")
def contamination_flags():
    flags = db.session.scalars(
        sa.select(ContaminationFlag).join(GenotypeProfile,
                                          GenotypeProfile.id == ContaminationFlag.profile_id)
        .where(visible(GenotypeProfile, current_user))
        .order_by(ContaminationFlag.status != "open", ContaminationFlag.id.desc())
        .limit(200)).all()
    return render_template("quality/flags.html", flags=flags)
