"""Who a briefing is for, resolved against the directory as it stands at a given moment."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content_fields import Audience
from bot.db.models import Person, Role, Team
from bot.errors import InputError
from bot.people import team_subtree_ids


async def audience_team_ids(session: AsyncSession, audience: Audience) -> set[int] | None:
    """The teams an audience covers (None = every team). Unknown team names are an error."""
    if audience.everyone or not (audience.teams or audience.teams_only):
        return None
    names = {*audience.teams, *audience.teams_only}
    rows = await session.execute(select(Team.name, Team.id).where(Team.name.in_(names)))
    by_name = dict(rows.tuples().all())
    missing = sorted(names - set(by_name))
    if missing:
        raise InputError(
            "audience.teams",
            f"no team named {', '.join(repr(m) for m in missing)} in the directory",
            "unknown_teams",
            teams=", ".join(missing),
        )
    ids: set[int] = {by_name[name] for name in audience.teams_only}
    for name in audience.teams:
        ids |= await team_subtree_ids(session, by_name[name])
    return ids


async def resolve_audience(session: AsyncSession, audience: Audience, today: date) -> list[Person]:
    """Active people in the audience today, ordered by id."""
    query = select(Person).where(
        or_(Person.leave_date.is_(None), Person.leave_date > today),
        # Someone imported ahead of their first day is not in any audience yet.
        or_(Person.hire_date.is_(None), Person.hire_date <= today),
    )
    team_ids = await audience_team_ids(session, audience)
    if team_ids is not None:
        query = query.where(Person.team_id.in_(team_ids))
    if audience.roles:
        query = query.where(Person.role.in_([Role(r) for r in audience.roles]))
    if audience.locations:
        query = query.where(
            func.lower(Person.location).in_([loc.lower() for loc in audience.locations])
        )
    return list(await session.scalars(query.order_by(Person.id)))
