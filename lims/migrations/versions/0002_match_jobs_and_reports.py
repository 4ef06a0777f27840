"""Match requests as background jobs; signed, immutable reports.

Match requests get their analyses, reference sets, job progress and stored result; reports get
a draft/issued status, the rendered HTML and PDF with their SHA-256, amendment reasons and
e-signatures (a new table). Triggers make the database refuse to change or delete an issued
report or a signature of one.

Nothing wrote ``match_request`` or ``report`` before this revision (they had no API), so they
are rebuilt rather than altered column by column, identically on SQLite and PostgreSQL; the
migration refuses to run if either holds rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSTGRESQL_FUNCTIONS = (
    """
CREATE FUNCTION dnatrack_refuse_issued_report_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'issued' THEN
        RAISE EXCEPTION 'report % is issued and cannot change: % refused', OLD.id, TG_OP;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$
""",
    """
CREATE FUNCTION dnatrack_refuse_signature_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'report signatures cannot change: UPDATE refused';
    END IF;
    IF EXISTS (SELECT 1 FROM report WHERE id = OLD.report_id AND status = 'issued') THEN
        RAISE EXCEPTION 'report % is issued: deleting its signature refused', OLD.report_id;
    END IF;
    RETURN OLD;
END
$$
""",
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER report_issued_no_update BEFORE UPDATE ON report WHEN OLD.status = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'report is issued and cannot change: UPDATE refused'); END",
    "CREATE TRIGGER report_issued_no_delete BEFORE DELETE ON report WHEN OLD.status = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'report is issued and cannot change: DELETE refused'); END",
    "CREATE TRIGGER report_signature_no_update BEFORE UPDATE ON report_signature "
    "BEGIN SELECT RAISE(ABORT, 'report signatures cannot change: UPDATE refused'); END",
    "CREATE TRIGGER report_signature_no_delete BEFORE DELETE ON report_signature "
    "WHEN (SELECT status FROM report WHERE id = OLD.report_id) = 'issued' "
    "BEGIN SELECT RAISE(ABORT, 'report is issued: deleting its signature refused'); END",
)


def _refuse_if_filled(*tables: str) -> None:
    connection = op.get_bind()
    for table in tables:
        if connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar():
            raise RuntimeError(
                f"table {table} holds rows; migration 0002 rebuilds it and would lose them"
            )


def _create_match_request() -> None:
    op.create_table(
        "match_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seizure_id", sa.Integer(), nullable=True),
        sa.Column("analyses", sa.JSON(), nullable=False),
        sa.Column("reference_sets", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_match_request_status"),
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 1", name=op.f("ck_match_request_progress")),
        sa.CheckConstraint(
            "status <> 'failed' OR error IS NOT NULL", name=op.f("ck_match_request_failure_reason")
        ),
        sa.CheckConstraint(
            "status <> 'done' OR result IS NOT NULL", name=op.f("ck_match_request_done_result")
        ),
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
    op.create_index(op.f("ix_match_request_status"), "match_request", ["status"], unique=False)


def _create_report() -> None:
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_request_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("amendment_reason", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_head_hash", sa.String(length=64), nullable=False),
        sa.Column("html", sa.LargeBinary(), nullable=True),
        sa.Column("html_sha256", sa.String(length=64), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('evidential', 'lead')", name=op.f("ck_report_kind")),
        sa.CheckConstraint("status IN ('draft', 'issued')", name=op.f("ck_report_status")),
        sa.CheckConstraint(
            "replaces_id IS NULL OR amendment_reason IS NOT NULL",
            name=op.f("ck_report_amendment_reason"),
        ),
        sa.CheckConstraint(
            "status <> 'issued' OR (issued_at IS NOT NULL AND html_sha256 IS NOT NULL "
            "AND pdf_sha256 IS NOT NULL)",
            name=op.f("ck_report_issued_documents"),
        ),
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
            "match_request_id",
            "kind",
            "version",
            name=op.f("uq_report_match_request_id_kind_version"),
        ),
    )
    op.create_index(
        op.f("ix_report_match_request_id"), "report", ["match_request_id"], unique=False
    )
    op.create_table(
        "report_signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("signer_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("meaning", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "role IN ('analyst', 'reviewer')", name=op.f("ck_report_signature_role")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_signature_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_report_signature_user_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_signature")),
        sa.UniqueConstraint("report_id", "role", name=op.f("uq_report_signature_report_id_role")),
    )
    op.create_index(
        op.f("ix_report_signature_report_id"), "report_signature", ["report_id"], unique=False
    )


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(function)
        op.execute(
            "CREATE TRIGGER report_issued_immutable BEFORE UPDATE OR DELETE ON report "
            "FOR EACH ROW EXECUTE FUNCTION dnatrack_refuse_issued_report_change()"
        )
        op.execute(
            "CREATE TRIGGER report_signature_immutable BEFORE UPDATE OR DELETE ON "
            "report_signature FOR EACH ROW EXECUTE FUNCTION dnatrack_refuse_signature_change()"
        )
        return
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    _refuse_if_filled("report", "match_request")
    op.drop_table("report")
    op.drop_index(op.f("ix_match_request_case_id"), table_name="match_request")
    op.drop_table("match_request")
    _create_match_request()
    _create_report()
    _create_triggers()


def downgrade() -> None:
    _refuse_if_filled("report", "match_request")
    op.drop_table("report_signature")
    op.drop_table("report")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION dnatrack_refuse_issued_report_change()")
        op.execute("DROP FUNCTION dnatrack_refuse_signature_change()")
    op.drop_index(op.f("ix_match_request_status"), table_name="match_request")
    op.drop_index(op.f("ix_match_request_case_id"), table_name="match_request")
    op.drop_table("match_request")
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
