"""What briefings hold about a person: their receipts (kept, anonymous, on erasure), and who
wrote or last saved a briefing in the web console (the email is erased, the briefing stays)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.tables import BriefingReceipt, BriefingText
from bot.db.models import Campaign, Person
from bot.privacy.parts import ERASED, Erasure, PersonalDataPart, iso, keep


def parts() -> list[PersonalDataPart]:
    """What briefings hold about a person: their receipts (kept, anonymous, on erasure)."""
    return [
        PersonalDataPart("briefing_receipts", _export_receipts, keep),
        PersonalDataPart("briefing_texts", _export_texts, _erase_texts),
    ]


async def _export_texts(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """The briefings the person wrote or last saved in the web console."""
    rows = await session.scalars(
        select(BriefingText)
        .where(
            or_(BriefingText.created_by == person.email, BriefingText.updated_by == person.email)
        )
        .order_by(BriefingText.id)
    )
    return [
        {
            "briefing": row.briefing_id,
            "created": row.created_by == person.email,
            "created_at": iso(row.created_at),
            "last_saved": row.updated_by == person.email,
            "updated_at": iso(row.updated_at),
        }
        for row in rows
    ]


async def _erase_texts(session: AsyncSession, erasure: Erasure) -> int:
    """The briefings stay (HR's work, not the person's data); who wrote them is erased."""
    changed = 0
    for column in ("created_by", "updated_by"):
        result = await session.execute(
            update(BriefingText)
            .where(getattr(BriefingText, column) == erasure.email)
            .values({column: ERASED})
        )
        changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return changed


async def _export_receipts(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(BriefingReceipt, Campaign)
        .join(Campaign, Campaign.id == BriefingReceipt.campaign_id)
        .where(BriefingReceipt.person_id == person.id)
        .order_by(BriefingReceipt.id)
    )
    return [
        {
            "campaign_id": campaign.id,
            "briefing": campaign.content_id,
            "title": campaign.title,
            "queued_at": iso(receipt.queued_at),
            "late": receipt.late,
            "read_more_at": iso(receipt.read_more_at),
            "acknowledged_at": iso(receipt.acknowledged_at),
            "quiz_answers": receipt.quiz_answers,
            "quiz_score": receipt.quiz_score,
            "quiz_completed_at": iso(receipt.quiz_completed_at),
        }
        for receipt, campaign in rows
    ]
