"""Briefing receipts: who got, read and passed which briefing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
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
