"""The sections managers and HR add to their Home tab: launch readiness and the loyalty
summary (managers and HR), what is coming up, live response rates and suggestions awaiting
triage (HR). Every figure comes from the function the chat command uses, with the same
access and anonymity rules: ``readiness`` (bot.briefings.readiness), ``summary``
(bot.loyalty.asked), ``survey rates`` (bot.pulse.rates, coarse while a round is open),
``suggestions new`` (SuggestionService.listing)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.briefings.content import Briefing
from bot.briefings.readiness import team_readiness
from bot.campaign_refs import refs_of
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus
from bot.home.parts import HomeContext, Part, shortened
from bot.loyalty.asked import summary_for
from bot.loyalty.service import Window
from bot.pulse.rates import response_rates
from bot.pulse.schedule import Schedule
from bot.pulse.tables import RoundStatus, SurveyRound
from bot.replies import Reply, ReplyButton
from bot.suggestions.content import category_labels, excerpt, reference
from bot.suggestions.service import Filters, SuggestionService
from bot.suggestions.tables import SuggestionStatus

#: How far ahead "coming up" looks for the next round of a survey schedule.
LOOK_AHEAD = timedelta(days=120)
#: Suggestions awaiting triage read at most (the count says "100 or more" beyond).
TRIAGE_READ = 100


async def readiness(ctx: HomeContext) -> Part:
    """Launch readiness of the running briefings, for the teams the person may see (their
    subtrees; every team for HR), as ``readiness B-n`` computes it, without names."""
    now = ctx.clock.now()
    campaigns = await ctx.session.scalars(
        select(Campaign)
        .where(
            Campaign.kind == CampaignKind.briefing,
            Campaign.status == CampaignStatus.scheduled,
            Campaign.starts_at <= now,
            Campaign.ends_at > now,
        )
        .order_by(Campaign.launch_at, Campaign.id)
    )
    refs = await refs_of(ctx.session, CampaignKind.briefing)
    items = []
    for campaign in campaigns:
        briefing = Briefing.from_json(campaign.snapshot)
        report = await team_readiness(ctx.session, campaign, briefing, viewer=ctx.person)
        if not report.rows:
            continue
        context = report.context(briefing, with_names=False)
        items.append(
            Reply(
                "home/readiness",
                {
                    **context,
                    "id": refs[campaign.id],
                    "launched": now >= briefing.launch_at,
                    "teams": context["teams"][: ctx.limit],
                    "more_teams": max(0, len(context["teams"]) - ctx.limit),
                },
            )
        )
    return shortened("home.readiness", items, ctx, empty="home/no_readiness")


async def summary(ctx: HomeContext) -> Part:
    """The latest loyalty summary of the person's default scope (their team for a manager,
    the organisation for HR), or the chat's refusal saying why; the chart stays in chat."""
    window = Window(last=ctx.settings.loyalty.default_rounds)
    replies = await summary_for(
        ctx.session,
        ctx.settings,
        ctx.clock,
        ctx.person,
        "",
        window,
        **ctx.audit_where(),
    )
    texts = [reply for reply in replies if reply.image is None]
    return Part("home.summary", texts, note=Reply("home/summary_note"))


async def upcoming(ctx: HomeContext) -> Part:
    """Briefing campaigns not launched yet and the next round of each running survey
    schedule, soonest first."""
    now = ctx.clock.now()
    found = list(
        await ctx.session.scalars(
            select(Campaign)
            .where(
                Campaign.status == CampaignStatus.scheduled,
                Campaign.ends_at > now,
            )
            .order_by(Campaign.id)
        )
    )
    briefing_refs = await refs_of(ctx.session, CampaignKind.briefing)
    survey_refs = await refs_of(ctx.session, CampaignKind.pulse)
    dated = []
    for campaign in found:
        if campaign.kind == CampaignKind.briefing:
            launch = campaign.launch_at or campaign.starts_at
            if launch <= now:
                continue
            context = {
                "kind": "briefing",
                "id": briefing_refs[campaign.id],
                "title": (campaign.snapshot or {}).get("title") or campaign.title,
                "starts_at": campaign.starts_at.isoformat(),
                "launch_at": launch.isoformat(),
                "started": campaign.starts_at <= now,
            }
            dated.append((campaign.starts_at if campaign.starts_at > now else launch, context))
        else:
            survey = Schedule.of(campaign).survey
            following = survey.cadence.occurrences(now, now + LOOK_AHEAD)
            if not following:
                continue
            context = {
                "kind": "survey",
                "id": survey_refs[campaign.id],
                "title": survey.title,
                "opens_at": following[0].isoformat(),
            }
            dated.append((following[0], context))
    dated.sort(key=lambda pair: pair[0])
    items = [Reply("home/upcoming", context) for _, context in dated]
    return shortened(
        "home.upcoming", items, ctx, "campaign list", "survey list", empty="home/no_upcoming"
    )


async def rates(ctx: HomeContext) -> Part:
    """Response rates of the open rounds, as ``survey rates N`` shows them: counts only,
    the stored snapshot, started and finished rounded down while the round is open."""
    rows = await ctx.session.execute(
        select(SurveyRound, Campaign)
        .join(Campaign, Campaign.id == SurveyRound.campaign_id)
        .where(SurveyRound.status == RoundStatus.open)
        .order_by(SurveyRound.closes_at, SurveyRound.id)
    )
    items = []
    for round_, campaign in rows.tuples().all():
        shown = await response_rates(ctx.session, round_, ctx.settings.anonymity, ctx.clock)
        items.append(
            Reply(
                "home/rates",
                {
                    "id": round_.id,
                    "title": Schedule.of(campaign).survey.title,
                    "closes_at": round_.closes_at.isoformat(),
                    "total": shown["total"],
                    "live": shown["live"],
                    "taken_at": shown["taken_at"],
                    "step": shown["step"],
                },
            )
        )
    return shortened("home.rates", items, ctx, "survey list", empty="home/no_rates")


async def triage(ctx: HomeContext) -> Part:
    """New suggestions HR has not looked at yet (``suggestions new``), each with the chat's
    Open button (``sugg_show``); the listing is audited as the chat's is."""
    service = SuggestionService(ctx.settings, ctx.clock)
    rows = await service.listing(
        ctx.session, ctx.person, Filters(status=SuggestionStatus.new, limit=TRIAGE_READ)
    )
    shown = rows[: ctx.limit]
    teams = await service.team_names(ctx.session, [s.team_id for s in shown])
    labels = category_labels(ctx.settings.suggestions, ctx.person.locale)
    ctx.session.add(
        AuditEntry.by(
            ctx.person,
            ctx.clock.now(),
            "suggestions.list",
            filters="new",
            shown=len(shown),
            **ctx.audit_where(),
        )
    )
    items = [
        Reply(
            "home/triage",
            {
                "reference": reference(s.id),
                "category": labels.get(s.category, s.category),
                "team": teams.get(s.team_id or 0, "-"),
                "anonymous": s.anonymous,
                "excerpt": excerpt(s.text, 160),
                "created_at": s.created_at.isoformat(),
            },
            (ReplyButton("home_open", "sugg_show", str(s.id)),),
        )
        for s in shown
    ]
    return shortened(
        "home.triage", items, ctx, "suggestions new", empty="home/no_triage", total=len(rows)
    )
