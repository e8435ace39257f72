"""web console: one-time sign-in links and sessions (hashes of their tokens only)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import bot.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ROLE = sa.Enum("employee", "manager", "hr", "admin", name="role", native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "web_sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("expires_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("used_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_web_sign_in_links_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sign_in_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sign_in_links_token_hash")),
    )
    op.create_index(
        op.f("ix_web_sign_in_links_person_id"), "web_sign_in_links", ["person_id"], unique=False
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("created_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("expires_at", bot.db.models.UtcDateTime(), nullable=False),
        sa.Column("revoked_at", bot.db.models.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_web_sessions_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_person_id"), "web_sessions", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_person_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_web_sign_in_links_person_id"), table_name="web_sign_in_links")
    op.drop_table("web_sign_in_links")
