"""Exchange between laboratories: partner instances, signed packages received from them, the
profiles those packages carried, follow-up requests for details, and the exchange log.

A partner is registered by an admin of one agency, which is the agency whose released profiles
it may receive (``share_all_cases``, or the cases in ``shared_case_ids``, on the panels in
``shared_panels``). Two tokens travel between the instances: the one the partner issued to us
(``outbound_token``, sent with our requests to it, never shown back) and the one we issued to it
(kept only as ``inbound_token_hash``, like API tokens).

Imported packages are kept byte for byte with their signature and SHA-256; the profiles they
carried are rows of :class:`ExchangeProfile`, which the database refuses to change or delete
(triggers in migration 0009): an imported profile is the sender's and is never edited here.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, one_of, utcnow
from lims.models.people import Agency

FOLLOW_UP_STATUSES = ("pending", "approved", "refused")
EXCHANGE_EVENT_KINDS = (
    "export",
    "import",
    "search_received",
    "search_sent",
    "follow_up_received",
    "follow_up_decided",
    "follow_up_sent",
    "details_released",
)
#: Tables the database refuses to change once written (see migration 0009).
EXCHANGE_APPEND_ONLY_TABLES = ("exchange_package", "exchange_profile")


class ExchangePartner(Base):
    """Another dnatrack instance this one exchanges profiles with."""

    __tablename__ = "exchange_partner"
    __table_args__ = (
        sa.CheckConstraint("searches_per_minute >= 0", name="searches_per_minute"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    base_url: Mapped[str] = mapped_column(sa.String(500))
    # Raw 32-byte Ed25519 public key, base64 (what `dnatrack exchange key` prints).
    public_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The token the partner issued us, Fernet-encrypted under the instance's token key
    # (lims.exchange.encrypt_token): never stored in the clear.
    outbound_token_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    inbound_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    shared_panels: Mapped[list] = mapped_column(sa.JSON, default=list)
    share_all_cases: Mapped[bool] = mapped_column(default=False)
    shared_case_ids: Mapped[list] = mapped_column(sa.JSON, default=list)
    searches_per_minute: Mapped[int] = mapped_column(default=30)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency: Mapped[Agency] = relationship()


class ExchangePackage(Base):
    """One signed package imported from a partner, as received (``package_id`` is the
    sender's, unique: a package is imported once, a replay is refused)."""

    __tablename__ = "exchange_package"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("exchange_partner.id"), index=True)
    panel: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    n_profiles: Mapped[int]
    imported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[ExchangePartner] = relationship()


class ExchangeProfile(Base):
    """A released profile received from a partner: the sender's opaque reference, its alleles
    and the few facts a package carries. Never changed or deleted."""

    __tablename__ = "exchange_profile"
    __table_args__ = (sa.UniqueConstraint("partner_id", "panel", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(sa.ForeignKey("exchange_package.id"), index=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("exchange_partner.id"))
    reference: Mapped[str] = mapped_column(sa.String(64))
    panel: Mapped[str] = mapped_column(sa.String(100), index=True)
    alleles: Mapped[dict] = mapped_column(sa.JSON)
    n_loci_typed: Mapped[int]
    species: Mapped[str | None] = mapped_column(sa.String(100))
    sample_type: Mapped[str | None] = mapped_column(sa.String(32))
    seizure_country: Mapped[str | None] = mapped_column(sa.String(100))
    seizure_year: Mapped[int | None]

    partner: Mapped[ExchangePartner] = relationship()


class ExchangeFollowUp(Base):
    """A partner's request for the details behind one of our opaque references; an admin of
    the partner's agency approves or refuses it."""

    __tablename__ = "exchange_follow_up"
    __table_args__ = (
        one_of("status", FOLLOW_UP_STATUSES),
        sa.CheckConstraint(
            "status = 'pending' OR decided_by_id IS NOT NULL", name="decided_by"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("exchange_partner.id"), index=True)
    reference: Mapped[str] = mapped_column(sa.String(64))
    panel: Mapped[str] = mapped_column(sa.String(100))
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[ExchangePartner] = relationship()


class ExchangeEvent(Base):
    """One exchange with a partner, whichever way it went and whether it succeeded: what a
    laboratory audits (and what per-partner rate limits count)."""

    __tablename__ = "exchange_event"
    __table_args__ = (
        one_of("kind", EXCHANGE_EVENT_KINDS),
        sa.Index("ix_exchange_event_partner_kind_time", "partner_id", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("exchange_partner.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
