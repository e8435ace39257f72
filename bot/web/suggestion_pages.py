"""The Suggestions pages: the triage of the ``suggestions`` and ``suggestion`` chat commands.

A filterable list (status, category, named or anonymous, published, team) and a suggestion's
page with its history and the actions of chat — set a status (declining needs a reason),
reply, ask the author a question, publish to the ideas board, merge into another — each a
form posting to the :class:`~bot.suggestions.service.SuggestionService` call the chat command
makes. Who may see and do what is the service's and chat's: HR and managers (managers only
within their teams, and without ask, publish and merge). The service audits each action and
tells the author through its notices (the outbox, or a sealed notice for an anonymous
author); the author of an anonymous suggestion is never known here, and so never shown.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, Person, Team
from bot.errors import UserFacingError
from bot.handling import MANAGERS
from bot.suggestions.content import (
    TRIAGE_STATUSES,
    category_labels,
    excerpt,
    parse_reference,
    parse_status,
    reference,
)
from bot.suggestions.service import HR_ROLES, Filters, SuggestionService
from bot.suggestions.tables import Suggestion, SuggestionStatus
from bot.web.pages import requires
from bot.web.refusals import Refused, in_words, refusable, refused_of
from bot.web.rendering import texts
from bot.web.shared import Web, see_other

#: How many suggestions the list shows.
LIST_ROWS = 50
#: The web's own words for a chat usage hint (which names the chat command).
WEB_WORDS = {
    "suggestions/reply_usage": "suggestions.error.reply",
    "suggestions/ask_usage": "suggestions.error.ask",
    "suggestions/merge_usage": "suggestions.error.merge",
    "suggestions/reason_needed": "suggestions.error.reason",
}
#: The field an action's refusal belongs to (declining without a reason: the reason).
FIELD_OF = {"status": "status", "reply": "reply", "ask": "question", "publish": "publish"}
ACTIONS = "status|reply|ask|publish|merge"
ANONYMITY = {"": None, "anonymous": True, "named": False}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/suggestions", list_page)
    router.add_get(r"/suggestions/{id:\d+}", detail_page)
    router.add_post(rf"/suggestions/{{id:\d+}}/{{action:{ACTIONS}}}", refusable(act, detail_page))


def _service(shared: Web) -> SuggestionService:
    return SuggestionService(shared.settings, shared.clock)


async def _filters(
    shared: Web, session: AsyncSession, person: Person, query: dict[str, str]
) -> tuple[Filters, dict[str, str]]:
    """The list's filters from the query, or the errors of the fields that name none."""
    errors: dict[str, str] = {}
    words = texts(person.locale)
    status = None
    if query["status"]:
        status = parse_status(query["status"])
        if status is None and query["status"] != SuggestionStatus.merged.value:
            errors["status"] = words["suggestions.error.status"]
        status = status or SuggestionStatus.merged
    category = query["category"] or None
    if category and shared.settings.suggestions.category(category) is None:
        error = UserFacingError(
            "suggestions/unknown_category",
            given=category,
            choices=", ".join(c.id for c in shared.settings.suggestions.categories),
        )
        errors["category"] = in_words(shared.settings, error, person.locale)
    if query["anonymous"] not in ANONYMITY:
        errors["anonymous"] = words["suggestions.error.anonymous"]
    team_id = None
    if query["team"]:
        team_id = await session.scalar(select(Team.id).where(Team.name == query["team"]))
        if team_id is None:
            error = UserFacingError("suggestions/unknown_team", team=query["team"])
            errors["team"] = in_words(shared.settings, error, person.locale)
    filters = Filters(
        status=status,
        category=category,
        team_id=team_id,
        anonymous=ANONYMITY.get(query["anonymous"]),
        published=True if query["published"] else None,
        limit=LIST_ROWS,
    )
    return filters, errors


@requires(MANAGERS, "suggestions")
async def list_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``suggestions [status] [category] [anonymous|named] [published] [team=NAME]``."""
    keys = ("status", "category", "anonymous", "published", "team")
    query = {key: request.query.get(key, "").strip()[:120] for key in keys}
    filters, errors = await _filters(shared, session, person, query)
    rows = [] if errors else await _service(shared).listing(session, person, filters)
    given = " ".join(f"{key}={value}" for key, value in query.items() if value)
    if not errors:
        # As chat audits the command (``channel`` added: the words differ, the list is alike).
        session.add(
            AuditEntry.by(
                person,
                shared.clock.now(),
                "suggestions.list",
                filters=given,
                shown=len(rows),
                channel="web",
            )
        )
    teams = list(await session.scalars(select(Team.name).order_by(Team.name)))
    return shared.page(
        request,
        "suggestions",
        status=400 if errors else 200,
        items=await _items(shared, session, rows, person.locale),
        query=query,
        errors=errors,
        statuses=[*(s.value for s in TRIAGE_STATUSES), SuggestionStatus.merged.value],
        categories=category_labels(shared.settings.suggestions, person.locale),
        teams=teams,
    )


async def _items(
    shared: Web, session: AsyncSession, rows: list[Suggestion], locale: str
) -> list[dict[str, Any]]:
    """The suggestions as chat lists them: never an author."""
    service = _service(shared)
    votes = await service.votes(session, [s.id for s in rows])
    teams = await service.team_names(session, [s.team_id for s in rows])
    labels = category_labels(shared.settings.suggestions, locale)
    return [
        {
            "id": s.id,
            "reference": reference(s.id),
            "excerpt": excerpt(s.text),
            "status": s.status.value,
            "category": labels.get(s.category, s.category),
            "team": teams.get(s.team_id or 0, "–"),
            "anonymous": s.anonymous,
            "published": s.published_at is not None,
            "votes": votes[s.id],
            "created_at": s.created_at,
        }
        for s in rows
    ]


async def _found(shared: Web, session: AsyncSession, person: Person, sid: int) -> Suggestion:
    """The suggestion ``person`` may triage, or 404 (missing or outside their teams alike)."""
    try:
        return await _service(shared).for_triage(session, person, sid)
    except UserFacingError:
        raise web.HTTPNotFound() from None


@requires(MANAGERS, "suggestions")
async def detail_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``suggestion REF``: the text, its history and the actions; the author only when they
    gave their name."""
    found = await _found(shared, session, person, int(request.match_info["id"]))
    refused = refused_of(request)
    service = _service(shared)
    events = await service.history(session, found.id)
    names: dict[int, str] = {}
    for event in events:
        if event.actor_id is not None and event.actor_id not in names:
            actor = await session.get(Person, event.actor_id)
            names[event.actor_id] = actor.name if actor else "–"
    author = None
    if not found.anonymous and found.author_id is not None:
        named = await session.get(Person, found.author_id)
        author = named.name if named else None
    session.add(
        AuditEntry.by(
            person, shared.clock.now(), "suggestion.show", suggestion=found.id, channel="web"
        )
    )
    merged = found.status == SuggestionStatus.merged
    done = request.query.get("done", "")
    return shared.page(
        request,
        "suggestion",
        item=(await _items(shared, session, [found], person.locale))[0],
        text=found.text,
        author=author,
        merged_into=reference(found.merged_into_id) if found.merged_into_id else None,
        events=[
            {
                "kind": e.kind,
                "status": e.status.value if e.status else None,
                "text": e.text,
                "actor": names.get(e.actor_id) if e.actor_id else None,
                "at": e.at,
            }
            for e in events
        ],
        statuses=[]
        if merged
        else [s.value for s in TRIAGE_STATUSES if s not in (found.status, SuggestionStatus.new)],
        may_ask=person.role in HR_ROLES,
        may_publish=person.role in HR_ROLES and found.published_at is None and not merged,
        may_merge=person.role in HR_ROLES and not merged,
        done=done if done in FIELD_OF or done == "merge" else "",
        errors=refused.errors if refused else {},
        values=refused.values if refused else {},
    )


@requires(MANAGERS, "suggestions")
async def act(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """``suggestion REF status|reply|ask|publish|merge ...``, from the suggestion's page."""
    found = await _found(shared, session, person, int(request.match_info["id"]))
    action = request.match_info["action"]
    form = await request.post()
    values = {
        key: str(form.get(key, "")).strip()
        for key in ("status", "reason", "reply", "question", "target")
    }
    service = _service(shared)
    field = FIELD_OF.get(action, "target")
    try:
        if action == "status":
            status = parse_status(values["status"])
            if status is None:
                raise UserFacingError("suggestions/bad_status", given=values["status"])
            await service.set_status(session, person, found, status, values["reason"])
        elif action == "reply":
            await service.reply(session, person, found, values["reply"])
        elif action == "ask":
            await service.ask(session, person, found, values["question"])
        elif action == "publish":
            await service.publish(session, person, found)
        else:
            target_id = parse_reference(values["target"])
            if target_id is None:
                raise UserFacingError("suggestions/merge_usage")
            target = await service.for_triage(session, person, target_id)
            await service.merge(session, person, found, target)
    except UserFacingError as exc:
        if exc.template_key == "suggestions/reason_needed":
            field = "reason"
        words = WEB_WORDS.get(exc.template_key)
        said = (
            texts(person.locale)[words] if words else in_words(shared.settings, exc, person.locale)
        )
        raise Refused({field: said}, values) from None
    return see_other(f"/suggestions/{found.id}?done={action}")
