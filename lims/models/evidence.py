"""Cases and the physical evidence: seizures, items, source animals, samples, extracts,
storage locations and attachments.

Every evidence record hangs off a case, and need-to-know is decided by the case: its agency
and the agencies it is shared with. Samples carry their case directly (copied from where they
came from) so that access checks on the most numerous records need no chain of joins.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, exactly_one_of, one_of, utcnow
from lims.models.people import Agency, User

CASE_KINDS = ("investigation", "reference")
CASE_STATUSES = ("open", "closed")
SHARE_ACCESS = ("read", "contribute")
ITEM_KINDS = ("tusk", "horn", "piece")
SOURCE_ANIMAL_KINDS = ("reference_animal", "carcass")
SAMPLE_TYPES = ("powder", "tissue", "blood", "hair", "dung", "bone", "swab", "other")
STORAGE_KINDS = ("site", "building", "room", "freezer", "refrigerator", "shelf", "rack", "box")


class Case(Base):
    """A case file: an investigation, or a reference collection of known-origin animals."""

    __tablename__ = "case_file"
    __table_args__ = (
        one_of("kind", CASE_KINDS),
        one_of("status", CASE_STATUSES),
        # Per agency: one agency's references say nothing about another's (need-to-know).
        sa.UniqueConstraint("agency_id", "reference"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32), default="investigation")
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency: Mapped[Agency] = relationship()
    shares: Mapped[list[CaseShare]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )


class CaseShare(Base):
    """Another agency's access to a case: ``read``, or ``contribute`` (add and edit evidence)."""

    __tablename__ = "case_share"
    __table_args__ = (one_of("access", SHARE_ACCESS),)

    case_id: Mapped[int] = mapped_column(
        sa.ForeignKey("case_file.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), primary_key=True)
    access: Mapped[str] = mapped_column(sa.String(16), default="read")
    shared_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    shared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="shares")
    agency: Mapped[Agency] = relationship()


def _agency_of_case(context) -> int:
    case_id = context.get_current_parameters()["case_id"]
    return context.connection.scalar(sa.select(Case.agency_id).where(Case.id == case_id))


class Seizure(Base):
    """One seizure event: what was seized, where, when and by whom.

    ``agency_id`` is the agency of the seizure's case (filled in from the case on insert; a
    case never changes agency and a seizure never changes case), so that seizure references
    are unique per agency: the holding agency and the reference name a seizure.
    """

    __tablename__ = "seizure"
    __table_args__ = (
        sa.UniqueConstraint("agency_id", "reference"),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude"),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude"),
        sa.CheckConstraint("declared_pieces >= 0", name="declared_pieces"),
        sa.CheckConstraint("declared_weight_kg >= 0", name="declared_weight_kg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), default=_agency_of_case)
    reference: Mapped[str] = mapped_column(sa.String(64))
    seized_on: Mapped[dt.date | None]
    place: Mapped[str | None] = mapped_column(sa.String(200))
    country: Mapped[str | None] = mapped_column(sa.String(100))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    route: Mapped[str | None] = mapped_column(sa.Text)
    seizing_agency_id: Mapped[int | None] = mapped_column(sa.ForeignKey("agency.id"))
    declared_pieces: Mapped[int | None]
    declared_weight_kg: Mapped[float | None]
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()


class Item(Base):
    """One seized piece: a tusk, a horn or another piece, with its measurements.

    ``paired_item_id`` records a morphological tusk pair (left and right tusk judged to be of
    one animal); the pairing is kept symmetric by the API.
    """

    __tablename__ = "item"
    __table_args__ = (
        one_of("kind", ITEM_KINDS),
        sa.UniqueConstraint("seizure_id", "label"),
        sa.CheckConstraint("length_cm > 0", name="length_cm"),
        sa.CheckConstraint("circumference_cm > 0", name="circumference_cm"),
        sa.CheckConstraint("weight_kg > 0", name="weight_kg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seizure_id: Mapped[int] = mapped_column(sa.ForeignKey("seizure.id"), index=True)
    label: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    length_cm: Mapped[float | None]
    circumference_cm: Mapped[float | None]
    weight_kg: Mapped[float | None]
    paired_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("item.id"))
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    seizure: Mapped[Seizure] = relationship()


class SourceAnimal(Base):
    """A known animal sampled directly: a reference animal of known origin, or a carcass.

    ``agency_id`` is the agency of the animal's case (filled in from the case on insert), so
    that identifiers are unique per agency, as seizure references are.
    """

    __tablename__ = "source_animal"
    __table_args__ = (
        sa.UniqueConstraint("agency_id", "identifier"),
        one_of("kind", SOURCE_ANIMAL_KINDS),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude"),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), default=_agency_of_case)
    identifier: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    species: Mapped[str | None] = mapped_column(sa.String(100))
    population: Mapped[str | None] = mapped_column(sa.String(100))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    found_on: Mapped[dt.date | None]
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()


class StorageLocation(Base):
    """A place where evidence is kept; locations nest (site > room > freezer > rack > box)."""

    __tablename__ = "storage_location"
    __table_args__ = (one_of("kind", STORAGE_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("storage_location.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[StorageLocation | None] = relationship(remote_side=[id])

    @property
    def path(self) -> str:
        """Names from the outermost location down to this one, joined by ``" / "``."""
        names = []
        location: StorageLocation | None = self
        while location is not None:
            names.append(location.name)
            location = location.parent
        return " / ".join(reversed(names))


class Sample(Base):
    """A physical sample with a unique barcode.

    It comes from exactly one origin: a seized item, a source animal (reference animal or
    carcass), or a parent sample (an aliquot or sub-sample). ``case_id`` is that origin's case.
    """

    __tablename__ = "sample"
    __table_args__ = (
        one_of("sample_type", SAMPLE_TYPES),
        exactly_one_of(("item_id", "source_animal_id", "parent_id"), name="one_origin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(sa.String(64), unique=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    sample_type: Mapped[str] = mapped_column(sa.String(32))
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("item.id"), index=True)
    source_animal_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("source_animal.id"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    storage_location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("storage_location.id"))
    consumed: Mapped[bool] = mapped_column(default=False)
    collected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    item: Mapped[Item | None] = relationship()
    source_animal: Mapped[SourceAnimal | None] = relationship()
    parent: Mapped[Sample | None] = relationship(remote_side=[id])

    def lineage(self) -> list[Sample]:
        """This sample and its parent samples, nearest first."""
        chain = []
        sample: Sample | None = self
        while sample is not None:
            chain.append(sample)
            sample = sample.parent
        return chain

    @property
    def origin_item(self) -> Item | None:
        """The seized item this sample ultimately comes from (``None`` for source animals)."""
        return self.lineage()[-1].item

    @property
    def origin_source_animal(self) -> SourceAnimal | None:
        return self.lineage()[-1].source_animal


class Extract(Base):
    """A DNA extract made from a sample."""

    __tablename__ = "extract"
    __table_args__ = (
        sa.CheckConstraint("volume_ul > 0", name="volume_ul"),
        sa.CheckConstraint("concentration_ng_ul >= 0", name="concentration_ng_ul"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    method: Mapped[str | None] = mapped_column(sa.String(200))
    extracted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    volume_ul: Mapped[float | None]
    concentration_ng_ul: Mapped[float | None]
    storage_location_id: Mapped[int | None] = mapped_column(sa.ForeignKey("storage_location.id"))
    consumed: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sample: Mapped[Sample] = relationship()


class Attachment(Base):
    """A file (photo, scanned form) attached to a case, seizure, item or sample.

    The content is kept in the database with its SHA-256, so a copy can be checked against it.
    """

    __tablename__ = "attachment"
    __table_args__ = (
        exactly_one_of(("case_id", "seizure_id", "item_id", "sample_id"), name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("case_file.id"), index=True)
    seizure_id: Mapped[int | None] = mapped_column(sa.ForeignKey("seizure.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("item.id"), index=True)
    sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.id"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    media_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: Mapped[User | None] = relationship()
