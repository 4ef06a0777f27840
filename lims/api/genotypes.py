"""Genotype profiles, their review workflow, and genotype file imports."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app, request, url_for
from flask_login import current_user

from lims import jobs
from lims.api.routing import Resource, equals, json_body, load_reference, load_visible, route
from lims.api.schema import FILE_TYPE, Field, Schema, invalid, read_only
from lims.errors import ApiError
from lims.extensions import db
from lims.genotype_import import IMPORT_FORMATS, GenotypeImportError, import_genotypes
from lims.genotyping import (
    ProfileError,
    correct_profile,
    create_profile,
    reject_profile,
    release_profile,
    resolve_panel,
    review_profile,
)
from lims.idempotency import commit_write, idempotent
from lims.models import PROFILE_STATES, Extract, GenotypeImport, GenotypeProfile, Sample

logger = logging.getLogger(__name__)

PROFILE = Schema(
    "genotype_profile",
    (
        read_only("id", "integer", nullable=False),
        Field("sample_id", "integer", required=True, nullable=False, update=False),
        read_only(
            "barcode",
            "string",
            "The sample's barcode.",
            nullable=False,
            getter=lambda profile: profile.sample.barcode,
        ),
        Field("extract_id", "integer", "The extract that was typed.", update=False),
        Field(
            "panel",
            "string",
            "Marker panel name.",
            required=True,
            nullable=False,
            max_length=100,
            update=False,
        ),
        Field(
            "alleles",
            "object",
            "Typed loci: {locus: [allele, allele]}, sizes in bp.",
            required=True,
            nullable=False,
            update=False,
        ),
        read_only("n_loci_typed", "integer", nullable=False),
        Field(
            "run", "string", "Genotyping run (plate, instrument run).", max_length=100, update=False
        ),
        read_only("import_id", "integer", "The import the profile came from."),
        read_only("state", "string", "pending → reviewed → released, or rejected.", nullable=False),
        read_only("analyst_id", "integer", nullable=False),
        read_only("reviewer_id", "integer"),
        read_only("reviewed_at", "date-time"),
        read_only("released_by_id", "integer"),
        read_only("released_at", "date-time"),
        read_only("rejection_reason", "string"),
        read_only("version", "integer", nullable=False),
        read_only("previous_version_id", "integer", "The version this one corrects."),
        read_only("correction_reason", "string"),
        read_only("superseded", "boolean", "True once a correction replaced it.", nullable=False),
        read_only("created_at", "date-time", nullable=False),
    ),
)


def _panel(name: str, field: str = "panel"):
    try:
        return resolve_panel(name, current_app.config.get("PANEL_DIRECTORY"))
    except ValueError as error:
        raise invalid(field, str(error)) from None


def _profile_error(error: ProfileError) -> ApiError:
    return ApiError(
        error.status, str(error), {"problems": error.problems} if error.problems else None
    )


def _build_profile(values: dict) -> GenotypeProfile:
    sample = load_reference(Sample, values["sample_id"], "sample_id", "sample")
    extract = load_reference(Extract, values.get("extract_id"), "extract_id", "extract")
    try:
        return create_profile(
            db.session,
            sample=sample,
            panel=_panel(values["panel"]),
            alleles=values["alleles"],
            analyst=current_user,
            extract=extract,
            run=values.get("run"),
        )
    except ProfileError as error:
        raise _profile_error(error) from None


Resource(
    "/profiles",
    "profile",
    GenotypeProfile,
    PROFILE,
    "genotypes",
    ("profile.write",),
    build=_build_profile,
    filters=(
        equals(GenotypeProfile, "state", "string", "Workflow state.", choices=PROFILE_STATES),
        equals(GenotypeProfile, "panel", "string", "Marker panel."),
        equals(GenotypeProfile, "sample_id", "integer", "Profiles of this sample."),
        equals(GenotypeProfile, "import_id", "integer", "Profiles of this import."),
        equals(GenotypeProfile, "superseded", "boolean", "false: current versions only."),
    ),
).register()

REASON = Schema(
    "reason",
    (Field("reason", "string", "Why.", required=True, nullable=False),),
)
CORRECTION = Schema(
    "profile_correction",
    (
        Field(
            "alleles",
            "object",
            "The corrected alleles, {locus: [allele, allele]}.",
            required=True,
            nullable=False,
        ),
        Field("reason", "string", "Why the profile is corrected.", required=True, nullable=False),
    ),
)


def _workflow_step(record_id: int, step) -> dict:
    profile = load_visible(GenotypeProfile, record_id, "profile", for_writing=True)
    try:
        step(profile)
    except ProfileError as error:
        raise _profile_error(error) from None
    db.session.commit()
    return PROFILE.dump(profile)


@route(
    "/profiles/<int:record_id>/review",
    "POST",
    summary="Mark a pending profile reviewed",
    tag="genotypes",
    permission="profile.review",
    response=PROFILE,
    description="The reviewer must not be the profile's analyst.",
)
def review(record_id: int):
    return _workflow_step(record_id, lambda profile: review_profile(profile, current_user))


@route(
    "/profiles/<int:record_id>/release",
    "POST",
    summary="Release a reviewed profile for matching",
    tag="genotypes",
    permission="profile.review",
    response=PROFILE,
)
def release(record_id: int):
    released = _workflow_step(record_id, lambda profile: release_profile(profile, current_user))
    jobs.wake(current_app)  # the network search of the new profile is queued
    return released


@route(
    "/profiles/<int:record_id>/reject",
    "POST",
    summary="Reject a profile, with the reason",
    tag="genotypes",
    permission="profile.review",
    request=REASON,
    response=PROFILE,
)
def reject(record_id: int):
    reason = REASON.load(json_body(), mode="create")["reason"]
    return _workflow_step(record_id, lambda profile: reject_profile(profile, current_user, reason))


@route(
    "/profiles/<int:record_id>/corrections",
    "POST",
    summary="Correct a profile: adds its next version, keeps the old one",
    tag="genotypes",
    permission="profile.write",
    request=CORRECTION,
    response=PROFILE,
    response_status=201,
)
def correct(record_id: int):
    values = CORRECTION.load(json_body(), mode="create")
    profile = load_visible(GenotypeProfile, record_id, "profile", for_writing=True)
    try:
        corrected = correct_profile(
            db.session,
            profile,
            panel=_panel(profile.panel),
            alleles=values["alleles"],
            analyst=current_user,
            reason=values["reason"],
        )
    except ProfileError as error:
        raise _profile_error(error) from None
    db.session.commit()
    return (
        PROFILE.dump(corrected),
        201,
        {"Location": url_for("api.get_profile", record_id=corrected.id)},
    )


GENOTYPE_IMPORT = Schema(
    "genotype_import",
    (
        read_only("id", "integer", nullable=False),
        read_only("filename", "string", nullable=False),
        read_only("file_format", "string", nullable=False),
        read_only("panel", "string", nullable=False),
        read_only("run", "string"),
        read_only("sha256", "string", "Hex SHA-256 of the imported file.", nullable=False),
        read_only("n_profiles", "integer", nullable=False),
        read_only("imported_by_id", "integer"),
        read_only("imported_at", "date-time", nullable=False),
    ),
)
GENOTYPE_UPLOAD = Schema(
    "genotype_upload",
    (
        Field(
            "file",
            FILE_TYPE,
            "GeneMapper export, long CSV or wide CSV; sample ids are sample barcodes.",
            required=True,
            nullable=False,
        ),
        Field(
            "panel",
            "string",
            "Marker panel the file is checked against.",
            required=True,
            nullable=False,
        ),
        Field("format", "string", "File format (detected when absent).", choices=IMPORT_FORMATS),
        Field("run", "string", "Genotyping run."),
    ),
)


Resource(
    "/genotype-imports",
    "genotype import",
    GenotypeImport,
    GENOTYPE_IMPORT,
    "genotypes",
    ("profile.write",),
    read_permission=("profile.write", "profile.review"),
).register()


@route(
    "/genotype-imports",
    "POST",
    summary="Import a genotype file: every profile, or none with every problem listed",
    tag="genotypes",
    permission="profile.write",
    request_form=GENOTYPE_UPLOAD,
    response=GENOTYPE_IMPORT,
    response_status=201,
    idempotent=True,
    description="A refused import answers 422 with details.problems: one entry per problem, "
    "with the file line, field, sample barcode and message. Retry-safe with an "
    "Idempotency-Key header (per user, 1-255 visible ASCII characters): a retry with the same "
    "key, file and fields gets the first answer and imports nothing; the same key with "
    "another request is refused with 422.",
)
@idempotent
def create_import():
    upload = request.files.get("file")
    if upload is None:
        raise invalid("file", "is required")
    panel_name = request.form.get("panel", "")
    if not panel_name:
        raise invalid("panel", "is required")
    file_format = request.form.get("format") or None
    if file_format is not None and file_format not in IMPORT_FORMATS:
        raise invalid("format", f"must be one of {', '.join(IMPORT_FORMATS)}")
    panel = _panel(panel_name)
    try:
        batch, profiles = import_genotypes(
            db.session,
            upload.read(),
            filename=upload.filename or "genotypes.csv",
            panel=panel,
            analyst=current_user,
            file_format=file_format,
            run=request.form.get("run") or None,
        )
    except GenotypeImportError as error:
        raise ApiError(
            422, str(error), {"problems": [problem.as_dict() for problem in error.problems]}
        ) from None
    except ProfileError as error:
        raise _profile_error(error) from None
    db.session.flush()
    body = {**GENOTYPE_IMPORT.dump(batch), "profile_ids": [profile.id for profile in profiles]}
    answer = commit_write(
        body, 201, {"Location": url_for("api.get_genotype_import", record_id=batch.id)},
        proof=sa.select(GenotypeImport.id).where(
            GenotypeImport.id == batch.id, GenotypeImport.sha256 == batch.sha256,
            GenotypeImport.imported_by_id == current_user.id),
    )
    logger.info("genotype import %s (%s, %s profiles, panel %s) by user %s", batch.id,
                batch.filename, len(profiles), panel.name, current_user.id)
    return answer
