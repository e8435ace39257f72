"""suggestions: scrubs owed after anonymous suggestions and answers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suggestion_scrubs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suggestion_scrubs")),
    )


def downgrade() -> None:
    op.drop_table("suggestion_scrubs")
