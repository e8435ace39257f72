"""`summary [team] [last N rounds | since DATE]`: loyalty summaries in chat, as text and a
chart. Managers see their own team subtrees, HR any team or the organisation, employees the
organisation. Everything shown passes the anonymity rules (bot.loyalty.anonymity) and each
view is written to the audit log."""

from __future__ import annotations

import re
from datetime import date

from bot.db.models import Role
from bot.errors import UserFacingError
from bot.handling import EVERYONE, HandlerContext, Registry
from bot.loyalty.access import ScopeRefused, resolve_scope
from bot.loyalty.present import labels, scope_name, summary_replies
from bot.loyalty.service import LoyaltyService, NoClosedRounds, Summary, TeamTree, Window
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
    session = ctx.session
    tree = await TeamTree.load(session)
    try:
        scope, may_see = await resolve_scope(session, ctx.person, team_text, tree)
    except ScopeRefused as refused:
        ctx.audit("loyalty.refused", asked=team_text, reason=refused.reason, channel=ctx.channel)
        if refused.reason == "summaries/not_your_team" and ctx.person.role == Role.employee:
            return [Reply("summaries/org_only")]
        return [Reply(refused.reason, {"team": refused.team})]
    service = LoyaltyService(ctx.settings)
    try:
        result = await service.summarise(
            session,
            f"person:{ctx.person.id}",
            scope,
            window,
            ctx.clock.now(),
            may_see=may_see,
            tree=tree,
        )
    except NoClosedRounds:
        return [Reply("summaries/no_rounds")]
    texts = labels(ctx.settings.content_dir / "templates", ctx.locale)
    replies: list[Reply] = []
    shown: Summary | None
    if isinstance(result, Summary):
        shown = result
    else:
        shown = result.fallback
        replies.append(
            Reply(
                "summaries/not_enough",
                {
                    "team": scope_name(result.scope, ctx.locale),
                    "parent": scope_name(shown.scope, ctx.locale) if shown else None,
                },
            )
        )
    ctx.audit(
        "loyalty.view",
        asked=scope_name(scope, "en"),
        shown=scope_name(shown.scope, "en") if shown else None,
        window=window.describe(),
        channel=ctx.channel,
    )
    if shown is not None:
        replies.extend(summary_replies(shown, ctx.locale, texts))
    return replies
