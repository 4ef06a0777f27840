"""Networks grow with the database: a search of newly released profiles against every
released profile (``link_search``, a job queue like ``match_request``), the profiles each
search covered (``searched_profile``) and the pairs it reported (``profile_link``);
``seizure_link`` rows may now come from such a search (``link_search_id``) instead of a
match request. ``seizure_origin`` keeps each seizure's origin as the latest finished match
request assigned it (filled here from the stored results), so the origins map reads one row per
seizure.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("new_profiles", sa.Integer(), nullable=True),
        sa.Column("pairs_found", sa.Integer(), nullable=True),
        sa.Column("links_folded", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                           name=op.f("ck_link_search_status")),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name=op.f("ck_link_search_progress")),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL",
                           name=op.f("ck_link_search_failure_reason")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_search")),
    )
    op.create_index(op.f("ix_link_search_status"), "link_search", ["status"])
    op.create_table(
        "searched_profile",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("link_search_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["genotype_profile.id"],
                                name=op.f("fk_searched_profile_profile_id_genotype_profile"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_search_id"], ["link_search.id"],
                                name=op.f("fk_searched_profile_link_search_id_link_search")),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_searched_profile")),
    )
    op.create_index(op.f("ix_searched_profile_link_search_id"), "searched_profile",
                    ["link_search_id"])
    op.create_table(
        "profile_link",
        sa.Column("profile1_id", sa.Integer(), nullable=False),
        sa.Column("profile2_id", sa.Integer(), nullable=False),
        sa.Column("seizure1_id", sa.Integer(), nullable=True),
        sa.Column("seizure2_id", sa.Integer(), nullable=True),
        sa.Column("relationship", sa.String(length=32), nullable=False),
        sa.Column("log10_lr", sa.Double(), nullable=True),
        sa.Column("link_search_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("profile1_id < profile2_id", name=op.f("ck_profile_link_ordered")),
        sa.ForeignKeyConstraint(["profile1_id"], ["genotype_profile.id"],
                                name=op.f("fk_profile_link_profile1_id_genotype_profile"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["profile2_id"], ["genotype_profile.id"],
                                name=op.f("fk_profile_link_profile2_id_genotype_profile"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["seizure1_id"], ["seizure.id"],
                                name=op.f("fk_profile_link_seizure1_id_seizure"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["seizure2_id"], ["seizure.id"],
                                name=op.f("fk_profile_link_seizure2_id_seizure"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_search_id"], ["link_search.id"],
                                name=op.f("fk_profile_link_link_search_id_link_search")),
        sa.PrimaryKeyConstraint("profile1_id", "profile2_id", name=op.f("pk_profile_link")),
    )
    op.create_index(op.f("ix_profile_link_profile2_id"), "profile_link", ["profile2_id"])
    op.create_index("ix_profile_link_seizures", "profile_link", ["seizure1_id", "seizure2_id"])
    with op.batch_alter_table("seizure_link") as batch:
        batch.alter_column("match_request_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("link_search_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_seizure_link_link_search_id_link_search"),
                                 "link_search", ["link_search_id"], ["id"])
    op.create_table(
        "seizure_origin",
        sa.Column("seizure_id", sa.Integer(), nullable=False),
        sa.Column("best_lat", sa.Double(), nullable=False),
        sa.Column("best_lon", sa.Double(), nullable=False),
        sa.Column("area90_km2", sa.Double(), nullable=True),
        sa.Column("region90", sa.JSON(), nullable=False),
        sa.Column("match_request_id", sa.Integer(), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["seizure_id"], ["seizure.id"],
                                name=op.f("fk_seizure_origin_seizure_id_seizure"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["match_request_id"], ["match_request.id"],
                                name=op.f("fk_seizure_origin_match_request_id_match_request")),
        sa.PrimaryKeyConstraint("seizure_id", name=op.f("pk_seizure_origin")),
    )
    _origins_of_stored_results()


def _origins_of_stored_results() -> None:
    """Fold the origins of the match requests finished before this revision."""
    from sqlalchemy.orm import Session

    from lims.intelligence import rebuild_origins

    session = Session(bind=op.get_bind())
    rebuild_origins(session)
    session.commit()


def downgrade() -> None:
    op.drop_table("seizure_origin")
    # Links found by a network search have no match request to keep them under 0010.
    op.execute("DELETE FROM seizure_link WHERE match_request_id IS NULL")
    with op.batch_alter_table("seizure_link") as batch:
        batch.drop_constraint(op.f("fk_seizure_link_link_search_id_link_search"),
                              type_="foreignkey")
        batch.drop_column("link_search_id")
        batch.alter_column("match_request_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ix_profile_link_seizures", table_name="profile_link")
    op.drop_index(op.f("ix_profile_link_profile2_id"), table_name="profile_link")
    op.drop_table("profile_link")
    op.drop_index(op.f("ix_searched_profile_link_search_id"), table_name="searched_profile")
    op.drop_table("searched_profile")
    op.drop_index(op.f("ix_link_search_status"), table_name="link_search")
    op.drop_table("link_search")
