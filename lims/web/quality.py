"""Quality pages: import a genotyping run (its hold and the reason shown at once), a run's
plate and controls with the reviewer's disposition, the contamination flags and a reviewer's
clearing or confirming one, hit confirmations of a profile, species tests of a sample,
validation and proficiency records, positive controls, elimination profiles and extraction
batches.

Every form carries its CSRF token; each page checks the permission its API endpoint checks
(on submitting, the write permission) and need-to-know as the API does, and records through
the same functions (:mod:`lims.quality`, the API's builders), so the rules are the same.
The sample and profile pages show their quality section (:func:`sample_quality`,
:func:`profile_quality`) through template globals, so their views need not know of it."""

from __future__ import annotations

import datetime as dt
import logging
import re

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField

from lims.access import visible
from lims.api.quality import (
    ELIMINATION_PROFILES,
    EXTRACTION_BATCHES,
    POSITIVE_CONTROLS,
    QUALITY_UPLOAD,
    add_quality_record,
)
from lims.api.routing import load_visible, require_permission
from lims.api.schema import invalid
from lims.errors import ApiError
from lims.extensions import db
from lims.genotype_import import GenotypeImportError
from lims.genotyping import ProfileError, resolve_panel
from lims.models import (
    ContaminationFlag,
    EliminationProfile,
    Extract,
    ExtractionBatch,
    ExtractionBatchExtract,
    GenotypeProfile,
    GenotypingRun,
    HitConfirmation,
    PlateWell,
    PositiveControl,
    QualityRecord,
    Sample,
    SpeciesTest,
    User,
)
from lims.models.quality import CONFIRMATION_METHODS, ELIMINATION_KINDS, OUTCOMES
from lims.quality import QualityError
from lims.quality.checks import (
    descendants,
    record_confirmation,
    replicate_consensus,
    resolve_flag,
    review_blockers,
)
from lims.quality.runs import dispose_run, import_run
from lims.quality.species_tests import record_species_test, species_finding
from lims.web.common import (
    NavLink,
    RecordSelectField,
    add_nav_link,
    api_input,
    bp,
    can_write,
    choice_list,
    holds,
    page,
    render_form,
    save_form,
    show_problems,
    user_names,
)
from lims.web.genotypes import available_panels

logger = logging.getLogger(__name__)

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
    # The flags of the plate's profiles (elimination, batch and replicate findings too), and
    # those raised by this plate.
    plate_profiles = sa.select(PlateWell.profile_id).where(PlateWell.run_id == record.id,
                                                           PlateWell.profile_id.is_not(None))
    flags = db.session.scalars(
        sa.select(ContaminationFlag).where(sa.or_(
            ContaminationFlag.run_id == record.id,
            ContaminationFlag.profile_id.in_(plate_profiles)))
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


# ----------------------------------------------------------------------------- helpers
_ALLELE_LINE = re.compile(r"\s*([\w.-]+)\s*[:=]?\s*(-?\d+)(?:\s*[/,\s]\s*(-?\d+))?\s*")


def parse_alleles(text: str | None) -> dict[str, list[int]]:
    """``{locus: [allele, allele]}`` from lines ``LOCUS a/b`` (or ``LOCUS: a, b``; one allele
    is a homozygote); blank lines skipped. Raises :class:`~lims.errors.ApiError` (422,
    field ``alleles``) naming the first line that is no such line."""
    alleles: dict[str, list[int]] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _ALLELE_LINE.fullmatch(line)
        if match is None:
            raise invalid("alleles", f"line {number}: {line.strip()!r} is not "
                          "'LOCUS allele/allele'")
        locus = match[1]
        if locus in alleles:
            raise invalid("alleles", f"line {number}: locus {locus} is given twice")
        alleles[locus] = [int(match[2]), int(match[3] if match[3] else match[2])]
    if not alleles:
        raise invalid("alleles", "give the genotype, one locus per line (LOCUS a/b)")
    return alleles


def _with_alleles(create):
    """An API builder taking the form's alleles text as the API's alleles object."""
    def build(values: dict):
        return create({**values, "alleles": parse_alleles(values.get("alleles"))})
    return build


def _own_agency(model, user, _for_writing):
    return model.agency_id == user.agency_id


ALLELES_HINT = "One locus per line: LOCUS allele/allele (one allele for a homozygote)."


# ----------------------------------------------------------------------------- flags
class ResolutionForm(FlaskForm):
    status = SelectField("Disposition", choices=choice_list(
        [("cleared", "clear it (not contamination)"),
         ("confirmed", "confirm it (contamination; the profile stays blocked)")]))
    reason = TextAreaField("Reason")


@bp.route("/quality/flags/<int:flag_id>", methods=["GET", "POST"])
@page("record.read")
def contamination_flag(flag_id: int):
    flag = load_visible(ContaminationFlag, flag_id, "contamination flag",
                        scope=lambda model, user, writing: model.profile_id.in_(
                            sa.select(GenotypeProfile.id).where(
                                visible(GenotypeProfile, user, for_writing=writing))))
    form = ResolutionForm()
    status = 200
    if form.is_submitted():
        require_permission("profile.review")
        if not can_write(GenotypeProfile, flag.profile_id):
            raise ApiError(404, f"contamination flag {flag_id} not found")
        if form.validate():
            try:
                resolve_flag(flag, current_user, form.status.data, form.reason.data)
            except QualityError as error:
                db.session.rollback()
                form.form_errors.append(str(error))
                status = error.status
            else:
                db.session.commit()
                flash(f"Contamination flag {flag.id} {flag.status}.", "success")
                return redirect(url_for("web.contamination_flag", flag_id=flag.id))
    other = db.session.get(GenotypeProfile, flag.other_profile_id) \
        if flag.other_profile_id else None
    elimination = db.session.get(EliminationProfile, flag.elimination_profile_id) \
        if flag.elimination_profile_id else None
    run_record = db.session.get(GenotypingRun, flag.run_id) if flag.run_id else None
    return render_form("quality/flag.html", form, status, flag=flag, other=other,
                       elimination=elimination, run=run_record,
                       people=user_names([flag.resolved_by_id]),
                       can_resolve=holds("profile.review") and flag.status == "open")


# ----------------------------------------------------------------------------- confirmations
class ConfirmationForm(FlaskForm):
    method = SelectField("Method", choices=choice_list(CONFIRMATION_METHODS))
    confirming_profile_id = RecordSelectField("Confirming profile (a replicate's), or")
    alleles = TextAreaField("the re-typed genotype")
    note = TextAreaField("Note")


def _replicate_choices(profile: GenotypeProfile) -> list:
    tubes = {tube.id for tube in profile.sample.lineage()}
    tubes |= {tube.id for tube in descendants(db.session, profile.sample)}
    others = db.session.scalars(
        sa.select(GenotypeProfile).where(
            GenotypeProfile.sample_id.in_(tubes), GenotypeProfile.id != profile.id,
            GenotypeProfile.panel == profile.panel, GenotypeProfile.superseded.is_(False),
            GenotypeProfile.state != "rejected",
            visible(GenotypeProfile, current_user)).order_by(GenotypeProfile.id)).all()
    return choice_list([("", "— (give the re-typed genotype)")] + [
        (other.id, f"profile {other.id} of {other.sample.barcode} ({other.state})")
        for other in others])


@bp.route("/quality/profiles/<int:profile_id>/confirmations", methods=["GET", "POST"])
@page("profile.write")
def profile_confirmations(profile_id: int):
    profile = load_visible(GenotypeProfile, profile_id, "profile", for_writing=True)
    form = ConfirmationForm()
    form.confirming_profile_id.choices = _replicate_choices(profile)
    status = 200
    if form.is_submitted() and form.validate():
        try:
            other = None
            alleles = None
            if form.confirming_profile_id.data is not None:
                other = load_visible(GenotypeProfile, form.confirming_profile_id.data,
                                     "profile")
                if (form.alleles.data or "").strip():
                    raise invalid("alleles", "give either the re-typed genotype or the "
                                  "confirming profile")
            else:
                alleles = parse_alleles(form.alleles.data)
            confirmation = record_confirmation(
                db.session, profile, current_user, method=form.method.data, alleles=alleles,
                confirming_profile=other, note=(form.note.data or "").strip() or None)
        except ApiError as error:
            status = show_problems(form, error)
        except QualityError as error:
            status = show_problems(form, ApiError(error.status, str(error),
                                                  {"problems": error.problems}))
        else:
            db.session.commit()
            verdict = "concordant" if confirmation.concordant else \
                "DISCORDANT: it confirms nothing"
            flash(f"Confirmation {confirmation.id} recorded: {verdict} at "
                  f"{confirmation.comparison['loci_compared']} loci.",
                  "success" if confirmation.concordant else "error")
            return redirect(url_for("web.profile_confirmations", profile_id=profile.id))
    confirmations = db.session.scalars(
        sa.select(HitConfirmation).where(HitConfirmation.profile_id == profile.id)
        .order_by(HitConfirmation.id)).all()
    return render_form("quality/confirmations.html", form, status, profile=profile,
                       confirmations=confirmations, alleles_hint=ALLELES_HINT,
                       people=user_names(c.confirmed_by_id for c in confirmations))


# ----------------------------------------------------------------------------- species tests
class SpeciesTestForm(FlaskForm):
    file = FileField("Read file (FASTA, FASTQ or AB1 trace)")
    marker = StringField("Barcode marker", default="cytb")


@bp.route("/quality/samples/<int:sample_id>/species-tests", methods=["GET", "POST"])
@page("profile.write")
def sample_species_tests(sample_id: int):
    sample = load_visible(Sample, sample_id, "sample", for_writing=True)
    form = SpeciesTestForm()
    status = 200
    if form.is_submitted() and form.validate():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors.append("choose the read file")
            status = 422
        else:
            try:
                test = record_species_test(
                    db.session, sample, current_user, upload.read(), filename=upload.filename,
                    marker=(form.marker.data or "").strip() or "cytb",
                    barcode_set=current_app.config.get("SPECIES_BARCODE_SET"))
            except QualityError as error:
                status = show_problems(form, ApiError(error.status, str(error),
                                                      {"problems": error.problems}))
            else:
                db.session.commit()
                flash(f"Species test {test.id}: {species_finding(test)}.", "success")
                return redirect(url_for("web.species_test", test_id=test.id))
    tests = db.session.scalars(sa.select(SpeciesTest).where(SpeciesTest.sample_id == sample.id)
                               .order_by(SpeciesTest.id)).all()
    return render_form("quality/species_tests.html", form, status, sample=sample, tests=tests)


@bp.route("/quality/species-tests/<int:test_id>")
@page("record.read")
def species_test(test_id: int):
    test = load_visible(SpeciesTest, test_id, "species test",
                        scope=lambda model, user, writing: model.sample_id.in_(
                            sa.select(Sample.id).where(
                                visible(Sample, user, for_writing=writing))))
    return render_template("quality/species_test.html", test=test,
                           finding=species_finding(test),
                           people=user_names([test.tested_by_id]))


# ----------------------------------------------------------------------------- records
class QualityRecordForm(FlaskForm):
    kind = SelectField("Kind", choices=choice_list(
        [("validation", "validation study (of a panel or method)"),
         ("proficiency", "proficiency test (of an analyst)")]))
    method = StringField("Panel or method")
    title = StringField("Study or test")
    analyst_id = RecordSelectField("Analyst tested (proficiency)")
    outcome = SelectField("Outcome", choices=choice_list(OUTCOMES))
    performed_on = DateField("Performed on")
    file = FileField("Report file, optional")


@bp.route("/quality/records", methods=["GET", "POST"])
@page("record.read")
def quality_records():
    form = QualityRecordForm()
    staff = db.session.scalars(sa.select(User).where(User.agency_id == current_user.agency_id)
                               .order_by(User.full_name)).all()
    form.analyst_id.choices = choice_list([("", "—")] + [(u.id, u.full_name) for u in staff])
    status = 200
    if form.is_submitted():
        require_permission("profile.review")
        form.validate()
        typed = [name for name in ("kind", "method", "title", "analyst_id", "outcome",
                                   "performed_on") if not form[name].errors]
        data = api_input(form, typed)
        upload = form.file.data
        if upload is not None and upload.filename:
            data["file"] = upload
        try:
            record = add_quality_record(QUALITY_UPLOAD.load(data, mode="create"))
        except ApiError as error:
            status = show_problems(form, error)
        else:
            if form.errors:
                db.session.rollback()
                status = 422
            else:
                db.session.commit()
                flash(f"{record.kind.title()} record {record.id} ({record.title}, "
                      f"{record.outcome}) saved.", "success")
                return redirect(url_for("web.quality_records"))
    records = db.session.scalars(
        sa.select(QualityRecord).where(QualityRecord.agency_id == current_user.agency_id)
        .order_by(QualityRecord.performed_on.desc(), QualityRecord.id.desc()).limit(200)).all()
    return render_form("quality/records.html", form, status, records=records,
                       people={u.id: u.full_name for u in staff},
                       can_record=holds("profile.review"))


# ----------------------------------------------------------------------------- controls
class PositiveControlForm(FlaskForm):
    name = StringField("Name (as on the plate)")
    panel = SelectField("Marker panel")
    alleles = TextAreaField("Expected genotype")


class EliminationForm(FlaskForm):
    name = StringField("Name")
    kind = SelectField("Kind", choices=choice_list(ELIMINATION_KINDS))
    panel = SelectField("Marker panel")
    alleles = TextAreaField("Genotype")
    description = TextAreaField("Description, optional")


def _genotype_page(form, resource, model, template: str, noun: str, endpoint: str):
    form.panel.choices = choice_list((name, name) for name in available_panels())
    status = 200
    if form.is_submitted():
        require_permission("profile.write")
        record, status = save_form(form, _with_alleles(resource.add_record))
        if record is not None:
            logger.info("%s %s (%s) recorded by user %s", noun, record.id, record.name,
                        current_user.id)
            flash(f"{noun.capitalize()} {record.name} on {record.panel} saved.", "success")
            return redirect(url_for(endpoint))
    records = db.session.scalars(
        sa.select(model).where(model.agency_id == current_user.agency_id)
        .order_by(model.panel, model.name)).all()
    return render_form(template, form, status, records=records, alleles_hint=ALLELES_HINT,
                       can_write=holds("profile.write"))


@bp.route("/quality/positive-controls", methods=["GET", "POST"])
@page("profile.write", "profile.review")
def positive_controls():
    return _genotype_page(PositiveControlForm(), POSITIVE_CONTROLS, PositiveControl,
                          "quality/positive_controls.html", "positive control",
                          "web.positive_controls")


@bp.route("/quality/elimination-profiles", methods=["GET", "POST"])
@page("profile.write", "profile.review")
def elimination_profiles():
    return _genotype_page(EliminationForm(), ELIMINATION_PROFILES, EliminationProfile,
                          "quality/elimination_profiles.html", "elimination profile",
                          "web.elimination_profiles")


# ----------------------------------------------------------------------------- batches
class BatchForm(FlaskForm):
    reference = StringField("Batch reference")
    kit = StringField("Extraction kit")
    kit_lot = StringField("Kit lot")
    blank_name = StringField("Extraction blank (as named on the plate)")
    extracted_on = DateField("Extracted on", default=dt.date.today)
    extract_ids = SelectMultipleField("Extracts", coerce=int)


@bp.route("/quality/extraction-batches", methods=["GET", "POST"])
@page("extract.write")
def extraction_batches():
    form = BatchForm()
    batched = sa.select(ExtractionBatchExtract.extract_id)
    free = db.session.scalars(
        sa.select(Extract).where(visible(Extract, current_user, for_writing=True),
                                 Extract.id.not_in(batched))
        .order_by(Extract.barcode).limit(500)).all()
    form.extract_ids.choices = choice_list((e.id, e.barcode) for e in free)
    status = 200
    if form.is_submitted():
        batch, status = save_form(form, EXTRACTION_BATCHES.add_record)
        if batch is not None:
            logger.info("extraction batch %s (%s, %s extracts) by user %s", batch.id,
                        batch.reference, len(batch.extracts), current_user.id)
            flash(f"Extraction batch {batch.reference} saved with {len(batch.extracts)} "
                  "extracts.", "success")
            return redirect(url_for("web.extraction_batches"))
    batches = db.session.scalars(
        sa.select(ExtractionBatch).where(ExtractionBatch.agency_id == current_user.agency_id)
        .order_by(ExtractionBatch.id.desc()).limit(100)).all()
    return render_form("quality/extraction_batches.html", form, status, batches=batches)


# ----------------------------------------------------------------------------- sections
def sample_quality(sample: Sample) -> dict:
    """The sample page's quality section: species tests and the replicate consensus."""
    tests = db.session.scalars(sa.select(SpeciesTest).where(SpeciesTest.sample_id == sample.id)
                               .order_by(SpeciesTest.id)).all()
    return {"species_tests": [(test, species_finding(test)) for test in tests],
            "consensus": replicate_consensus(db.session, sample),
            "can_test": holds("profile.write") and can_write(Sample, sample.id)}


def profile_quality(profile: GenotypeProfile) -> dict:
    """The profile page's quality section: its flags, runs, confirmations and what keeps it
    from review."""
    flags = db.session.scalars(sa.select(ContaminationFlag).where(
        ContaminationFlag.profile_id == profile.id).order_by(ContaminationFlag.id)).all()
    runs_of = db.session.scalars(
        sa.select(GenotypingRun).join(PlateWell, PlateWell.run_id == GenotypingRun.id)
        .where(PlateWell.profile_id == profile.id,
               GenotypingRun.agency_id == current_user.agency_id)).all()
    confirmations = db.session.scalars(sa.select(HitConfirmation).where(
        HitConfirmation.profile_id == profile.id).order_by(HitConfirmation.id)).all()
    return {"flags": flags, "runs": runs_of, "confirmations": confirmations,
            "blockers": review_blockers(db.session, profile),
            "can_confirm": holds("profile.write") and can_write(GenotypeProfile, profile.id)}


bp.add_app_template_global(sample_quality, "sample_quality")
bp.add_app_template_global(profile_quality, "profile_quality")
