"""The loyalty summary a person asks for, as replies: what ``summary`` answers in chat and
what the Home tab shows a manager or HR, and the figures of the web console's team pages.
One function (:func:`ask_summary`), so all of them pass the same access rules
(bot.loyalty.access), the same anonymity rules (bot.loyalty.service, release plans) and are
audited the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, Person, Role
from bot.loyalty.access import ScopeRefused, resolve_scope
from bot.loyalty.present import labels, scope_name, summary_replies
from bot.loyalty.service import (
    LoyaltyService,
    NoClosedRounds,
    Scope,
    Summary,
    TeamTree,
    Unreportable,
    Window,
)
from bot.replies import Reply


@dataclass(frozen=True)
class Asked:
    """What a person asking for a summary is given: the scope they asked for, and either the
    summary shown (the nearest reportable parent when their scope is too small), or why
    there is none (``refused`` with its reason, or ``no_rounds``, or ``not_enough``)."""

    scope: Scope | None
    result: Summary | Unreportable | None = None
    refused: ScopeRefused | None = None
    no_rounds: bool = False

    @property
    def shown(self) -> Summary | None:
        """The summary released to the person, if any."""
        if isinstance(self.result, Summary):
            return self.result
        return self.result.fallback if self.result is not None else None


async def ask_summary(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    person: Person,
    team_text: str,
    window: Window,
    **where: Any,
) -> Asked:
    """Resolve what ``person`` may see of ``team_text`` (empty: their default scope) and
    summarise it through the release plans; every view and every refusal is audited, with
    ``where`` (the channel, the route) in the entry. Chat, the Home tab and the web console
    all come through here."""

    def audit(action: str, **detail: Any) -> None:
        session.add(AuditEntry.by(person, now, action, **detail, **where))

    tree = await TeamTree.load(session)
    try:
        scope, may_see = await resolve_scope(session, person, team_text, tree)
    except ScopeRefused as refused:
        audit("loyalty.refused", asked=team_text, reason=refused.reason)
        return Asked(None, refused=refused)
    service = LoyaltyService(settings)
    try:
        result = await service.summarise(
            session, f"person:{person.id}", scope, window, now, may_see=may_see, tree=tree
        )
    except NoClosedRounds:
        return Asked(scope, no_rounds=True)
    asked = Asked(scope, result)
    shown = asked.shown
    audit(
        "loyalty.view",
        asked=scope_name(scope, "en"),
        shown=scope_name(shown.scope, "en") if shown else None,
        window=window.describe(),
    )
    return asked


async def summary_for(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    person: Person,
    team_text: str,
    window: Window,
    **where: Any,
) -> list[Reply]:
    """The summary ``person`` asked for (``team_text`` empty: their default scope) as chat
    replies, or an honest refusal saying why (:func:`ask_summary`)."""
    asked = await ask_summary(session, settings, clock.now(), person, team_text, window, **where)
    if asked.refused is not None:
        refused = asked.refused
        if refused.reason == "summaries/not_your_team" and person.role == Role.employee:
            return [Reply("summaries/org_only")]
        return [Reply(refused.reason, {"team": refused.team})]
    if asked.no_rounds or asked.result is None:
        return [Reply("summaries/no_rounds")]
    texts = labels(settings.content_dir / "templates", person.locale)
    replies: list[Reply] = []
    shown = asked.shown
    if not isinstance(asked.result, Summary):
        replies.append(
            Reply(
                "summaries/not_enough",
                {
                    "team": scope_name(asked.result.scope, person.locale),
                    "parent": scope_name(shown.scope, person.locale) if shown else None,
                },
            )
        )
    if shown is not None:
        replies.extend(summary_replies(shown, person.locale, texts))
    return replies
