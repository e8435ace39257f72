"""Personal data of loyalty measurement: what a viewer has been shown (``loyalty_views``).

A row holds ``person:<id>``, a closed round and the set of teams whose figures that person was
shown, for the query-history rule (MEASUREMENT.md, rule 4). Exported as such. On erasure the
rows are kept: they name only the erased row's id (never reused, since the row stays), and
they remain the record of which figures were released to that viewer, which the history rule
and any later review of what was disclosed rely on. Report views in the audit log are handled
by the audit part; the digest and figure tables hold no person id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Campaign, Person, Team
from bot.loyalty.tables import LoyaltyView
from bot.privacy.parts import PersonalDataPart, iso, keep
from bot.pulse.tables import SurveyRound


def viewer_label(person: Person) -> str:
    """How loyalty summaries name a person who looks at them (bot/loyalty)."""
    return f"person:{person.id}"


def parts() -> list[PersonalDataPart]:
    return [PersonalDataPart("loyalty_views", export_views, keep)]


async def export_views(session: AsyncSession, person: Person) -> list[dict[str, Any]]:
    """Each survey round and set of teams whose figures the person was shown, and when."""
    rows = (
        await session.execute(
            select(LoyaltyView, SurveyRound, Campaign)
            .join(SurveyRound, SurveyRound.id == LoyaltyView.round_id)
            .join(Campaign, Campaign.id == SurveyRound.campaign_id)
            .where(LoyaltyView.viewer == viewer_label(person))
            .order_by(LoyaltyView.id)
        )
    ).all()
    wanted = {int(t) for view, _, _ in rows for t in view.team_ids}
    names = (
        {
            int(i): str(n)
            for i, n in (
                await session.execute(select(Team.id, Team.name).where(Team.id.in_(wanted)))
            ).tuples()
        }
        if wanted
        else {}
    )
    return [
        {
            "survey": campaign.content_id,
            "round_number": round_.number,
            "round_id": round_.id,
            "teams": sorted(names.get(int(t), f"#{t}") for t in view.team_ids),
            "shown_at": iso(view.shown_at),
        }
        for view, round_, campaign in rows
    ]
