"""Genotype files and the review workflow: import a file (every problem listed by row), the
review queue (review, release, reject with a reason — never one's own profiles) and the
profile page."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField, StringField, TextAreaField

from lims import jobs
from lims.access import visible
from lims.api.routing import load_visible
from lims.extensions import db
from lims.genotype_import import IMPORT_FORMATS, GenotypeImportError, import_genotypes
from lims.genotyping import (
    ProfileError,
    reject_profile,
    release_profile,
    resolve_panel,
    review_profile,
)
from lims.models import GenotypeImport, GenotypeProfile, Sample
from lims.web.common import bp, choice_list, holds, page, render_form, user_names
from reference_data import list_panels

logger = logging.getLogger(__name__)


class ImportForm(FlaskForm):
    file = FileField("Genotype file (GeneMapper export, long CSV or wide CSV)")
    panel = SelectField("Marker panel")
    file_format = SelectField(
        "Format",
        choices=choice_list([("", "detect from the file"), *IMPORT_FORMATS]),
    )
    run = StringField("Run (plate or instrument run)")


class WorkflowForm(FlaskForm):
    """Review and release: no fields, the CSRF token only."""


class RejectForm(FlaskForm):
    reason = TextAreaField("Reason for rejecting")


def available_panels() -> list[str]:
    """Panels an import can be checked against: the installation's folder, then bundled."""
    names = set(list_panels())
    folder = current_app.config.get("PANEL_DIRECTORY")
    if folder:
        names |= {path.stem for path in Path(folder).glob("*.json")}
    return sorted(names)


# --------------------------------------------------------------------------- imports
@bp.route("/genotypes/import", methods=["GET", "POST"])
@page("profile.write")
def import_genotypes_page():
    form = ImportForm()
    form.panel.choices = choice_list((name, name) for name in available_panels())
    status = 200
    problems = []
    if form.is_submitted() and form.validate():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors.append("choose a file to import")
            status = 422
        else:
            try:
                batch, profiles = import_genotypes(
                    db.session,
                    upload.read(),
                    filename=upload.filename,
                    panel=resolve_panel(
                        form.panel.data, current_app.config.get("PANEL_DIRECTORY")
                    ),
                    analyst=current_user,
                    file_format=form.file_format.data or None,
                    run=(form.run.data or "").strip() or None,
                )
            except GenotypeImportError as error:
                db.session.rollback()
                problems = error.problems
                form.file.errors.append(str(error))
                status = 422
            except ProfileError as error:
                db.session.rollback()
                form.form_errors.append(str(error))
                status = error.status
            except ValueError as error:  # a panel file that cannot be read
                db.session.rollback()
                form.panel.errors.append(str(error))
                status = 422
            else:
                db.session.commit()
                logger.info("genotype import %s (%s, %s profiles, panel %s) by user %s",
                            batch.id, batch.filename, len(profiles), batch.panel,
                            current_user.id)
                plural = "s" if len(profiles) != 1 else ""
                flash(
                    f"Imported {len(profiles)} profile{plural} from {batch.filename}; "
                    "waiting for review.",
                    "success",
                )
                return redirect(url_for("web.genotype_import", import_id=batch.id))
    imports = db.session.scalars(
        sa.select(GenotypeImport)
        .where(visible(GenotypeImport, current_user))
        .order_by(GenotypeImport.id.desc())
        .limit(20)
    ).all()
    return render_form(
        "genotypes/import.html",
        form,
        status,
        problems=problems,
        imports=imports,
        importers=user_names(batch.imported_by_id for batch in imports),
    )


@bp.route("/genotypes/imports/<int:import_id>")
@page("profile.write", "profile.review")
def genotype_import(import_id: int):
    batch = load_visible(GenotypeImport, import_id, "genotype import")
    profiles = db.session.scalars(
        sa.select(GenotypeProfile)
        .where(GenotypeProfile.import_id == import_id, visible(GenotypeProfile, current_user))
        .order_by(GenotypeProfile.id)
    ).all()
    return render_template(
        "genotypes/import_detail.html",
        batch=batch,
        profiles=profiles,
        importer=user_names([batch.imported_by_id]).get(batch.imported_by_id, ""),
    )


# --------------------------------------------------------------------------- review
def _queue() -> list[GenotypeProfile]:
    return list(
        db.session.scalars(
            sa.select(GenotypeProfile)
            .join(Sample, Sample.id == GenotypeProfile.sample_id)
            .where(
                GenotypeProfile.state.in_(("pending", "reviewed")),
                GenotypeProfile.superseded.is_(False),
                visible(GenotypeProfile, current_user),
            )
            .order_by(GenotypeProfile.state, Sample.barcode, GenotypeProfile.id)
        )
    )


def _render_queue(status: int = 200, errors: dict[int, list[str]] | None = None,
                  reject_forms: dict[int, RejectForm] | None = None):
    profiles = _queue()
    forms = reject_forms or {}
    for profile in profiles:
        forms.setdefault(profile.id, RejectForm(formdata=None, prefix=f"p{profile.id}"))
    return render_template(
        "genotypes/review.html",
        profiles=profiles,
        workflow_form=WorkflowForm(formdata=None),
        reject_forms=forms,
        errors=errors or {},
        analysts=user_names(profile.analyst_id for profile in profiles),
    ), status


@bp.route("/genotypes/review")
@page("profile.review")
def review_queue():
    return _render_queue()


def _workflow_step(profile_id: int, step, done: str, form: RejectForm | None = None):
    """Apply ``step`` to the profile with the API's checks: need-to-know for changing it,
    then the workflow's own rules (its state, and never by its analyst). The CSRF token was
    checked before the view ran."""
    profile = load_visible(GenotypeProfile, profile_id, "profile", for_writing=True)
    try:
        step(profile)
    except ProfileError as error:
        db.session.rollback()
        if form is not None and error.problems:
            form.reason.errors = [str(error)]
            return _render_queue(error.status, reject_forms={profile_id: form})
        return _render_queue(error.status, {profile_id: [str(error)]})
    db.session.commit()
    flash(f"Profile {profile.id} of sample {profile.sample.barcode} {done}.", "success")
    return redirect(url_for("web.review_queue"))


@bp.route("/profiles/<int:profile_id>/review", methods=["POST"])
@page("profile.review")
def review_profile_page(profile_id: int):
    return _workflow_step(
        profile_id, lambda profile: review_profile(profile, current_user), "reviewed"
    )


@bp.route("/profiles/<int:profile_id>/release", methods=["POST"])
@page("profile.review")
def release_profile_page(profile_id: int):
    answer = _workflow_step(
        profile_id, lambda profile: release_profile(profile, current_user), "released"
    )
    jobs.wake(current_app)  # the network search of the new profile is queued
    return answer


@bp.route("/profiles/<int:profile_id>/reject", methods=["POST"])
@page("profile.review")
def reject_profile_page(profile_id: int):
    form = RejectForm(prefix=f"p{profile_id}")
    return _workflow_step(
        profile_id,
        lambda profile: reject_profile(profile, current_user, form.reason.data or ""),
        "rejected",
        form,
    )


# --------------------------------------------------------------------------- profiles
@bp.route("/profiles/<int:profile_id>")
@page("record.read")
def profile(profile_id: int):
    record = load_visible(GenotypeProfile, profile_id, "profile")
    versions = db.session.scalars(
        sa.select(GenotypeProfile)
        .where(
            GenotypeProfile.sample_id == record.sample_id,
            GenotypeProfile.panel == record.panel,
        )
        .order_by(GenotypeProfile.version)
    ).all()
    try:
        loci = resolve_panel(record.panel, current_app.config.get("PANEL_DIRECTORY")).locus_names
    except ValueError:
        loci = tuple(record.alleles)
    people = user_names(
        [record.analyst_id, record.reviewer_id, record.released_by_id]
        + [version.analyst_id for version in versions]
    )
    return render_template(
        "genotypes/profile.html",
        profile=record,
        versions=versions,
        loci=loci,
        people=people,
        may_review=holds("profile.review"),
    )
