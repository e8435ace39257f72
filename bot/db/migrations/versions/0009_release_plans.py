"""anonymity: one release plan per closed round, answers kept by plan atom

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

The schema only. Rounds closed before this revision still hold their answers in
``responses`` with their team; ``fidelio db upgrade`` then rewrites each of them in a
transaction of its own (bot.loyalty.release.rewrite_closed_rounds), so an interrupted
upgrade leaves every round either fully rewritten or untouched.
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("survey_rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_at", bot.db.models.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("scrubbed_at", bot.db.models.UtcDateTime(), nullable=True))
    op.create_table(
        "plan_atoms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("respondents", sa.Integer(), nullable=False),
        sa.Column("sums", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_plan_atoms_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_atoms")),
    )
    op.create_index(op.f("ix_plan_atoms_round_id"), "plan_atoms", ["round_id"])
    op.create_table(
        "release_groups",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("teams", sa.JSON(), nullable=False),
        sa.Column("atoms", sa.JSON(), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("sums", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_release_groups_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("round_id", "group_key", name=op.f("pk_release_groups")),
    )
    op.create_table(
        "closed_responses",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("atom_id", sa.Integer(), nullable=False),
        sa.Column("set_no", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("value_num", sa.Integer(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["survey_rounds.id"],
            name=op.f("fk_closed_responses_round_id_survey_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["atom_id"],
            ["plan_atoms.id"],
            name=op.f("fk_closed_responses_atom_id_plan_atoms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "round_id", "atom_id", "set_no", "item_id", name=op.f("pk_closed_responses")
        ),
    )
    # Summaries no longer scan answers (they read plan atoms), and the responses table now
    # holds open rounds only: the covering index would only slow every answer down.
    op.drop_index("ix_responses_team_round_cover", table_name="responses")


def downgrade() -> None:
    op.create_index(
        "ix_responses_team_round_cover",
        "responses",
        ["team_id", "round_id", "respondent_key", "item_id", "value_num"],
    )
    op.drop_table("closed_responses")
    op.drop_table("release_groups")
    op.drop_index(op.f("ix_plan_atoms_round_id"), table_name="plan_atoms")
    op.drop_table("plan_atoms")
    with op.batch_alter_table("survey_rounds", schema=None) as batch_op:
        batch_op.drop_column("scrubbed_at")
        batch_op.drop_column("planned_at")
