"""The pages: home, HR's dashboard and audit log, and a manager's teams.

Every page declares who may open it with the role sets of the chat commands
(:data:`bot.handling.HR`, :data:`bot.handling.MANAGERS`); somebody else gets 403 and the
refusal is audited as ``denied``, as in chat. Somebody not signed in gets 401 and how to sign in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, Person, Role
from bot.handling import HR, MANAGERS
from bot.web import views
from bot.web.shared import WEB, Web, see_other, viewer_of

#: A page's work: the request, its shared parts, a database session and the person viewing.
PageWork = Callable[[web.Request, Web, AsyncSession, Person], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", home)
    router.add_get("/hr", dashboard)
    router.add_get("/hr/launches", launches_fragment)
    router.add_get("/hr/audit", audit_log)
    router.add_get("/team", teams)


def requires(roles: frozenset[Role], name: str) -> Callable[[PageWork], Handler]:
    """A page for ``roles`` only, named ``name`` in the audit log. Its work runs in one
    transaction with the viewer's directory row, read afresh."""

    def decorate(work: PageWork) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            shared = request.app[WEB]
            viewer = viewer_of(request)
            if viewer is None:
                return shared.page(request, "signed_out", status=401, signed_out=False)
            async with shared.db.session() as session:
                person = await session.get(Person, viewer.person_id)
                assert person is not None  # the session check found them
                if person.role not in roles:
                    session.add(
                        AuditEntry.by(
                            person,
                            shared.clock.now(),
                            "denied",
                            page=name,
                            role=person.role.value,
                            channel="web",
                        )
                    )
                    return shared.error(request, 403, "forbidden")
                return await work(request, shared, session, person)

        handler.__doc__ = work.__doc__
        return handler

    return decorate


async def home(request: web.Request) -> web.StreamResponse:
    """Where a person lands: their first page, or how to sign in."""
    shared = request.app[WEB]
    viewer = viewer_of(request)
    if viewer is None:
        signed_out = request.query.get("signed_out") == "1"
        return shared.page(request, "signed_out", signed_out=signed_out)
    if viewer.role in HR:
        return see_other("/hr")
    if viewer.role in MANAGERS:
        return see_other("/team")
    return shared.page(request, "home")


@requires(HR, "dashboard")
async def dashboard(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """HR's dashboard: the next launches with readiness per team, open rounds with their
    coarse response rates, suggestions waiting for triage."""
    now, locale = shared.clock.now(), person.locale
    context: dict[str, Any] = {
        "launches": await views.launches(session, person, now, locale),
        "rounds": await views.open_rounds(session, shared.settings, shared.clock, locale),
        "triage": await views.awaiting_triage(
            session, shared.settings, shared.clock, person, locale
        ),
    }
    session.add(AuditEntry.by(person, now, "web.view", page="dashboard"))
    return shared.page(request, "dashboard", **context)


@requires(HR, "dashboard")
async def launches_fragment(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The dashboard's launches alone: the page reloads them while it is open."""
    found = await views.launches(session, person, shared.clock.now(), person.locale)
    return shared.page(request, "launches", launches=found)


@requires(HR, "audit")
async def audit_log(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The audit log, newest first, filtered by action and by who acted, a page at a time."""
    page_text = request.query.get("page", "1")
    wanted = views.AuditFilter(
        action=request.query.get("action", "").strip()[:64],
        person=request.query.get("person", "").strip()[:254],
        page=int(page_text) if page_text.isdigit() else 1,
    )
    found = await views.audit_page(session, wanted)
    filters = {"action": wanted.action, "person": wanted.person}
    shown = {key: value for key, value in filters.items() if value}
    session.add(AuditEntry.by(person, shared.clock.now(), "web.view", page="audit", **shown))
    return shared.page(request, "audit", wanted=wanted, **found)


@requires(MANAGERS, "team")
async def teams(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """A manager's teams: readiness for the next launches, and the loyalty summary of a team
    (theirs by default) through the anonymity rules, or of its nearest reportable parent."""
    now, locale = shared.clock.now(), person.locale
    team = request.query.get("team", "").strip()[:120]
    summary = await views.loyalty_summary(session, shared.settings, person, team, now, locale)
    return shared.page(
        request,
        "team",
        launches=await views.launches(session, person, now, locale),
        summary=summary,
        team=team,
    )
