"""What briefings hold about a person: their receipts (kept, anonymous, on erasure)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.tables import BriefingReceipt
from bot.db.models import Campaign, Person
from bot.privacy.parts import PersonalDataPart, iso, keep


def parts() -> list[PersonalDataPart]:
    """What briefings hold about a person: their receipts (kept, anonymous, on erasure)."""
    return [PersonalDataPart("briefing_receipts", _export_receipts, keep)]


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
