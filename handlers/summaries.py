"""`summary [team] [last N rounds | since DATE]`: loyalty summaries in chat, as text and a
chart. Managers see their own team subtrees, HR any team or the organisation, employees the
organisation. Everything shown passes the anonymity rules (bot.loyalty.anonymity) and each
view is written to the audit log."""

from __future__ import annotations

import re
from datetime import date

from bot.errors import UserFacingError
from bot.handling import EVERYONE, HandlerContext, Registry
from bot.loyalty.asked import summary_for
from bot.loyalty.service import Window
from bot.replies import Reply

_LAST = re.compile(
    r"(?:^|\s)(?:last|ultimi|ultime|ultimo)\s+(\S+)(?:\s+(?:rounds?|turni|turno))?\s*$",
    re.IGNORECASE,
)
_SINCE = re.compile(r"(?:^|\s)(?:since|dal|da|from)\s+(\S+)\s*$", re.IGNORECASE)
MAX_ROUNDS = 104


def register(registry: Registry) -> None:
    registry.command("summary", summary="help/summary", roles=EVERYONE, aliases=("riepilogo",))(
        summary
    )


def parse_args(text: str, default_rounds: int) -> tuple[str, Window]:
    """Split ``[team] [last N rounds | since DATE]``; bad numbers or dates are refused."""
    text = text.strip()
    last = _LAST.search(text)
    if last:
        value = last.group(1)
        if not value.isdigit() or not 1 <= int(value) <= MAX_ROUNDS:
            raise UserFacingError("summaries/usage", problem="rounds", given=value, most=MAX_ROUNDS)
        return text[: last.start()].strip(), Window(last=int(value))
    since = _SINCE.search(text)
    if since:
        try:
            when = date.fromisoformat(since.group(1))
        except ValueError:
            raise UserFacingError("summaries/usage", problem="date", given=since.group(1)) from None
        return text[: since.start()].strip(), Window(since=when)
    return text, Window(last=default_rounds)


async def summary(ctx: HandlerContext) -> list[Reply]:
    """The summary a person asked for, or an honest refusal."""
    team_text, window = parse_args(ctx.args, ctx.settings.loyalty.default_rounds)
    return await summary_for(
        ctx.session, ctx.settings, ctx.clock, ctx.person, team_text, window, channel=ctx.channel
    )
