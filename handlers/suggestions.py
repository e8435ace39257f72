"""Suggestions in chat: sending (guided, one-line or a Slack form), supporting published
ideas, answering a follow-up question, and triage for HR and managers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.db.models import Person, Role, Team
from bot.dialogues import Dialogues
from bot.errors import FieldErrors, UserFacingError
from bot.handling import MANAGERS, HandlerContext, Registry
from bot.replies import FormField, FormSpec, Reply, ReplyButton
from bot.suggestions.content import (
    TRIAGE_STATUSES,
    category_labels,
    excerpt,
    form_text,
    open_question,
    parse_reference,
    parse_status,
    personal_data,
    redact,
    reference,
)
from bot.suggestions.service import HR_ROLES, Filters, SuggestionService
from bot.suggestions.tables import Suggestion, SuggestionStatus

SUGGEST_FLOW = "suggest"
ANSWER_FLOW = "sugg_answer"
TRIAGE_FLOW = "sugg_triage"
SUGGEST_FORM = "sugg_form"
ANSWER_FORM = "sugg_answer_form"
ANONYMOUS_OPTION = "anonymous"
ANSWER_PURPOSE = "suggestion-answer-state"
MAX_LIST = 10


def register(registry: Registry) -> None:
    registry.command("suggest", summary="help/suggest", aliases=("suggerisci", "idea"))(suggest)
    registry.command("ideas", summary="help/ideas", aliases=("idee",))(ideas)
    registry.command("mysuggestions", summary="help/mysuggestions", aliases=("miei",))(mine)
    registry.command(
        "suggestions", summary="help/suggestions", roles=MANAGERS, aliases=("suggerimenti",)
    )(suggestions)
    registry.command(
        "suggestion", summary="help/suggestion", roles=MANAGERS, aliases=("suggerimento",)
    )(suggestion)
    registry.button("sugg_pd")(personal_data_choice)
    registry.button("sugg_cat")(category_chosen)
    registry.button("sugg_anon")(anonymity_chosen)
    registry.button("sugg_form")(open_form)
    registry.button("sugg_vote")(vote)
    registry.button("sugg_answer")(answer_button)
    registry.button("sugg_show", roles=MANAGERS)(show_button)
    registry.button("sugg_st", roles=MANAGERS)(status_button)
    registry.button("sugg_act", roles=MANAGERS)(action_button)
    # A draft holds what the person wrote: another dialogue pauses it rather than ending it.
    registry.dialogue(SUGGEST_FLOW, suggest_text, pausable=True, prompt=_step_prompt)
    registry.dialogue(ANSWER_FLOW, answer_text)
    registry.dialogue(TRIAGE_FLOW, triage_text, about=_about_triage)
    registry.forms[SUGGEST_FORM] = form_submitted
    registry.forms[ANSWER_FORM] = answer_form_submitted


def _service(ctx: HandlerContext) -> SuggestionService:
    return SuggestionService(ctx.settings, ctx.clock)


async def _set_state(ctx: HandlerContext, flow: str, data: dict[str, Any]) -> list[Reply]:
    """Make ``flow`` the person's current dialogue; the notes say what became of another."""
    return await Dialogues(ctx).set(flow, data)


def _about_triage(data: dict[str, Any]) -> dict[str, Any]:
    sid = data.get("sid")
    return {"reference": reference(int(sid)) if isinstance(sid, int) else ""}


def _trigger(ctx: HandlerContext) -> str | None:
    return getattr(ctx.event, "trigger", None)


# Sending


async def suggest(ctx: HandlerContext) -> list[Reply]:
    """``suggest [text]``: a short guided conversation (or a form on Slack). An unfinished
    draft is replaced by the new one, and the person is told."""
    text = ctx.args.strip()
    earlier = await Dialogues(ctx).data(SUGGEST_FLOW)
    notes = []
    if earlier and earlier.get("text"):
        notes.append(
            Reply("dialogues/left", {"action": "discarded", "flow": SUGGEST_FLOW, "reference": ""})
        )
    if ctx.channel == "slack" and not text and _trigger(ctx):
        # Typing stays possible: the state waits for text should the form not open.
        notes += await _set_state(ctx, SUGGEST_FLOW, {"step": "text"})
        return [*notes, _form_reply(ctx, {})]
    if not text:
        notes += await _set_state(ctx, SUGGEST_FLOW, {"step": "text"})
        return [*notes, _text_prompt(ctx)]
    return [*notes, *await _advance(ctx, {"text": text})]


def _text_prompt(ctx: HandlerContext, current: str = "") -> Reply:
    buttons: tuple[ReplyButton, ...] = ()
    if ctx.channel == "slack":
        buttons = (ReplyButton("sugg_form", "sugg_form", ""),)
    return Reply(
        "suggestions/prompt_text",
        {"current": current, "limit": ctx.settings.suggestions.max_length},
        buttons,
    )


def _step_prompt(ctx: HandlerContext, data: dict[str, Any]) -> Reply:
    """The question a draft waits on (its ``step``), built from its data alone: it also asks
    again when a paused draft comes back, where nothing may be written."""
    step = data.get("step")
    text = str(data.get("text") or "")
    if step == "pd":
        return Reply(
            "suggestions/personal_data",
            {"findings": [{"kind": f.kind, "text": f.text} for f in personal_data(text)]},
            (
                ReplyButton("sugg_edit", "sugg_pd", "edit"),
                ReplyButton("sugg_redact", "sugg_pd", "redact"),
                ReplyButton("sugg_send_as_is", "sugg_pd", "keep"),
            ),
        )
    if step == "category":
        labels = category_labels(ctx.settings.suggestions, ctx.locale)
        return Reply(
            "suggestions/choose_category",
            {"excerpt": excerpt(text)},
            tuple(ReplyButton(label, "sugg_cat", cid) for cid, label in labels.items()),
        )
    if step == "anonymity":
        return Reply(
            "suggestions/choose_anonymity",
            {"k": ctx.settings.suggestions.min_team},
            (
                ReplyButton("sugg_named", "sugg_anon", "0"),
                ReplyButton("sugg_anonymous", "sugg_anon", "1"),
            ),
        )
    return _text_prompt(ctx, text)


async def _ask(ctx: HandlerContext, data: dict[str, Any], step: str) -> list[Reply]:
    """Save the draft at ``step`` and ask its question."""
    draft = {**data, "step": step}
    notes = await _set_state(ctx, SUGGEST_FLOW, draft)
    return [*notes, _step_prompt(ctx, draft)]


async def _advance(ctx: HandlerContext, data: dict[str, Any]) -> list[Reply]:
    """Ask for what is missing (text, a look at personal data, category, anonymity); save
    when nothing is."""
    text = str(data.get("text") or "").strip()
    limit = ctx.settings.suggestions.max_length
    if not text:
        return await _ask(ctx, {**data, "text": ""}, "text")
    if len(text) > limit:
        notes = await _set_state(ctx, SUGGEST_FLOW, {**data, "step": "text", "text": ""})
        return [*notes, Reply("suggestions/too_long", {"length": len(text), "limit": limit})]
    if not data.get("checked"):
        if personal_data(text):
            return await _ask(ctx, data, "pd")
        data = {**data, "checked": True}
    category = data.get("category")
    if not category or ctx.settings.suggestions.category(str(category)) is None:
        return await _ask(ctx, data, "category")
    if data.get("anonymous") is None:
        return await _ask(ctx, data, "anonymity")
    anonymous = bool(data["anonymous"])
    created = await _service(ctx).create(ctx.session, ctx.person, text, str(category), anonymous)
    dialogues = Dialogues(ctx)
    if anonymous:
        # Not in this transaction, which writes the anonymous suggestion: see
        # bot/suggestions/scrubbing.py.
        back = await dialogues.finish_apart(SUGGEST_FLOW)
    else:
        back = await dialogues.finish(SUGGEST_FLOW)
    team = await ctx.session.get(Team, created.team_id) if created.team_id else None
    sent = Reply(
        "suggestions/sent",
        {
            "reference": reference(created.id),
            "anonymous": anonymous,
            "category": category_labels(ctx.settings.suggestions, ctx.locale)[str(category)],
            "team": team.name if team else "",
            "own_team": created.team_id == ctx.person.team_id,
        },
    )
    return [sent, *back]


async def _draft(ctx: HandlerContext) -> dict[str, Any] | list[Reply]:
    """The draft a button belongs to. A draft that waits behind another dialogue is brought
    back first and its question asked again (the replies), the press itself not applied: the
    step that files an anonymous suggestion must find its draft row untouched by its own
    transaction (bot/suggestions/scrubbing.py)."""
    dialogues = Dialogues(ctx)
    data = await dialogues.data(SUGGEST_FLOW)
    if data is not None:
        return data
    if await dialogues.paused_data(SUGGEST_FLOW) is not None:
        return await dialogues.bring_back(SUGGEST_FLOW)
    raise UserFacingError("errors/stale_button")


async def suggest_text(ctx: HandlerContext) -> list[Reply]:
    """Typed text while sending a suggestion."""
    data = await _draft(ctx)
    if isinstance(data, list):
        return data
    if data.get("step") == "text":
        return await _advance(ctx, {**data, "text": ctx.args.strip(), "checked": False})
    # A message while a button is expected: ask again.
    return await _advance(ctx, data)


async def personal_data_choice(ctx: HandlerContext) -> list[Reply]:
    data = await _draft(ctx)
    if isinstance(data, list):
        return data
    if data.get("step") != "pd":
        raise UserFacingError("errors/stale_button")
    choice = ctx.args
    if choice == "edit":
        current = str(data.get("text") or "")
        await _set_state(ctx, SUGGEST_FLOW, {**data, "step": "text"})
        if ctx.channel == "slack" and _trigger(ctx):
            return [_form_reply(ctx, data)]
        return [_text_prompt(ctx, current)]
    if choice == "redact":
        return await _advance(ctx, {**data, "text": redact(str(data["text"])), "checked": True})
    if choice == "keep":
        return await _advance(ctx, {**data, "checked": True})
    raise UserFacingError("errors/stale_button")


async def category_chosen(ctx: HandlerContext) -> list[Reply]:
    data = await _draft(ctx)
    if isinstance(data, list):
        return data
    if ctx.settings.suggestions.category(ctx.args) is None:
        raise UserFacingError("errors/stale_button")
    return await _advance(ctx, {**data, "category": ctx.args})


async def anonymity_chosen(ctx: HandlerContext) -> list[Reply]:
    data = await _draft(ctx)
    if isinstance(data, list):
        return data
    if ctx.args not in ("0", "1") or not data.get("category"):
        raise UserFacingError("errors/stale_button")
    return await _advance(ctx, {**data, "anonymous": ctx.args == "1"})


def _form_reply(ctx: HandlerContext, data: dict[str, Any]) -> Reply:
    """The Slack modal: text, category, an "anonymous" checkbox. Its text (the prompt) is
    sent instead when the form cannot be opened."""
    locale = ctx.locale
    labels = category_labels(ctx.settings.suggestions, locale)
    return Reply(
        "suggestions/prompt_text",
        {"current": str(data.get("text") or ""), "limit": ctx.settings.suggestions.max_length},
        form=FormSpec(
            form=SUGGEST_FORM,
            title=form_text(locale, "title"),
            submit=form_text(locale, "submit"),
            fields=(
                FormField(
                    "text",
                    form_text(locale, "text"),
                    multiline=True,
                    max_length=ctx.settings.suggestions.max_length,
                    initial=str(data.get("text") or ""),
                ),
                FormField(
                    "category",
                    form_text(locale, "category"),
                    kind="select",
                    options=tuple(labels.items()),
                    initial=str(data.get("category") or ""),
                ),
                FormField(
                    "anonymous",
                    form_text(locale, "anonymous"),
                    kind="checkbox",
                    options=((ANONYMOUS_OPTION, form_text(locale, "anonymous_option")),),
                    initial=ANONYMOUS_OPTION if data.get("anonymous") else "",
                    optional=True,
                ),
            ),
        ),
    )


async def open_form(ctx: HandlerContext) -> list[Reply]:
    dialogues = Dialogues(ctx)
    notes: list[Reply] = []
    if await dialogues.paused_data(SUGGEST_FLOW) is not None:
        notes = await dialogues.bring_back(SUGGEST_FLOW)
    data = await dialogues.data(SUGGEST_FLOW) or {}
    notes += await _set_state(ctx, SUGGEST_FLOW, {**data, "step": "text"})
    return [*notes, _form_reply(ctx, data)]


async def form_submitted(ctx: HandlerContext) -> list[Reply]:
    """The suggestion form: a missing or too long text and an unknown category are refused
    under their fields, with nothing saved; a text that looks like it holds personal data
    continues in the conversation (edit, redact or keep)."""
    values = getattr(ctx.event, "values", {}) or {}
    chosen = values.get("anonymous") or []
    anonymous = ANONYMOUS_OPTION in (chosen if isinstance(chosen, list) else [chosen])
    text = values.get("text")
    text = text.strip() if isinstance(text, str) else ""
    category = values.get("category")
    category = category if isinstance(category, str) else None
    problems: dict[str, UserFacingError] = {}
    limit = ctx.settings.suggestions.max_length
    if not text:
        problems["text"] = UserFacingError("forms/required")
    elif len(text) > limit:
        problems["text"] = UserFacingError("forms/too_long", length=len(text), limit=limit)
    if not category or ctx.settings.suggestions.category(category) is None:
        problems["category"] = UserFacingError("forms/unknown_choice")
    if problems:
        raise FieldErrors(problems)
    return await _advance(
        ctx, {"text": text, "category": category, "anonymous": anonymous, "checked": False}
    )


async def mine(ctx: HandlerContext) -> Reply:
    """The person's own suggestions with their status (anonymous ones too, for them only),
    HR's questions, replies and the person's answers, and an Answer button for each question
    still open. The anonymous ones are found by opening their sealed tokens in memory, and
    the button is the one the pushed question carries: nothing is stored that links them."""
    service = _service(ctx)
    rows = (await service.authored_by(ctx.session, ctx.person))[:MAX_LIST]
    exchanges = await service.exchanges(ctx.session, [s.id for s in rows])
    labels = category_labels(ctx.settings.suggestions, ctx.locale)
    items = []
    open_questions: list[int] = []
    for s in rows:
        events = exchanges.get(s.id, [])
        is_open = open_question(events)
        if is_open and s.status != SuggestionStatus.merged:
            open_questions.append(s.id)
        items.append(
            {
                "reference": reference(s.id),
                "excerpt": excerpt(s.text, 80),
                "category": labels.get(s.category, s.category),
                "status": s.status.value,
                "anonymous": s.anonymous,
                "merged_into": reference(s.merged_into_id) if s.merged_into_id else None,
                "exchanges": [{"kind": e.kind, "text": e.text or ""} for e in events],
                "open_question": s.id in open_questions,
            }
        )
    # One open question: "Answer"; several: one button per suggestion, by its reference.
    buttons = tuple(
        ReplyButton(
            "sugg_answer" if len(open_questions) == 1 else f"✍ {reference(sid)}",
            "sugg_answer",
            str(sid),
        )
        for sid in open_questions
    )
    return Reply("suggestions/mine", {"items": items}, buttons)


# Colleagues


async def ideas(ctx: HandlerContext) -> Reply:
    """Published suggestions (text only) that colleagues may support."""
    service = _service(ctx)
    rows, _ = await service.published(ctx.session, MAX_LIST)
    votes = await service.votes(ctx.session, [s.id for s in rows])
    labels = category_labels(ctx.settings.suggestions, ctx.locale)
    return Reply(
        "suggestions/ideas",
        {
            "items": [
                {
                    "reference": reference(s.id),
                    "excerpt": excerpt(s.text, 300),
                    "category": labels.get(s.category, s.category),
                    "status": s.status.value,
                    "votes": votes[s.id],
                }
                for s in rows
            ]
        },
        tuple(ReplyButton(f"👍 {reference(s.id)}", "sugg_vote", str(s.id)) for s in rows),
    )


async def vote(ctx: HandlerContext) -> Reply:
    found = await _suggestion_arg(ctx, ctx.args)
    added, count, held = await _service(ctx).vote(ctx.session, ctx.person, found)
    return Reply(
        "suggestions/voted", {"reference": reference(held.id), "added": added, "votes": count}
    )


async def _suggestion_arg(ctx: HandlerContext, value: str) -> Suggestion:
    if not value.isdigit():
        raise UserFacingError("errors/stale_button")
    found = await ctx.session.get(Suggestion, int(value))
    if found is None:
        raise UserFacingError("errors/stale_button")
    return found


# The author answers a follow-up question


async def answer_button(ctx: HandlerContext) -> list[Reply]:
    """The Answer button, on the pushed question or in ``mysuggestions``: the person's next
    message is their answer."""
    found = await _suggestion_arg(ctx, ctx.args)
    service = _service(ctx)
    # Someone else's (or a forged) button: the sealed token does not open to this person.
    if not service.is_author(found, ctx.person):
        raise UserFacingError("errors/stale_button")
    # The state names the suggestion only sealed: no row says whose suggestion it is.
    notes = await _set_state(
        ctx, ANSWER_FLOW, {"s": service.sealer.seal_text(found.id, _answer_purpose(ctx))}
    )
    form = None
    if ctx.channel == "slack" and _trigger(ctx):
        form = FormSpec(
            form=ANSWER_FORM,
            title=form_text(ctx.locale, "answer_title"),
            submit=form_text(ctx.locale, "submit"),
            fields=(FormField("answer", form_text(ctx.locale, "answer"), max_length=2000),),
            metadata=str(found.id),
        )
    # With a form, this text is sent only if the form cannot be opened.
    return [
        *notes,
        Reply("suggestions/answer_prompt", {"reference": reference(found.id)}, form=form),
    ]


def _answer_purpose(ctx: HandlerContext) -> str:
    return f"{ANSWER_PURPOSE}:{ctx.person.id}"


async def _record_answer(ctx: HandlerContext, suggestion_id: int | None, text: str) -> list[Reply]:
    """Store the answer and end the answering dialogue (if any)."""
    found = await ctx.session.get(Suggestion, suggestion_id) if suggestion_id else None
    if found is None:
        raise UserFacingError("errors/stale_button")
    await _service(ctx).answer(ctx.session, ctx.person, found, text)
    dialogues = Dialogues(ctx)
    if found.anonymous:
        # Not in this transaction, which writes the anonymous answer: see
        # bot/suggestions/scrubbing.py.
        back = await dialogues.finish_apart(ANSWER_FLOW)
    else:
        back = await dialogues.finish(ANSWER_FLOW)
    sent = Reply(
        "suggestions/answer_sent", {"reference": reference(found.id), "anonymous": found.anonymous}
    )
    return [sent, *back]


async def answer_text(ctx: HandlerContext) -> list[Reply]:
    data = await Dialogues(ctx).data(ANSWER_FLOW)
    if data is None:
        raise UserFacingError("errors/stale_button")
    suggestion_id = _service(ctx).sealer.open_text(data.get("s"), _answer_purpose(ctx))
    return await _record_answer(ctx, suggestion_id, ctx.args)


async def answer_form_submitted(ctx: HandlerContext) -> list[Reply]:
    values = getattr(ctx.event, "values", {}) or {}
    metadata = str(values.get("_metadata") or "")
    if not metadata.isdigit():
        raise UserFacingError("errors/stale_button")
    answer = values.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise FieldErrors({"answer": UserFacingError("forms/required")})
    return await _record_answer(ctx, int(metadata), answer)


# Triage


async def suggestions(ctx: HandlerContext) -> Reply:
    """``suggestions [status] [category] [anonymous|named] [published] [team=NAME]``."""
    filters = await _filters(ctx, ctx.args)
    service = _service(ctx)
    rows = await service.listing(ctx.session, ctx.person, filters)
    ctx.audit("suggestions.list", filters=ctx.args.strip(), shown=len(rows))
    return Reply(
        "suggestions/list",
        {"items": await _items(ctx, rows), "filters": ctx.args.strip()},
        tuple(ReplyButton(reference(s.id), "sugg_show", str(s.id)) for s in rows[:MAX_LIST]),
    )


async def _items(ctx: HandlerContext, rows: list[Suggestion]) -> list[dict[str, Any]]:
    service = _service(ctx)
    votes = await service.votes(ctx.session, [s.id for s in rows])
    teams = await service.team_names(ctx.session, [s.team_id for s in rows])
    labels = category_labels(ctx.settings.suggestions, ctx.locale)
    return [
        {
            "reference": reference(s.id),
            "excerpt": excerpt(s.text),
            "status": s.status.value,
            "category": labels.get(s.category, s.category),
            "team": teams.get(s.team_id or 0, "-"),
            "anonymous": s.anonymous,
            "published": s.published_at is not None,
            "votes": votes[s.id],
            "created_at": s.created_at.isoformat(),
        }
        for s in rows
    ]


async def _filters(ctx: HandlerContext, args: str) -> Filters:
    status = category = None
    anonymous = published = None
    team_id = None
    text = args.strip()
    head, sep, team_name = text.partition("team=")
    if sep:
        team_id = await ctx.session.scalar(select(Team.id).where(Team.name == team_name.strip()))
        if team_id is None:
            raise UserFacingError("suggestions/unknown_team", team=team_name.strip())
    for token in head.split():
        word = token.lower()
        if parse_status(word) is not None:
            status = parse_status(word)
        elif word in ("merged", "uniti", "unito"):
            status = SuggestionStatus.merged
        elif ctx.settings.suggestions.category(word) is not None:
            category = word
        elif word in ("anonymous", "anonime", "anonimi"):
            anonymous = True
        elif word in ("named", "firmati", "firmate"):
            anonymous = False
        elif word in ("published", "pubblicati", "pubblicate"):
            published = True
        else:
            raise UserFacingError(
                "suggestions/list_usage",
                given=token,
                categories=", ".join(c.id for c in ctx.settings.suggestions.categories),
            )
    return Filters(
        status=status,
        category=category,
        team_id=team_id,
        anonymous=anonymous,
        published=published,
    )


async def _detail(ctx: HandlerContext, found: Suggestion, note: str | None = None) -> Reply:
    service = _service(ctx)
    events = await service.history(ctx.session, found.id)
    names = {}
    for event in events:
        if event.actor_id is not None and event.actor_id not in names:
            actor = await ctx.session.get(Person, event.actor_id)
            names[event.actor_id] = actor.name if actor else "-"
    author = None
    if not found.anonymous and found.author_id is not None:
        person = await ctx.session.get(Person, found.author_id)
        author = person.name if person else None
    item = (await _items(ctx, [found]))[0]
    buttons = [
        ReplyButton(f"st_{status.value}", "sugg_st", f"{found.id}.{status.value}")
        for status in TRIAGE_STATUSES
        if status not in (found.status, SuggestionStatus.new)
    ]
    if found.status == SuggestionStatus.merged:
        buttons = []
    buttons.append(ReplyButton("sugg_reply", "sugg_act", f"{found.id}.reply"))
    if ctx.person.role in HR_ROLES:
        buttons.append(ReplyButton("sugg_ask", "sugg_act", f"{found.id}.ask"))
        if found.published_at is None and found.status != SuggestionStatus.merged:
            buttons.append(ReplyButton("sugg_publish", "sugg_act", f"{found.id}.publish"))
    return Reply(
        "suggestions/detail",
        {
            **item,
            "text": found.text,
            "author": author,
            "note": note,
            "merged_into": reference(found.merged_into_id) if found.merged_into_id else None,
            "events": [
                {
                    "kind": e.kind,
                    "status": e.status.value if e.status else None,
                    "text": e.text,
                    "actor": names.get(e.actor_id or 0) if e.actor_id else None,
                    "at": e.at.isoformat(),
                }
                for e in events
            ],
        },
        tuple(buttons),
    )


async def suggestion(ctx: HandlerContext) -> Reply:
    """``suggestion REF [status STATUS [reason] | decline REASON | reply TEXT | ask TEXT |
    publish | merge TARGET]``."""
    ref, _, rest = ctx.args.strip().partition(" ")
    suggestion_id = parse_reference(ref)
    if suggestion_id is None:
        raise UserFacingError("suggestions/usage")
    service = _service(ctx)
    found = await service.for_triage(ctx.session, ctx.person, suggestion_id)
    action, _, text = rest.strip().partition(" ")
    action, text = action.lower(), text.strip()
    if not action or action == "show":
        ctx.audit("suggestion.show", suggestion=found.id)
        return await _detail(ctx, found)
    return await _act(ctx, found, action, text)


async def _act(ctx: HandlerContext, found: Suggestion, action: str, text: str) -> Reply:
    service = _service(ctx)
    ref = reference(found.id)
    if action in ("status", "stato"):
        word, _, reason = text.partition(" ")
        status = parse_status(word)
        if status is None:
            raise UserFacingError("suggestions/bad_status", given=word)
        await service.set_status(ctx.session, ctx.person, found, status, reason)
        return Reply("suggestions/triaged", {"reference": ref, "kind": "status", "status": status})
    if parse_status(action) is not None:
        status = parse_status(action)
        assert status is not None
        await service.set_status(ctx.session, ctx.person, found, status, text)
        return Reply("suggestions/triaged", {"reference": ref, "kind": "status", "status": status})
    if action in ("reply", "rispondi"):
        await service.reply(ctx.session, ctx.person, found, text)
        return Reply("suggestions/triaged", {"reference": ref, "kind": "reply", "status": None})
    if action in ("ask", "chiedi"):
        await service.ask(ctx.session, ctx.person, found, text)
        return Reply("suggestions/triaged", {"reference": ref, "kind": "ask", "status": None})
    if action in ("publish", "pubblica"):
        await service.publish(ctx.session, ctx.person, found)
        return Reply("suggestions/triaged", {"reference": ref, "kind": "publish", "status": None})
    if action in ("merge", "unisci"):
        target_id = parse_reference(text.removeprefix("into ").removeprefix("in ").strip())
        if target_id is None:
            raise UserFacingError("suggestions/merge_usage")
        target = await service.for_triage(ctx.session, ctx.person, target_id)
        votes = await service.merge(ctx.session, ctx.person, found, target)
        return Reply(
            "suggestions/merged_done",
            {"source": ref, "target": reference(target.id), "votes": votes},
        )
    raise UserFacingError("suggestions/usage")


def _split(value: str) -> tuple[int, str]:
    sid, _, rest = value.partition(".")
    if not sid.isdigit() or not rest:
        raise UserFacingError("errors/stale_button")
    return int(sid), rest


async def show_button(ctx: HandlerContext) -> Reply:
    if not ctx.args.isdigit():
        raise UserFacingError("errors/stale_button")
    found = await _service(ctx).for_triage(ctx.session, ctx.person, int(ctx.args))
    ctx.audit("suggestion.show", suggestion=found.id)
    return await _detail(ctx, found)


async def status_button(ctx: HandlerContext) -> Reply | list[Reply]:
    sid, word = _split(ctx.args)
    found = await _service(ctx).for_triage(ctx.session, ctx.person, sid)
    status = parse_status(word)
    if status is None:
        raise UserFacingError("errors/stale_button")
    if status == SuggestionStatus.declined:
        notes = await _set_state(ctx, TRIAGE_FLOW, {"sid": found.id, "action": "declined"})
        return [
            *notes,
            Reply(
                "suggestions/triage_prompt",
                {"reference": reference(found.id), "kind": "declined"},
            ),
        ]
    return await _act(ctx, found, status.value, "")


async def action_button(ctx: HandlerContext) -> Reply | list[Reply]:
    sid, action = _split(ctx.args)
    found = await _service(ctx).for_triage(ctx.session, ctx.person, sid)
    if action == "publish":
        return await _act(ctx, found, "publish", "")
    if action not in ("reply", "ask"):
        raise UserFacingError("errors/stale_button")
    if action == "ask" and ctx.person.role not in HR_ROLES:
        raise UserFacingError("errors/not_allowed", command="ask")
    notes = await _set_state(ctx, TRIAGE_FLOW, {"sid": found.id, "action": action})
    return [
        *notes,
        Reply("suggestions/triage_prompt", {"reference": reference(found.id), "kind": action}),
    ]


async def triage_text(ctx: HandlerContext) -> list[Reply]:
    dialogues = Dialogues(ctx)
    data = await dialogues.data(TRIAGE_FLOW)
    if data is None:
        raise UserFacingError("errors/stale_button")
    back = await dialogues.finish(TRIAGE_FLOW)
    if ctx.person.role == Role.employee:
        raise UserFacingError("errors/stale_button")
    found = await _service(ctx).for_triage(ctx.session, ctx.person, int(data["sid"]))
    return [await _act(ctx, found, str(data["action"]), ctx.args), *back]
