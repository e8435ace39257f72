"""The sections everyone's Home tab has: surveys to answer, briefings to read or to quiz,
their suggestions and the ideas board. Each reads through the features' own services (the
same calls as the chat commands) and carries the chat's own button actions."""

from __future__ import annotations

from bot.briefings.content import Briefing
from bot.briefings.service import BriefingService
from bot.home.parts import HomeContext, Part, shortened
from bot.pulse.service import SurveyService
from bot.replies import Reply, ReplyButton
from bot.suggestions.content import category_labels, excerpt, open_question, reference
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import SuggestionStatus

#: Characters of a suggestion shown on the Home tab (the chat shows the whole text).
EXCERPT = 160


async def surveys(ctx: HomeContext) -> Part:
    """Open pulse rounds the person has not finished, each with Answer (``pulse_start``,
    the invitation's Start: the survey goes on in the direct message)."""
    service = SurveyService(ctx.settings, None, ctx.clock)
    items = [
        Reply(
            "home/survey",
            {
                "title": schedule.survey.title,
                "answered": participation.answered,
                "total": len(round_.items),
                "closes_at": round_.closes_at.isoformat(),
            },
            (ReplyButton("home_answer", "pulse_start", str(round_.id)),),
        )
        for round_, schedule, participation in await service.open_rounds_of(ctx.session, ctx.person)
        if not participation.finished
    ]
    return shortened("home.surveys", items, ctx, "pulse", empty="home/no_surveys")


async def briefings(ctx: HomeContext) -> Part:
    """Briefings still to acknowledge, or whose quiz is not done, with the card's buttons
    (Read more, Got it) or the quiz's (``brief_quiz``)."""
    service = BriefingService(ctx.settings, None, ctx.clock)
    now = ctx.clock.now()
    items = []
    for campaign, receipt in await service.active_receipts(ctx.session, ctx.person):
        briefing = Briefing.from_json(campaign.snapshot)
        to_read = receipt.acknowledged_at is None
        quiz_left = bool(briefing.quiz) and receipt.quiz_completed_at is None
        if not ((to_read and briefing.ack_required) or quiz_left):
            continue
        answered = len(receipt.quiz_answers or {})
        buttons = []
        if to_read:
            buttons.append(ReplyButton("read_more", "brief_more", str(campaign.id)))
        if to_read and briefing.ack_required:
            buttons.append(ReplyButton("got_it", "brief_ack", str(campaign.id)))
        elif quiz_left:
            label = "quiz_continue" if answered else "home_quiz"
            buttons.append(ReplyButton(label, "brief_quiz", str(campaign.id)))
        items.append(
            Reply(
                "home/briefing",
                {
                    "title": briefing.title,
                    "launch_at": briefing.launch_at.isoformat(),
                    "launched": now >= briefing.launch_at,
                    "to_read": to_read,
                    "answered": answered,
                    "questions": len(briefing.quiz),
                },
                tuple(buttons),
            )
        )
    return shortened("home.briefings", items, ctx, "briefings", empty="home/no_briefings")


async def suggestions(ctx: HomeContext) -> Part:
    """The person's own suggestions with their status (the anonymous ones too: the tab is
    theirs alone, as ``mysuggestions`` is), Answer where HR asked a question, and a button to
    send a new one (the form, as the chat's)."""
    service = SuggestionService(ctx.settings, ctx.clock)
    rows = await service.authored_by(ctx.session, ctx.person)
    shown = rows[: ctx.limit]
    exchanges = await service.exchanges(ctx.session, [s.id for s in shown])
    labels = category_labels(ctx.settings.suggestions, ctx.person.locale)
    items = []
    for s in shown:
        waiting = open_question(exchanges.get(s.id, [])) and s.status != SuggestionStatus.merged
        items.append(
            Reply(
                "home/suggestion",
                {
                    "reference": reference(s.id),
                    "status": s.status.value,
                    "category": labels.get(s.category, s.category),
                    "excerpt": excerpt(s.text, EXCERPT),
                    "anonymous": s.anonymous,
                    "merged_into": reference(s.merged_into_id) if s.merged_into_id else None,
                    "waiting": waiting,
                },
                (ReplyButton("sugg_answer", "sugg_answer", str(s.id)),) if waiting else (),
            )
        )
    return shortened(
        "home.suggestions",
        items,
        ctx,
        "mysuggestions",
        empty="home/no_suggestions",
        total=len(rows),
        buttons=(ReplyButton("home_suggest", "sugg_form", ""),),
    )


async def ideas(ctx: HomeContext) -> Part:
    """The ideas board: published suggestions (their text only), with 👍 to support one."""
    service = SuggestionService(ctx.settings, ctx.clock)
    rows, total = await service.published(ctx.session, ctx.limit)
    votes = await service.votes(ctx.session, [s.id for s in rows])
    labels = category_labels(ctx.settings.suggestions, ctx.person.locale)
    items = [
        Reply(
            "home/idea",
            {
                "reference": reference(s.id),
                "status": s.status.value,
                "category": labels.get(s.category, s.category),
                "excerpt": excerpt(s.text, EXCERPT),
                "votes": votes[s.id],
            },
            (ReplyButton(f"👍 {reference(s.id)}", "sugg_vote", str(s.id)),),
        )
        for s in rows
    ]
    return shortened("home.ideas", items, ctx, "ideas", empty="home/no_ideas", total=total)
