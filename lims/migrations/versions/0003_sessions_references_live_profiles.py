"""Session versions, case and seizure references per agency, one live profile per sample.

- ``user_account.session_version``: page sessions remember it at login and are logged out
  once it changes (password, roles or active flag changed).
- Case and seizure references are unique per agency instead of across all agencies, so a
  refused reference can only be one of the user's own agency. Seizures get ``agency_id``
  (their case's agency), filled in from the case.
- A partial unique index allows one live profile (neither superseded nor rejected) per
  sample and panel.
- Samples and extracts destroyed in the custody ledger are marked consumed again where the
  flag had been cleared (the API allowed that before), each with an audit record.

The migration refuses to run where the data break the new rules (two live profiles of one
sample and panel; on downgrade, a reference used by two agencies), naming the rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIVE_PROFILE = "NOT superseded AND state <> 'rejected'"


def _refuse_if_any(sql: str, problem: str) -> None:
    rows = op.get_bind().execute(sa.text(sql)).all()
    if rows:
        listed = "; ".join(", ".join(str(value) for value in row) for row in rows[:20])
        more = f" (and {len(rows) - 20} more)" if len(rows) > 20 else ""
        raise RuntimeError(f"migration 0003 cannot run: {problem}: {listed}{more}")


def _mark_destroyed_consumed() -> None:
    connection = op.get_bind()
    audit = sa.table(
        "audit_record",
        sa.column("occurred_at", sa.DateTime()),
        sa.column("actor_id", sa.Integer()),
        sa.column("table_name", sa.String()),
        sa.column("record_id", sa.String()),
        sa.column("action", sa.String()),
        sa.column("changes", sa.JSON()),
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for name in ("sample", "extract"):
        table = sa.table(name, sa.column("id", sa.Integer()), sa.column("consumed", sa.Boolean()))
        destroyed = (
            sa.select(sa.column(f"{name}_id"))
            .select_from(sa.table("custody_event"))
            .where(sa.column("event_type") == "destroy")
        )
        ids = connection.scalars(
            sa.select(table.c.id).where(table.c.consumed.is_(False), table.c.id.in_(destroyed))
        ).all()
        if not ids:
            continue
        connection.execute(sa.update(table).where(table.c.id.in_(ids)).values(consumed=True))
        op.bulk_insert(
            audit,
            [
                {
                    "occurred_at": now,
                    "actor_id": None,
                    "table_name": name,
                    "record_id": str(record_id),
                    "action": "update",
                    "changes": {"consumed": {"old": False, "new": True}},
                }
                for record_id in ids
            ],
        )


def upgrade() -> None:
    _refuse_if_any(
        "SELECT sample_id, panel, COUNT(*) FROM genotype_profile "
        f"WHERE {LIVE_PROFILE} GROUP BY sample_id, panel HAVING COUNT(*) > 1 "
        "ORDER BY sample_id, panel",
        "samples with more than one live profile on a panel (sample id, panel, profiles); "
        "reject or correct all but one",
    )
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )

    with op.batch_alter_table("case_file") as batch:
        batch.drop_constraint("uq_case_file_reference", type_="unique")
        batch.create_unique_constraint(
            "uq_case_file_agency_id_reference", ["agency_id", "reference"]
        )

    op.add_column("seizure", sa.Column("agency_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE seizure SET agency_id = "
        "(SELECT case_file.agency_id FROM case_file WHERE case_file.id = seizure.case_id)"
    )
    with op.batch_alter_table("seizure") as batch:
        batch.alter_column("agency_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_seizure_agency_id_agency", "agency", ["agency_id"], ["id"])
        batch.drop_constraint("uq_seizure_reference", type_="unique")
        batch.create_unique_constraint("uq_seizure_agency_id_reference", ["agency_id", "reference"])

    _mark_destroyed_consumed()
    op.create_index(
        "uq_genotype_profile_live",
        "genotype_profile",
        ["sample_id", "panel"],
        unique=True,
        sqlite_where=sa.text(LIVE_PROFILE),
        postgresql_where=sa.text(LIVE_PROFILE),
    )


def downgrade() -> None:
    for table in ("case_file", "seizure"):
        _refuse_if_any(
            f"SELECT reference, COUNT(*) FROM {table} GROUP BY reference "
            "HAVING COUNT(*) > 1 ORDER BY reference",
            f"{table} references used by more than one agency (reference, count)",
        )
    op.drop_index("uq_genotype_profile_live", table_name="genotype_profile")

    with op.batch_alter_table("seizure") as batch:
        batch.drop_constraint("uq_seizure_agency_id_reference", type_="unique")
        batch.create_unique_constraint("uq_seizure_reference", ["reference"])
        batch.drop_constraint("fk_seizure_agency_id_agency", type_="foreignkey")
        batch.drop_column("agency_id")

    with op.batch_alter_table("case_file") as batch:
        batch.drop_constraint("uq_case_file_agency_id_reference", type_="unique")
        batch.create_unique_constraint("uq_case_file_reference", ["reference"])

    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("session_version")
