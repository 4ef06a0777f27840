"""The quality system: positive controls, elimination profiles, extraction batches, genotyping
runs (imported with their plate map, held on a failed control, disposed of by a reviewer),
contamination flags, hit confirmations, species tests, validation and proficiency records."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import sqlalchemy as sa
from flask import current_app, url_for
from flask_login import current_user
from werkzeug.utils import secure_filename

from lims.access import visible
from lims.api.genotypes import PROFILE, _panel
from lims.api.people import CREATED_AT, ID
from lims.api.routing import (
    QueryParam,
    Resource,
    check_unique,
    equals,
    form_values,
    json_body,
    load_reference,
    load_visible,
    query_values,
    route,
)
from lims.api.schema import FILE_TYPE, Field, Schema, invalid, read_only
from lims.errors import ApiError
from lims.extensions import db
from lims.genotype_import import GenotypeImportError
from lims.genotyping import ProfileError, normalise_alleles
from lims.models import (
    ContaminationFlag,
    EliminationProfile,
    Extract,
    ExtractionBatch,
    ExtractionBatchExtract,
    GenotypeProfile,
    GenotypingRun,
    HitConfirmation,
    PositiveControl,
    QualityRecord,
    Sample,
    SpeciesTest,
    User,
)
from lims.models.quality import (
    CONFIRMATION_METHODS,
    DISPOSITIONS,
    ELIMINATION_KINDS,
    FLAG_STATUSES,
    OUTCOMES,
    QUALITY_RECORD_KINDS,
    RUN_STATUSES,
)
from lims.quality import QualityError
from lims.quality.checks import record_confirmation, replicate_consensus, resolve_flag
from lims.quality.runs import dispose_run, import_run
from lims.quality.species_tests import record_species_test

logger = logging.getLogger(__name__)

TAG = "quality"
PROFILE_WRITE = ("profile.write",)
READ = ("record.read",)


def _quality_error(error: QualityError) -> ApiError:
    return ApiError(error.status, str(error),
                    {"problems": error.problems} if error.problems else None)


def _by_profile(model, user, for_writing: bool):
    return model.profile_id.in_(
        sa.select(GenotypeProfile.id).where(visible(GenotypeProfile, user,
                                                    for_writing=for_writing)))


def _by_sample(model, user, for_writing: bool):
    return model.sample_id.in_(
        sa.select(Sample.id).where(visible(Sample, user, for_writing=for_writing)))


def _own_agency(model, user, for_writing: bool):
    return model.agency_id == user.agency_id


def _checked_alleles(panel_name: str, alleles) -> dict:
    try:
        return normalise_alleles(_panel(panel_name), alleles)
    except ProfileError as error:
        raise ApiError(422, str(error), {"problems": error.problems}) from None


# ----------------------------------------------------------------------------- controls
def _genotype_fields(name: str) -> tuple[Field, ...]:
    return (
        ID,
        Field("name", "string", f"The {name}'s name, as the export's Sample Name.",
              required=True, nullable=False, max_length=64, identifier=True, update=False),
        Field("panel", "string", "Marker panel.", required=True, nullable=False,
              max_length=100, update=False),
        Field("alleles", "object", "Expected genotype, {locus: [allele, allele]}.",
              required=True, nullable=False, update=False),
    )


POSITIVE_CONTROL = Schema("positive_control", (
    *_genotype_fields("control"),
    read_only("agency_id", "integer", nullable=False),
    read_only("created_by_id", "integer"),
    CREATED_AT,
))


def _build_control(values: dict) -> PositiveControl:
    check_unique(PositiveControl, values, ("name",),
                 within={"agency_id": current_user.agency_id, "panel": values["panel"]})
    return PositiveControl(agency_id=current_user.agency_id, name=values["name"],
                           panel=values["panel"],
                           alleles=_checked_alleles(values["panel"], values["alleles"]),
                           created_by_id=current_user.id)


POSITIVE_CONTROLS = Resource(
    "/positive-controls", "positive control", PositiveControl, POSITIVE_CONTROL, TAG,
    PROFILE_WRITE, build=_build_control, scope=_own_agency).register()

ELIMINATION_PROFILE = Schema("elimination_profile", (
    *_genotype_fields("elimination profile"),
    Field("kind", "string", "What the genotype is of.", required=True, nullable=False,
          choices=ELIMINATION_KINDS, update=False),
    Field("description", "string", update=False),
    read_only("agency_id", "integer", nullable=False),
    read_only("created_by_id", "integer"),
    CREATED_AT,
))


def _build_elimination(values: dict) -> EliminationProfile:
    check_unique(EliminationProfile, values, ("name",),
                 within={"agency_id": current_user.agency_id, "panel": values["panel"]})
    return EliminationProfile(agency_id=current_user.agency_id, name=values["name"],
                              kind=values["kind"], panel=values["panel"],
                              alleles=_checked_alleles(values["panel"], values["alleles"]),
                              description=values.get("description"),
                              created_by_id=current_user.id)


ELIMINATION_PROFILES = Resource(
    "/elimination-profiles", "elimination profile", EliminationProfile, ELIMINATION_PROFILE,
    TAG, PROFILE_WRITE, build=_build_elimination, scope=_own_agency).register()

EXTRACTION_BATCH = Schema("extraction_batch", (
    ID,
    Field("reference", "string", "The batch's reference.", required=True, nullable=False,
          max_length=64, identifier=True, update=False),
    Field("kit", "string", "Extraction kit.", required=True, nullable=False, max_length=200,
          update=False),
    Field("kit_lot", "string", "Kit lot.", required=True, nullable=False, max_length=100,
          update=False),
    Field("blank_name", "string", "The batch's extraction blank, as named on the plate.",
          required=True, nullable=False, max_length=64, identifier=True, update=False),
    Field("extracted_on", "date", update=False),
    Field("extract_ids", "array", "The batch's extracts.", required=True, nullable=False,
          items="integer", update=False,
          getter=lambda batch: [member.extract_id for member in batch.extracts]),
    read_only("agency_id", "integer", nullable=False),
    read_only("analyst_id", "integer", nullable=False),
    CREATED_AT,
))


def _build_batch(values: dict) -> ExtractionBatch:
    check_unique(ExtractionBatch, values, ("reference",),
                 within={"agency_id": current_user.agency_id})
    extracts = [load_reference(Extract, extract_id, "extract_ids", "extract")
                for extract_id in dict.fromkeys(values["extract_ids"])]
    if not extracts:
        raise invalid("extract_ids", "must name at least one extract")
    taken = db.session.scalar(sa.select(ExtractionBatchExtract.extract_id).where(
        ExtractionBatchExtract.extract_id.in_([e.id for e in extracts])).limit(1))
    if taken is not None:
        raise invalid("extract_ids", f"extract {taken} is already in a batch", 409)
    batch = ExtractionBatch(
        agency_id=current_user.agency_id, reference=values["reference"], kit=values["kit"],
        kit_lot=values["kit_lot"], blank_name=values["blank_name"],
        extracted_on=values.get("extracted_on"), analyst_id=current_user.id)
    batch.extracts = [ExtractionBatchExtract(extract_id=extract.id) for extract in extracts]
    return batch


EXTRACTION_BATCHES = Resource(
    "/extraction-batches", "extraction batch", ExtractionBatch, EXTRACTION_BATCH, TAG,
    ("extract.write",), build=_build_batch, scope=_own_agency).register()

# ----------------------------------------------------------------------------- runs
WELL = Schema("plate_well", (
    read_only("well", "string", nullable=False),
    read_only("kind", "string", nullable=False),
    read_only("sample_id", "integer"),
    read_only("extract_id", "integer"),
    read_only("profile_id", "integer"),
    read_only("control_name", "string"),
    read_only("observed", "object", "A control's called alleles by marker."),
    read_only("passed", "boolean", "A control's verdict."),
    read_only("problems", "array", "Why a control failed.", items="string"),
))
RUN = Schema("genotyping_run", (
    ID,
    read_only("name", "string", nullable=False),
    read_only("panel", "string", nullable=False),
    read_only("instrument", "string", nullable=False),
    read_only("kit", "string", nullable=False),
    read_only("kit_lot", "string", nullable=False),
    read_only("allelic_ladder", "string", nullable=False),
    read_only("run_on", "date", nullable=False),
    read_only("analyst_id", "integer", nullable=False),
    read_only("import_id", "integer"),
    read_only("filename", "string", nullable=False),
    read_only("sha256", "string", "Hex SHA-256 of the export.", nullable=False),
    read_only("plate_map_sha256", "string"),
    read_only("status", "string", ", ".join(RUN_STATUSES), nullable=False),
    read_only("hold_reason", "string"),
    read_only("disposition_reason", "string"),
    read_only("disposed_by_id", "integer"),
    read_only("disposed_at", "date-time"),
    read_only("wells", "array", "The plate's wells (objects: well, kind, sample_id, "
              "profile_id, control_name, observed, passed, problems).", items="object",
              getter=lambda run: [WELL.dump(well) for well in run.wells]),
    CREATED_AT,
))
RUN_UPLOAD = Schema("run_upload", (
    Field("file", FILE_TYPE, "The run's GeneMapper export (Sample Name, Marker, Allele n; "
          "Well, Sample Type and Run Name read when present).", required=True, nullable=False),
    Field("plate_map", FILE_TYPE, "Plate map, CSV or XLSX (first sheet): well, kind, "
          "name[, extract]."),
    Field("panel", "string", "Marker panel.", required=True, nullable=False),
    Field("name", "string", "Run name.", required=True, nullable=False, max_length=100),
    Field("instrument", "string", required=True, nullable=False, max_length=200),
    Field("kit", "string", "Amplification kit.", required=True, nullable=False,
          max_length=200),
    Field("kit_lot", "string", required=True, nullable=False, max_length=100),
    Field("allelic_ladder", "string", required=True, nullable=False, max_length=200),
    Field("run_on", "date", "Date of the run.", required=True, nullable=False),
    Field("negative_controls", "string", "Names of the PCR blanks, comma-separated (when "
          "neither plate map nor Sample Type says)."),
))

Resource("/runs", "run", GenotypingRun, RUN, TAG, PROFILE_WRITE,
         read_permission=("profile.write", "profile.review"), scope=_own_agency,
         filters=(equals(GenotypingRun, "status", "string", "Run status.",
                         choices=RUN_STATUSES),)).register()


@route("/runs", "POST", summary="Import a genotyping run with its controls", tag=TAG,
       permission="profile.write", request_form=RUN_UPLOAD, response=RUN, response_status=201,
       description="All or nothing: a refused import answers 422 with details.problems (line, "
       "field, sample, message). A failed or missing control puts the run on hold "
       "(status on_hold, hold_reason): its profiles cannot be reviewed until a disposition.")
def create_run():
    values = form_values(RUN_UPLOAD)
    panel = _panel(values["panel"])
    plate_map = values.get("plate_map")
    try:
        run = import_run(
            db.session, values["file"].read(), filename=values["file"].filename or "run.txt",
            panel=panel, analyst=current_user, fields=values,
            plate_map=plate_map.read() if plate_map is not None else None,
            negative_controls=(values.get("negative_controls") or "").split(","))
    except GenotypeImportError as error:
        raise ApiError(422, str(error),
                       {"problems": [problem.as_dict() for problem in error.problems]}) from None
    except ProfileError as error:
        raise ApiError(error.status, str(error), {"problems": error.problems}) from None
    db.session.commit()
    return RUN.dump(run), 201, {"Location": url_for("api.get_run", record_id=run.id)}


DISPOSITION = Schema("run_disposition", (
    Field("outcome", "string", "accepted lifts the hold; rejected rejects the run's profiles.",
          required=True, nullable=False, choices=DISPOSITIONS),
    Field("reason", "string", "Why.", required=True, nullable=False),
))


@route("/runs/<int:record_id>/disposition", "POST", summary="Record the disposition of a held "
       "run", tag=TAG, permission="profile.review", request=DISPOSITION, response=RUN,
       description="By a reviewer who is not the run's analyst.")
def dispose(record_id: int):
    values = DISPOSITION.load(json_body(), mode="create")
    run = load_visible(GenotypingRun, record_id, "run", scope=_own_agency)
    try:
        dispose_run(db.session, run, current_user, values["outcome"], values["reason"])
    except (QualityError, ProfileError) as error:
        raise ApiError(error.status, str(error),
                       {"problems": error.problems} if error.problems else None) from None
    db.session.commit()
    return RUN.dump(run)


# ----------------------------------------------------------------------------- flags
FLAG = Schema("contamination_flag", (
    ID,
    read_only("profile_id", "integer", nullable=False),
    read_only("kind", "string", "elimination, plate, extraction_batch or replicate.",
              nullable=False),
    read_only("reason", "string", nullable=False),
    read_only("other_profile_id", "integer"),
    read_only("elimination_profile_id", "integer"),
    read_only("run_id", "integer"),
    read_only("comparison", "object", "Loci compared, identical, dropout-compatible, "
              "different.", nullable=False),
    read_only("status", "string", ", ".join(FLAG_STATUSES), nullable=False),
    read_only("resolution", "string"),
    read_only("resolved_by_id", "integer"),
    read_only("resolved_at", "date-time"),
    CREATED_AT,
))
Resource("/contamination-flags", "contamination flag", ContaminationFlag, FLAG, TAG, (),
         scope=_by_profile, filters=(
             equals(ContaminationFlag, "profile_id", "integer", "Flags of this profile."),
             equals(ContaminationFlag, "status", "string", "Flag status.",
                    choices=FLAG_STATUSES))).register()
RESOLUTION = Schema("flag_resolution", (
    Field("status", "string", "cleared (not contamination) or confirmed.", required=True,
          nullable=False, choices=("cleared", "confirmed")),
    Field("reason", "string", "Why.", required=True, nullable=False),
))


@route("/contamination-flags/<int:record_id>/resolve", "POST", summary="Clear or confirm a "
       "contamination flag", tag=TAG, permission="profile.review", request=RESOLUTION,
       response=FLAG, description="By a reviewer who is not the profile's analyst.")
def resolve(record_id: int):
    values = RESOLUTION.load(json_body(), mode="create")
    flag = load_visible(ContaminationFlag, record_id, "contamination flag", for_writing=True,
                        scope=_by_profile)
    try:
        resolve_flag(flag, current_user, values["status"], values["reason"])
    except QualityError as error:
        raise _quality_error(error) from None
    db.session.commit()
    return FLAG.dump(flag)


# ----------------------------------------------------------------------------- confirmations
CONFIRMATION = Schema("hit_confirmation", (
    ID,
    read_only("sample_id", "integer", nullable=False),
    read_only("profile_id", "integer", "The profile confirmed.", nullable=False),
    Field("method", "string", "re-extraction or re-typing.", required=True, nullable=False,
          choices=CONFIRMATION_METHODS),
    Field("confirming_profile_id", "integer", "A profile of the sample or an aliquot of it "
          "(instead of alleles)."),
    Field("alleles", "object", "The re-typed genotype (instead of a confirming profile)."),
    Field("note", "string"),
    read_only("concordant", "boolean", nullable=False),
    read_only("comparison", "object", nullable=False),
    read_only("confirmed_by_id", "integer", nullable=False),
    read_only("confirmed_at", "date-time", nullable=False),
))
Resource("/hit-confirmations", "hit confirmation", HitConfirmation, CONFIRMATION, TAG, (),
         scope=_by_sample, filters=(equals(HitConfirmation, "sample_id", "integer",
                                           "Confirmations of this sample."),)).register()


@route("/profiles/<int:record_id>/confirmations", "POST", summary="Record a hit "
       "confirmation (re-extraction or re-typing) of a profile", tag=TAG,
       permission="profile.write", request=CONFIRMATION, response=CONFIRMATION,
       response_status=201, description="Concordant when no locus differs over enough loci; "
       "a discordant one is recorded and confirms nothing. An evidential report needs both "
       "samples of each same-animal hit confirmed (the other side where its sample is in "
       "the LIMS).")
def confirm(record_id: int):
    values = CONFIRMATION.load(json_body(), mode="create")
    profile = load_visible(GenotypeProfile, record_id, "profile", for_writing=True)
    other = load_reference(GenotypeProfile, values.get("confirming_profile_id"),
                           "confirming_profile_id", "profile", for_writing=False)
    try:
        confirmation = record_confirmation(
            db.session, profile, current_user, method=values["method"],
            alleles=values.get("alleles"), confirming_profile=other, note=values.get("note"))
    except QualityError as error:
        raise _quality_error(error) from None
    db.session.commit()
    return (CONFIRMATION.dump(confirmation), 201,
            {"Location": url_for("api.get_hit_confirmation", record_id=confirmation.id)})


# ----------------------------------------------------------------------------- consensus
CONSENSUS = Schema("replicate_consensus", (
    read_only("sample_id", "integer", nullable=False),
    read_only("barcode", "string", nullable=False),
    read_only("panel", "string", nullable=False),
    read_only("n_replicates", "integer", nullable=False),
    read_only("replicates", "array", "The typings compared (objects: kind — profile, "
              "re-typing or re-extraction —, profile_id, confirmation_id, barcode, state).",
              nullable=False, items="object"),
    read_only("genotype", "object", "The consensus, {locus: [allele, allele]}; null with "
              "fewer than two replicates."),
    read_only("left_out", "object", "Loci left out of the consensus, {locus: why}.",
              nullable=False),
    read_only("reason", "string", "Why there is no consensus."),
    read_only("rule", "string", "The consensus rule.", nullable=False),
))
CONSENSUS_PANEL = QueryParam("panel", "string", "Only this marker panel.")


@route("/samples/<int:record_id>/consensus", "GET", summary="The replicate consensus "
       "genotype of a sample, per panel", tag=TAG, permission="record.read",
       query=(CONSENSUS_PANEL,), response=CONSENSUS, response_list=True,
       description="Computed from the live profiles of the sample and its aliquots and the "
       "re-typings recorded of them (matching.contamination.consensus; the rule is in each "
       "answer); computed on request, not stored.")
def get_consensus(record_id: int):
    sample = load_visible(Sample, record_id, "sample")
    panel = query_values((CONSENSUS_PANEL,)).get("panel")
    return {"items": [CONSENSUS.dump(found)
                      for found in replicate_consensus(db.session, sample, panel)]}


# ----------------------------------------------------------------------------- species tests
SPECIES_TEST = Schema("species_test", (
    ID,
    read_only("sample_id", "integer", nullable=False),
    read_only("marker", "string", nullable=False),
    read_only("filename", "string", nullable=False),
    read_only("file_format", "string", nullable=False),
    read_only("sha256", "string", "Hex SHA-256 of the read file.", nullable=False),
    read_only("query_id", "string", nullable=False),
    read_only("verdict", "string", "identified, ambiguous or no match.", nullable=False),
    read_only("call", "string"),
    read_only("best_species", "string"),
    read_only("identity", "number"),
    read_only("reason", "string", nullable=False),
    read_only("reference_set", "string", nullable=False),
    read_only("reference_set_version", "string", nullable=False),
    read_only("reference_set_hash", "string", nullable=False),
    read_only("result", "object", "Every figure of the identification.", nullable=False),
    read_only("tested_by_id", "integer", nullable=False),
    read_only("tested_at", "date-time", nullable=False),
))
SPECIES_UPLOAD = Schema("species_test_upload", (
    Field("file", FILE_TYPE, "One read: FASTA, FASTQ or AB1 trace.", required=True,
          nullable=False),
    Field("marker", "string", "Barcode marker (default cytb).", max_length=32),
))
Resource("/species-tests", "species test", SpeciesTest, SPECIES_TEST, TAG, (),
         scope=_by_sample, filters=(equals(SpeciesTest, "sample_id", "integer",
                                           "Tests of this sample."),)).register()


@route("/samples/<int:record_id>/species-tests", "POST", summary="Record a species test of a "
       "sample from a barcode read", tag=TAG, permission="profile.write",
       request_form=SPECIES_UPLOAD, response=SPECIES_TEST, response_status=201)
def create_species_test(record_id: int):
    values = form_values(SPECIES_UPLOAD)
    sample = load_visible(Sample, record_id, "sample", for_writing=True)
    upload = values["file"]
    try:
        test = record_species_test(
            db.session, sample, current_user, upload.read(),
            filename=upload.filename or "read.fasta", marker=values.get("marker") or "cytb",
            barcode_set=current_app.config.get("SPECIES_BARCODE_SET"))
    except QualityError as error:
        raise _quality_error(error) from None
    db.session.commit()
    return (SPECIES_TEST.dump(test), 201,
            {"Location": url_for("api.get_species_test", record_id=test.id)})


# ----------------------------------------------------------------------------- records
QUALITY_RECORD = Schema("quality_record", (
    ID,
    read_only("agency_id", "integer", nullable=False),
    read_only("kind", "string", "validation or proficiency.", nullable=False),
    read_only("method", "string", "The panel or method.", nullable=False),
    read_only("title", "string", nullable=False),
    read_only("analyst_id", "integer", "Whose proficiency test."),
    read_only("outcome", "string", "passed or failed.", nullable=False),
    read_only("performed_on", "date", nullable=False),
    read_only("filename", "string"),
    read_only("sha256", "string"),
    read_only("recorded_by_id", "integer", nullable=False),
    read_only("recorded_at", "date-time", nullable=False),
))
QUALITY_UPLOAD = Schema("quality_record_upload", (
    Field("kind", "string", required=True, nullable=False, choices=QUALITY_RECORD_KINDS),
    Field("method", "string", "Panel or method name.", required=True, nullable=False,
          max_length=100),
    Field("title", "string", "The study or test.", required=True, nullable=False,
          max_length=200),
    Field("analyst_id", "integer", "For a proficiency test: the analyst tested."),
    Field("outcome", "string", required=True, nullable=False, choices=OUTCOMES),
    Field("performed_on", "date", required=True, nullable=False),
    Field("file", FILE_TYPE, "The study's or test's report."),
))
Resource("/quality-records", "quality record", QualityRecord, QUALITY_RECORD, TAG, (),
         scope=_own_agency, filters=(
             equals(QualityRecord, "kind", "string", "Kind.", choices=QUALITY_RECORD_KINDS),
             equals(QualityRecord, "analyst_id", "integer", "Proficiency tests of this "
                    "analyst."))).register()


@route("/quality-records", "POST", summary="Record a validation study or proficiency test",
       tag=TAG, permission="profile.review", request_form=QUALITY_UPLOAD,
       response=QUALITY_RECORD, response_status=201)
def create_quality_record():
    record = add_quality_record(form_values(QUALITY_UPLOAD))
    db.session.commit()
    return (QUALITY_RECORD.dump(record), 201,
            {"Location": url_for("api.get_quality_record", record_id=record.id)})


def add_quality_record(values: dict) -> QualityRecord:
    """Check a validation study or proficiency test (``QUALITY_UPLOAD``'s fields, parsed;
    ``file`` a :class:`~werkzeug.datastructures.FileStorage` or absent) and add it to the
    session (flushed, not committed); the API and the page both record through here.
    Raises :class:`~lims.errors.ApiError` naming the field."""
    analyst_id = values.get("analyst_id")
    if values["kind"] == "proficiency" and analyst_id is None:
        raise invalid("analyst_id", "is required for a proficiency test")
    if analyst_id is not None and db.session.scalar(sa.select(User.id).where(
            User.id == analyst_id, User.agency_id == current_user.agency_id)) is None:
        raise invalid("analyst_id", "names no user of your agency")
    if values["performed_on"] > dt.date.today():
        raise invalid("performed_on", "is in the future")
    upload = values.get("file")
    content = upload.read() if upload is not None else None
    record = QualityRecord(
        agency_id=current_user.agency_id, kind=values["kind"], method=values["method"],
        title=values["title"], analyst_id=analyst_id, outcome=values["outcome"],
        performed_on=values["performed_on"],
        filename=(secure_filename(upload.filename or "") or "report") if upload else None,
        sha256=hashlib.sha256(content).hexdigest() if content is not None else None,
        content=content, recorded_by_id=current_user.id)
    db.session.add(record)
    db.session.flush()
    logger.info("quality record %s (%s %s, %s) by user %s", record.id, record.kind,
                record.method, record.outcome, current_user.id)
    return record


__all__ = ["PROFILE"]
