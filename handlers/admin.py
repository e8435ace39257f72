"""whoami (everyone) and the admin/HR housekeeping commands available in chat."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.db.models import ChannelIdentity, Person, Team
from bot.handling import EVERYONE, HR, HandlerContext, Registry
from bot.locale import language_name
from bot.replies import Reply


def register(registry: Registry) -> None:
    registry.command("whoami", summary="help/whoami", roles=EVERYONE)(whoami)
    registry.command("status", summary="help/status", roles=HR, audited=True)(status)


async def whoami(ctx: HandlerContext) -> Reply:
    team = await ctx.session.get(Team, ctx.person.team_id)
    return Reply(
        "whoami",
        {
            "name": ctx.person.name,
            "email": ctx.person.email,
            "team": team.name if team else "-",
            "role": ctx.person.role.value,
            "language": language_name(ctx.person.locale, ctx.locale),
            "channel": ctx.channel,
        },
    )


async def status(ctx: HandlerContext) -> Reply:
    """Directory size and how many people each channel can reach."""
    people = await ctx.session.scalar(select(func.count()).select_from(Person))
    teams = await ctx.session.scalar(select(func.count()).select_from(Team))
    rows = await ctx.session.execute(
        select(ChannelIdentity.channel, func.count()).group_by(ChannelIdentity.channel)
    )
    reach = {channel.value: count for channel, count in rows.all()}
    return Reply("status", {"people": people, "teams": teams, "reach": reach})
