"""What pulse surveys hold about a person: participation (kept, anonymous, on erasure)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Campaign, Person
from bot.privacy.parts import PersonalDataPart, iso, keep
from bot.pulse.tables import Participation, SurveyRound


def parts() -> list[PersonalDataPart]:
    """What pulse surveys hold about a person: participation (kept, anonymous, on erasure)."""
    return [PersonalDataPart("survey_participation", _export_participation, keep)]


async def _export_participation(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Participation, SurveyRound, Campaign)
        .join(SurveyRound, SurveyRound.id == Participation.round_id)
        .join(Campaign, Campaign.id == SurveyRound.campaign_id)
        .where(Participation.person_id == person.id)
        .order_by(SurveyRound.opens_at)
    )
    return [
        {
            "survey": campaign.content_id,
            "round_id": round_.id,
            "round_number": round_.number,
            "opens_at": iso(round_.opens_at),
            "closes_at": iso(round_.closes_at),
            "questions_answered": participation.answered,
            "finished": participation.finished,
        }
        for participation, round_, campaign in rows
    ]
