"""The laboratory's quality system: extraction batches, genotyping runs and plate wells,
positive controls, elimination profiles, contamination flags and screens, hit confirmations,
species tests, validation and proficiency records (lims/models/quality.py).

New tables only; existing rows are untouched. Every row is audited by the hash-chained audit
trail like the rest of the LIMS.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "elimination_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("alleles", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('staff', 'reference_animal', 'positive_control', 'other_lab_control')",
            name=op.f("ck_elimination_profile_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_elimination_profile_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_elimination_profile_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elimination_profile")),
        sa.UniqueConstraint(
            "agency_id", "name", "panel", name=op.f("uq_elimination_profile_agency_id_name_panel")
        ),
    )
    op.create_index(
        op.f("ix_elimination_profile_agency_id"), "elimination_profile", ["agency_id"], unique=False
    )
    op.create_table(
        "extraction_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("kit", sa.String(length=200), nullable=False),
        sa.Column("kit_lot", sa.String(length=100), nullable=False),
        sa.Column("blank_name", sa.String(length=64), nullable=False),
        sa.Column("extracted_on", sa.Date(), nullable=True),
        sa.Column("analyst_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_extraction_batch_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["analyst_id"],
            ["user_account.id"],
            name=op.f("fk_extraction_batch_analyst_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extraction_batch")),
        sa.UniqueConstraint(
            "agency_id", "reference", name=op.f("uq_extraction_batch_agency_id_reference")
        ),
    )
    op.create_index(
        op.f("ix_extraction_batch_agency_id"), "extraction_batch", ["agency_id"], unique=False
    )
    op.create_table(
        "positive_control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("alleles", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_positive_control_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_positive_control_created_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positive_control")),
        sa.UniqueConstraint(
            "agency_id", "name", "panel", name=op.f("uq_positive_control_agency_id_name_panel")
        ),
    )
    op.create_index(
        op.f("ix_positive_control_agency_id"), "positive_control", ["agency_id"], unique=False
    )
    op.create_table(
        "quality_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("analyst_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("performed_on", sa.Date(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind <> 'proficiency' OR analyst_id IS NOT NULL",
            name=op.f("ck_quality_record_proficiency_analyst"),
        ),
        sa.CheckConstraint(
            "kind IN ('validation', 'proficiency')", name=op.f("ck_quality_record_kind")
        ),
        sa.CheckConstraint(
            "outcome IN ('passed', 'failed')", name=op.f("ck_quality_record_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_quality_record_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["analyst_id"],
            ["user_account.id"],
            name=op.f("fk_quality_record_analyst_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["user_account.id"],
            name=op.f("fk_quality_record_recorded_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_record")),
    )
    op.create_index(
        op.f("ix_quality_record_agency_id"), "quality_record", ["agency_id"], unique=False
    )
    op.create_table(
        "genotyping_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("panel", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=200), nullable=False),
        sa.Column("kit", sa.String(length=200), nullable=False),
        sa.Column("kit_lot", sa.String(length=100), nullable=False),
        sa.Column("allelic_ladder", sa.String(length=200), nullable=False),
        sa.Column("run_on", sa.Date(), nullable=False),
        sa.Column("analyst_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("plate_map_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("disposition_reason", sa.Text(), nullable=True),
        sa.Column("disposed_by_id", sa.Integer(), nullable=True),
        sa.Column("disposed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status <> 'on_hold' OR hold_reason IS NOT NULL",
            name=op.f("ck_genotyping_run_hold_reason"),
        ),
        sa.CheckConstraint(
            "status IN ('in_control', 'on_hold', 'accepted', 'rejected')",
            name=op.f("ck_genotyping_run_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'rejected') OR disposition_reason IS NOT NULL",
            name=op.f("ck_genotyping_run_disposition_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_genotyping_run_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["analyst_id"],
            ["user_account.id"],
            name=op.f("fk_genotyping_run_analyst_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["disposed_by_id"],
            ["user_account.id"],
            name=op.f("fk_genotyping_run_disposed_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["genotype_import.id"],
            name=op.f("fk_genotyping_run_import_id_genotype_import"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genotyping_run")),
        sa.UniqueConstraint("agency_id", "name", name=op.f("uq_genotyping_run_agency_id_name")),
    )
    op.create_index(
        op.f("ix_genotyping_run_agency_id"), "genotyping_run", ["agency_id"], unique=False
    )
    op.create_table(
        "species_test",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("marker", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("query_id", sa.String(length=255), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("call", sa.String(length=200), nullable=True),
        sa.Column("best_species", sa.String(length=200), nullable=True),
        sa.Column("identity", sa.Double(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference_set", sa.String(length=200), nullable=False),
        sa.Column("reference_set_version", sa.String(length=100), nullable=False),
        sa.Column("reference_set_hash", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("tested_by_id", sa.Integer(), nullable=False),
        sa.Column("tested_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_species_test_sample_id_sample")
        ),
        sa.ForeignKeyConstraint(
            ["tested_by_id"],
            ["user_account.id"],
            name=op.f("fk_species_test_tested_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_species_test")),
    )
    op.create_index(op.f("ix_species_test_sample_id"), "species_test", ["sample_id"], unique=False)
    op.create_table(
        "extraction_batch_extract",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("extract_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["extraction_batch.id"],
            name=op.f("fk_extraction_batch_extract_batch_id_extraction_batch"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["extract_id"],
            ["extract.id"],
            name=op.f("fk_extraction_batch_extract_extract_id_extract"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "extract_id", name=op.f("pk_extraction_batch_extract")),
        sa.UniqueConstraint("extract_id", name=op.f("uq_extraction_batch_extract_extract_id")),
    )
    op.create_table(
        "contamination_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("other_profile_id", sa.Integer(), nullable=True),
        sa.Column("elimination_profile_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("comparison", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('elimination', 'plate', 'extraction_batch', 'replicate')",
            name=op.f("ck_contamination_flag_kind"),
        ),
        sa.CheckConstraint(
            "status = 'open' OR resolution IS NOT NULL",
            name=op.f("ck_contamination_flag_resolution"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'cleared', 'confirmed')", name=op.f("ck_contamination_flag_status")
        ),
        sa.ForeignKeyConstraint(
            ["elimination_profile_id"],
            ["elimination_profile.id"],
            name=op.f("fk_contamination_flag_elimination_profile_id_elimination_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["other_profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_contamination_flag_other_profile_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_contamination_flag_profile_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["user_account.id"],
            name=op.f("fk_contamination_flag_resolved_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["genotyping_run.id"],
            name=op.f("fk_contamination_flag_run_id_genotyping_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contamination_flag")),
    )
    op.create_index(
        op.f("ix_contamination_flag_profile_id"), "contamination_flag", ["profile_id"], unique=False
    )
    op.create_index(
        op.f("ix_contamination_flag_status"), "contamination_flag", ["status"], unique=False
    )
    op.create_table(
        "hit_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("confirming_profile_id", sa.Integer(), nullable=True),
        sa.Column("alleles", sa.JSON(), nullable=False),
        sa.Column("concordant", sa.Boolean(), nullable=False),
        sa.Column("comparison", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "method IN ('re-extraction', 're-typing')", name=op.f("ck_hit_confirmation_method")
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"],
            ["user_account.id"],
            name=op.f("fk_hit_confirmation_confirmed_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["confirming_profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_hit_confirmation_confirming_profile_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_hit_confirmation_profile_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_hit_confirmation_sample_id_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hit_confirmation")),
    )
    op.create_index(
        op.f("ix_hit_confirmation_profile_id"), "hit_confirmation", ["profile_id"], unique=False
    )
    op.create_index(
        op.f("ix_hit_confirmation_sample_id"), "hit_confirmation", ["sample_id"], unique=False
    )
    op.create_table(
        "plate_well",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("well", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("extract_id", sa.Integer(), nullable=True),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("control_name", sa.String(length=64), nullable=True),
        sa.Column("observed", sa.JSON(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "kind <> 'sample' OR sample_id IS NOT NULL", name=op.f("ck_plate_well_sample_well")
        ),
        sa.CheckConstraint(
            "kind = 'sample' OR control_name IS NOT NULL", name=op.f("ck_plate_well_control_well")
        ),
        sa.CheckConstraint(
            "kind IN ('sample', 'positive_control', 'negative_control', 'extraction_blank')",
            name=op.f("ck_plate_well_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["extract_id"], ["extract.id"], name=op.f("fk_plate_well_extract_id_extract")
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_plate_well_profile_id_genotype_profile"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["genotyping_run.id"],
            name=op.f("fk_plate_well_run_id_genotyping_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_plate_well_sample_id_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plate_well")),
        sa.UniqueConstraint("run_id", "well", name=op.f("uq_plate_well_run_id_well")),
    )
    op.create_index(op.f("ix_plate_well_profile_id"), "plate_well", ["profile_id"], unique=False)
    op.create_index(op.f("ix_plate_well_run_id"), "plate_well", ["run_id"], unique=False)
    op.create_index(op.f("ix_plate_well_sample_id"), "plate_well", ["sample_id"], unique=False)
    op.create_table(
        "profile_screen",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("n_flags", sa.Integer(), nullable=False),
        sa.Column("screened_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["genotype_profile.id"],
            name=op.f("fk_profile_screen_profile_id_genotype_profile"),
        ),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_screen")),
    )


def downgrade() -> None:
    op.drop_table("profile_screen")
    op.drop_index(op.f("ix_plate_well_sample_id"), table_name="plate_well")
    op.drop_index(op.f("ix_plate_well_run_id"), table_name="plate_well")
    op.drop_index(op.f("ix_plate_well_profile_id"), table_name="plate_well")
    op.drop_table("plate_well")
    op.drop_index(op.f("ix_hit_confirmation_sample_id"), table_name="hit_confirmation")
    op.drop_index(op.f("ix_hit_confirmation_profile_id"), table_name="hit_confirmation")
    op.drop_table("hit_confirmation")
    op.drop_index(op.f("ix_contamination_flag_status"), table_name="contamination_flag")
    op.drop_index(op.f("ix_contamination_flag_profile_id"), table_name="contamination_flag")
    op.drop_table("contamination_flag")
    op.drop_table("extraction_batch_extract")
    op.drop_index(op.f("ix_species_test_sample_id"), table_name="species_test")
    op.drop_table("species_test")
    op.drop_index(op.f("ix_genotyping_run_agency_id"), table_name="genotyping_run")
    op.drop_table("genotyping_run")
    op.drop_index(op.f("ix_quality_record_agency_id"), table_name="quality_record")
    op.drop_table("quality_record")
    op.drop_index(op.f("ix_positive_control_agency_id"), table_name="positive_control")
    op.drop_table("positive_control")
    op.drop_index(op.f("ix_extraction_batch_agency_id"), table_name="extraction_batch")
    op.drop_table("extraction_batch")
    op.drop_index(op.f("ix_elimination_profile_agency_id"), table_name="elimination_profile")
    op.drop_table("elimination_profile")
