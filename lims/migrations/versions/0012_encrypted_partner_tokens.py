"""Partners' outbound tokens encrypted at rest: ``exchange_partner.outbound_token`` (the token a
partner issued us, in the clear) becomes ``outbound_token_encrypted``, Fernet ciphertext under
the instance's token key (``exchange_token_key`` in the instance folder, see
:mod:`lims.exchange`).

Rows that hold a token are encrypted on the way up and decrypted on the way down with the key
file the caller passes (``config.attributes["exchange_token_key_file"]``: ``dnatrack db upgrade``
passes the instance's); with tokens to convert and no key file the migration stops, changing
nothing.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

PARTNER = sa.table(
    "exchange_partner",
    sa.column("id", sa.Integer),
    sa.column("outbound_token", sa.String),
    sa.column("outbound_token_encrypted", sa.Text),
)


def _token_key(rows: int):
    path = context.config.attributes.get("exchange_token_key_file")
    if path is None:
        raise RuntimeError(
            f"{rows} exchange partner token(s) to convert and no token key file: run "
            "`dnatrack db upgrade`, or pass exchange_token_key_file to lims.migrate"
        )
    from lims.exchange import load_token_key

    return load_token_key(path)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(PARTNER.c.id, PARTNER.c.outbound_token).where(
            PARTNER.c.outbound_token.is_not(None)
        )
    ).all()
    key = _token_key(len(rows)) if rows else None
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outbound_token_encrypted", sa.Text(), nullable=True))
    for partner_id, token in rows:
        bind.execute(
            sa.update(PARTNER)
            .where(PARTNER.c.id == partner_id)
            .values(outbound_token_encrypted=key.encrypt(token.encode()).decode("ascii"))
        )
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.drop_column("outbound_token")


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(PARTNER.c.id, PARTNER.c.outbound_token_encrypted).where(
            PARTNER.c.outbound_token_encrypted.is_not(None)
        )
    ).all()
    key = _token_key(len(rows)) if rows else None
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outbound_token", sa.String(length=255), nullable=True))
    for partner_id, stored in rows:
        bind.execute(
            sa.update(PARTNER)
            .where(PARTNER.c.id == partner_id)
            .values(outbound_token=key.decrypt(stored.encode("ascii")).decode())
        )
    with op.batch_alter_table("exchange_partner", schema=None) as batch_op:
        batch_op.drop_column("outbound_token_encrypted")
