"""The files of ``fidelio report loyalty`` (text, JSON, CSV, PNG, HTML), made for a person.

The command line and the web console's downloads both come through :func:`report_file`, so a
download is the very file the command line writes for the same person, team and rounds: the
same access rules (bot.loyalty.access), the same release plans (bot.loyalty.service), the
same audit entry (``loyalty.report``, with the route it was asked on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db.models import AuditEntry, Person, Role
from bot.loyalty import report
from bot.loyalty.access import resolve_scope
from bot.loyalty.present import heatmap_png, labels, summary_png
from bot.loyalty.privacy import viewer_label
from bot.loyalty.service import (
    LoyaltyService,
    Summary,
    TeamTree,
    Unreportable,
    Window,
    closed_rounds,
)
from bot.render import Renderer

#: Each format's file name extension and media type.
FILE_TYPES = {
    "text": ("txt", "text/plain"),
    "json": ("json", "application/json"),
    "csv": ("csv", "text/csv"),
    "png": ("png", "image/png"),
    "html": ("html", "text/html"),
}
#: Who sees the heat map (every team's row) in the HTML report: HR, as in the digest.
HEATMAP_ROLES = frozenset({Role.hr, Role.admin})


@dataclass(frozen=True)
class ReportFile:
    """A report's content (None: a PNG with nothing it may draw) and what it was made of."""

    payload: str | bytes | None
    result: Summary | Unreportable

    @property
    def shown(self) -> Summary | None:
        """The summary the file shows (the nearest reportable parent's for a small team)."""
        return self.result if isinstance(self.result, Summary) else self.result.fallback


async def report_file(
    session: AsyncSession,
    settings: Settings,
    person: Person,
    team_text: str,
    window: Window,
    fmt: str,
    locale: str,
    now: datetime,
    **where: Any,
) -> ReportFile:
    """The loyalty report of ``team_text`` (empty: ``person``'s default scope) in ``fmt``, as
    ``person`` may see it; audited as ``loyalty.report`` with ``where`` (the route).

    Raises :class:`bot.loyalty.access.ScopeRefused` (unknown team, not theirs) and
    :class:`bot.loyalty.service.NoClosedRounds`; each caller says so in its own words."""
    if fmt not in FILE_TYPES:
        raise ValueError(f"unknown report format {fmt!r}")
    renderer = Renderer(
        settings.content_dir / "templates",
        settings.organisation.default_locale,
        settings.organisation.default_timezone,
    )
    texts = labels(settings.content_dir / "templates", locale)
    service = LoyaltyService(settings, alpha_every_round=True)
    viewer = viewer_label(person)
    tree = await TeamTree.load(session)
    scope, may_see = await resolve_scope(session, person, team_text, tree)
    result = await service.summarise(
        session, viewer, scope, window, now, may_see=may_see, tree=tree
    )
    session.add(
        AuditEntry.by(
            person,
            now,
            "loyalty.report",
            asked=scope.name or "organisation",
            reportable=isinstance(result, Summary),
            format=fmt,
            window=window.describe(),
            **where,
        )
    )
    shown = result if isinstance(result, Summary) else result.fallback
    if fmt == "text":
        return ReportFile(report.as_text(result, renderer, locale, texts), result)
    if fmt == "json":
        return ReportFile(report.as_json(result), result)
    if fmt == "csv":
        return ReportFile(report.as_csv(result), result)
    if fmt == "png":
        return ReportFile(None if shown is None else summary_png(shown, locale, texts), result)
    heat = None
    if shown is not None and shown.scope.is_org and person.role in HEATMAP_ROLES:
        rounds = await closed_rounds(session, window)
        heat_map = await service.heatmap(session, viewer, rounds[-1], now)
        if heat_map:
            heat = heatmap_png(heat_map, texts, locale)
    return ReportFile(report.as_html(result, renderer, locale, texts, heat), result)
