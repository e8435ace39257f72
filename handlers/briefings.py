"""Briefings in chat: the card, Read more, Got it, the quiz, `briefings`, `ask`, readiness and
HR's `campaign` command."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.briefings.body import body_reply, render_body
from bot.briefings.content import Briefing, timing_warnings
from bot.briefings.readiness import team_readiness
from bot.briefings.search import passages_for, search
from bot.briefings.service import BriefingService
from bot.briefings.stored import load_scheduled_briefing
from bot.briefings.tables import BriefingReceipt
from bot.campaign_refs import find_campaign, parse_ref, ref_of, refs_of, shown_ref
from bot.changes import note_change
from bot.db.models import Campaign, CampaignKind, CampaignStatus
from bot.errors import InputError, UserFacingError
from bot.handling import HR, MANAGERS, HandlerContext, Registry
from bot.render import Trusted
from bot.replies import Reply, ReplyButton

MAX_OPTION_LABEL = 60
log = logging.getLogger(__name__)


def register(registry: Registry) -> None:
    registry.command("briefings", summary="help/briefings", aliases=("novita",))(list_briefings)
    registry.command("ask", summary="help/ask", aliases=("chiedi",))(ask)
    registry.command("readiness", summary="help/readiness", roles=MANAGERS, audited=True)(readiness)
    registry.command("campaign", summary="help/campaign", roles=HR, audited=True)(campaign)
    registry.button("brief_more")(read_more)
    registry.button("brief_ack")(acknowledge)
    registry.button("quiz")(answer_quiz)
    registry.button("brief_quiz")(continue_quiz)


# Shared lookups


async def _receipt(
    ctx: HandlerContext, campaign_id: str
) -> tuple[Campaign, BriefingReceipt, Briefing]:
    """The person's copy of an open briefing, or a polite refusal."""
    if not campaign_id.isdigit():
        raise UserFacingError("errors/stale_button")
    campaign = await ctx.session.get(Campaign, int(campaign_id))
    receipt = await ctx.session.scalar(
        select(BriefingReceipt).where(
            BriefingReceipt.campaign_id == int(campaign_id),
            BriefingReceipt.person_id == ctx.person.id,
        )
    )
    if campaign is None or receipt is None or campaign.kind != CampaignKind.briefing:
        raise UserFacingError("errors/stale_button")
    if campaign.status != CampaignStatus.scheduled or ctx.clock.now() >= campaign.ends_at:
        raise UserFacingError("briefings/closed", title=campaign.title)
    return campaign, receipt, Briefing.from_json(campaign.snapshot)


def _question(campaign: Campaign, briefing: Briefing, index: int, locale: str) -> Reply:
    question = briefing.quiz[index]
    chosen = briefing.locale_for(locale)
    options = question.options[chosen]
    return Reply(
        "briefings/quiz_question",
        {
            "title": briefing.title,
            "number": index + 1,
            "total": len(briefing.quiz),
            "question": question.question,
        },
        tuple(
            ReplyButton(_short(option), "quiz", f"{campaign.id}.{index}.{choice}")
            for choice, option in enumerate(options)
        ),
    )


def _short(label: str) -> str:
    return label if len(label) <= MAX_OPTION_LABEL else label[: MAX_OPTION_LABEL - 1] + "…"


def _next_question(receipt: BriefingReceipt, briefing: Briefing) -> int | None:
    for index in range(len(briefing.quiz)):
        if str(index) not in (receipt.quiz_answers or {}):
            return index
    return None


# Buttons


async def read_more(ctx: HandlerContext) -> Reply:
    campaign, receipt, briefing = await _receipt(ctx, ctx.args)
    if receipt.read_more_at is None:
        receipt.read_more_at = ctx.clock.now()
    with_ack = briefing.ack_required and receipt.acknowledged_at is None
    return body_reply(campaign.id, briefing, ctx.locale, ctx.person.timezone, with_ack=with_ack)


async def acknowledge(ctx: HandlerContext) -> list[Reply]:
    campaign, receipt, briefing = await _receipt(ctx, ctx.args)
    replies: list[Reply] = []
    if receipt.acknowledged_at is None:
        receipt.acknowledged_at = ctx.clock.now()
        note_change(ctx.session, ctx.person.id)
        before_launch = receipt.acknowledged_at < briefing.launch_at
        replies.append(
            Reply(
                "briefings/acknowledged",
                {
                    "title": briefing.title,
                    "before_launch": before_launch,
                    "quiz_questions": len(briefing.quiz),
                },
            )
        )
    elif receipt.quiz_completed_at is not None or not briefing.quiz:
        return [Reply("briefings/already_acknowledged", {"title": briefing.title})]
    index = _next_question(receipt, briefing)
    if index is not None:
        replies.append(_question(campaign, briefing, index, ctx.locale))
    return replies


async def continue_quiz(ctx: HandlerContext) -> Reply:
    """Continue quiz (from ``briefings``): the first question not answered yet."""
    campaign, receipt, briefing = await _receipt(ctx, ctx.args)
    index = _next_question(receipt, briefing)
    if index is None or receipt.quiz_completed_at is not None:
        return Reply("briefings/already_acknowledged", {"title": briefing.title})
    if receipt.acknowledged_at is None:
        # The quiz follows "Got it": taking it up counts as having read the briefing.
        receipt.acknowledged_at = ctx.clock.now()
        note_change(ctx.session, ctx.person.id)
    return _question(campaign, briefing, index, ctx.locale)


async def answer_quiz(ctx: HandlerContext) -> Reply | list[Reply]:
    parts = ctx.args.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise UserFacingError("errors/stale_button")
    campaign_id, index, choice = parts[0], int(parts[1]), int(parts[2])
    campaign, receipt, briefing = await _receipt(ctx, campaign_id)
    if index >= len(briefing.quiz) or choice >= len(
        briefing.quiz[index].options[briefing.locales[0]]
    ):
        raise UserFacingError("errors/stale_button")
    if receipt.acknowledged_at is None:
        # The quiz follows "Got it"; a press on an old quiz card counts as acknowledgement.
        receipt.acknowledged_at = ctx.clock.now()
    answers = dict(receipt.quiz_answers or {})
    if str(index) in answers:
        next_index = _next_question(receipt, briefing)
        note = Reply("briefings/quiz_already_answered", {"number": index + 1})
        if next_index is None:
            return note
        return [note, _question(campaign, briefing, next_index, ctx.locale)]
    answers[str(index)] = choice
    receipt.quiz_answers = answers
    note_change(ctx.session, ctx.person.id)
    next_index = _next_question(receipt, briefing)
    if next_index is not None:
        return _question(campaign, briefing, next_index, ctx.locale)
    return _finish_quiz(ctx, receipt, briefing)


def _finish_quiz(ctx: HandlerContext, receipt: BriefingReceipt, briefing: Briefing) -> Reply:
    chosen = briefing.locale_for(ctx.locale)
    answers = receipt.quiz_answers
    wrong = []
    score = 0
    for index, question in enumerate(briefing.quiz):
        picked = answers.get(str(index))
        if picked == question.correct:
            score += 1
        else:
            wrong.append(
                {
                    "number": index + 1,
                    "question": question.question[chosen],
                    "correct": question.options[chosen][question.correct],
                    "explanation": question.explanation[chosen],
                }
            )
    receipt.quiz_score = score
    receipt.quiz_completed_at = ctx.clock.now()
    return Reply(
        "briefings/quiz_result",
        {
            "title": briefing.title,
            "score": score,
            "total": len(briefing.quiz),
            "wrong": wrong,
        },
    )


# Commands


async def _active_receipts(ctx: HandlerContext) -> list[tuple[Campaign, BriefingReceipt]]:
    return await BriefingService(ctx.settings, None, ctx.clock).active_receipts(
        ctx.session, ctx.person
    )


async def list_briefings(ctx: HandlerContext) -> Reply:
    """The person's active briefings: one button to open each and, where they stopped a quiz
    part-way, one to continue it."""
    return _briefing_list(ctx, await _active_receipts(ctx))


def _briefing_list(ctx: HandlerContext, receipts: list[tuple[Campaign, BriefingReceipt]]) -> Reply:
    items = []
    buttons = []
    unfinished = [
        c.id
        for c, r in receipts
        if r.acknowledged_at is not None
        and r.quiz_completed_at is None
        and Briefing.from_json(c.snapshot).quiz
    ]
    for campaign, receipt in receipts:
        briefing = Briefing.from_json(campaign.snapshot)
        items.append(
            {
                "title": briefing.title,
                "launch_at": briefing.launch_at.isoformat(),
                "launched": ctx.clock.now() >= briefing.launch_at,
                "acknowledged": receipt.acknowledged_at is not None,
                "score": receipt.quiz_score,
                "total": len(briefing.quiz),
            }
        )
        title = _short(briefing.text(briefing.title, ctx.locale))
        buttons.append(ReplyButton(title, "brief_more", str(campaign.id)))
        if campaign.id in unfinished:
            # Several unfinished quizzes: each button names its briefing.
            label = "quiz_continue" if len(unfinished) == 1 else _short(f"▶ {title}")
            buttons.append(ReplyButton(label, "brief_quiz", str(campaign.id)))
    return Reply(
        "briefings/list", {"items": items, "continue": len(unfinished)}, tuple(buttons[:10])
    )


async def ask(ctx: HandlerContext) -> Reply | list[Reply]:
    """``ask WORDS``: the passages of the person's open briefings that answer, each quoting
    its briefing; when none fits, the briefings themselves, as ``briefings`` lists them."""
    query = ctx.args.strip()
    if not query:
        return Reply("briefings/ask_usage")
    receipts = await _active_receipts(ctx)
    passages = []
    for campaign, _receipt_row in receipts:
        briefing = Briefing.from_json(campaign.snapshot)
        try:
            body: str | None = render_body(briefing, ctx.locale, ctx.person.timezone)
        except Exception:
            # One broken body must not break the lookup of every other briefing.
            log.exception("briefing %s: body does not render; searching its FAQ only", briefing.id)
            body = ""
        passages.extend(passages_for(briefing, campaign.id, ctx.locale, body))
    hits = search(passages, query, ctx.locale)
    ctx.audit("briefings.ask", hits=len(hits))
    answer = Reply(
        "briefings/ask_result",
        {
            "query": query,
            "hits": [
                {
                    "title": h.passage.title,
                    "question": h.passage.question,
                    # A body paragraph is the body as Read more shows it: headings in bold.
                    "text": Trusted(h.passage.text) if h.passage.kind == "body" else h.passage.text,
                    "kind": h.passage.kind,
                }
                for h in hits
            ],
            "searched": len(receipts),
        },
    )
    if hits or not receipts:
        return answer
    # Nothing fits: the answer may still be in a briefing, worded in a way search missed.
    return [answer, _briefing_list(ctx, receipts)]


async def readiness(ctx: HandlerContext) -> Reply:
    campaign = await _campaign_arg(ctx, ctx.args.strip())
    briefing = Briefing.from_json(campaign.snapshot)
    report = await team_readiness(ctx.session, campaign, briefing, viewer=ctx.person)
    if not report.rows:
        raise UserFacingError(
            "briefings/readiness_none",
            title=briefing.title,
            not_yet=ctx.clock.now() < campaign.starts_at,
            brief_at=campaign.starts_at.isoformat(),
        )
    return Reply("briefings/readiness_note", report.context(briefing, with_names=True))


async def _campaign_arg(ctx: HandlerContext, text: str) -> Campaign:
    """The briefing campaign ``text`` names: ``B-3`` or ``3`` (see bot/campaign_refs.py)."""
    if parse_ref(text) is None:
        raise UserFacingError("briefings/campaign_usage")
    try:
        return await find_campaign(ctx.session, text, CampaignKind.briefing)
    except InputError:
        shown = shown_ref(text, CampaignKind.briefing)
        raise UserFacingError("briefings/no_campaign", id=shown) from None


async def campaign(ctx: HandlerContext) -> Reply:
    """``campaign list | show ID | schedule BRIEFING_ID | cancel ID`` (HR)."""
    action, _, rest = ctx.args.strip().partition(" ")
    action, rest = action.lower(), rest.strip()
    service = BriefingService(ctx.settings, None, ctx.clock)
    actor = ctx.person.email
    try:
        if action in ("", "list"):
            rows = await ctx.session.scalars(
                select(Campaign)
                .where(Campaign.kind == CampaignKind.briefing)
                .order_by(Campaign.id.desc())
                .limit(15)
            )
            refs = await refs_of(ctx.session, CampaignKind.briefing)
            return Reply(
                "briefings/campaign_list",
                {
                    "campaigns": [
                        {
                            "id": refs[c.id],
                            "title": _title(c),
                            "status": c.status.value,
                            "starts_at": c.starts_at.isoformat(),
                            "launch_at": (c.launch_at or c.starts_at).isoformat(),
                        }
                        for c in rows
                    ]
                },
            )
        if action == "show":
            return await readiness(_with_args(ctx, rest))
        if action == "schedule":
            if not rest:
                raise UserFacingError("briefings/campaign_usage")
            briefing = await load_scheduled_briefing(
                ctx.session,
                ctx.settings.content_dir / "briefings",
                rest,
                ctx.settings.organisation.default_timezone,
            )
            scheduled, _ = await service.schedule_in(ctx.session, briefing, actor)
            # The same warnings as the command line's, by kind, in the reader's language.
            warnings = [
                {"key": w.key, **w.params} for w in timing_warnings(briefing, ctx.clock.now())
            ]
            return Reply(
                "briefings/scheduled",
                {
                    "id": await ref_of(ctx.session, scheduled),
                    "title": briefing.title,
                    "brief_at": briefing.brief_at.isoformat(),
                    "launch_at": briefing.launch_at.isoformat(),
                    "warnings": warnings,
                },
            )
        if action == "cancel":
            found = await _campaign_arg(ctx, rest)
            ref = await ref_of(ctx.session, found)
            cancelled = await service.cancel_in(ctx.session, found.id, actor)
            return Reply("briefings/cancelled", {"id": ref, "title": _title(cancelled)})
    except InputError as exc:
        # Content files are named from the content folder: HR has no use for a server path.
        exc.where = _content_relative(ctx, exc.where)
        exc.reason = _content_relative(ctx, exc.reason)
        raise exc.for_chat() from None
    raise UserFacingError("briefings/campaign_usage")


def _content_relative(ctx: HandlerContext, text: str) -> str:
    folder = str(ctx.settings.content_dir)
    return text.replace(folder.rstrip("/") + "/", "").replace(folder, "content")


def _title(campaign: Campaign) -> Any:
    """The briefing's title in every language it has (the snapshot), else the stored one."""
    return (campaign.snapshot or {}).get("title") or campaign.title


def _with_args(ctx: HandlerContext, args: str) -> HandlerContext:
    from dataclasses import replace

    return replace(ctx, args=args)
