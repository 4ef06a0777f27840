"""Tamper-evident audit trail and issued reports; no INSERT OR REPLACE, no TRUNCATE.

- The audit trail and the issued reports are hash-chained like the custody ledger: audit
  records get ``seq``, ``prev_hash`` and ``hash``; reports get ``issue_seq``,
  ``issue_prev_hash`` and ``issue_hash`` (null on drafts); the append lock's row counts the
  appends of each chain. The rows already there are chained here, audit records in the order
  of their ids and issued reports in the order of issue, with the application's own hash
  functions, and the counters set to the rows chained.
- SQLite: ``INSERT OR REPLACE`` deletes the row it replaces without firing delete triggers
  (unless ``recursive_triggers`` is on, which nothing guarantees), so it rewrote custody
  events, audit records and issued reports past every trigger. A BEFORE INSERT trigger on
  each of these tables and on report signatures now refuses an insert whose key (primary key
  or any unique key) a row already holds, and a BEFORE UPDATE trigger refuses an update of a
  report onto another report's key (``UPDATE OR REPLACE``).
- PostgreSQL: ``TRUNCATE report CASCADE`` removed issued reports; reports and their signatures
  now refuse TRUNCATE like the ledger tables (statement-level BEFORE TRUNCATE triggers).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import contextlib

import sqlalchemy as sa
from alembic import op

from lims.audit import canonical_audit_record
from lims.custody import GENESIS_HASH, link_hash
from lims.database import UTCDateTime
from lims.reports.issue import ISSUE_COLUMNS, SIGNATURE_COLUMNS, canonical_issued_report

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Every key of each append-only table (or table with append-only rows), as column lists.
KEYS = {
    "custody_event": (("seq",), ("hash",)),
    "audit_record": (("id",), ("seq",), ("hash",)),
    "report": (("id",), ("match_request_id", "kind", "version"), ("issue_seq",), ("issue_hash",)),
    "report_signature": (("id",), ("report_id", "role")),
}
TRUNCATE_REFUSED = ("report", "report_signature")

#: The triggers of 0001 and 0002 that stop the chain fields being filled in (on SQLite also
#: the delete trigger of the audit trail, whose table is rebuilt).
UPDATE_TRIGGERS = {
    "sqlite": {"audit_record": ("audit_record_no_update", "audit_record_no_delete"),
               "report": ("report_issued_no_update",)},
    "postgresql": {"audit_record": ("audit_record_append_only",),
                   "report": ("report_issued_immutable",)},
}

_AUDIT = sa.table(
    "audit_record",
    sa.column("id", sa.Integer()),
    sa.column("occurred_at", UTCDateTime()),
    sa.column("actor_id", sa.Integer()),
    sa.column("table_name", sa.String()),
    sa.column("record_id", sa.String()),
    sa.column("action", sa.String()),
    sa.column("changes", sa.JSON()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)
_TIMES = ("created_at", "issued_at")
_REPORT = sa.table(
    "report",
    *(sa.column(name, UTCDateTime() if name in _TIMES else None) for name in ISSUE_COLUMNS),
    sa.column("issue_prev_hash", sa.String()),
    sa.column("issue_hash", sa.String()),
)
_SIGNATURE = sa.table(
    "report_signature",
    sa.column("report_id", sa.Integer()),
    *(sa.column(name, UTCDateTime() if name == "signed_at" else None)
      for name in SIGNATURE_COLUMNS),
)
_LOCK = sa.table(
    "custody_append_lock",
    sa.column("id", sa.Integer()),
    sa.column("audit_appends", sa.BigInteger()),
    sa.column("report_appends", sa.BigInteger()),
)


def _collision(keys: tuple[tuple[str, ...], ...]) -> str:
    return " OR ".join(
        "(" + " AND ".join(f"{column} = NEW.{column}" for column in key) + ")" for key in keys
    )


def _sqlite_no_replace_triggers() -> list[str]:
    statements = [
        f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
        f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {_collision(keys)}) "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: INSERT OR REPLACE of an "
        "existing row refused'); END"
        for table, keys in KEYS.items()
    ]
    statements.append(
        "CREATE TRIGGER report_no_replace_on_update BEFORE UPDATE ON report "
        f"WHEN EXISTS (SELECT 1 FROM report WHERE id <> OLD.id AND ({_collision(KEYS['report'])})) "
        "BEGIN SELECT RAISE(ABORT, 'report: UPDATE OR REPLACE onto another report refused'); END"
    )
    return statements


@contextlib.contextmanager
def _update_triggers_suspended():
    """The triggers refusing updates of audit records and issued reports stand aside while
    the chain fields are filled in (SQLite: dropped and created again from their own SQL)."""
    connection = op.get_bind()
    dialect = connection.dialect.name
    triggers = UPDATE_TRIGGERS[dialect]
    if dialect == "postgresql":
        for table, names in triggers.items():
            for name in names:
                op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
        yield
        for table, names in triggers.items():
            for name in names:
                op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
        return
    names = [name for listed in triggers.values() for name in listed]
    saved = connection.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN :names")
        .bindparams(sa.bindparam("names", expanding=True)),
        {"names": names},
    ).scalars().all()
    for name in names:
        op.execute(f"DROP TRIGGER {name}")
    yield
    for statement in saved:
        op.execute(statement)


def _chain_audit_records(connection) -> int:
    rows = connection.execute(
        sa.select(_AUDIT).order_by(_AUDIT.c.id)).mappings().all()
    prev_hash = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        row = {**row, "seq": seq}
        hash_ = link_hash(prev_hash, canonical_audit_record(row))
        connection.execute(
            sa.update(_AUDIT).where(_AUDIT.c.id == row["id"])
            .values(seq=seq, prev_hash=prev_hash, hash=hash_))
        prev_hash = hash_
    return len(rows)


def _chain_issued_reports(connection) -> int:
    rows = connection.execute(
        sa.select(_REPORT).where(_REPORT.c.status == "issued")
        .order_by(_REPORT.c.issued_at, _REPORT.c.id)).mappings().all()
    prev_hash = GENESIS_HASH
    for seq, row in enumerate(rows, start=1):
        signatures = connection.execute(
            sa.select(_SIGNATURE).where(_SIGNATURE.c.report_id == row["id"])).mappings().all()
        hash_ = link_hash(prev_hash, canonical_issued_report({**row, "issue_seq": seq},
                                                             signatures))
        connection.execute(
            sa.update(_REPORT).where(_REPORT.c.id == row["id"])
            .values(issue_seq=seq, issue_prev_hash=prev_hash, issue_hash=hash_))
        prev_hash = hash_
    return len(rows)


def upgrade() -> None:
    connection = op.get_bind()
    dialect = connection.dialect.name
    for name in ("audit_appends", "report_appends"):
        op.add_column("custody_append_lock",
                      sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
    for name, type_ in (("seq", sa.BigInteger()), ("prev_hash", sa.String(length=64)),
                        ("hash", sa.String(length=64))):
        op.add_column("audit_record", sa.Column(name, type_, nullable=True))
    for name, type_ in (("issue_seq", sa.Integer()), ("issue_prev_hash", sa.String(length=64)),
                        ("issue_hash", sa.String(length=64))):
        op.add_column("report", sa.Column(name, type_, nullable=True))
    with _update_triggers_suspended():
        n_audit = _chain_audit_records(connection)
        n_reports = _chain_issued_reports(connection)
        # SQLite rebuilds the table to make the columns NOT NULL; its triggers go with the old
        # table, and come back as the suspension ends (the others are created below).
        with op.batch_alter_table("audit_record") as batch:
            for name, type_ in (("seq", sa.BigInteger()), ("prev_hash", sa.String(length=64)),
                                ("hash", sa.String(length=64))):
                batch.alter_column(name, existing_type=type_, nullable=False)
    for table, column in (("audit_record", "seq"), ("audit_record", "hash"),
                          ("report", "issue_seq"), ("report", "issue_hash")):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=True)
    connection.execute(
        sa.update(_LOCK).where(_LOCK.c.id == 1)
        .values(audit_appends=n_audit, report_appends=n_reports))
    if dialect == "postgresql":
        for table in TRUNCATE_REFUSED:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION dnatrack_refuse_append_only_change()"
            )
    else:
        for statement in _sqlite_no_replace_triggers():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TRUNCATE_REFUSED:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    else:
        for table in KEYS:
            op.execute(f"DROP TRIGGER {table}_no_replace")
        op.execute("DROP TRIGGER report_no_replace_on_update")
    for table, column in (("audit_record", "seq"), ("audit_record", "hash"),
                          ("report", "issue_seq"), ("report", "issue_hash")):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    for table, columns in (("audit_record", ("seq", "prev_hash", "hash")),
                           ("report", ("issue_seq", "issue_prev_hash", "issue_hash")),
                           ("custody_append_lock", ("audit_appends", "report_appends"))):
        for column in columns:
            op.drop_column(table, column)
