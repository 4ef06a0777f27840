"""Server-side page sessions and login throttling.

- ``user_session``: one row per page session opened by logging in. The cookie carries a
  random id whose SHA-256 is kept here; logging out revokes the row, so a copy of the cookie
  taken before stops working. Sessions opened before this revision have no row and end at
  their next request (their users log in again).
- ``login_failure``: every refused password login (username as typed, client address).
- ``login_lockout``: an account name or client address locked out after too many failures,
  until a time or until an administrator unlocks it.

The tables are new, so the upgrade fills nothing and the downgrade loses only sessions and
the throttling history.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_session_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_session_token_hash")),
    )
    op.create_index(op.f("ix_user_session_user_id"), "user_session", ["user_id"])

    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    for column in ("occurred_at", "username", "client_address"):
        op.create_index(op.f(f"ix_login_failure_{column}"), "login_failure", [column])

    op.create_table(
        "login_lockout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=False),
        sa.Column("unlocked_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "scope IN ('account', 'address')", name=op.f("ck_login_lockout_scope")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_lockout")),
    )
    op.create_index(
        "ix_login_lockout_scope_subject", "login_lockout", ["scope", "subject"]
    )


def downgrade() -> None:
    op.drop_index("ix_login_lockout_scope_subject", table_name="login_lockout")
    op.drop_table("login_lockout")
    for column in ("occurred_at", "username", "client_address"):
        op.drop_index(op.f(f"ix_login_failure_{column}"), table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_index(op.f("ix_user_session_user_id"), table_name="user_session")
    op.drop_table("user_session")
