"""The loyalty pages: HR's (the organisation or any team, segments, trends over rounds, the
latest round's heat map, charts and downloads), a manager's trends (their teams, or the
nearest reportable group above a team that is too small). A manager's teams' suggestions are
the triage page's (:mod:`bot.web.suggestion_pages`), scoped as chat scopes them.

Each page checks the role as chat does (:func:`bot.web.pages.requires`) and is audited as
``web.view``; the figures come from :mod:`bot.web.loyalty_views`, which asks the services
chat and ``fidelio report loyalty`` use, so the pages show exactly what chat and the report
release. Downloads are the files ``fidelio report loyalty`` writes, for the person asking.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry, Person
from bot.handling import HR, MANAGERS
from bot.loyalty.access import ScopeRefused
from bot.loyalty.report_files import FILE_TYPES, report_file
from bot.loyalty.service import NoClosedRounds, Window
from bot.web import loyalty_views
from bot.web.pages import requires
from bot.web.shared import Web

#: The download formats, in the order the pages offer them.
DOWNLOADS = ("csv", "html", "png", "json", "text")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/hr/loyalty", hr_loyalty)
    router.add_get("/team/trends", team_trends)
    router.add_get("/loyalty/report", download)


def _asked(request: web.Request) -> tuple[str, str]:
    """The team and the rounds of a page's query, as typed (cut to a sane length)."""
    return (
        request.query.get("team", "").strip()[:120],
        request.query.get("last", "").strip()[:8],
    )


async def _summary_page(
    request: web.Request,
    shared: Web,
    session: AsyncSession,
    person: Person,
    *,
    template: str,
    name: str,
    with_heatmap: bool,
) -> web.StreamResponse:
    """A loyalty page for ``person``: the form to choose a team and rounds, then the summary
    chat would give them, with its rounds, segments and chart (and HR's heat map)."""
    now, locale = shared.clock.now(), person.locale
    team, last_text = _asked(request)
    default = shared.settings.loyalty.default_rounds
    last = loyalty_views.rounds_asked(last_text, default)
    context: dict[str, Any] = {
        "team": team,
        "last": last_text or str(default),
        "most": loyalty_views.MOST_ROUNDS,
        "choices": await loyalty_views.team_choices(session, person, locale),
        "downloads": DOWNLOADS,
        "errors": {},
        "found": None,
    }
    if last is None:
        context["errors"] = {"last": "rounds"}
        return shared.page(request, template, status=400, **context)
    found = await loyalty_views.loyalty_page(
        session,
        shared.settings,
        person,
        team,
        Window(last=last),
        now,
        locale,
        with_heatmap=with_heatmap,
    )
    context["found"] = found
    detail: dict[str, Any] = {"page": name, "asked": team or None, "last": last}
    detail["shown"] = found.shown
    if with_heatmap:
        detail["heatmap"] = found.heatmap is not None
    session.add(AuditEntry.by(person, now, "web.view", **detail))
    return shared.page(request, template, **context)


@requires(HR, "loyalty")
async def hr_loyalty(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """HR's loyalty page: the organisation (or a team), segments, rounds, charts, the latest
    round's heat map, and the report's downloads."""
    return await _summary_page(
        request, shared, session, person, template="loyalty", name="loyalty", with_heatmap=True
    )


@requires(MANAGERS, "trends")
async def team_trends(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """A manager's trends: their team (or another of theirs) over rounds, or the nearest
    reportable group above it when it is too small, with its chart and downloads."""
    return await _summary_page(
        request, shared, session, person, template="trends", name="trends", with_heatmap=False
    )


@requires(MANAGERS, "loyalty.download")
async def download(
    request: web.Request, shared: Web, session: AsyncSession, person: Person
) -> web.StreamResponse:
    """A file of ``fidelio report loyalty`` (``format``: csv, html, png, json or text) for
    ``team`` and the ``last`` rounds, made for the person asking: HR any team or the
    organisation, managers their teams, as in chat. Audited as ``loyalty.report``."""
    now, locale = shared.clock.now(), person.locale
    team, last_text = _asked(request)
    fmt = request.query.get("format", "")
    last = loyalty_views.rounds_asked(last_text, shared.settings.loyalty.default_rounds)
    if fmt not in FILE_TYPES or last is None:
        return shared.error(request, 400, "loyalty_download")
    try:
        made = await report_file(
            session, shared.settings, person, team, Window(last=last), fmt, locale, now, route="web"
        )
    except ScopeRefused as refused:
        reason = refused.reason.removeprefix("summaries/")
        session.add(
            AuditEntry.by(
                person, now, "loyalty.refused", asked=team, reason=refused.reason, route="web"
            )
        )
        status = 404 if reason == "unknown_team" else 403
        return shared.error(request, status, f"loyalty_{reason}")
    except NoClosedRounds:
        return shared.error(request, 404, "loyalty_no_rounds")
    if made.payload is None:
        return shared.error(request, 404, "loyalty_not_enough")
    extension, media = FILE_TYPES[fmt]
    body = made.payload if isinstance(made.payload, bytes) else made.payload.encode("utf-8")
    return web.Response(
        body=body,
        content_type=media,
        charset=None if isinstance(made.payload, bytes) else "utf-8",
        headers={"Content-Disposition": f'attachment; filename="loyalty-report.{extension}"'},
    )
