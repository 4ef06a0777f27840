"""Initial LIMS schema: people, cases and evidence, genotypes, custody ledger, audit trail.

The custody ledger and the audit trail are append-only: triggers refuse UPDATE and DELETE on
them (and TRUNCATE on PostgreSQL), so history cannot be rewritten through the database either.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("custody_event", "audit_record")

POSTGRESQL_REFUSE_FUNCTION = """
CREATE FUNCTION dnatrack_refuse_append_only_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$
"""


def create_append_only_triggers() -> None:
    """Make the database itself refuse changes to ledger rows."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_REFUSE_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION dnatrack_refuse_append_only_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION dnatrack_refuse_append_only_change()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )


def drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION dnatrack_refuse_append_only_change()")
        return
    for table in APPEND_ONLY_TABLES:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{operation}")


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('laboratory', 'enforcement', 'wildlife_authority', 'other')",
            name=op.f("ck_agency_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency")),
        sa.UniqueConstraint("code", name=op.f("uq_agency_code")),
    )
    op.create_table(
        "audit_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "action IN ('insert', 'update', 'delete')", name=op.f("ck_audit_record_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
    )
    op.create_index(
        op.f("ix_audit_record_occurred_at"), "audit_record", ["occurred_at"], unique=False
    )
    op.create_index(
        "ix_audit_record_table_record", "audit_record", ["table_name", "record_id"], unique=False
    )

    op.create_table(
        "storage_location",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            (
                "kind IN ('site', 'building', 'room', 'freezer', 'refrigerator', 'shelf', 'rack', "
                "'box')"
            ),
            name=op.f("ck_storage_location_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_storage_location_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["storage_location.id"],
            name=op.f("fk_storage_location_parent_id_storage_location"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_location")),
    )
    op.create_index(
        op.f("ix_storage_location_agency_id"), "storage_location", ["agency_id"], unique=False
    )

    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_user_account_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    op.create_index(op.f("ix_user_account_agency_id"), "user_account", ["agency_id"], unique=False)

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_api_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_index(op.f("ix_api_token_user_id"), "api_token", ["user_id"], unique=False)

    op.create_table(
        "case_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('investigation', 'reference')", name=op.f("ck_case_file_kind")
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_case_file_status")),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_case_file_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_case_file_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_file")),
        sa.UniqueConstraint("reference", name=op.f("uq_case_file_reference")),
    )
    op.create_index(op.f("ix_case_file_agency_id"), "case_file", ["agency_id"], unique=False)

    op.create_table(
        "genotype_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=32), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("run", sa.String(length=100), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("n_profiles", sa.Integer(), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["user_account.id"],
            name=op.f("fk_genotype_import_imported_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genotype_import")),
    )
    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'custodian', 'analyst', 'reviewer', 'investigator', 'researcher')",
            name=op.f("ck_user_role_role"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_role_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_role")),
    )
    op.create_table(
        "case_share",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("shared_by_id", sa.Integer(), nullable=True),
        sa.Column("shared_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("access IN ('read', 'contribute')", name=op.f("ck_case_share_access")),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_case_share_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_case_share_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shared_by_id"],
            ["user_account.id"],
            name=op.f("fk_case_share_shared_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("case_id", "agency_id", name=op.f("pk_case_share")),
    )
    op.create_table(
        "seizure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("seized_on", sa.Date(), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("seizing_agency_id", sa.Integer(), nullable=True),
        sa.Column("declared_pieces", sa.Integer(), nullable=True),
        sa.Column("declared_weight_kg", sa.Double(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("declared_pieces >= 0", name=op.f("ck_seizure_declared_pieces")),
        sa.CheckConstraint("declared_weight_kg >= 0", name=op.f("ck_seizure_declared_weight_kg")),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_seizure_latitude")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_seizure_longitude")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_seizure_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["seizing_agency_id"], ["agency.id"], name=op.f("fk_seizure_seizing_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seizure")),
        sa.UniqueConstraint("reference", name=op.f("uq_seizure_reference")),
    )
    op.create_index(op.f("ix_seizure_case_id"), "seizure", ["case_id"], unique=False)

    op.create_table(
        "source_animal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("species", sa.String(length=100), nullable=True),
        sa.Column("population", sa.String(length=100), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("found_on", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('reference_animal', 'carcass')", name=op.f("ck_source_animal_kind")
        ),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_source_animal_latitude")),
        sa.CheckConstraint(
            "longitude BETWEEN -180 AND 180", name=op.f("ck_source_animal_longitude")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_source_animal_case_id_case_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_animal")),
        sa.UniqueConstraint("identifier", name=op.f("uq_source_animal_identifier")),
    )
    op.create_index(op.f("ix_source_animal_case_id"), "source_animal", ["case_id"], unique=False)

    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seizure_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("length_cm", sa.Double(), nullable=True),
        sa.Column("circumference_cm", sa.Double(), nullable=True),
        sa.Column("weight_kg", sa.Double(), nullable=True),
        sa.Column("paired_item_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('tusk', 'horn', 'piece')", name=op.f("ck_item_kind")),
        sa.CheckConstraint("circumference_cm > 0", name=op.f("ck_item_circumference_cm")),
        sa.CheckConstraint("length_cm > 0", name=op.f("ck_item_length_cm")),
        sa.CheckConstraint("weight_kg > 0", name=op.f("ck_item_weight_kg")),
        sa.ForeignKeyConstraint(
            ["paired_item_id"], ["item.id"], name=op.f("fk_item_paired_item_id_item")
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"], ["seizure.id"], name=op.f("fk_item_seizure_id_seizure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item")),
        sa.UniqueConstraint("seizure_id", "label", name=op.f("uq_item_seizure_id_label")),
    )
    op.create_index(op.f("ix_item_seizure_id"), "item", ["seizure_id"], unique=False)

    op.create_table(
        "match_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seizure_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('identity', 'kinship', 'assignment')", name=op.f("ck_match_request_kind")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_match_request_status"),
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name=op.f("ck_match_request_progress")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_match_request_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["user_account.id"],
            name=op.f("fk_match_request_requested_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"], ["seizure.id"], name=op.f("fk_match_request_seizure_id_seizure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_request")),
    )
    op.create_index(op.f("ix_match_request_case_id"), "match_request", ["case_id"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_request_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_head_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('evidential', 'lead')", name=op.f("ck_report_kind")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_report_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["match_request_id"],
            ["match_request.id"],
            name=op.f("fk_report_match_request_id_match_request"),
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["report.id"], name=op.f("fk_report_replaces_id_report")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint(
            "match_request_id", "version", name=op.f("uq_report_match_request_id_version")
        ),
    )
    op.create_table(
        "sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("sample_type", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("source_animal_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("storage_location_id", sa.Integer(), nullable=True),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("collected_at", sa.DateTime(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "sample_type IN ('powder', 'tissue', 'blood', 'hair', 'dung', 'bone', 'swab', 'other')",
            name=op.f("ck_sample_sample_type"),
        ),
        sa.CheckConstraint(
            (
                "(CASE WHEN item_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN source_animal_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END) = 1"
            ),
            name=op.f("ck_sample_one_origin"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_sample_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name=op.f("fk_sample_item_id_item")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["sample.id"], name=op.f("fk_sample_parent_id_sample")
        ),
        sa.ForeignKeyConstraint(
            ["source_animal_id"],
            ["source_animal.id"],
            name=op.f("fk_sample_source_animal_id_source_animal"),
        ),
        sa.ForeignKeyConstraint(
            ["storage_location_id"],
            ["storage_location.id"],
            name=op.f("fk_sample_storage_location_id_storage_location"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample")),
        sa.UniqueConstraint("barcode", name=op.f("uq_sample_barcode")),
    )
    op.create_index(op.f("ix_sample_case_id"), "sample", ["case_id"], unique=False)
    op.create_index(op.f("ix_sample_item_id"), "sample", ["item_id"], unique=False)
    op.create_index(op.f("ix_sample_parent_id"), "sample", ["parent_id"], unique=False)
    op.create_index(
        op.f("ix_sample_source_animal_id"), "sample", ["source_animal_id"], unique=False
    )

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("seizure_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            (
                "(CASE WHEN case_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN seizure_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN item_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN sample_id IS NULL THEN 0 ELSE 1 END) = 1"
            ),
            name=op.f("ck_attachment_one_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_attachment_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name=op.f("fk_attachment_item_id_item")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_attachment_sample_id_sample")
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"], ["seizure.id"], name=op.f("fk_attachment_seizure_id_seizure")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["user_account.id"],
            name=op.f("fk_attachment_uploaded_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    op.create_index(op.f("ix_attachment_case_id"), "attachment", ["case_id"], unique=False)
    op.create_index(op.f("ix_attachment_item_id"), "attachment", ["item_id"], unique=False)
    op.create_index(op.f("ix_attachment_sample_id"), "attachment", ["sample_id"], unique=False)
    op.create_index(op.f("ix_attachment_seizure_id"), "attachment", ["seizure_id"], unique=False)
    op.create_index(op.f("ix_attachment_sha256"), "attachment", ["sha256"], unique=False)

    op.create_table(
        "extract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=True),
        sa.Column("extracted_at", sa.DateTime(), nullable=True),
        sa.Column("volume_ul", sa.Double(), nullable=True),
        sa.Column("concentration_ng_ul", sa.Double(), nullable=True),
        sa.Column("storage_location_id", sa.Integer(), nullable=True),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("concentration_ng_ul >= 0", name=op.f("ck_extract_concentration_ng_ul")),
        sa.CheckConstraint("volume_ul > 0", name=op.f("ck_extract_volume_ul")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_extract_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_extract_sample_id_sample")
        ),
        sa.ForeignKeyConstraint(
            ["storage_location_id"],
            ["storage_location.id"],
            name=op.f("fk_extract_storage_location_id_storage_location"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extract")),
        sa.UniqueConstraint("barcode", name=op.f("uq_extract_barcode")),
    )
    op.create_index(op.f("ix_extract_sample_id"), "extract", ["sample_id"], unique=False)

    lock = op.create_table(
        "custody_append_lock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("appends", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_custody_append_lock_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_append_lock")),
    )
    op.bulk_insert(lock, [{"id": 1, "appends": 0}])
    op.create_table(
        "custody_event",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("seizure_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("extract_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("from_holder", sa.String(length=200), nullable=True),
        sa.Column("to_holder", sa.String(length=200), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("storage_location_id", sa.Integer(), nullable=True),
        sa.Column("seal_numbers", sa.JSON(), nullable=False),
        sa.Column("signature_meaning", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            (
                "event_type IN ('collect', 'seal', 'transfer', 'receive', 'open', 'subsample', "
                "'store', 'return', 'destroy')"
            ),
            name=op.f("ck_custody_event_event_type"),
        ),
        sa.CheckConstraint(
            "signature_meaning IN ('performed', 'witnessed', 'released', 'received', 'approved')",
            name=op.f("ck_custody_event_signature_meaning"),
        ),
        sa.CheckConstraint(
            (
                "(CASE WHEN seizure_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN item_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN sample_id IS NULL THEN 0 ELSE 1 END) + "
                "(CASE WHEN extract_id IS NULL THEN 0 ELSE 1 END) = 1"
            ),
            name=op.f("ck_custody_event_one_subject"),
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_custody_event_seq")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_custody_event_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["extract_id"], ["extract.id"], name=op.f("fk_custody_event_extract_id_extract")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_custody_event_item_id_item")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_custody_event_sample_id_sample")
        ),
        sa.ForeignKeyConstraint(
            ["seizure_id"], ["seizure.id"], name=op.f("fk_custody_event_seizure_id_seizure")
        ),
        sa.ForeignKeyConstraint(
            ["storage_location_id"],
            ["storage_location.id"],
            name=op.f("fk_custody_event_storage_location_id_storage_location"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_custody_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_custody_event_hash")),
    )
    op.create_index(
        op.f("ix_custody_event_extract_id"), "custody_event", ["extract_id"], unique=False
    )
    op.create_index(op.f("ix_custody_event_item_id"), "custody_event", ["item_id"], unique=False)
    op.create_index(
        op.f("ix_custody_event_sample_id"), "custody_event", ["sample_id"], unique=False
    )
    op.create_index(
        op.f("ix_custody_event_seizure_id"), "custody_event", ["seizure_id"], unique=False
    )

    op.create_table(
        "genotype_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("extract_id", sa.Integer(), nullable=True),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("alleles", sa.JSON(), nullable=False),
        sa.Column("n_loci_typed", sa.Integer(), nullable=False),
        sa.Column("run", sa.String(length=100), nullable=True),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("analyst_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("released_by_id", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "state <> 'rejected' OR rejection_reason IS NOT NULL",
            name=op.f("ck_genotype_profile_rejection_reason"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'reviewed', 'released', 'rejected')",
            name=op.f("ck_genotype_profile_state"),
        ),
        sa.CheckConstraint(
            "reviewer_id IS NULL OR reviewer_id <> analyst_id",
            name=op.f("ck_genotype_profile_reviewer_not_analyst"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_genotype_profile_version")),
        sa.ForeignKeyConstraint(
            ["analyst_id"],
            ["user_account.id"],
            name=op.f("fk_genotype_profile_analyst_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["extract_id"], ["extract.id"], name=op.f("fk_genotype_profile_extract_id_extract")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["genotype_import.id"],
            name=op.f("fk_genotype_profile_import_id_genotype_import"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_version_id"],
            ["genotype_profile.id"],
            name=op.f("fk_genotype_profile_previous_version_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["released_by_id"],
            ["user_account.id"],
            name=op.f("fk_genotype_profile_released_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["user_account.id"],
            name=op.f("fk_genotype_profile_reviewer_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_genotype_profile_sample_id_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genotype_profile")),
        sa.UniqueConstraint(
            "previous_version_id", name=op.f("uq_genotype_profile_previous_version_id")
        ),
    )
    op.create_index(
        op.f("ix_genotype_profile_extract_id"), "genotype_profile", ["extract_id"], unique=False
    )
    op.create_index(op.f("ix_genotype_profile_panel"), "genotype_profile", ["panel"], unique=False)
    op.create_index(
        op.f("ix_genotype_profile_sample_id"), "genotype_profile", ["sample_id"], unique=False
    )
    op.create_index(op.f("ix_genotype_profile_state"), "genotype_profile", ["state"], unique=False)

    create_append_only_triggers()


def downgrade() -> None:
    drop_append_only_triggers()
    op.drop_index(op.f("ix_genotype_profile_state"), table_name="genotype_profile")
    op.drop_index(op.f("ix_genotype_profile_sample_id"), table_name="genotype_profile")
    op.drop_index(op.f("ix_genotype_profile_panel"), table_name="genotype_profile")
    op.drop_index(op.f("ix_genotype_profile_extract_id"), table_name="genotype_profile")

    op.drop_table("genotype_profile")
    op.drop_index(op.f("ix_custody_event_seizure_id"), table_name="custody_event")
    op.drop_index(op.f("ix_custody_event_sample_id"), table_name="custody_event")
    op.drop_index(op.f("ix_custody_event_item_id"), table_name="custody_event")
    op.drop_index(op.f("ix_custody_event_extract_id"), table_name="custody_event")

    op.drop_table("custody_event")
    op.drop_table("custody_append_lock")
    op.drop_index(op.f("ix_extract_sample_id"), table_name="extract")

    op.drop_table("extract")
    op.drop_index(op.f("ix_attachment_sha256"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_seizure_id"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_sample_id"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_item_id"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_case_id"), table_name="attachment")

    op.drop_table("attachment")
    op.drop_index(op.f("ix_sample_source_animal_id"), table_name="sample")
    op.drop_index(op.f("ix_sample_parent_id"), table_name="sample")
    op.drop_index(op.f("ix_sample_item_id"), table_name="sample")
    op.drop_index(op.f("ix_sample_case_id"), table_name="sample")

    op.drop_table("sample")
    op.drop_table("report")
    op.drop_index(op.f("ix_match_request_case_id"), table_name="match_request")

    op.drop_table("match_request")
    op.drop_index(op.f("ix_item_seizure_id"), table_name="item")

    op.drop_table("item")
    op.drop_index(op.f("ix_source_animal_case_id"), table_name="source_animal")

    op.drop_table("source_animal")
    op.drop_index(op.f("ix_seizure_case_id"), table_name="seizure")

    op.drop_table("seizure")
    op.drop_table("case_share")
    op.drop_table("user_role")
    op.drop_table("genotype_import")
    op.drop_index(op.f("ix_case_file_agency_id"), table_name="case_file")

    op.drop_table("case_file")
    op.drop_index(op.f("ix_api_token_user_id"), table_name="api_token")

    op.drop_table("api_token")
    op.drop_index(op.f("ix_user_account_agency_id"), table_name="user_account")

    op.drop_table("user_account")
    op.drop_index(op.f("ix_storage_location_agency_id"), table_name="storage_location")

    op.drop_table("storage_location")
    op.drop_index("ix_audit_record_table_record", table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_occurred_at"), table_name="audit_record")

    op.drop_table("audit_record")
    op.drop_table("agency")
