"""The loyalty summary a person asks for, as replies: what ``summary`` answers in chat and
what the Home tab shows a manager or HR. One function, so both pass the same access rules
(bot.loyalty.access), the same anonymity rules (bot.loyalty.service, release plans) and are
audited the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, Person, Role
from bot.loyalty.access import ScopeRefused, resolve_scope
from bot.loyalty.present import labels, scope_name, summary_replies
from bot.loyalty.service import LoyaltyService, NoClosedRounds, Summary, TeamTree, Window
from bot.replies import Reply


async def summary_for(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    person: Person,
    team_text: str,
    window: Window,
    **where: Any,
) -> list[Reply]:
    """The summary ``person`` asked for (``team_text`` empty: their default scope), or an
    honest refusal saying why. ``where`` (the channel, the route) goes into the audit entry
    written for every view and every refusal."""

    def audit(action: str, **detail: Any) -> None:
        session.add(AuditEntry.by(person, clock.now(), action, **detail, **where))

    tree = await TeamTree.load(session)
    try:
        scope, may_see = await resolve_scope(session, person, team_text, tree)
    except ScopeRefused as refused:
        audit("loyalty.refused", asked=team_text, reason=refused.reason)
        if refused.reason == "summaries/not_your_team" and person.role == Role.employee:
            return [Reply("summaries/org_only")]
        return [Reply(refused.reason, {"team": refused.team})]
    service = LoyaltyService(settings)
    try:
        result = await service.summarise(
            session,
            f"person:{person.id}",
            scope,
            window,
            clock.now(),
            may_see=may_see,
            tree=tree,
        )
    except NoClosedRounds:
        return [Reply("summaries/no_rounds")]
    texts = labels(settings.content_dir / "templates", person.locale)
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
                    "team": scope_name(result.scope, person.locale),
                    "parent": scope_name(shown.scope, person.locale) if shown else None,
                },
            )
        )
    audit(
        "loyalty.view",
        asked=scope_name(scope, "en"),
        shown=scope_name(shown.scope, "en") if shown else None,
        window=window.describe(),
    )
    if shown is not None:
        replies.extend(summary_replies(shown, person.locale, texts))
    return replies
