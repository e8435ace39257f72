"""briefings written or edited in the web console (their file text)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "briefing_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("briefing_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("updated_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_briefing_texts")),
        sa.UniqueConstraint("briefing_id", name=op.f("uq_briefing_texts_briefing_id")),
    )


def downgrade() -> None:
    op.drop_table("briefing_texts")
