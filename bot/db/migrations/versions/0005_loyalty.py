"""loyalty measurement: viewers' query history, digests, and the responses index summaries use

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loyalty_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("viewer", sa.String(length=64), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("teams_hash", sa.String(length=64), nullable=False),
        sa.Column("team_ids", sa.JSON(), nullable=False),
        sa.Column("shown_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_loyalty_views_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_views")),
        sa.UniqueConstraint("viewer", "round_id", "teams_hash", name="uq_loyalty_view"),
    )
    op.create_index("ix_loyalty_views_viewer_round", "loyalty_views", ["viewer", "round_id"])
    op.create_table(
        "loyalty_digests",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_loyalty_digests_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_loyalty_digests")),
    )
    # Summaries aggregate one team subtree's answers over a few rounds: this index holds every
    # column they read, so a team's summary never touches the other teams' rows.
    op.create_index(
        "ix_responses_team_round_cover",
        "responses",
        ["team_id", "round_id", "respondent_key", "item_id", "value_num"],
    )


def downgrade() -> None:
    op.drop_index("ix_responses_team_round_cover", table_name="responses")
    op.drop_table("loyalty_digests")
    op.drop_index("ix_loyalty_views_viewer_round", table_name="loyalty_views")
    op.drop_table("loyalty_views")
