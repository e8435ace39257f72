"""What the pages show, gathered with the same services and queries as the chat commands:
readiness from :func:`bot.briefings.readiness.team_readiness` (``readiness``, ``campaign``),
response rates from :func:`bot.pulse.rates.response_rates` (``survey rates``), suggestions
from :class:`bot.suggestions.service.SuggestionService` (``suggestions``) and loyalty figures
from :class:`bot.loyalty.service.LoyaltyService` (``summary``). No figure is computed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.content import Briefing
from bot.briefings.readiness import team_readiness
from bot.campaign_refs import refs_of
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus, Person
from bot.loyalty.asked import ask_summary
from bot.loyalty.present import labels, scope_name, summary_context
from bot.loyalty.service import Window
from bot.pulse.rates import response_rates
from bot.pulse.tables import RoundStatus, SurveyRound
from bot.suggestions.content import category_labels, excerpt, reference
from bot.suggestions.service import Filters, SuggestionService
from bot.suggestions.tables import Suggestion, SuggestionStatus

#: How many coming launches, open rounds and new suggestions the dashboard lists.
DASHBOARD_ROWS = 5
AUDIT_PAGE = 50


def pick(values: Any, locale: str) -> str:
    """The text of ``locale`` from ``{"en": ..., "it": ...}`` (or a plain value)."""
    if isinstance(values, dict):
        return str(values.get(locale) or next(iter(values.values()), ""))
    return str(values)


async def launches(
    session: AsyncSession, viewer: Person, now: datetime, locale: str
) -> list[dict[str, Any]]:
    """The next briefing launches still open, each with its readiness per team as ``viewer``
    may see it (HR: every team; managers: their subtrees), names left out."""
    campaigns = await session.scalars(
        select(Campaign)
        .where(
            Campaign.kind == CampaignKind.briefing,
            Campaign.status == CampaignStatus.scheduled,
            Campaign.ends_at > now,
        )
        .order_by(Campaign.launch_at, Campaign.id)
        .limit(DASHBOARD_ROWS)
    )
    refs = await refs_of(session, CampaignKind.briefing)
    return [
        await launch(
            session, campaign, refs.get(campaign.id, str(campaign.id)), viewer, now, locale
        )
        for campaign in campaigns
    ]


async def launch(
    session: AsyncSession, campaign: Campaign, ref: str, viewer: Person, now: datetime, locale: str
) -> dict[str, Any]:
    """One briefing campaign with its readiness per team as ``viewer`` may see it, names
    left out (``campaign show`` and ``readiness`` in chat use the same report)."""
    briefing = Briefing.from_json(campaign.snapshot)
    report = await team_readiness(session, campaign, briefing, viewer=viewer)
    context = report.context(briefing, with_names=False)
    return {
        "ref": ref,
        "title": pick(briefing.title, locale),
        "brief_at": campaign.starts_at,
        "launch_at": briefing.launch_at,
        "started": now >= campaign.starts_at,
        "teams": context["teams"],
        "total": context["total"],
    }


async def open_rounds(
    session: AsyncSession, settings: Settings, clock: Clock, locale: str
) -> list[dict[str, Any]]:
    """Open pulse rounds with their coarse response rates (the stored snapshot, counts
    rounded down while open: the same figures ``survey rates`` shows)."""
    rows = await session.execute(
        select(SurveyRound, Campaign)
        .join(Campaign, Campaign.id == SurveyRound.campaign_id)
        .where(SurveyRound.status == RoundStatus.open)
        .order_by(SurveyRound.closes_at)
        .limit(DASHBOARD_ROWS)
    )
    out = []
    for round_, campaign in rows.tuples().all():
        rates = await response_rates(session, round_, settings.anonymity, clock)
        total = rates["total"]
        invited = total["invited"]
        out.append(
            {
                "id": round_.id,
                "title": pick(
                    ((campaign.snapshot or {}).get("survey") or {}).get("title") or campaign.title,
                    locale,
                ),
                "closes_at": round_.closes_at,
                "invited": invited,
                "finished": total["finished"],
                "finished_pct": 100.0 * total["finished"] / invited if invited else None,
                "taken_at": rates["taken_at"],
                "step": rates["step"],
            }
        )
    return out


async def awaiting_triage(
    session: AsyncSession, settings: Settings, clock: Clock, viewer: Person, locale: str
) -> dict[str, Any]:
    """New suggestions within ``viewer``'s reach: how many, and the latest few."""
    service = SuggestionService(settings, clock)
    rows = await service.listing(
        session, viewer, Filters(status=SuggestionStatus.new, limit=DASHBOARD_ROWS)
    )
    # Counted with the reach ``listing`` applies (HR: all; managers: their subtrees).
    scope = await service.scope(session, viewer)
    new = (
        select(func.count())
        .select_from(Suggestion)
        .where(Suggestion.status == SuggestionStatus.new)
    )
    if scope is not None:
        new = new.where(Suggestion.team_id.in_(scope or {-1}))
    count = int(await session.scalar(new) or 0)
    teams = await service.team_names(session, [s.team_id for s in rows])
    names = category_labels(settings.suggestions, locale)
    return {
        "count": count,
        "latest": [
            {
                "reference": reference(s.id),
                "excerpt": excerpt(s.text),
                "category": names.get(s.category, s.category),
                "team": teams.get(s.team_id or 0, "–"),
                "anonymous": s.anonymous,
                "created_at": s.created_at,
            }
            for s in rows
        ],
    }


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    person: str = ""
    page: int = 1


async def audit_page(session: AsyncSession, wanted: AuditFilter) -> dict[str, Any]:
    """One page of the audit log, newest first: ``action`` matches an action or its prefix
    (``web`` finds ``web.sign_in``), ``person`` part of the actor's email or label."""
    query = select(AuditEntry)
    counted = select(func.count()).select_from(AuditEntry)
    conditions: list[ColumnElement[bool]] = []
    if wanted.action:
        conditions.append(
            (AuditEntry.action == wanted.action) | AuditEntry.action.startswith(wanted.action + ".")
        )
    if wanted.person:
        conditions.append(func.lower(AuditEntry.actor_label).contains(wanted.person.lower()))
    for condition in conditions:
        query = query.where(condition)
        counted = counted.where(condition)
    total = int(await session.scalar(counted) or 0)
    pages = max(1, -(-total // AUDIT_PAGE))
    page = min(max(1, wanted.page), pages)
    entries = await session.scalars(
        query.order_by(AuditEntry.id.desc()).offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE)
    )
    actions = await session.scalars(
        select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    )
    return {
        "entries": [
            {"at": e.at, "actor": e.actor_label, "action": e.action, "detail": e.detail}
            for e in entries
        ],
        "total": total,
        "page": page,
        "pages": pages,
        "actions": list(actions),
    }


@dataclass
class TeamSummary:
    """A loyalty summary as a page shows it: what was asked, what is shown (the nearest
    reportable parent when the team is too small) and its figures, or why there are none."""

    asked: str
    shown: str | None
    figures: dict[str, Any] | None
    problem: str | None = None


async def loyalty_summary(
    session: AsyncSession, settings: Settings, viewer: Person, team: str, now: datetime, locale: str
) -> TeamSummary:
    """The summary ``summary [team]`` would give ``viewer``, through the same access and
    anonymity rules (:func:`bot.loyalty.asked.ask_summary`), audited as a view or a
    refusal with ``channel`` web."""
    window = Window(last=settings.loyalty.default_rounds)
    given = await ask_summary(session, settings, now, viewer, team, window, channel="web")
    if given.refused is not None:
        return TeamSummary(team, None, None, given.refused.reason.removeprefix("summaries/"))
    assert given.scope is not None
    asked = scope_name(given.scope, locale)
    if given.no_rounds:
        return TeamSummary(asked, None, None, "no_rounds")
    shown = given.shown
    if shown is None:
        return TeamSummary(asked, None, None, "not_enough")
    texts = labels(settings.content_dir / "templates", locale)
    return TeamSummary(
        asked, scope_name(shown.scope, locale), summary_context(shown, locale, texts)
    )
