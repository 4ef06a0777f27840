"""The custody ledger: recording hash-chained custody events, verifying the chain, histories;
and the hash-chain machinery the audit trail and the issued reports share with it.

:class:`HashChain` describes one chained table (which column numbers the rows, which hold the
hashes, how a row is put into canonical JSON, which counter counts its appends);
:func:`lock_chains`, :func:`chain_head` and :func:`count_appends` append to any of them,
:func:`verify_chain` replays one and :func:`check_link` checks a single row against its
neighbours. :data:`CUSTODY_LEDGER` is the ledger's; :data:`lims.audit.AUDIT_TRAIL` and
:data:`lims.reports.issue.ISSUED_REPORTS` are the others. Everything below about the ledger
holds for each of them.

Chain granularity: **one global chain** over every custody event of the installation, in
``seq`` order. Each event's hash covers the previous event's hash, so one head hash (the latest
event's) commits to the whole history; reports print it, and any later change to any earlier
event, a deleted event, or events put out of order break the chain at that point. The hash of
an event is::

    sha256(prev_hash || canonical JSON of the event)

where ``prev_hash`` is the 64 hex digits of the previous event's hash (64 zeros for event 1),
and the canonical JSON has sorted keys, no whitespace, UTF-8, and times as UTC ISO 8601 with
microseconds and a ``Z`` (see :func:`canonical_event`). Appending first updates the single
row of ``custody_append_lock`` (one lock for every chain, so a writer appending to two never
deadlocks with another), which makes concurrent writers on SQLite and PostgreSQL take turns;
the unique ``seq`` would in any case stop two writers from forking the chain.

The chain cannot show that events were cut off its *end*. Two things do: the ``appends``
counter of that same row, which every append raises by one in the appending transaction, so
:func:`verify_ledger` reports "ledger truncated" when fewer events are present than were
recorded; and the head hashes printed on earlier reports (``known_heads``), which must still be
in the chain. The counter catches someone deleting rows who does not also know to lower it;
the published heads hold even against someone who does.

The database refuses UPDATE, DELETE and TRUNCATE on the ledger and the audit trail, and on
issued reports and their signatures, by triggers; on SQLite also an ``INSERT OR REPLACE``
onto an existing row, which would otherwise delete it without firing a delete trigger
(migration 0005).

In production, database roles keep the append-only promise. The application connects as a
role that may INSERT and SELECT on ``custody_event`` and ``audit_record`` (and INSERT and
UPDATE on the single-row ``custody_append_lock``) but holds no UPDATE, DELETE or TRUNCATE on
the ledger tables, no TRIGGER privilege, owns none of the tables and is not a superuser; the
migrations run as a separate owner role whose password the application never has. Removing
the append-only triggers or deleting ledger rows then needs the owner role, so neither a bug
nor an attacker holding the application's credentials can rewrite the ledger, and whoever
uses the owner role to do so still has the append counter, the published head hashes and the
chain itself to get past. A SQLite file has no roles: whoever may write the file may do all
of this, so multi-user deployments use PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from lims.database import utcnow
from lims.models import (
    EVENT_TYPES,
    SIGNATURE_MEANINGS,
    CustodyAppendLock,
    CustodyEvent,
    Extract,
    Item,
    Sample,
    Seizure,
    StorageLocation,
    User,
)

GENESIS_HASH = "0" * 64

SUBJECT_KINDS = {"seizure": Seizure, "item": Item, "sample": Sample, "extract": Extract}

# Clocks of the recording machine and of whoever typed the time disagree a little.
_FUTURE_TOLERANCE = dt.timedelta(minutes=5)


class CustodyError(ValueError):
    """A custody event that cannot be recorded; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def format_time(moment: dt.datetime) -> str:
    """UTC ISO 8601 with microseconds and ``Z``, e.g. ``2024-05-01T08:30:00.000000Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_event(event: CustodyEvent) -> dict:
    """Every recorded fact of ``event`` except its own hash, as JSON-ready values."""
    kind, subject_id = event.subject
    return {
        "seq": event.seq,
        "event_type": event.event_type,
        "subject": {"kind": kind, "id": subject_id},
        "actor_id": event.actor_id,
        "from_holder": event.from_holder,
        "to_holder": event.to_holder,
        "place": event.place,
        "storage_location_id": event.storage_location_id,
        "seal_numbers": list(event.seal_numbers),
        "signature_meaning": event.signature_meaning,
        "notes": event.notes,
        "occurred_at": format_time(event.occurred_at),
        "recorded_at": format_time(event.recorded_at),
    }


def canonical_json(payload: dict) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(prev_hash: str, payload: dict) -> str:
    """Hex SHA-256 of ``prev_hash`` (as ASCII hex) followed by ``payload``'s canonical JSON."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical_json(payload))
    return digest.hexdigest()


def event_hash(prev_hash: str, event: CustodyEvent) -> str:
    """The hash of a custody event: :func:`link_hash` over its canonical JSON."""
    return link_hash(prev_hash, canonical_event(event))


# ----------------------------------------------------------------------------- hash chains
@dataclass(frozen=True)
class HashChain:
    """An append-only table whose rows are hash-chained as the custody ledger is.

    The rows of ``table`` matching ``members`` are numbered 1, 2, 3… in column ``seq``; each
    row's ``prev_hash`` is the ``hash`` of the row before (:data:`GENESIS_HASH` for the first)
    and its ``hash`` is :func:`link_hash` of ``prev_hash`` and ``canonical(session, row)``.
    ``counter`` is the column of the append lock's single row that counts the chain's appends
    (see :func:`lock_chains`). ``check_row`` names what else a row must satisfy, or ``None``.
    """

    name: str  # the chain, e.g. "ledger"
    entry: str  # one row, e.g. "custody event"; its last word names it in short
    table: sa.Table
    seq: str
    counter: str
    canonical: Callable[[Session, Mapping], dict]
    prev_hash: str = "prev_hash"
    hash: str = "hash"
    members: ColumnElement[bool] = dataclasses.field(default_factory=sa.true)
    check_row: Callable[[Session, Mapping], str | None] | None = None
    batch_size: int = 1000

    @property
    def short(self) -> str:
        return self.entry.split()[-1]

    def column(self, name: str) -> sa.Column:
        return self.table.c[getattr(self, name)]


@dataclass(frozen=True)
class LedgerHead:
    """The latest row of a chain: its number and hash (``seq`` 0 and zeros when empty)."""

    seq: int
    hash: str


_LOCK = CustodyAppendLock.__table__


def lock_chains(session: Session) -> None:
    """Take the append lock of every chain until the transaction ends.

    One row (:class:`CustodyAppendLock`) serves every chain, so that writers appending to
    several chains (a custody event and the audit records of the same change) take the lock
    once and always in the same order: concurrent writers take turns and never deadlock.
    """
    connection = session.connection()
    # Writing the row takes the lock; it is counted only once a row is appended.
    updated = connection.execute(
        sa.update(_LOCK).where(_LOCK.c.id == 1).values(appends=_LOCK.c.appends)
    )
    if updated.rowcount == 0:
        # The row is made by the migration. Put it back if someone removed it; its counts
        # start again from zero, which verify_chain then reports.
        connection.execute(sa.insert(_LOCK).values(id=1))


def chain_head(session: Session, chain: HashChain) -> LedgerHead:
    """The last linked row of ``chain``."""
    seq, hash_ = chain.column("seq"), chain.column("hash")
    row = session.connection().execute(
        sa.select(seq, hash_).where(chain.members, seq.is_not(None))
        .order_by(seq.desc()).limit(1)
    ).first()
    return LedgerHead(0, GENESIS_HASH) if row is None else LedgerHead(*row)


def locked_head(session: Session, chain: HashChain) -> LedgerHead:
    """Take the append lock (:func:`lock_chains`), then read the head to append after."""
    lock_chains(session)
    return chain_head(session, chain)


def count_appends(session: Session, chain: HashChain, n: int = 1) -> None:
    """Raise ``chain``'s append counter by ``n`` in the appending transaction."""
    counter = _LOCK.c[chain.counter]
    session.connection().execute(
        sa.update(_LOCK).where(_LOCK.c.id == 1).values({counter: counter + n})
    )


CUSTODY_LEDGER = HashChain(
    name="ledger",
    entry="custody event",
    table=CustodyEvent.__table__,
    seq="seq",
    counter="appends",
    canonical=lambda session, row: canonical_event(CustodyEvent(**row)),
)


def ledger_head(session: Session) -> LedgerHead:
    """The custody ledger's latest event."""
    return chain_head(session, CUSTODY_LEDGER)


def _check_event(
    event_type: str,
    subject,
    *,
    signature_meaning: str,
    from_holder: str | None,
    to_holder: str | None,
    storage_location: StorageLocation | None,
    seal_numbers: list[str],
    occurred_at: dt.datetime,
    now: dt.datetime,
) -> None:
    if event_type not in EVENT_TYPES:
        raise CustodyError(
            f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}", "event_type"
        )
    if signature_meaning not in SIGNATURE_MEANINGS:
        raise CustodyError(
            f"unknown signature meaning {signature_meaning!r}; one of "
            f"{', '.join(SIGNATURE_MEANINGS)}",
            "signature_meaning",
        )
    if not isinstance(subject, tuple(SUBJECT_KINDS.values())):
        raise CustodyError("the subject must be a seizure, item, sample or extract", "subject")
    if occurred_at.tzinfo is None:
        raise CustodyError("occurred_at needs a time zone", "occurred_at")
    if occurred_at > now + _FUTURE_TOLERANCE:
        raise CustodyError("occurred_at is in the future", "occurred_at")
    if any(not isinstance(seal, str) or not seal.strip() for seal in seal_numbers):
        raise CustodyError("seal numbers must be non-empty text", "seal_numbers")
    if event_type == "seal" and not seal_numbers:
        raise CustodyError("a seal event needs the seal numbers", "seal_numbers")
    if event_type == "transfer":
        for name, value in (("from_holder", from_holder), ("to_holder", to_holder)):
            if not value:
                raise CustodyError(f"a transfer needs {name}", name)
    if event_type == "receive" and not from_holder:
        raise CustodyError("a receipt needs from_holder", "from_holder")
    if event_type == "store":
        if storage_location is None:
            raise CustodyError("a store event needs a storage location", "storage_location_id")
        if not isinstance(subject, Sample | Extract):
            raise CustodyError("only samples and extracts are stored at a location", "subject")
    if event_type == "destroy" and isinstance(subject, Seizure):
        raise CustodyError("destroy the items of a seizure, not the seizure record", "subject")


def _subject_column(subject) -> str:
    for kind, model in SUBJECT_KINDS.items():
        if isinstance(subject, model):
            return f"{kind}_id"
    raise CustodyError("the subject must be a seizure, item, sample or extract", "subject")


def record_event(
    session: Session,
    *,
    event_type: str,
    subject: Seizure | Item | Sample | Extract,
    actor: User,
    signature_meaning: str,
    occurred_at: dt.datetime | None = None,
    from_holder: str | None = None,
    to_holder: str | None = None,
    place: str | None = None,
    storage_location: StorageLocation | None = None,
    seal_numbers: Iterable[str] = (),
    notes: str | None = None,
) -> CustodyEvent:
    """Append one custody event to the chain (flushed, not committed).

    A ``store`` event moves a sample or extract to ``storage_location``; a ``destroy`` event
    marks a sample or extract consumed. Destroyed evidence takes no further events.

    Raises
    ------
    CustodyError
        When the event is incomplete or contradicts the evidence's state; names the field.
    """
    now = utcnow()
    occurred_at = now if occurred_at is None else occurred_at
    seal_numbers = list(seal_numbers)
    _check_event(
        event_type,
        subject,
        signature_meaning=signature_meaning,
        from_holder=from_holder,
        to_holder=to_holder,
        storage_location=storage_location,
        seal_numbers=seal_numbers,
        occurred_at=occurred_at,
        now=now,
    )
    column = _subject_column(subject)
    lock_chains(session)
    destroyed = session.execute(
        sa.select(CustodyEvent.seq).where(
            getattr(CustodyEvent, column) == subject.id, CustodyEvent.event_type == "destroy"
        )
    ).first()
    if destroyed is not None:
        raise CustodyError(
            f"this {column.removesuffix('_id')} was destroyed (custody event {destroyed.seq})",
            "subject",
        )
    head = chain_head(session, CUSTODY_LEDGER)
    event = CustodyEvent(
        seq=head.seq + 1,
        event_type=event_type,
        actor_id=actor.id,
        from_holder=from_holder,
        to_holder=to_holder,
        place=place,
        storage_location_id=storage_location.id if storage_location is not None else None,
        seal_numbers=seal_numbers,
        signature_meaning=signature_meaning,
        notes=notes,
        occurred_at=occurred_at.astimezone(dt.UTC),
        recorded_at=now,
        prev_hash=head.hash,
        **{column: subject.id},
    )
    event.hash = event_hash(event.prev_hash, event)
    session.add(event)
    count_appends(session, CUSTODY_LEDGER)
    if event_type == "store":
        subject.storage_location_id = storage_location.id
    elif event_type == "destroy" and isinstance(subject, Sample | Extract):
        subject.consumed = True
    session.flush()
    return event


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain does not hold: the row number and what is wrong."""

    seq: int
    reason: str
    entry: str = "custody event"

    def __str__(self) -> str:
        return f"{self.entry} {self.seq}: {self.reason}"


@dataclass(frozen=True)
class LedgerVerification:
    """Result of replaying a chain: rows checked, head reached, first break if any."""

    n_events: int
    head: LedgerHead
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


@dataclass(frozen=True)
class _ChainLength:
    """The append counter and the rows present, read in one statement (one snapshot)."""

    appends: int | None
    present: int
    last: LedgerHead


def _chain_length(session: Session, chain: HashChain) -> _ChainLength:
    table, seq, hash_ = chain.table, chain.column("seq"), chain.column("hash")
    last_seq = sa.select(sa.func.max(seq)).where(chain.members).scalar_subquery()
    row = session.execute(
        sa.select(
            sa.select(_LOCK.c[chain.counter]).where(_LOCK.c.id == 1).scalar_subquery(),
            sa.select(sa.func.count()).select_from(table).where(chain.members)
            .scalar_subquery(),
            last_seq,
            sa.select(hash_).where(chain.members, seq == last_seq).scalar_subquery(),
        )
    ).one()
    appends, present, last, head_hash = row
    head = LedgerHead(0, GENESIS_HASH) if last is None else LedgerHead(last, head_hash)
    return _ChainLength(appends, present, head)


def _length_break(
    chain: HashChain, length: _ChainLength, missing_heads: set[str]
) -> ChainBreak | None:
    """The break the counter or the published heads show at the end of an intact chain."""
    last, plural = length.last, f"{chain.short}s"

    def broken(seq: int, reason: str) -> ChainBreak:
        return ChainBreak(seq, reason, chain.entry)

    last_present = (
        f"the last {chain.short} present is {last.seq} (hash {last.hash})"
        if last.seq
        else f"no {chain.short} is present"
    )
    if length.appends is None:
        return broken(
            last.seq + 1,
            f"the append counter ({_LOCK.name}) is missing, so {plural} cut off the end "
            f"would go unseen; {last_present}",
        )
    if length.appends > length.present:
        return broken(
            last.seq + 1,
            f"{chain.name} truncated: {length.appends} {plural} recorded, {length.present} "
            f"present; {last_present}",
        )
    if missing_heads:
        return broken(
            last.seq + 1,
            f"{chain.name} truncated: published head hash {sorted(missing_heads)[0]} is not "
            f"in the chain; {last_present}",
        )
    if length.appends < length.present:
        return broken(
            length.appends + 1,
            f"the append counter says {length.appends} {plural} were recorded but "
            f"{length.present} are present (the counter was reset, or {plural} were added "
            "outside the application)",
        )
    return None


def _link_problem(
    session: Session, chain: HashChain, row: Mapping, previous_hash: str
) -> str | None:
    """What is wrong with one stored row given the hash of the row before, or ``None``."""
    seq = row[chain.seq]
    if row[chain.prev_hash] != previous_hash:
        return (
            f"prev_hash does not match the hash of {chain.short} {seq - 1}"
            if seq > 1
            else f"prev_hash of the first {chain.short} is not the genesis value"
        )
    if link_hash(row[chain.prev_hash], chain.canonical(session, row)) != row[chain.hash]:
        return "its stored fields do not match its hash (altered after recording)"
    return chain.check_row(session, row) if chain.check_row is not None else None


def _unlinked(chain: HashChain, row: Mapping) -> str:
    keys = ", ".join(f"{column.name} {row[column.name]}" for column in chain.table.primary_key)
    return (
        f"missing (a stored {chain.short}, {keys}, has no place in the chain: it was added "
        "outside the application)"
    )


def verify_chain(
    session: Session,
    chain: HashChain,
    *,
    known_heads: Iterable[str] = (),
    batch_size: int | None = None,
) -> LedgerVerification:
    """Replay ``chain`` from its first row and report the first broken link.

    Each row's stored hash is recomputed from its stored fields, its ``prev_hash`` compared
    with the previous row's stored hash, the numbering checked for gaps, and the chain's own
    ``check_row`` applied. The end of the chain is checked twice: the number of rows present
    must equal the append counter (rows cut off the end leave it higher: "<chain>
    truncated: N recorded, M present"), and each of ``known_heads``, head hashes published
    earlier (e.g. on reports), must still be in the chain.
    """
    # Counter and rows from one snapshot; the replay may see later appends too.
    length = _chain_length(session, chain)
    seq = chain.column("seq")
    expected_seq = 1
    previous_hash = GENESIS_HASH
    missing_heads = set(known_heads)
    first_break = None
    n_rows = 0
    # Plain rows, not ORM objects, so a long chain does not fill the caller's session.
    rows = session.execute(
        sa.select(chain.table)
        .where(chain.members)
        .order_by(seq.asc().nulls_last())
        .execution_options(yield_per=batch_size or chain.batch_size)
    )
    for row in rows.mappings():
        n_rows += 1
        if row[chain.seq] is None:
            first_break = ChainBreak(expected_seq, _unlinked(chain, row), chain.entry)
            break
        if row[chain.seq] != expected_seq:
            first_break = ChainBreak(
                expected_seq,
                f"missing (the next stored {chain.short} is {row[chain.seq]})",
                chain.entry,
            )
            break
        problem = _link_problem(session, chain, row, previous_hash)
        if problem is not None:
            first_break = ChainBreak(expected_seq, problem, chain.entry)
            break
        missing_heads.discard(row[chain.hash])
        previous_hash = row[chain.hash]
        expected_seq += 1
    rows.close()
    if first_break is None:
        first_break = _length_break(chain, length, missing_heads)
    return LedgerVerification(n_rows, LedgerHead(expected_seq - 1, previous_hash), first_break)


def check_link(session: Session, chain: HashChain, seq: int) -> ChainBreak | None:
    """Check one row of ``chain`` against its neighbours without replaying the chain: its
    hash, the previous row's hash and the next row's ``prev_hash`` (a row altered with a
    recomputed hash breaks the next link)."""
    column = chain.column("seq")
    rows = {
        row[chain.seq]: row
        for row in session.execute(
            sa.select(chain.table).where(chain.members, column.between(seq - 1, seq + 1))
        ).mappings()
    }
    row = rows.get(seq)
    if row is None:
        return ChainBreak(seq, "missing", chain.entry)
    previous = rows.get(seq - 1)
    if seq > 1 and previous is None:
        return ChainBreak(seq - 1, f"missing (the next stored {chain.short} is {seq})", chain.entry)
    problem = _link_problem(
        session, chain, row, previous[chain.hash] if seq > 1 else GENESIS_HASH
    )
    if problem is not None:
        return ChainBreak(seq, problem, chain.entry)
    following = rows.get(seq + 1)
    if following is not None and following[chain.prev_hash] != row[chain.hash]:
        return ChainBreak(
            seq + 1, f"prev_hash does not match the hash of {chain.short} {seq}", chain.entry
        )
    return None


def verify_ledger(
    session: Session, *, known_heads: Iterable[str] = (), batch_size: int = 1000
) -> LedgerVerification:
    """Replay the custody ledger (:func:`verify_chain`)."""
    return verify_chain(session, CUSTODY_LEDGER, known_heads=known_heads, batch_size=batch_size)


def custody_history(
    session: Session,
    sample: Sample,
    *,
    occurred_from: dt.datetime | None = None,
    occurred_to: dt.datetime | None = None,
) -> list[CustodyEvent]:
    """A sample's whole custody history in the order things happened, in one query.

    The history is the sample's own events plus those of the material it was taken from
    (its parent samples, its item and that item's seizure), each ancestor's events up to the
    moment the next record down the line was registered: what happened to the tusk before
    the sample was cut belongs to the sample's history, the tusk's later travels do not.
    Times are those of the hand-overs (``occurred_at``), not of their recording, which may
    come days later for events transcribed from paper; ``occurred_from`` and ``occurred_to``
    keep the events between them (both included). Events of the same moment keep ledger order.
    """
    conditions = [CustodyEvent.sample_id == sample.id]
    descendant_created = sample.created_at
    for ancestor in sample.lineage()[1:]:
        conditions.append(
            sa.and_(
                CustodyEvent.sample_id == ancestor.id,
                CustodyEvent.occurred_at <= descendant_created,
            )
        )
        descendant_created = ancestor.created_at
    item = sample.origin_item
    if item is not None:
        conditions.append(
            sa.and_(CustodyEvent.item_id == item.id, CustodyEvent.occurred_at <= descendant_created)
        )
        conditions.append(
            sa.and_(
                CustodyEvent.seizure_id == item.seizure_id,
                CustodyEvent.occurred_at <= item.created_at,
            )
        )
    statement = sa.select(CustodyEvent).where(sa.or_(*conditions))
    if occurred_from is not None:
        statement = statement.where(CustodyEvent.occurred_at >= occurred_from)
    if occurred_to is not None:
        statement = statement.where(CustodyEvent.occurred_at <= occurred_to)
    return list(session.scalars(statement.order_by(CustodyEvent.occurred_at, CustodyEvent.seq)))
