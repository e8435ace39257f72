"""Briefing receipts (who got, read and passed which briefing) and the briefings written or
edited in the web console (their file text)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.models import Base, UtcDateTime


class BriefingReceipt(Base):
    """One person's copy of a briefing: when it was queued, acknowledged, and the quiz.

    Briefings are not anonymous: readiness notes may name who has not acknowledged.
    """

    __tablename__ = "briefing_receipts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "person_id", name="uq_receipt_campaign_person"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    #: The person's team when the briefing was queued (readiness is reported per team).
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Queued after launch: no longer a pre-launch briefing.
    late: Mapped[bool] = mapped_column(default=False)
    read_more_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    quiz_answers: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    quiz_score: Mapped[int | None] = mapped_column(Integer)
    quiz_completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BriefingText(Base):
    """A briefing written or edited in the web console: the text of a briefing file (YAML
    front matter and ``::: <locale>`` body sections), checked by the same parser as
    ``content/briefings/*.md``. Kept in the database so every instance on one PostgreSQL
    sees and schedules the same briefing; ``version`` counts saves, so an edit based on an
    older version is refused instead of silently overwriting another person's."""

    __tablename__ = "briefing_texts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The ``id`` of its front matter (it cannot change once stored).
    briefing_id: Mapped[str] = mapped_column(String(32), unique=True)
    text: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(254))

    # Each UPDATE says ``WHERE version = <the one read>``: of two instances saving the same
    # version at once, the second changes no row and is refused instead of overwriting.
    __mapper_args__ = {"version_id_col": version}
