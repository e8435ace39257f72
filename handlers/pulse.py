"""Pulse surveys in chat: answering with one tap (or a typed/modal answer for the comment),
progress, changing answers while the round is open, and HR's `survey` command."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from bot.campaign_refs import find_campaign, parse_ref, ref_of, refs_of, shown_ref
from bot.db.models import Campaign, CampaignKind, CampaignStatus
from bot.dialogues import Dialogues
from bot.errors import FieldErrors, InputError, UserFacingError
from bot.handling import HR, HandlerContext, HandlerResult, Registry
from bot.pulse.content import load_survey
from bot.pulse.rates import response_rates
from bot.pulse.schedule import Schedule
from bot.pulse.service import SurveyService, answer_values
from bot.pulse.tables import Participation, Response, SurveyRound
from bot.replies import FormField, FormSpec, Reply, ReplyButton

TEXT_FLOW = "pulse_text"
SKIP = "s"


def register(registry: Registry) -> None:
    registry.command("pulse", summary="help/pulse", aliases=("sondaggio",))(pulse)
    registry.command("survey", summary="help/survey", roles=HR, audited=True)(survey)
    registry.button("pulse_start")(start)
    registry.batch_button("pa")(answer_many)
    registry.button("pulse_write")(write)
    registry.button("pulse_review")(review)
    registry.dialogue(TEXT_FLOW, typed_answer)
    registry.forms[TEXT_FLOW] = form_answer


def _service(ctx: HandlerContext) -> SurveyService:
    return SurveyService(ctx.settings, None, ctx.clock)


def question(
    ctx: HandlerContext, round_: SurveyRound, schedule: Schedule, index: int, current: Any = None
) -> Reply:
    """Item ``index`` of the round, with one button per answer and Skip. Writes nothing:
    :func:`_show` makes a text item the person's current dialogue."""
    item = schedule.items[round_.items[index]]
    locale = ctx.locale
    buttons: list[ReplyButton] = []
    if item.kind == "text":
        if ctx.channel == "slack":
            buttons.append(ReplyButton("pulse_write", "pulse_write", f"{round_.id}.{index}"))
    else:
        for value, label in enumerate(item.choices(locale)):
            number = int(label) if item.kind in ("likert5", "scale0_10") else value
            buttons.append(ReplyButton(label, "pa", f"{round_.id}.{index}.{number}"))
    buttons.append(ReplyButton("skip", "pa", f"{round_.id}.{index}.{SKIP}"))
    shown = current
    if item.kind == "choice" and isinstance(current, int):
        shown = item.choices(locale)[current]
    return Reply(
        "pulse/question",
        {
            "title": schedule.survey.title,
            "number": index + 1,
            "total": len(round_.items),
            "text": item.text,
            "kind": item.kind,
            "current": shown,
        },
        tuple(buttons),
    )


async def _show(
    ctx: HandlerContext,
    round_: SurveyRound,
    schedule: Schedule,
    index: int,
    responses: dict[str, Response] | None = None,
) -> list[Reply]:
    """Item ``index`` with the person's current answer; ``responses`` (from
    ``SurveyService.responses_of``) saves looking the answers up again.

    A text item becomes the person's current dialogue (their next message is the answer),
    which pauses or ends whatever dialogue they were in, with a word; any other item ends
    the text dialogue of an earlier one."""
    dialogues = Dialogues(ctx)
    if schedule.items[round_.items[index]].kind == "text":
        notes = await dialogues.set(TEXT_FLOW, {"round": round_.id, "index": index})
    else:
        notes = await dialogues.finish(TEXT_FLOW)
    if responses is None:
        answers = await _service(ctx).answers_of(ctx.session, round_, ctx.person)
    else:
        answers = answer_values(responses)
    shown = question(ctx, round_, schedule, index, answers.get(round_.items[index]))
    # A dialogue that comes back (its question) is shown before this one, so that the
    # survey's buttons are on the latest message.
    return [*notes, shown]


def _thanks(round_: SurveyRound, schedule: Schedule) -> Reply:
    return Reply(
        "pulse/thanks",
        {"title": schedule.survey.title, "closes_at": round_.closes_at.isoformat()},
        (ReplyButton("pulse_review", "pulse_review", str(round_.id)),),
    )


def _round_id(value: str) -> int:
    if not value.isdigit():
        raise UserFacingError("errors/stale_button")
    return int(value)


async def start(ctx: HandlerContext) -> Reply | list[Reply]:
    round_, schedule, participation = await _service(ctx).open_round_for(
        ctx.session, _round_id(ctx.args), ctx.person
    )
    if participation.answered >= len(round_.items):
        return _thanks(round_, schedule)
    return await _show(ctx, round_, schedule, participation.answered)


async def review(ctx: HandlerContext) -> list[Reply]:
    round_, schedule, _ = await _service(ctx).open_round_for(
        ctx.session, _round_id(ctx.args), ctx.person
    )
    return await _show(ctx, round_, schedule, 0)


@dataclass(frozen=True)
class _Press:
    """One tap on an answer button: ``value`` None means Skip."""

    ctx: HandlerContext
    round_id: int
    index: int
    value: int | None


def _press(ctx: HandlerContext) -> _Press:
    parts = ctx.args.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise UserFacingError("errors/stale_button")
    if parts[2] != SKIP and not parts[2].isdigit():
        raise UserFacingError("errors/stale_button")
    value = None if parts[2] == SKIP else int(parts[2])
    return _Press(ctx, int(parts[0]), int(parts[1]), value)


async def answer_many(ctxs: list[HandlerContext]) -> list[HandlerResult | UserFacingError]:
    """Store one-tap answers (many people at once, one press each, one shared session) and
    show each person their next question or the thank-you.

    Every press is checked before anything is written for it; a refused press changes nothing.
    """
    outcomes: list[HandlerResult | UserFacingError] = [None] * len(ctxs)
    presses: dict[int, _Press] = {}
    for i, ctx in enumerate(ctxs):
        try:
            presses[i] = _press(ctx)
        except UserFacingError as exc:
            outcomes[i] = exc
    if not presses:
        return outcomes
    session = ctxs[0].session
    service = _service(ctxs[0])
    opened = await service.open_rounds_for_many(
        session, [(p.round_id, p.ctx.person) for p in presses.values()]
    )
    accepted: list[tuple[int, _Press, SurveyRound, Schedule, Participation, str]] = []
    for (i, press), got in zip(presses.items(), opened, strict=True):
        if isinstance(got, UserFacingError):
            outcomes[i] = got
            continue
        round_, schedule, participation = got
        if press.index >= len(round_.items):
            outcomes[i] = UserFacingError("errors/stale_button")
            continue
        item = schedule.items[round_.items[press.index]]
        if press.value is not None and (item.kind == "text" or not item.accepts(press.value)):
            outcomes[i] = UserFacingError("errors/stale_button")
            continue
        accepted.append((i, press, round_, schedule, participation, item.id))
    # One query for everybody's earlier answers serves both the change and the next question
    # (only those two items' rows are read).
    responses = await service.responses_of_many(
        session,
        [(round_, press.ctx.person) for _, press, round_, *_ in accepted],
        [round_.items[press.index : press.index + 2] for _, press, round_, *_ in accepted],
    )
    for (i, press, round_, schedule, participation, item_id), rows in zip(
        accepted, responses, strict=True
    ):
        await service.record(
            session,
            round_,
            participation,
            press.ctx.person,
            item_id,
            value=press.value,
            skipped=press.value is None,
            responses=rows,
        )
        outcomes[i] = await _after(press.ctx, round_, schedule, press.index, rows)
    return outcomes


async def _after(
    ctx: HandlerContext,
    round_: SurveyRound,
    schedule: Schedule,
    answered: int,
    responses: dict[str, Response] | None = None,
) -> list[Reply]:
    """What follows the answer to item ``answered``: the next item, or the thanks."""
    if answered + 1 < len(round_.items):
        return await _show(ctx, round_, schedule, answered + 1, responses)
    # A dialogue the survey's comment had paused comes back after the thanks.
    return [_thanks(round_, schedule), *await Dialogues(ctx).finish(TEXT_FLOW)]


async def write(ctx: HandlerContext) -> Reply:
    """Slack: open a modal for the free-text answer (elsewhere people just type it)."""
    parts = ctx.args.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserFacingError("errors/stale_button")
    round_, schedule, _ = await _service(ctx).open_round_for(ctx.session, int(parts[0]), ctx.person)
    index = int(parts[1])
    if index >= len(round_.items) or schedule.items[round_.items[index]].kind != "text":
        raise UserFacingError("errors/stale_button")
    item = schedule.items[round_.items[index]]
    text = item.text.get(ctx.locale) or next(iter(item.text.values()))
    return Reply(
        "pulse/write_prompt",
        {"text": item.text},
        form=FormSpec(
            form=TEXT_FLOW,
            title="Fidelio",
            submit="OK",
            fields=(FormField("answer", text, multiline=True, max_length=2000),),
            metadata=f"{round_.id}.{index}",
        ),
    )


async def _text(ctx: HandlerContext, round_id: int, index: int, text: str) -> list[Reply]:
    service = _service(ctx)
    round_, schedule, participation = await service.open_round_for(
        ctx.session, round_id, ctx.person
    )
    if index >= len(round_.items) or schedule.items[round_.items[index]].kind != "text":
        raise UserFacingError("errors/stale_button")
    cleaned = text.strip()
    if not cleaned:
        return await _show(ctx, round_, schedule, index)
    await service.record(
        ctx.session, round_, participation, ctx.person, round_.items[index], text=cleaned
    )
    return await _after(ctx, round_, schedule, index)


async def typed_answer(ctx: HandlerContext) -> list[Reply]:
    data = await Dialogues(ctx).data(TEXT_FLOW)
    if data is None:
        raise UserFacingError("errors/not_understood")
    return await _text(ctx, int(data["round"]), int(data["index"]), ctx.args)


async def form_answer(ctx: HandlerContext) -> list[Reply]:
    values = getattr(ctx.event, "values", {}) or {}
    parts = str(values.get("_metadata", "")).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserFacingError("errors/stale_button")
    answer = str(values.get("answer") or "")
    if not answer.strip():
        # Typed, an empty answer shows the question again; in a form it is marked there.
        raise FieldErrors({"answer": UserFacingError("forms/required")})
    return await _text(ctx, int(parts[0]), int(parts[1]), answer)


async def pulse(ctx: HandlerContext) -> Reply:
    """The person's open rounds, with their progress."""
    open_rounds = []
    buttons = []
    for round_, schedule, participation in await _service(ctx).open_rounds_of(
        ctx.session, ctx.person
    ):
        open_rounds.append(
            {
                "title": schedule.survey.title,
                "answered": participation.answered,
                "total": len(round_.items),
                "closes_at": round_.closes_at.isoformat(),
            }
        )
        buttons.append(ReplyButton("pulse_start", "pulse_start", str(round_.id)))
    return Reply("pulse/list", {"rounds": open_rounds}, tuple(buttons[:5]))


# HR


async def survey(ctx: HandlerContext) -> Reply:
    """``survey list | schedule ID | pause N | resume N | stop N | close ROUND | rates ROUND``."""
    action, _, rest = ctx.args.strip().partition(" ")
    action, rest = action.lower(), rest.strip()
    service = _service(ctx)
    try:
        if action in ("", "list"):
            return Reply("pulse/schedules", {"schedules": await schedules_overview(ctx)})
        if action == "schedule" and rest:
            found, items = load_survey(ctx.settings.content_dir / "surveys", rest)
            campaign = await service.schedule_in(ctx.session, found, items, ctx.person.email)
            await ctx.session.flush()
            ref = await ref_of(ctx.session, campaign)
            return Reply("pulse/scheduled", {"id": ref, "title": found.title})
        if action in ("pause", "resume", "stop") and parse_ref(rest) is not None:
            status = {
                "pause": CampaignStatus.paused,
                "resume": CampaignStatus.scheduled,
                "stop": CampaignStatus.cancelled,
            }[action]
            try:
                schedule = await find_campaign(ctx.session, rest, CampaignKind.pulse)
            except InputError:
                shown = shown_ref(rest, CampaignKind.pulse)
                raise UserFacingError("pulse/no_schedule", id=shown) from None
            ref = await ref_of(ctx.session, schedule)
            campaign = await service.set_status_in(
                ctx.session, schedule.id, status, ctx.person.email
            )
            return Reply(
                "pulse/status_changed",
                {"id": ref, "title": _title(campaign), "status": campaign.status.value},
            )
        if action == "close" and rest.isdigit():
            round_ = await service.close_round_in(ctx.session, int(rest), ctx.person.email)
            return Reply("pulse/round_closed", {"id": round_.id})
        if action == "rates" and rest.isdigit():
            found_round = await ctx.session.get(SurveyRound, int(rest))
            if found_round is None:
                raise InputError(rest, "no survey round with this id", "no_round", id=rest)
            rates = await response_rates(
                ctx.session, found_round, ctx.settings.anonymity, ctx.clock
            )
            return Reply(
                "pulse/rates",
                {
                    "id": found_round.id,
                    "status": found_round.status.value,
                    "closes_at": found_round.closes_at.isoformat(),
                    "k": ctx.settings.anonymity.min_group,
                    "refresh_min": ctx.settings.anonymity.live_rates_refresh_s // 60,
                    **rates,
                },
            )
    except InputError as exc:
        raise exc.for_chat() from None
    raise UserFacingError("pulse/survey_usage")


async def schedules_overview(ctx: HandlerContext) -> list[dict[str, Any]]:
    campaigns = await ctx.session.scalars(
        select(Campaign).where(Campaign.kind == CampaignKind.pulse).order_by(Campaign.id)
    )
    refs = await refs_of(ctx.session, CampaignKind.pulse)
    out = []
    for campaign in campaigns:
        rounds = list(
            await ctx.session.scalars(
                select(SurveyRound)
                .where(SurveyRound.campaign_id == campaign.id)
                .order_by(SurveyRound.opens_at.desc())
                .limit(3)
            )
        )
        out.append(
            {
                "id": refs[campaign.id],
                "title": _title(campaign),
                "status": campaign.status.value,
                "rounds": [
                    {
                        "id": r.id,
                        "number": r.number,
                        "status": r.status.value,
                        "opens_at": r.opens_at.isoformat(),
                        "closes_at": r.closes_at.isoformat(),
                    }
                    for r in rounds
                ],
            }
        )
    return out


def _title(campaign: Campaign) -> Any:
    """The survey's title in every language it has (the snapshot), else the stored one."""
    return ((campaign.snapshot or {}).get("survey") or {}).get("title") or campaign.title


def with_args(ctx: HandlerContext, args: str) -> HandlerContext:
    return replace(ctx, args=args)
