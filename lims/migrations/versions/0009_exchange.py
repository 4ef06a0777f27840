"""Exchange between laboratories: partner instances, imported signed packages and the profiles
they carried, follow-up requests for details, and the exchange log.

``exchange_package`` (a package as received, byte for byte) and ``exchange_profile`` (the
profiles it carried) are append-only: the database refuses UPDATE and DELETE on them (and
TRUNCATE on PostgreSQL), as on the custody ledger, so an imported profile is never edited.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

APPEND_ONLY = ("exchange_package", "exchange_profile")


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # dnatrack_refuse_append_only_change() comes from migration 0001.
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION dnatrack_refuse_append_only_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION dnatrack_refuse_append_only_change()"
            )
        return
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        return
    for table in APPEND_ONLY:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{operation}")


def upgrade() -> None:
    op.create_table(
        "exchange_partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("outbound_token", sa.String(length=255), nullable=True),
        sa.Column("inbound_token_hash", sa.String(length=64), nullable=False),
        sa.Column("shared_panels", sa.JSON(), nullable=False),
        sa.Column("share_all_cases", sa.Boolean(), nullable=False),
        sa.Column("shared_case_ids", sa.JSON(), nullable=False),
        sa.Column("searches_per_minute", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "searches_per_minute >= 0", name=op.f("ck_exchange_partner_searches_per_minute")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_exchange_partner_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_exchange_partner_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_partner")),
        sa.UniqueConstraint(
            "inbound_token_hash", name=op.f("uq_exchange_partner_inbound_token_hash")
        ),
        sa.UniqueConstraint("name", name=op.f("uq_exchange_partner_name")),
        sa.UniqueConstraint("public_key", name=op.f("uq_exchange_partner_public_key")),
    )
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_partner_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "exchange_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('export', 'import', 'search_received', 'search_sent', "
            "'follow_up_received', 'follow_up_decided', 'follow_up_sent', 'details_released')",
            name=op.f("ck_exchange_event_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_exchange_event_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["exchange_partner.id"],
            name=op.f("fk_exchange_event_partner_id_exchange_partner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_event")),
    )
    with op.batch_alter_table("exchange_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_event_partner_kind_time",
            ["partner_id", "kind", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "exchange_follow_up",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status = 'pending' OR decided_by_id IS NOT NULL",
            name=op.f("ck_exchange_follow_up_decided_by"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'refused')",
            name=op.f("ck_exchange_follow_up_status"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["user_account.id"],
            name=op.f("fk_exchange_follow_up_decided_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["exchange_partner.id"],
            name=op.f("fk_exchange_follow_up_partner_id_exchange_partner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_follow_up")),
    )
    with op.batch_alter_table("exchange_follow_up", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_follow_up_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_exchange_follow_up_status"), ["status"], unique=False)

    op.create_table(
        "exchange_package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("n_profiles", sa.Integer(), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["user_account.id"],
            name=op.f("fk_exchange_package_imported_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["exchange_partner.id"],
            name=op.f("fk_exchange_package_partner_id_exchange_partner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_package")),
        sa.UniqueConstraint("package_id", name=op.f("uq_exchange_package_package_id")),
    )
    with op.batch_alter_table("exchange_package", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_package_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "exchange_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("alleles", sa.JSON(), nullable=False),
        sa.Column("n_loci_typed", sa.Integer(), nullable=False),
        sa.Column("species", sa.String(length=100), nullable=True),
        sa.Column("sample_type", sa.String(length=32), nullable=True),
        sa.Column("seizure_country", sa.String(length=100), nullable=True),
        sa.Column("seizure_year", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["exchange_package.id"],
            name=op.f("fk_exchange_profile_package_id_exchange_package"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["exchange_partner.id"],
            name=op.f("fk_exchange_profile_partner_id_exchange_partner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_profile")),
        sa.UniqueConstraint(
            "partner_id",
            "panel",
            "reference",
            name=op.f("uq_exchange_profile_partner_id_panel_reference"),
        ),
    )
    with op.batch_alter_table("exchange_profile", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_profile_package_id"), ["package_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_exchange_profile_panel"), ["panel"], unique=False)
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("exchange_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_profile_panel"))
        batch_op.drop_index(batch_op.f("ix_exchange_profile_package_id"))

    op.drop_table("exchange_profile")
    with op.batch_alter_table("exchange_package", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_package_partner_id"))

    op.drop_table("exchange_package")
    with op.batch_alter_table("exchange_follow_up", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_follow_up_status"))
        batch_op.drop_index(batch_op.f("ix_exchange_follow_up_partner_id"))

    op.drop_table("exchange_follow_up")
    with op.batch_alter_table("exchange_event", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_event_partner_kind_time")

    op.drop_table("exchange_event")
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_partner_agency_id"))

    op.drop_table("exchange_partner")
