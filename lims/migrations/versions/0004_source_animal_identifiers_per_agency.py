"""Source-animal identifiers unique per agency.

Identifiers of reference animals and carcasses were unique across all agencies, so a refused
identifier told the user that another agency holds an animal of that name. Like case and
seizure references (0003) they are now unique per agency: source animals get ``agency_id``
(their case's agency), filled in from the case.

The downgrade refuses to run where two agencies use the same identifier, naming them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SHARED_IDENTIFIERS = (
    "SELECT identifier, COUNT(*) FROM source_animal GROUP BY identifier "
    "HAVING COUNT(*) > 1 ORDER BY identifier"
)


def upgrade() -> None:
    op.add_column("source_animal", sa.Column("agency_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE source_animal SET agency_id = "
        "(SELECT case_file.agency_id FROM case_file WHERE case_file.id = source_animal.case_id)"
    )
    with op.batch_alter_table("source_animal") as batch:
        batch.alter_column("agency_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            "fk_source_animal_agency_id_agency", "agency", ["agency_id"], ["id"]
        )
        batch.drop_constraint("uq_source_animal_identifier", type_="unique")
        batch.create_unique_constraint(
            "uq_source_animal_agency_id_identifier", ["agency_id", "identifier"]
        )


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(SHARED_IDENTIFIERS)).all()
    if shared:
        listed = "; ".join(f"{identifier}, {count}" for identifier, count in shared[:20])
        more = f" (and {len(shared) - 20} more)" if len(shared) > 20 else ""
        raise RuntimeError(
            "migration 0004 cannot be undone: source animal identifiers used by more than one "
            f"agency (identifier, count): {listed}{more}"
        )
    with op.batch_alter_table("source_animal") as batch:
        batch.drop_constraint("uq_source_animal_agency_id_identifier", type_="unique")
        batch.create_unique_constraint("uq_source_animal_identifier", ["identifier"])
        batch.drop_constraint("fk_source_animal_agency_id_agency", type_="foreignkey")
        batch.drop_column("agency_id")
