"""campaigns and briefing receipts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("briefing", "pulse", name="campaignkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "cancelled",
                "done",
                name="campaignstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("starts_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("launch_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.Column("ends_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("cancelled_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_content_id"), ["content_id"], unique=False)
        batch_op.create_index("ix_campaigns_status_starts", ["status", "starts_at"], unique=False)

    op.create_table(
        "briefing_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("read_more_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.Column("acknowledged_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.Column("quiz_answers", sa.JSON(), nullable=False),
        sa.Column("quiz_score", sa.Integer(), nullable=True),
        sa.Column("quiz_completed_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_briefing_receipts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_briefing_receipts_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_briefing_receipts_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_briefing_receipts")),
        sa.UniqueConstraint("campaign_id", "person_id", name="uq_receipt_campaign_person"),
    )
    with op.batch_alter_table("briefing_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_briefing_receipts_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_briefing_receipts_person_id"), ["person_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("briefing_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_briefing_receipts_person_id"))
        batch_op.drop_index(batch_op.f("ix_briefing_receipts_campaign_id"))

    op.drop_table("briefing_receipts")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_status_starts")
        batch_op.drop_index(batch_op.f("ix_campaigns_content_id"))

    op.drop_table("campaigns")
