"""HR's people pages: import the directory (dry run, then confirm), invite people to
Telegram, export or forget a person.

Each page is for HR only (the role set of ``people`` commands in chat). Each does what the
command line does, through the same services: :func:`bot.people.import_people` (with its
dry run :func:`bot.people.preview_import`), :func:`bot.people.invites.issue_invites`,
:func:`bot.privacy.service.export_person` and :func:`bot.privacy.service.forget_person`,
audited with the HR person as the actor.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot import csvsafe
from bot.db.models import AuditEntry, ChannelIdentity, ChannelName, Invite, Person, Team
from bot.handling import HR
from bot.people import person_by_email, team_by_name, team_subtree_ids
from bot.people.invites import IssuedInvite, issue_invites
from bot.privacy.service import NotHeld, export_person, forget_person
from bot.web import people_import
from bot.web.pages import requires
from bot.web.shared import Web, see_other

#: People listed per page of the invites page.
INVITES_PAGE = 100
NOTICES = frozenset({"imported", "forgotten"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/hr/people", people)
    router.add_post("/hr/people/import", import_dry_run)
    router.add_post("/hr/people/import/apply", import_apply)
    router.add_get("/hr/people/invites", invites)
    router.add_post("/hr/people/invites", invites_issue)
    router.add_post("/hr/people/export", export)
    router.add_get("/hr/people/forget", forget_page)
    router.add_post("/hr/people/forget", forget)


@requires(HR, "people")
async def people(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """The people pages' start: upload a file, invites, a person's data; the notice of the
    form just sent (numbers only: the page after a redirect)."""
    notice = request.query.get("notice", "")
    given = {key: request.query.get(key, "") for key in ("created", "updated", "teams")}
    counts = {key: int(value) if value.isdigit() else 0 for key, value in given.items()}
    return shared.page(
        request,
        "people",
        notice=notice if notice in NOTICES else "",
        counts=counts,
        max_mib=people_import.MAX_UPLOAD // (1024 * 1024),
    )


@requires(HR, "people.import")
async def import_dry_run(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Upload a file: its dry run."""
    return await people_import.dry_run(request, shared, person)


@requires(HR, "people.import")
async def import_apply(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Confirm a dry run: apply exactly what it showed."""
    return await people_import.apply(request, shared, person)


async def _unlinked(session: AsyncSession, shared: Web, team: str) -> tuple[Any, str | None]:
    """Active people not linked on Telegram (in ``team``'s subtree when given), by email;
    or a problem naming the team field."""
    today = shared.clock.now().date()
    linked = exists().where(
        ChannelIdentity.person_id == Person.id, ChannelIdentity.channel == ChannelName.telegram
    )
    query = select(Person).where(
        Person.erased_at.is_(None),
        (Person.leave_date.is_(None)) | (Person.leave_date > today),
        ~linked,
    )
    if team:
        found = await team_by_name(session, team)
        if found is None:
            return None, "unknown_team"
        query = query.where(Person.team_id.in_(await team_subtree_ids(session, found.id)))
    return query, None


@requires(HR, "people.invites")
async def invites(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """People not yet on Telegram, with the state of their latest invite, a page at a time."""
    team = request.query.get("team", "").strip()[:120]
    page_text = request.query.get("page", "1")
    page = int(page_text) if page_text.isdigit() else 1
    context = await _invites_context(session, shared, team, page)
    session.add(AuditEntry.by(person, shared.clock.now(), "web.view", page="people.invites"))
    return shared.page(
        request, "people_invites", status=400 if context["problem"] else 200, **context
    )


async def _invites_context(
    session: AsyncSession, shared: Web, team: str, page: int
) -> dict[str, Any]:
    query, problem = await _unlinked(session, shared, team)
    context: dict[str, Any] = {"team": team, "problem": problem, "rows": [], "total": 0}
    context |= {"page": 1, "pages": 1, "hours": shared.settings.invites.ttl_hours}
    if query is None:
        return context
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, -(-total // INVITES_PAGE))
    page = min(max(1, page), pages)
    found = list(
        await session.execute(
            query.add_columns(Team.name)
            .join(Team, Team.id == Person.team_id)
            .order_by(Person.email)
            .offset((page - 1) * INVITES_PAGE)
            .limit(INVITES_PAGE)
        )
    )
    latest: dict[int, Invite] = {}
    ids = [row[0].id for row in found]
    if ids:
        for invite in await session.scalars(
            select(Invite)
            .where(Invite.person_id.in_(ids), Invite.channel == ChannelName.telegram)
            .order_by(Invite.id)
        ):
            latest[invite.person_id] = invite
    now = shared.clock.now()
    rows = []
    for who, team_name in found:
        last = latest.get(who.id)
        rows.append(
            {
                "email": who.email,
                "name": who.name,
                "team": team_name,
                "state": _state(last, now),
                "until": last.expires_at if last else None,
            }
        )
    return context | {"rows": rows, "total": total, "page": page, "pages": pages}


def _state(invite: Invite | None, now: Any) -> str:
    if invite is None:
        return "none"
    if invite.used_at is not None:
        return "used"
    if invite.revoked_at is not None:
        return "revoked"
    return "expired" if invite.expires_at <= now else "pending"


@requires(HR, "people.invites")
async def invites_issue(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Fresh invite links for the people ticked (or everyone of the selection), shown once
    on the page or as a CSV download: only their hashes are kept, so this answer is the only
    place the links appear (earlier unused links of these people stop working)."""
    form = await request.post()
    team = str(form.get("team") or "").strip()[:120]
    username = shared.settings.telegram.bot_username
    query, problem = await _unlinked(session, shared, team)
    if username is None or query is None:
        context = await _invites_context(session, shared, team, 1)
        context["problem"] = problem or "no_username"
        return shared.page(request, "people_invites", status=400, **context)
    if form.get("everyone") != "1":
        wanted = [str(e).strip().lower() for e in form.getall("email", [])]
        query = query.where(Person.email.in_(wanted or [""]))
    chosen = list(
        await session.scalars(query.options(selectinload(Person.team)).order_by(Person.email))
    )
    if not chosen:
        context = await _invites_context(session, shared, team, 1)
        context["problem"] = "nobody"
        return shared.page(request, "people_invites", status=400, **context)
    ttl = timedelta(hours=shared.settings.invites.ttl_hours)
    issued = await issue_invites(session, chosen, shared.clock, ttl, actor=person)
    if form.get("format") == "csv":
        return _links_csv(issued, username)
    links = [{"invite": inv, "link": inv.link(username)} for inv in issued]
    return shared.page(
        request, "people_links", links=links, hours=shared.settings.invites.ttl_hours
    )


def _links_csv(issued: list[IssuedInvite], username: str) -> web.Response:
    """The links as ``fidelio people invite -o`` writes them."""
    handle = io.StringIO()
    writer = csvsafe.writer(handle)
    writer.writerow(["email", "name", "team", "link", "expires_at"])
    for inv in issued:
        writer.writerow([inv.email, inv.name, inv.team, inv.link(username), inv.expires_at_iso])
    return web.Response(
        text=handle.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="invites.csv"'},
    )


def _email_of(value: Any) -> str:
    return str(value or "").strip().lower()[:254]


@requires(HR, "people.export")
async def export(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Everything Fidelio holds about a person, as ``fidelio people export`` writes it."""
    form = await request.post()
    email = _email_of(form.get("email"))
    assert shared.privacy is not None, "the web console is built with the privacy registry"
    try:
        data = await export_person(
            shared.db, email, shared.clock, actor=person, registry=shared.privacy
        )
    except NotHeld:
        return _person_problem(request, shared, email, "unknown_person")
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    name = f"fidelio-export-{data['person_id']}.json"
    return web.Response(
        text=text,
        content_type="application/json",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _person_problem(
    request: web.Request, shared: Web, email: str, problem: str
) -> web.StreamResponse:
    """The people page again, the problem at its email field; nothing was done."""
    return shared.page(
        request,
        "people",
        status=400,
        notice="",
        counts={},
        email=email,
        email_problem=problem,
        max_mib=people_import.MAX_UPLOAD // (1024 * 1024),
    )


@requires(HR, "people.forget")
async def forget_page(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Who would be forgotten and what it means; typing their email confirms."""
    email = _email_of(request.query.get("email"))
    found = await person_by_email(session, email) if email else None
    if found is None or found.erased_at is not None:
        return _person_problem(request, shared, email, "unknown_person")
    return await _forget_confirmation(request, shared, session, found, "", 200)


async def _forget_confirmation(
    request: web.Request,
    shared: Web,
    session: AsyncSession,
    found: Person,
    problem: str,
    status: int,
) -> web.StreamResponse:
    team = await session.get(Team, found.team_id)
    return shared.page(
        request,
        "people_forget",
        status=status,
        who={"email": found.email, "name": found.name, "team": team.name if team else ""},
        problem=problem,
    )


@requires(HR, "people.forget")
async def forget(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """Forget the person once their email is typed again: the same erasure as
    ``fidelio people forget`` (their web sessions and links go with it)."""
    form = await request.post()
    email = _email_of(form.get("email"))
    found = await person_by_email(session, email) if email else None
    if found is None or found.erased_at is not None:
        return _person_problem(request, shared, email, "unknown_person")
    if _email_of(form.get("confirm")) != found.email:
        return await _forget_confirmation(request, shared, session, found, "mismatch", 400)
    assert shared.privacy is not None, "the web console is built with the privacy registry"
    # The page's own transaction only reads; the erasure runs in a transaction of its own.
    try:
        await forget_person(shared.db, email, shared.clock, actor=person, registry=shared.privacy)
    except NotHeld:  # forgotten meanwhile, by someone else
        return _person_problem(request, shared, email, "unknown_person")
    return see_other("/hr/people?notice=forgotten")
