"""outbox: when each delivery was first claimed (bounds the Slack history read on recovery)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("first_claimed_at", bot.db.models.UtcDateTime(), nullable=True))
    # Rows claimed before this column existed: their creation is the earliest they can have
    # been sent, so a history read from there still finds them.
    op.execute(
        "UPDATE outbox SET first_claimed_at = created_at "
        "WHERE status = 'sending' OR unknown_retries > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("first_claimed_at")
