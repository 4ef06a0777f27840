"""The audit trail: every insert, update and delete of a LIMS record, with old and new values.

Listeners on SQLAlchemy sessions write an :class:`~lims.models.AuditRecord` per changed
record, inside the same transaction as the change (so a rolled-back change leaves no trail and
a committed one always has it). Deletions are caught row by row as the flush deletes them, so
rows deleted as orphans or by cascade (a role taken away, a withdrawn report's signatures) are
kept too. The actor is ``session.info["actor_id"]``, set when a user is authenticated
(``None`` for command-line and system changes).

Old values are taken before the rows change: an attribute whose old value was never loaded is
read from the database then, so the trail never records a guess.

The trail is hash-chained like the custody ledger, with the same machinery
(:class:`lims.custody.HashChain`): each record's ``hash`` is SHA-256 over the previous
record's hash and its canonical JSON (:func:`canonical_audit_record`), the records are
numbered gaplessly by ``seq``, and appends are counted and take the one append lock, so
concurrent writers take turns and never fork the chain. A flush that will write audited
changes takes the lock before it writes any row (:func:`_before_flush`), so every writer takes
the lock before the row locks of its changes and two writers never deadlock on each other.
Appends are serialised: on PostgreSQL an audited transaction holds the lock until it ends.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import itertools
import json
import operator
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from lims.custody import (
    HashChain,
    count_appends,
    format_time,
    link_hash,
    lock_chains,
    locked_head,
)
from lims.database import Base, utcnow
from lims.models import APPEND_ONLY_TABLES, AuditRecord

# Values never copied into the trail; the trail records that they changed.
SECRET_COLUMNS = frozenset(
    {
        ("user_account", "password_hash"),
        ("api_token", "token_hash"),
        ("user_session", "token_hash"),
    }
)
REDACTED = "<redacted>"

_PENDING_KEY = "dnatrack_audit_pending"
_DELETED_KEY = "dnatrack_audit_deleted"


def _is_audited(instance) -> bool:
    return isinstance(instance, Base) and instance.__tablename__ not in APPEND_ONLY_TABLES


def canonical_audit_record(row: Mapping) -> dict:
    """Every recorded fact of an audit record (a row's column values) except its id, which
    the database assigns, and its hashes."""
    return {
        "seq": row["seq"],
        "occurred_at": format_time(row["occurred_at"]),
        "actor_id": row["actor_id"],
        "table_name": row["table_name"],
        "record_id": row["record_id"],
        "action": row["action"],
        "changes": row["changes"],
    }


AUDIT_TRAIL = HashChain(
    name="audit trail",
    entry="audit record",
    table=AuditRecord.__table__,
    seq="seq",
    counter="audit_appends",
    canonical=lambda session, row: canonical_audit_record(row),
)


def _append(session: Session, rows: list[dict]) -> None:
    """Number, chain and insert audit records (column values without the chain fields)."""
    previous = locked_head(session, AUDIT_TRAIL)
    prev_hash = previous.hash
    for seq, row in enumerate(rows, start=previous.seq + 1):
        # As the JSON column will give it back (keys as text, tuples as lists), so the hash
        # recomputed from the stored row is the same.
        row["changes"] = json.loads(json.dumps(row["changes"]))
        row["seq"] = seq
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = link_hash(prev_hash, canonical_audit_record(row))
    session.connection().execute(sa.insert(AuditRecord.__table__), rows)
    count_appends(session, AUDIT_TRAIL, len(rows))


def audit_value(table: str, column: str, value):
    """The JSON form of a column value as kept in the trail."""
    if (table, column) in SECRET_COLUMNS and value is not None:
        return REDACTED
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _record_id(instance) -> str:
    mapper = sa.inspect(instance).mapper
    keys = [column.key for column in mapper.primary_key]
    values = [getattr(instance, key) for key in keys]
    if len(keys) == 1:
        return str(values[0])
    return ",".join(f"{key}={value}" for key, value in zip(keys, values, strict=True))


def record_key(model: type) -> ColumnElement[str]:
    """SQL for the ``record_id`` the trail gives a row of ``model`` (as :func:`_record_id`
    writes it: the key, or ``name=value,…`` for composite keys)."""
    columns = list(sa.inspect(model).primary_key)
    if len(columns) == 1:
        return sa.cast(columns[0], sa.String)
    parts = []
    for index, column in enumerate(columns):
        parts.append(sa.literal(f"{',' if index else ''}{column.key}=", sa.String))
        parts.append(sa.cast(column, sa.String))
    return functools.reduce(operator.add, parts)


def _column_values(instance) -> dict:
    state = sa.inspect(instance)
    table = instance.__tablename__
    values = {}
    for attribute in state.mapper.column_attrs:
        if attribute.key in state.unloaded:
            continue
        values[attribute.key] = audit_value(table, attribute.key, getattr(instance, attribute.key))
    return values


def _stored_values(connection, state, attributes) -> list:
    """The values of ``attributes`` in the row of ``state`` as the database holds them."""
    identity = sa.and_(
        *(
            column == value
            for column, value in zip(state.mapper.primary_key, state.identity, strict=True)
        )
    )
    columns = [attribute.columns[0] for attribute in attributes]
    return list(connection.execute(sa.select(*columns).where(identity)).one())


def _updated_values(session: Session, instance) -> dict:
    """``{column: {"old": ..., "new": ...}}`` for the changed columns of a persistent record."""
    state = sa.inspect(instance)
    table = instance.__tablename__
    changes: dict[str, tuple] = {}
    old_unloaded = []
    for attribute in state.mapper.column_attrs:
        history = state.attrs[attribute.key].history
        if not history.has_changes():
            continue
        new = history.added[0] if history.added else None
        if history.deleted:
            if history.deleted[0] != new:
                changes[attribute.key] = (history.deleted[0], new)
        else:
            old_unloaded.append((attribute, new))
    if old_unloaded:
        # The flush has not written the row yet, so it still holds the old values.
        stored = _stored_values(
            session.connection(), state, [attribute for attribute, _ in old_unloaded]
        )
        for (attribute, new), old in zip(old_unloaded, stored, strict=True):
            if old != new:
                changes[attribute.key] = (old, new)
    return {
        key: {"old": audit_value(table, key, old), "new": audit_value(table, key, new)}
        for key, (old, new) in changes.items()
    }


def _before_flush(session: Session, flush_context, instances) -> None:
    pending = session.info.setdefault(_PENDING_KEY, [])
    modified = [
        instance
        for instance in session.dirty
        if _is_audited(instance) and session.is_modified(instance, include_collections=False)
    ]
    if modified or any(
        _is_audited(instance) for instance in itertools.chain(session.new, session.deleted)
    ):
        # Before this flush writes (and row-locks) anything: see the module's docstring.
        lock_chains(session)
    for instance in modified:
        changes = _updated_values(session, instance)
        if changes:
            pending.append((instance, changes))


def _after_flush(session: Session, flush_context) -> None:
    now = utcnow()
    actor = session.info.get("actor_id")
    rows = []

    def add(instance, action: str, changes: dict) -> None:
        rows.append(
            {
                "occurred_at": now,
                "actor_id": actor,
                "table_name": instance.__tablename__,
                "record_id": _record_id(instance),
                "action": action,
                "changes": changes,
            }
        )

    for instance in session.new:
        if _is_audited(instance):
            values = _column_values(instance)
            add(instance, "insert", {key: {"old": None, "new": v} for key, v in values.items()})
    for instance, changes in session.info.pop(_PENDING_KEY, []):
        add(instance, "update", changes)
    for instance, changes in session.info.pop(_DELETED_KEY, []):
        add(instance, "delete", changes)
    if rows:
        _append(session, rows)


def _before_delete(mapper, connection, instance) -> None:
    # Called inside the flush for every row it deletes, orphans and cascades included (which
    # session.deleted does not list), while the row still holds its values.
    if not _is_audited(instance):
        return
    state = sa.inspect(instance)
    values = {
        attribute.key: getattr(instance, attribute.key)
        for attribute in mapper.column_attrs
        if attribute.key not in state.unloaded
    }
    unloaded = [attribute for attribute in mapper.column_attrs if attribute.key in state.unloaded]
    if unloaded:
        stored = _stored_values(connection, state, unloaded)
        values.update(zip((attribute.key for attribute in unloaded), stored, strict=True))
    table = instance.__tablename__
    changes = {key: {"old": audit_value(table, key, v), "new": None} for key, v in values.items()}
    state.session.info.setdefault(_DELETED_KEY, []).append((instance, changes))


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_DELETED_KEY, None)


_LISTENERS = (
    ("before_flush", _before_flush),
    ("after_flush", _after_flush),
    ("after_rollback", _forget_pending),
)


def install() -> None:
    """Listen on every SQLAlchemy session and every mapped class (calling it again changes
    nothing)."""
    for name, listener in _LISTENERS:
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)
    if not sa.event.contains(Base, "before_delete", _before_delete):
        sa.event.listen(Base, "before_delete", _before_delete, propagate=True)
