"""What the loyalty pages show, gathered with the services
chat uses: the summary from :func:`bot.loyalty.asked.ask_summary` (``summary [team]``), its
rounds, segments and chart from bot.loyalty.present, the heat map from
:meth:`bot.loyalty.service.LoyaltyService.heatmap` (HR's digest), the downloads from
:func:`bot.loyalty.report_files.report_file` (``fidelio report loyalty``). No figure is computed
here: every one comes out of the closed rounds' release plans."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db.models import Person
from bot.loyalty.access import allowed_teams
from bot.loyalty.asked import ask_summary
from bot.loyalty.present import (
    heatmap_context,
    heatmap_png,
    labels,
    round_day,
    rounds_context,
    scope_name,
    summary_context,
    summary_png,
)
from bot.loyalty.privacy import viewer_label
from bot.loyalty.service import LoyaltyService, TeamTree, Window, closed_rounds

#: The most rounds a page or download covers (``summary ... last N`` allows as many).
MOST_ROUNDS = 104


def data_url(png: bytes) -> str:
    """A PNG as a ``data:`` URL (the console's CSP allows images from data:)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class LoyaltyPage:
    """A loyalty summary as a page shows it: the scope asked for, the one shown (the nearest
    reportable parent of a team that is too small) with its figures, rounds and chart, or
    why there is none; HR's page adds the latest round's heat map."""

    asked: str
    shown: str | None = None
    problem: str | None = None
    figures: dict[str, Any] | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    chart: str | None = None
    heatmap: dict[str, Any] | None = None


async def loyalty_page(
    session: AsyncSession,
    settings: Settings,
    person: Person,
    team: str,
    window: Window,
    now: datetime,
    locale: str,
    *,
    with_heatmap: bool = False,
) -> LoyaltyPage:
    """What ``summary [team]`` gives ``person`` in chat (the same access and anonymity rules,
    audited as ``loyalty.view`` or ``loyalty.refused`` with channel web), with its rounds and
    chart; ``with_heatmap`` (HR): the heat map of the window's latest round, as in HR's
    digest."""
    given = await ask_summary(session, settings, now, person, team, window, channel="web")
    if given.refused is not None:
        return LoyaltyPage(team, problem=given.refused.reason.removeprefix("summaries/"))
    assert given.scope is not None
    page = LoyaltyPage(scope_name(given.scope, locale))
    if given.no_rounds:
        page.problem = "no_rounds"
        return page
    shown = given.shown
    if shown is None:
        page.problem = "not_enough"
        return page
    texts = labels(settings.content_dir / "templates", locale)
    page.shown = scope_name(shown.scope, locale)
    page.figures = summary_context(shown, locale, texts)
    page.rounds = rounds_context(shown, locale, texts)
    # Drawn off the event loop: chat and the other pages keep being served meanwhile.
    page.chart = data_url(await asyncio.to_thread(summary_png, shown, locale, texts))
    if with_heatmap:
        latest = (await closed_rounds(session, window))[-1]
        heat = await LoyaltyService(settings).heatmap(session, viewer_label(person), latest, now)
        if heat:
            page.heatmap = {
                **heatmap_context(heat, texts, locale),
                "round": round_day(latest.label, locale),
                "chart": data_url(await asyncio.to_thread(heatmap_png, heat, texts, locale)),
            }
    return page


async def team_choices(session: AsyncSession, person: Person, locale: str) -> list[dict[str, str]]:
    """The scopes ``person`` may pick, in tree order (HR: the organisation and every team;
    managers: the teams of their subtrees). Names only, no figure."""
    tree = await TeamTree.load(session)
    allowed = await allowed_teams(session, person, tree)
    choices: list[dict[str, str]] = []
    if allowed is None:
        choices.append({"value": "organisation", "name": scope_name(tree.scope(None), locale)})
    for team in tree.depth_order():
        if allowed is None or team in allowed:
            choices.append({"value": tree.names[team], "name": tree.names[team]})
    return choices


def rounds_asked(text: str | None, default: int) -> int | None:
    """``last`` of a page's query: ``default`` when empty, None when it is not a whole number
    from 1 to :data:`MOST_ROUNDS` (the page says so at the field)."""
    if text is None or not text.strip():
        return default
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MOST_ROUNDS:
        return None
    return int(value)
