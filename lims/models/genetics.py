"""Genotype profiles, their review workflow, and the import batches they came from."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, one_of, utcnow
from lims.models.evidence import Extract, Sample
from lims.models.people import User

PROFILE_STATES = ("pending", "reviewed", "released", "rejected")

#: SQL condition of a live profile version: neither superseded by a correction nor rejected.
_LIVE_PROFILE = sa.text("NOT superseded AND state <> 'rejected'")


class GenotypeImport(Base):
    """One imported genotype file, kept byte for byte with its SHA-256."""

    __tablename__ = "genotype_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str] = mapped_column(sa.String(32))
    panel: Mapped[str] = mapped_column(sa.String(100))
    run: Mapped[str | None] = mapped_column(sa.String(100))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    n_profiles: Mapped[int]
    imported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GenotypeProfile(Base):
    """One version of a sample's genotype at the loci of a panel.

    ``alleles`` maps each typed locus to its two allele sizes, smaller first; untyped loci are
    absent. The workflow is pending → reviewed → released, or rejected (with a reason) from
    pending or reviewed. A correction adds a new version (``previous_version_id`` names the
    one it corrects) and marks the old one ``superseded``; old versions are never changed
    otherwise, and only current released versions go to matching. A sample has at most one
    live version (neither superseded nor rejected) per panel; a partial unique index makes
    the database hold to that too.
    """

    __tablename__ = "genotype_profile"
    __table_args__ = (
        one_of("state", PROFILE_STATES),
        sa.CheckConstraint(
            "state <> 'rejected' OR rejection_reason IS NOT NULL", name="rejection_reason"
        ),
        sa.CheckConstraint("version >= 1", name="version"),
        sa.CheckConstraint(
            "reviewer_id IS NULL OR reviewer_id <> analyst_id", name="reviewer_not_analyst"
        ),
        # At most one live version per sample and panel, whatever writes the table.
        sa.Index(
            "uq_genotype_profile_live",
            "sample_id",
            "panel",
            unique=True,
            sqlite_where=_LIVE_PROFILE,
            postgresql_where=_LIVE_PROFILE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    extract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("extract.id"), index=True)
    panel: Mapped[str] = mapped_column(sa.String(100), index=True)
    alleles: Mapped[dict] = mapped_column(sa.JSON)
    n_loci_typed: Mapped[int]
    run: Mapped[str | None] = mapped_column(sa.String(100))
    import_id: Mapped[int | None] = mapped_column(sa.ForeignKey("genotype_import.id"))
    state: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    analyst_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    released_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(default=1)
    previous_version_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("genotype_profile.id"), unique=True
    )
    correction_reason: Mapped[str | None] = mapped_column(sa.Text)
    superseded: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sample: Mapped[Sample] = relationship()
    extract: Mapped[Extract | None] = relationship()
    analyst: Mapped[User] = relationship(foreign_keys=[analyst_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    previous_version: Mapped[GenotypeProfile | None] = relationship(remote_side=[id])
