"""Seizure intelligence: the coded trade-chain record of a seizure, the terms of the
controlled vocabularies, and the links between seizures kept from released profiles.

A :class:`SeizureRecord` codes one seizure the way ETIS and the CITES Annual Illegal Trade
Report do: ISO 3166-1 alpha-2 countries for discovery, origins (with optional shares), export,
transits (each flagged when it was a missed seizure opportunity) and destination; commodity
and its form; per-species quantities in kg and pieces (either may be missing); how it was
detected, transported and concealed; offenders, charges, disposal, value; and how far the
record is validated. The seizure's free-text ``place``, ``country`` and ``route`` stay as
they were and are shown beside the coded values until (and after) an analyst codes them.

Codes are checked against the vocabularies of :mod:`lims.vocabularies`: the defaults ship as
package data, :class:`VocabularyTerm` rows are an administrator's additions, relabellings and
retirements. Every change to these rows is in the hash-chained audit trail.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, utcnow
from lims.models.evidence import Seizure


class SeizureRecord(Base):
    """The coded trade-chain record of one seizure (at most one per seizure).

    ``origins`` is a list of ``{"country", "share"}`` (share a fraction 0..1 or null),
    ``transits`` a list of ``{"country", "seizure_opportunity"}`` in route order, ``species``
    a list of ``{"name", "quantity_kg", "pieces"}`` (the AITR's one row per seizure and
    species), ``offender_nationalities`` a list of country codes.
    """

    __tablename__ = "seizure_record"
    __table_args__ = (
        sa.CheckConstraint("estimated_value >= 0", name="estimated_value"),
        sa.CheckConstraint(
            "estimated_value IS NULL OR currency IS NOT NULL", name="value_currency"
        ),
    )

    seizure_id: Mapped[int] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"), primary_key=True
    )
    discovery_country: Mapped[str | None] = mapped_column(sa.String(2), index=True)
    origins: Mapped[list] = mapped_column(sa.JSON, default=list)
    export_country: Mapped[str | None] = mapped_column(sa.String(2))
    transits: Mapped[list] = mapped_column(sa.JSON, default=list)
    destination_country: Mapped[str | None] = mapped_column(sa.String(2))
    commodity: Mapped[str | None] = mapped_column(sa.String(32))
    commodity_form: Mapped[str | None] = mapped_column(sa.String(32))
    species: Mapped[list] = mapped_column(sa.JSON, default=list)
    detecting_agency: Mapped[str | None] = mapped_column(sa.String(64))
    detection_method: Mapped[str | None] = mapped_column(sa.String(64))
    transport_mode: Mapped[str | None] = mapped_column(sa.String(64))
    concealment: Mapped[str | None] = mapped_column(sa.String(64))
    offender_nationalities: Mapped[list] = mapped_column(sa.JSON, default=list)
    charges: Mapped[str | None] = mapped_column(sa.Text)
    disposal: Mapped[str | None] = mapped_column(sa.String(64))
    estimated_value: Mapped[float | None]
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    validation_status: Mapped[str] = mapped_column(sa.String(32), default="unvalidated")
    coded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    seizure: Mapped[Seizure] = relationship()

    @property
    def quantity_kg(self) -> float | None:
        """Total weight over the species rows; ``None`` when no row gives one."""
        weights = [row["quantity_kg"] for row in self.species if row.get("quantity_kg") is not None]
        return sum(weights) if weights else None

    @property
    def pieces(self) -> int | None:
        counts = [row["pieces"] for row in self.species if row.get("pieces") is not None]
        return sum(counts) if counts else None


class VocabularyTerm(Base):
    """An administrator's change to a controlled vocabulary: a new term, a new label for a
    packaged term, or a retired term (no longer accepted in new codings; records that use
    it keep it)."""

    __tablename__ = "vocabulary_term"

    vocabulary: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(200))
    retired: Mapped[bool] = mapped_column(default=False)
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SeizureLink(Base):
    """Two seizures linked by DNA, as the latest evidence says: pairs per relationship and
    the best log10 LR. Kept up to date as each match request finishes
    (:func:`lims.intelligence.fold_links`, ``match_request_id`` set) and as profiles are
    released (:func:`lims.network.run_search`, ``match_request_id`` null and
    ``link_search_id`` the search: the links of all current :class:`ProfileLink` rows
    between the two seizures), so the network is read, never rerun. A row with a match
    request is that request's. ``seizure1_id < seizure2_id``."""

    __tablename__ = "seizure_link"
    __table_args__ = (
        sa.CheckConstraint("seizure1_id < seizure2_id", name="ordered"),
        sa.Index("ix_seizure_link_seizure2_id", "seizure2_id"),
    )

    seizure1_id: Mapped[int] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"), primary_key=True
    )
    seizure2_id: Mapped[int] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"), primary_key=True
    )
    same_animal: Mapped[int] = mapped_column(default=0)
    parent_offspring: Mapped[int] = mapped_column(default=0)
    full_sibling: Mapped[int] = mapped_column(default=0)
    half_sibling: Mapped[int] = mapped_column(default=0)
    best_log10_lr: Mapped[float | None]
    match_request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("match_request.id"))
    link_search_id: Mapped[int | None] = mapped_column(sa.ForeignKey("link_search.id"))
    found_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SeizureOrigin(Base):
    """A seizure's assigned origin as the latest finished match request that placed it says
    (most likely point, area and grid cells of the 90% credible region, each cell
    ``[lat_lo, lat_hi, lon_lo, lon_hi]``). Folded in as each request finishes
    (:func:`lims.intelligence.fold_origins`), so the origins map reads one row per seizure
    instead of every stored result."""

    __tablename__ = "seizure_origin"

    seizure_id: Mapped[int] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"), primary_key=True
    )
    best_lat: Mapped[float]
    best_lon: Mapped[float]
    area90_km2: Mapped[float | None]
    region90: Mapped[list] = mapped_column(sa.JSON, default=list)
    match_request_id: Mapped[int] = mapped_column(sa.ForeignKey("match_request.id"))
    found_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


LINK_SEARCH_STATUSES = ("queued", "running", "done", "failed")


class LinkSearch(Base):
    """A search of newly released profiles against every released profile of their panel
    (:mod:`lims.network`), queued when profiles are released and run by the job workers
    (:mod:`lims.jobs`) like a match request: claimed with one conditional UPDATE, with
    progress, heartbeat and attempts. The profiles it covers are those released and not yet
    searched when it runs (:class:`SearchedProfile`)."""

    __tablename__ = "link_search"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                           name="status"),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name="progress"),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failure_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    panel: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(default=0.0)
    stage: Mapped[str | None] = mapped_column(sa.String(200))
    error: Mapped[str | None] = mapped_column(sa.Text)
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    attempts: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    new_profiles: Mapped[int | None]
    pairs_found: Mapped[int | None]
    links_folded: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SearchedProfile(Base):
    """A released profile the network search has covered (by ``link_search_id``)."""

    __tablename__ = "searched_profile"

    profile_id: Mapped[int] = mapped_column(
        sa.ForeignKey("genotype_profile.id", ondelete="CASCADE"), primary_key=True
    )
    link_search_id: Mapped[int] = mapped_column(sa.ForeignKey("link_search.id"), index=True)


class ProfileLink(Base):
    """A pair of released profiles the network search reported (``profile1_id <
    profile2_id``), with the records they come from (``seizure*_id`` null for a source
    animal), the relationship and its log10 LR. :class:`SeizureLink` rows are derived from
    these."""

    __tablename__ = "profile_link"
    __table_args__ = (
        sa.CheckConstraint("profile1_id < profile2_id", name="ordered"),
        sa.Index("ix_profile_link_seizures", "seizure1_id", "seizure2_id"),
    )

    profile1_id: Mapped[int] = mapped_column(
        sa.ForeignKey("genotype_profile.id", ondelete="CASCADE"), primary_key=True
    )
    profile2_id: Mapped[int] = mapped_column(
        sa.ForeignKey("genotype_profile.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    seizure1_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"))
    seizure2_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("seizure.id", ondelete="CASCADE"))
    relationship: Mapped[str] = mapped_column(sa.String(32))
    log10_lr: Mapped[float | None]
    link_search_id: Mapped[int] = mapped_column(sa.ForeignKey("link_search.id"))
