"""HR's briefing pages: the list with each briefing's status, the editor, the preview per
channel and language, scheduling (schedule, reschedule, cancel) and readiness per team.

Briefings written here live in the database (table ``briefing_texts``, see
:mod:`bot.briefings.stored`), so every instance on one PostgreSQL shows and schedules the same
one; files in ``content/briefings/`` stay an import path. The editor writes a briefing file's
text and checks it with the parser of content files; scheduling and cancelling call
:class:`bot.briefings.service.BriefingService` as ``fidelio campaign schedule`` and
``campaign cancel`` do (the same checks, the same audit entries), and a reschedule is a cancel
and a schedule in one transaction. A form that fails changes nothing: its problems are shown
at their fields and the transaction is rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.content import timing_warnings
from bot.briefings.front_matter import ID_PATTERN, KINDS
from bot.briefings.service import BriefingService
from bot.briefings.stored import (
    BriefingSource,
    all_sources,
    find_source,
    parse_source,
    save_text,
    source_of,
)
from bot.campaign_refs import ref_of, refs_of
from bot.db.models import AuditEntry, Campaign, CampaignKind, CampaignStatus, Person
from bot.errors import InputError
from bot.handling import HR
from bot.settings_section import SUPPORTED_LOCALES
from bot.web import views
from bot.web.briefing_form import (
    BLANK,
    errors_by_field,
    form_of_post,
    form_of_text,
    text_of_form,
)
from bot.web.briefing_preview import CHANNELS, previews
from bot.web.pages import requires
from bot.web.shared import Web, see_other

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The notices a page shows after a form succeeded (``?done=``).
DONE = frozenset({"created", "saved", "scheduled", "rescheduled", "cancelled"})
#: Scheduling problems shown at a field of the scheduling form; the others above it.
SCHEDULE_FIELDS = ("launch_at", "brief")
_REF = re.compile(r"^[BP]-\d{1,9}$")


class Refused(Exception):
    """A form that failed: its page (problems at their fields) is the answer, and raising
    rolls the request's transaction back, so nothing it did is kept."""

    def __init__(self, response: web.Response):
        super().__init__("form refused")
        self.response = response


def refusing(handler: Handler) -> Handler:
    """Answer a :class:`Refused` form with its page (after the rollback)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            return refused.response

    answer.__doc__ = handler.__doc__
    return answer


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/hr/briefings", briefing_list)
    router.add_get("/hr/briefings/new", new_briefing)
    router.add_post("/hr/briefings/new", refusing(create_briefing))
    router.add_get("/hr/briefings/{briefing}", briefing_page)
    router.add_get("/hr/briefings/{briefing}/edit", edit_briefing)
    router.add_post("/hr/briefings/{briefing}/edit", refusing(save_briefing))
    router.add_post("/hr/briefings/{briefing}/schedule", refusing(schedule_briefing))
    router.add_post("/hr/briefings/{briefing}/cancel", refusing(cancel_briefing))
    router.add_get("/hr/briefings/{briefing}/readiness", readiness_fragment)


def _zone(shared: Web) -> str:
    return shared.settings.organisation.default_timezone


def _folder(shared: Web) -> Any:
    return shared.settings.content_dir / "briefings"


async def _source(request: web.Request, shared: Web, session: AsyncSession) -> BriefingSource:
    """The briefing the address names, or 404."""
    wanted = request.match_info["briefing"]
    found = None
    if ID_PATTERN.fullmatch(wanted):
        found = await find_source(session, _folder(shared), wanted)
    if found is None:
        raise web.HTTPNotFound()
    return found


async def _campaigns(session: AsyncSession, briefing_id: str) -> list[Campaign]:
    """The campaigns made from ``briefing_id``, newest first."""
    return list(
        await session.scalars(
            select(Campaign)
            .where(Campaign.kind == CampaignKind.briefing, Campaign.content_id == briefing_id)
            .order_by(Campaign.id.desc())
        )
    )


def _status(campaign: Campaign | None, now: Any) -> str:
    """Where a briefing stands: not scheduled, scheduled, being sent, done or cancelled."""
    if campaign is None:
        return "draft"
    if campaign.status == CampaignStatus.scheduled:
        return "sending" if now >= campaign.starts_at else "scheduled"
    return campaign.status.value


@requires(HR, "briefings")
async def briefing_list(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Every briefing (stored, or a file not imported yet) with its status and last campaign."""
    now, zone = shared.clock.now(), _zone(shared)
    refs = await refs_of(session, CampaignKind.briefing)
    rows = []
    for source in await all_sources(session, _folder(shared)):
        briefing, problems = parse_source(source, zone)
        campaign = next(iter(await _campaigns(session, source.briefing_id)), None)
        rows.append(
            {
                "id": source.briefing_id,
                "title": views.pick(briefing.title, person.locale) if briefing else "",
                "stored": source.stored is not None,
                "problems": len(problems),
                "status": _status(campaign, now),
                "ref": refs.get(campaign.id) if campaign else None,
                "brief_at": campaign.starts_at if campaign else None,
                "launch_at": (campaign.launch_at if campaign else None)
                or (briefing.launch_at if briefing else None),
            }
        )
    session.add(AuditEntry.by(person, now, "web.view", page="briefings"))
    return shared.page(request, "briefings", rows=rows)


def _editor(
    request: web.Request,
    shared: Web,
    values: dict[str, Any],
    *,
    editing: BriefingSource | None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> web.Response:
    action = f"/hr/briefings/{editing.briefing_id}/edit" if editing else "/hr/briefings/new"
    return shared.page(
        request,
        "briefing_editor",
        status=status,
        values=values,
        errors=errors or {},
        editing=editing.briefing_id if editing else None,
        version=editing.version if editing else 0,
        from_file=editing is not None and editing.stored is None,
        action=action,
        kinds=KINDS,
        locales=SUPPORTED_LOCALES,
    )


@requires(HR, "briefings")
async def new_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """An empty editor."""
    return _editor(request, shared, dict(BLANK), editing=None)


@requires(HR, "briefings")
async def edit_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The editor of a stored briefing, or of a file's (saving imports it)."""
    source = await _source(request, shared, session)
    return _editor(request, shared, form_of_text(source.text), editing=source)


async def _save(
    request: web.Request,
    shared: Web,
    session: AsyncSession,
    person: Person,
    editing: BriefingSource | None,
) -> web.StreamResponse:
    """Check the form as a briefing file and store it, or show its problems at their fields."""
    post = await request.post()
    values = form_of_post(post)
    text, box_errors = text_of_form(values)
    version = int(str(post.get("version", "0"))) if str(post.get("version", "0")).isdigit() else 0
    briefing, problems = await save_text(
        session,
        text,
        actor=person,
        now=shared.clock.now(),
        zone=_zone(shared),
        editing=editing,
        version=version,
    )
    if briefing is None:
        wanted = editing.briefing_id if editing else values["id"]
        errors = errors_by_field(problems, source_of(wanted), list(values["locales"]))
        # A YAML slip in a box: its own error, not what its absence made of the file.
        errors.update({name: [reason] for name, reason in box_errors.items()})
        raise Refused(_editor(request, shared, values, editing=editing, errors=errors, status=400))
    done = "saved" if editing is not None else "created"
    return see_other(f"/hr/briefings/{briefing.id}?done={done}")


@requires(HR, "briefings")
async def create_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """A new briefing from the editor."""
    return await _save(request, shared, session, person, None)


@requires(HR, "briefings")
async def save_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """An edited briefing (the first save of a file's imports it)."""
    return await _save(request, shared, session, person, await _source(request, shared, session))


async def _briefing_context(
    shared: Web, session: AsyncSession, person: Person, source: BriefingSource
) -> dict[str, Any]:
    """What the briefing page shows: problems or the preview, campaigns, readiness."""
    now = shared.clock.now()
    briefing, problems = parse_source(source, _zone(shared))
    campaigns = await _campaigns(session, source.briefing_id)
    current = next((c for c in campaigns if c.status == CampaignStatus.scheduled), None)
    values = form_of_text(source.text)
    return {
        "briefing_id": source.briefing_id,
        "title": views.pick(briefing.title, person.locale) if briefing else source.briefing_id,
        "stored": source.stored,
        "problems": [f"{p.where}: {p.reason}" for p in problems],
        "previews": previews(shared.settings, briefing, person.timezone) if briefing else [],
        "channels": CHANNELS,
        "current": await _campaign_row(session, current, now) if current else None,
        "history": [await _campaign_row(session, c, now) for c in campaigns],
        "launch": await _launch(session, person, campaigns, now),
        "schedule": {name: values[name] for name in SCHEDULE_FIELDS},
        "schedule_errors": {},
        "schedule_problems": [],
    }


async def _launch(
    session: AsyncSession, person: Person, campaigns: list[Campaign], now: Any
) -> dict[str, Any] | None:
    """Readiness per team of the briefing's campaign: the scheduled one, else the last done."""
    for status in (CampaignStatus.scheduled, CampaignStatus.done):
        campaign = next((c for c in campaigns if c.status == status), None)
        if campaign is not None:
            ref = await ref_of(session, campaign)
            return await views.launch(session, campaign, ref, person, now, person.locale)
    return None


async def _campaign_row(session: AsyncSession, campaign: Campaign, now: Any) -> dict[str, Any]:
    return {
        "ref": await ref_of(session, campaign),
        "status": _status(campaign, now),
        "brief_at": campaign.starts_at,
        "launch_at": campaign.launch_at,
        "ends_at": campaign.ends_at,
        "started": now >= campaign.starts_at,
    }


@requires(HR, "briefings")
async def briefing_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """One briefing: what each channel will show in each language, its campaign, scheduling
    and readiness per team (reloaded in place while the page is open)."""
    source = await _source(request, shared, session)
    context = await _briefing_context(shared, session, person, source)
    done = request.query.get("done", "")
    ref = request.query.get("ref", "")
    session.add(
        AuditEntry.by(
            person, shared.clock.now(), "web.view", page="briefing", briefing=source.briefing_id
        )
    )
    return shared.page(
        request,
        "briefing",
        done=done if done in DONE else "",
        done_ref=ref if _REF.match(ref) else "",
        brief_past=request.query.get("warn") == "brief_past",
        **context,
    )


async def _refuse_schedule(
    request: web.Request,
    shared: Web,
    session: AsyncSession,
    person: Person,
    source: BriefingSource,
    asked: dict[str, str],
    problems: list[InputError],
) -> Refused:
    """The briefing page again, the scheduling form's problems at its fields."""
    context = await _briefing_context(shared, session, person, source)
    at_fields: dict[str, list[str]] = {}
    others = []
    for problem in problems:
        path = problem.where.rpartition(": ")[2]
        if path in SCHEDULE_FIELDS:
            at_fields.setdefault(path, []).append(problem.reason)
        else:
            others.append(f"{path}: {problem.reason}")
    context.update(schedule_errors=at_fields, schedule_problems=others)
    if asked:
        context["schedule"] = asked
    page = shared.page(
        request, "briefing", status=400, done="", done_ref="", brief_past=False, **context
    )
    return Refused(page)


@requires(HR, "briefings")
async def schedule_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Schedule the briefing at the times of the form (its text takes them, as a file's
    header would), or reschedule its campaign: cancelled and scheduled anew, in one go."""
    source = await _source(request, shared, session)
    post = await request.post()
    asked = {name: str(post.get(name, "")).strip() for name in SCHEDULE_FIELDS}
    now = shared.clock.now()
    values = {**form_of_text(source.text), **asked}
    text, _ = text_of_form(values)

    def refuse(problems: list[InputError]) -> Awaitable[Refused]:
        return _refuse_schedule(request, shared, session, person, source, asked, problems)

    try:
        if text != source.text or source.stored is None:
            briefing, problems = await save_text(
                session,
                text,
                actor=person,
                now=now,
                zone=_zone(shared),
                editing=source,
                version=source.version,
            )
        else:
            briefing, problems = parse_source(source, _zone(shared))
        if briefing is None:
            raise await refuse(problems)
        blocking = [w for w in timing_warnings(briefing, now) if w.key != "brief_past"]
        if blocking:
            past = blocking[0]
            raise await refuse(
                [InputError("launch_at", f"{past.reason}; choose a later launch", past.key)]
            )
        service = BriefingService(shared.settings, None, shared.clock)
        current = next(
            (
                c
                for c in await _campaigns(session, briefing.id)
                if c.status == CampaignStatus.scheduled
            ),
            None,
        )
        action, old = "scheduled", ""
        if current is not None:
            old = await ref_of(session, current)
            if now >= current.starts_at:
                reason = (
                    f"{old} has already been sent to people: cancel it and schedule it again "
                    "to send it anew"
                )
                raise await refuse([InputError("brief", reason)])
            await service.cancel_in(session, current.id, actor=person.email)
            action = "rescheduled"
        campaign, _ = await service.schedule_in(session, briefing, actor=person.email)
    except InputError as problem:
        raise await refuse([problem]) from None
    ref = await ref_of(session, campaign)
    if action == "rescheduled":
        session.add(
            AuditEntry.by(person, now, "campaign.reschedule", campaign=campaign.id, was=old)
        )
    query = {"done": action, "ref": ref}
    if any(w.key == "brief_past" for w in timing_warnings(briefing, now)):
        query["warn"] = "brief_past"
    return see_other(f"/hr/briefings/{briefing.id}?{urlencode(query)}")


@requires(HR, "briefings")
async def cancel_briefing(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Cancel the briefing's scheduled campaign (``campaign cancel``): what is not sent yet
    is dropped."""
    source = await _source(request, shared, session)
    current = next(
        (
            c
            for c in await _campaigns(session, source.briefing_id)
            if c.status == CampaignStatus.scheduled
        ),
        None,
    )
    if current is None:
        problem = InputError(source.briefing_id, "has no scheduled campaign to cancel")
        raise await _refuse_schedule(request, shared, session, person, source, {}, [problem])
    ref = await ref_of(session, current)
    service = BriefingService(shared.settings, None, shared.clock)
    await service.cancel_in(session, current.id, actor=person.email)
    return see_other(
        f"/hr/briefings/{source.briefing_id}?{urlencode({'done': 'cancelled', 'ref': ref})}"
    )


@requires(HR, "briefings")
async def readiness_fragment(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The briefing's readiness per team alone: its page reloads it while it is open."""
    source = await _source(request, shared, session)
    campaigns = await _campaigns(session, source.briefing_id)
    launch = await _launch(session, person, campaigns, shared.clock.now())
    return shared.page(request, "briefing_readiness", briefing_id=source.briefing_id, launch=launch)
