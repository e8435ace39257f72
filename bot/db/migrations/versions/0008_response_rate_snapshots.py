"""surveys: stored snapshots of the live response rates of open rounds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_rate_snapshots",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_response_rate_snapshots_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_response_rate_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("response_rate_snapshots")
