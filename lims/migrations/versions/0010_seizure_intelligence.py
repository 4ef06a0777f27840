"""Seizure intelligence: coded trade-chain records of seizures and administrators' changes
to the controlled vocabularies.

``seizure_record`` holds at most one coded record per seizure (ISO 3166-1 alpha-2 trade
chain, commodity, per-species quantities, detection, offenders, disposal, value, validation);
the seizure's free-text place, country and route are left as they are. ``vocabulary_term``
holds additions, relabellings and retirements of the packaged vocabularies.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seizure_record",
        sa.Column("seizure_id", sa.Integer(), nullable=False),
        sa.Column("discovery_country", sa.String(length=2), nullable=True),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("export_country", sa.String(length=2), nullable=True),
        sa.Column("transits", sa.JSON(), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=True),
        sa.Column("commodity", sa.String(length=32), nullable=True),
        sa.Column("commodity_form", sa.String(length=32), nullable=True),
        sa.Column("species", sa.JSON(), nullable=False),
        sa.Column("detecting_agency", sa.String(length=64), nullable=True),
        sa.Column("detection_method", sa.String(length=64), nullable=True),
        sa.Column("transport_mode", sa.String(length=64), nullable=True),
        sa.Column("concealment", sa.String(length=64), nullable=True),
        sa.Column("offender_nationalities", sa.JSON(), nullable=False),
        sa.Column("charges", sa.Text(), nullable=True),
        sa.Column("disposal", sa.String(length=64), nullable=True),
        sa.Column("estimated_value", sa.Double(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("validation_status", sa.String(length=32), nullable=False),
        sa.Column("coded_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "estimated_value >= 0", name=op.f("ck_seizure_record_estimated_value")
        ),
        sa.CheckConstraint(
            "estimated_value IS NULL OR currency IS NOT NULL",
            name=op.f("ck_seizure_record_value_currency"),
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"],
            ["seizure.id"],
            name=op.f("fk_seizure_record_seizure_id_seizure"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["coded_by_id"],
            ["user_account.id"],
            name=op.f("fk_seizure_record_coded_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("seizure_id", name=op.f("pk_seizure_record")),
    )
    op.create_index(
        op.f("ix_seizure_record_discovery_country"), "seizure_record", ["discovery_country"]
    )
    op.create_table(
        "vocabulary_term",
        sa.Column("vocabulary", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["user_account.id"],
            name=op.f("fk_vocabulary_term_changed_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("vocabulary", "code", name=op.f("pk_vocabulary_term")),
    )


    op.create_table(
        "seizure_link",
        sa.Column("seizure1_id", sa.Integer(), nullable=False),
        sa.Column("seizure2_id", sa.Integer(), nullable=False),
        sa.Column("same_animal", sa.Integer(), nullable=False),
        sa.Column("parent_offspring", sa.Integer(), nullable=False),
        sa.Column("full_sibling", sa.Integer(), nullable=False),
        sa.Column("half_sibling", sa.Integer(), nullable=False),
        sa.Column("best_log10_lr", sa.Double(), nullable=True),
        sa.Column("match_request_id", sa.Integer(), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("seizure1_id < seizure2_id", name=op.f("ck_seizure_link_ordered")),
        sa.ForeignKeyConstraint(
            ["seizure1_id"], ["seizure.id"], name=op.f("fk_seizure_link_seizure1_id_seizure"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seizure2_id"], ["seizure.id"], name=op.f("fk_seizure_link_seizure2_id_seizure"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["match_request_id"], ["match_request.id"],
            name=op.f("fk_seizure_link_match_request_id_match_request"),
        ),
        sa.PrimaryKeyConstraint("seizure1_id", "seizure2_id", name=op.f("pk_seizure_link")),
    )
    op.create_index("ix_seizure_link_seizure2_id", "seizure_link", ["seizure2_id"])
    _links_of_stored_results()


def _links_of_stored_results() -> None:
    """Fold the links of the match requests finished before this revision."""
    from sqlalchemy.orm import Session

    from lims.intelligence import rebuild_links

    rebuild_links(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_seizure_link_seizure2_id", table_name="seizure_link")
    op.drop_table("seizure_link")
    op.drop_table("vocabulary_term")
    op.drop_index(op.f("ix_seizure_record_discovery_country"), table_name="seizure_record")
    op.drop_table("seizure_record")
