"""channel_identities: the command menu a chat was given of its own (Telegram's "/" menu)

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-11
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_identities") as batch:
        batch.add_column(sa.Column("menu_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_identities") as batch:
        batch.drop_column("menu_digest")
