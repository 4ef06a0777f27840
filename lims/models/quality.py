"""The laboratory's quality system: extraction batches, genotyping runs and their plate wells,
positive controls and elimination profiles, contamination flags, hit confirmations, species
tests, and validation and proficiency records.

Every row is covered by the hash-chained audit trail (:mod:`lims.audit`): who wrote what, when,
with old and new values, so a hold, a disposition or a confirmation cannot be changed unseen.
Files (a run's export, a species test's read, a study's report) are kept byte for byte with
their SHA-256.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, one_of, utcnow
from lims.models.evidence import Extract, Sample
from lims.models.genetics import GenotypeProfile
from lims.models.people import User

RUN_STATUSES = ("in_control", "on_hold", "accepted", "rejected")
DISPOSITIONS = ("accepted", "rejected")
WELL_KINDS = ("sample", "positive_control", "negative_control", "extraction_blank")
CONTROL_KINDS = WELL_KINDS[1:]
ELIMINATION_KINDS = ("staff", "reference_animal", "positive_control", "other_lab_control")
FLAG_KINDS = ("elimination", "plate", "extraction_batch", "replicate")
FLAG_STATUSES = ("open", "cleared", "confirmed")
CONFIRMATION_METHODS = ("re-extraction", "re-typing")
QUALITY_RECORD_KINDS = ("validation", "proficiency")
OUTCOMES = ("passed", "failed")


class ExtractionBatch(Base):
    """Extracts made together with one kit lot, and the batch's extraction blank."""

    __tablename__ = "extraction_batch"
    __table_args__ = (sa.UniqueConstraint("agency_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(64))
    kit: Mapped[str] = mapped_column(sa.String(200))
    kit_lot: Mapped[str] = mapped_column(sa.String(100))
    blank_name: Mapped[str] = mapped_column(sa.String(64))
    extracted_on: Mapped[dt.date | None]
    analyst_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    extracts: Mapped[list[ExtractionBatchExtract]] = relationship(
        back_populates="batch", cascade="all, delete-orphan")


class ExtractionBatchExtract(Base):
    """One extract of a batch (an extract is in one batch at most)."""

    __tablename__ = "extraction_batch_extract"

    batch_id: Mapped[int] = mapped_column(
        sa.ForeignKey("extraction_batch.id", ondelete="CASCADE"), primary_key=True)
    extract_id: Mapped[int] = mapped_column(sa.ForeignKey("extract.id"), primary_key=True,
                                            unique=True)

    batch: Mapped[ExtractionBatch] = relationship(back_populates="extracts")
    extract: Mapped[Extract] = relationship()


class GenotypingRun(Base):
    """One genotyping run (a plate on an instrument) and whether it was in control.

    ``status`` is ``in_control`` when every control passed; ``on_hold`` (with ``hold_reason``)
    when one failed or was missing, and then its profiles cannot be reviewed until a reviewer
    records a disposition: ``accepted`` (the hold is lifted, with the reason) or ``rejected``
    (its pending profiles are rejected with the reason).
    """

    __tablename__ = "genotyping_run"
    __table_args__ = (
        sa.UniqueConstraint("agency_id", "name"),
        one_of("status", RUN_STATUSES),
        sa.CheckConstraint("status <> 'on_hold' OR hold_reason IS NOT NULL", name="hold_reason"),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'rejected') OR disposition_reason IS NOT NULL",
            name="disposition_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    panel: Mapped[str] = mapped_column(sa.String(100))
    instrument: Mapped[str] = mapped_column(sa.String(200))
    kit: Mapped[str] = mapped_column(sa.String(200))
    kit_lot: Mapped[str] = mapped_column(sa.String(100))
    allelic_ladder: Mapped[str] = mapped_column(sa.String(200))
    run_on: Mapped[dt.date]
    analyst_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    import_id: Mapped[int | None] = mapped_column(sa.ForeignKey("genotype_import.id"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    plate_map_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="in_control")
    hold_reason: Mapped[str | None] = mapped_column(sa.Text)
    disposition_reason: Mapped[str | None] = mapped_column(sa.Text)
    disposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    analyst: Mapped[User] = relationship(foreign_keys=[analyst_id])
    wells: Mapped[list[PlateWell]] = relationship(
        back_populates="run", order_by="PlateWell.well", cascade="all, delete-orphan")

    @property
    def held(self) -> bool:
        return self.status == "on_hold"


class PlateWell(Base):
    """One well of a run's plate: a sample (and its profile) or a control with its verdict."""

    __tablename__ = "plate_well"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "well"),
        one_of("kind", WELL_KINDS),
        sa.CheckConstraint("kind <> 'sample' OR sample_id IS NOT NULL", name="sample_well"),
        sa.CheckConstraint("kind = 'sample' OR control_name IS NOT NULL", name="control_well"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("genotyping_run.id", ondelete="CASCADE"), index=True)
    well: Mapped[str] = mapped_column(sa.String(8))
    kind: Mapped[str] = mapped_column(sa.String(32))
    sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    extract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("extract.id"))
    profile_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("genotype_profile.id"), index=True)
    control_name: Mapped[str | None] = mapped_column(sa.String(64))
    observed: Mapped[dict | None] = mapped_column(sa.JSON)
    passed: Mapped[bool | None]
    problems: Mapped[list | None] = mapped_column(sa.JSON)

    run: Mapped[GenotypingRun] = relationship(back_populates="wells")
    sample: Mapped[Sample | None] = relationship()
    profile: Mapped[GenotypeProfile | None] = relationship()


class PositiveControl(Base):
    """A positive control DNA and its expected genotype on one panel."""

    __tablename__ = "positive_control"
    __table_args__ = (sa.UniqueConstraint("agency_id", "name", "panel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    panel: Mapped[str] = mapped_column(sa.String(100))
    alleles: Mapped[dict] = mapped_column(sa.JSON)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EliminationProfile(Base):
    """A genotype every new profile is screened against: a staff-handled reference animal, a
    positive control, another laboratory's control."""

    __tablename__ = "elimination_profile"
    __table_args__ = (
        sa.UniqueConstraint("agency_id", "name", "panel"),
        one_of("kind", ELIMINATION_KINDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    panel: Mapped[str] = mapped_column(sa.String(100))
    alleles: Mapped[dict] = mapped_column(sa.JSON)
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContaminationFlag(Base):
    """A possible contamination or duplicate found by screening a new profile; the profile
    cannot be reviewed while a flag of it is open. A reviewer clears it or confirms it, with
    the reason."""

    __tablename__ = "contamination_flag"
    __table_args__ = (
        one_of("kind", FLAG_KINDS),
        one_of("status", FLAG_STATUSES),
        sa.CheckConstraint("status = 'open' OR resolution IS NOT NULL", name="resolution"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("genotype_profile.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text)
    other_profile_id: Mapped[int | None] = mapped_column(sa.ForeignKey("genotype_profile.id"))
    elimination_profile_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("elimination_profile.id"))
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("genotyping_run.id"))
    comparison: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(sa.Text)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    profile: Mapped[GenotypeProfile] = relationship(foreign_keys=[profile_id])


class ProfileScreen(Base):
    """That a profile was screened (when, and how many flags it raised)."""

    __tablename__ = "profile_screen"

    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("genotype_profile.id"),
                                            primary_key=True)
    n_flags: Mapped[int]
    screened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HitConfirmation(Base):
    """A re-extraction or re-typing of a sample compared with its profile; a concordant one
    lets a same-animal hit of that profile be reported as evidence."""

    __tablename__ = "hit_confirmation"
    __table_args__ = (one_of("method", CONFIRMATION_METHODS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("genotype_profile.id"), index=True)
    method: Mapped[str] = mapped_column(sa.String(32))
    confirming_profile_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("genotype_profile.id"))
    alleles: Mapped[dict] = mapped_column(sa.JSON)
    concordant: Mapped[bool]
    comparison: Mapped[dict] = mapped_column(sa.JSON)
    note: Mapped[str | None] = mapped_column(sa.Text)
    confirmed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sample: Mapped[Sample] = relationship()
    confirmed_by: Mapped[User] = relationship()


class SpeciesTest(Base):
    """A barcode read of a sample identified with :mod:`matching.species`."""

    __tablename__ = "species_test"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    marker: Mapped[str] = mapped_column(sa.String(32))
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str] = mapped_column(sa.String(16))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    query_id: Mapped[str] = mapped_column(sa.String(255))
    verdict: Mapped[str] = mapped_column(sa.String(16))
    call: Mapped[str | None] = mapped_column(sa.String(200))
    best_species: Mapped[str | None] = mapped_column(sa.String(200))
    identity: Mapped[float | None]
    reason: Mapped[str] = mapped_column(sa.Text)
    reference_set: Mapped[str] = mapped_column(sa.String(200))
    reference_set_version: Mapped[str] = mapped_column(sa.String(100))
    reference_set_hash: Mapped[str] = mapped_column(sa.String(64))
    result: Mapped[dict] = mapped_column(sa.JSON)
    tested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    tested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sample: Mapped[Sample] = relationship()


class QualityRecord(Base):
    """A validation study of a panel or method, or an analyst's proficiency test, with its
    outcome and, optionally, its report file."""

    __tablename__ = "quality_record"
    __table_args__ = (
        one_of("kind", QUALITY_RECORD_KINDS),
        one_of("outcome", OUTCOMES),
        sa.CheckConstraint("kind <> 'proficiency' OR analyst_id IS NOT NULL",
                           name="proficiency_analyst"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    method: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(200))
    analyst_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    performed_on: Mapped[dt.date]
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
