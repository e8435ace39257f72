"""objective indicator figures and outbox images

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("absence_days", sa.Float(), nullable=False),
        sa.Column("absence_spells", sa.Integer(), nullable=False),
        sa.Column("available_days", sa.Float(), nullable=False),
        sa.Column("disciplinary_cases", sa.Integer(), nullable=False),
        sa.Column("initiative_participants", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("imported_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_indicator_figures_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_figures")),
        sa.UniqueConstraint("team_id", "period", name="uq_indicator_team_period"),
    )
    with op.batch_alter_table("indicator_figures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indicator_figures_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_indicator_figures_period"), ["period"], unique=False)

    op.create_table(
        "outbox_images",
        sa.Column(
            "delivery_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["outbox.id"],
            name=op.f("fk_outbox_images_delivery_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_outbox_images")),
    )


def downgrade() -> None:
    op.drop_table("outbox_images")
    with op.batch_alter_table("indicator_figures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indicator_figures_period"))
        batch_op.drop_index(batch_op.f("ix_indicator_figures_team_id"))
    op.drop_table("indicator_figures")
