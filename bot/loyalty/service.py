"""Loyalty summaries: the figures of a team subtree or of the organisation over closed rounds,
released only through the anonymity rules (bot.loyalty.anonymity).

A :class:`Summary` covers the chosen window (``last N rounds`` or ``since DATE``): per round
the person-first loyalty index, eNPS with its adjusted-Wald interval, product NPS, response
rate, segment shares and Cronbach's alpha; the headline is the latest reportable round; the
dimensions' favorable % pool the window's answers (rotating items appear in some rounds only).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db.models import Campaign, Team
from bot.loyalty import metrics
from bot.loyalty.anonymity import Rules, TeamSet, closed_only, record_shown
from bot.loyalty.metrics import ItemSums, RoundItems
from bot.loyalty.plan import ORG, subtree_of
from bot.loyalty.release import (
    ALPHA,
    INDEX,
    SEGMENTS,
    GroupRelease,
    item_measure,
    load_groups,
    round_items,
)
from bot.pulse.tables import RoundStatus, SurveyRound


@dataclass(frozen=True)
class Window:
    """Which closed rounds: the last ``last`` ones, or those opened on or after ``since``."""

    last: int | None = None
    since: date | None = None

    def describe(self) -> dict[str, Any]:
        return {"last": self.last, "since": self.since.isoformat() if self.since else None}


@dataclass(frozen=True)
class Scope:
    """The organisation (``team_id`` None) or one team with its subtree."""

    team_id: int | None
    name: str
    team_ids: TeamSet
    parent_id: int | None = None

    @property
    def is_org(self) -> bool:
        return self.team_id is None


@dataclass(frozen=True)
class ClosedRound:
    id: int
    number: int
    title: str
    opens_at: datetime
    closes_at: datetime
    items: RoundItems

    @property
    def label(self) -> str:
        return self.opens_at.date().isoformat()


@dataclass
class RoundFigures:
    """One round's figures for one group; None where a figure is not reportable."""

    round_id: int
    label: str
    reportable: bool
    respondents: int | None = None
    invited: int | None = None
    index: float | None = None
    index_n: int | None = None
    index_ci: tuple[float, float] | None = None
    index_se: float | None = None
    alpha: float | None = None
    alpha_n: int | None = None
    enps: float | None = None
    enps_n: int | None = None
    enps_ci: tuple[float, float] | None = None
    product_nps: float | None = None
    product_nps_n: int | None = None
    product_nps_ci: tuple[float, float] | None = None
    segments: dict[str, float] | None = None
    segment_n: int | None = None
    segment_ci: dict[str, tuple[float, float] | None] | None = None

    @property
    def response_rate(self) -> float | None:
        if not self.invited or self.respondents is None:
            return None
        return 100.0 * self.respondents / self.invited

    def enps_se(self) -> float | None:
        return None if self.enps_ci is None else (self.enps_ci[1] - self.enps_ci[0]) / 3.92


@dataclass
class DimensionFigure:
    dimension: str
    n: int
    favorable: float
    favorable_ci: tuple[float, float] | None
    score: float


@dataclass
class Change:
    """A change since the previous reportable round, and whether it exceeds the noise."""

    delta: float
    clear: bool


@dataclass
class Summary:
    scope: Scope
    window: Window
    rounds: list[RoundFigures]
    headline: RoundFigures
    previous: RoundFigures | None
    dimensions: list[DimensionFigure]
    index_change: Change | None = None
    enps_change: Change | None = None
    precise_from: int = 30
    k: int = 5

    @property
    def strongest(self) -> list[DimensionFigure]:
        return self.dimensions[:3]

    @property
    def weakest(self) -> list[DimensionFigure]:
        strongest = {d.dimension for d in self.strongest}
        rest = [d for d in self.dimensions if d.dimension not in strongest]
        return list(reversed(rest[-3:]))

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON reports, templates)."""
        return {
            "scope": self.scope.name,
            "organisation": self.scope.is_org,
            "window": self.window.describe(),
            "k": self.k,
            "headline": _round_dict(self.headline),
            "previous": _round_dict(self.previous) if self.previous else None,
            "index_change": asdict(self.index_change) if self.index_change else None,
            "enps_change": asdict(self.enps_change) if self.enps_change else None,
            "rounds": [_round_dict(r) for r in self.rounds],
            "dimensions": [asdict(d) for d in self.dimensions],
            "strongest": [d.dimension for d in self.strongest],
            "weakest": [d.dimension for d in self.weakest],
        }


def _round_dict(figures: RoundFigures) -> dict[str, Any]:
    data = asdict(figures)
    data["response_rate"] = figures.response_rate
    return data


@dataclass
class Unreportable:
    """Too few answers to report ``scope`` without identifying people; ``fallback`` is the
    nearest reportable group above it that the viewer may see (None if there is none)."""

    scope: Scope
    fallback: Summary | None


class NoClosedRounds(Exception):
    """No closed round falls in the window."""


@dataclass
class TeamTree:
    """The org tree, loaded once per summary (a few hundred rows at most)."""

    names: dict[int, str]
    parent: dict[int, int | None]
    children: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession) -> TeamTree:
        rows = (await session.execute(select(Team.id, Team.name, Team.parent_id))).all()
        tree = cls({r.id: r.name for r in rows}, {r.id: r.parent_id for r in rows})
        for team_id, parent in tree.parent.items():
            if parent is not None:
                tree.children.setdefault(parent, []).append(team_id)
        return tree

    def subtree(self, team_id: int) -> frozenset[int]:
        return subtree_of(team_id, self.children)

    def scope(self, team_id: int | None) -> Scope:
        if team_id is None:
            return Scope(None, "", frozenset(self.names))
        return Scope(team_id, self.names[team_id], self.subtree(team_id), self.parent[team_id])

    def ancestors(self, team_id: int) -> list[int]:
        out: list[int] = []
        current = self.parent.get(team_id)
        while current is not None and current not in out:
            out.append(current)
            current = self.parent.get(current)
        return out

    def depth_order(self) -> list[int]:
        """Teams in tree order (parents before children, siblings by name)."""
        roots = sorted(
            (t for t, p in self.parent.items() if p is None), key=lambda t: self.names[t]
        )
        out: list[int] = []
        stack = list(reversed(roots))
        while stack:
            current = stack.pop()
            if current in out:
                continue
            out.append(current)
            kids = sorted(self.children.get(current, ()), key=lambda t: self.names[t])
            stack.extend(reversed(kids))
        return out


async def closed_rounds(session: AsyncSession, window: Window) -> list[ClosedRound]:
    """Closed rounds in the window whose release plan is decided, oldest first (rule 5:
    never an open round; a round closed before plans existed waits for ``db upgrade``)."""
    query = (
        select(SurveyRound, Campaign)
        .join(Campaign, Campaign.id == SurveyRound.campaign_id)
        .where(SurveyRound.status == RoundStatus.closed, SurveyRound.planned_at.is_not(None))
    )
    if window.since is not None:
        since = datetime(window.since.year, window.since.month, window.since.day, tzinfo=UTC)
        query = query.where(SurveyRound.opens_at >= since)
    query = query.order_by(SurveyRound.opens_at.desc(), SurveyRound.id.desc())
    if window.since is None and window.last is not None:
        query = query.limit(window.last)
    rows = (await session.execute(query)).all()
    rounds = closed_only([r for r, _ in rows])
    campaigns = {r.id: c for r, c in rows}
    return [
        ClosedRound(
            round_.id,
            round_.number,
            campaigns[round_.id].title,
            round_.opens_at,
            round_.closes_at,
            round_items(round_, campaigns[round_.id]),
        )
        for round_ in reversed(rounds)
    ]


class LoyaltyService:
    """Builds summaries and heat maps of closed rounds from their release plans only
    (bot.loyalty.release): a group outside a round's plan is never shown, whoever asks."""

    def __init__(self, settings: Settings, *, alpha_every_round: bool = False):
        """``alpha_every_round``: Cronbach's alpha for each round of the window (reports);
        by default only for the latest round, the one a summary's headline shows."""
        self.settings = settings
        self.config = settings.loyalty
        self.rules = Rules(settings.anonymity)
        self.alpha_every_round = alpha_every_round

    async def summarise(
        self,
        session: AsyncSession,
        viewer: str,
        scope: Scope,
        window: Window,
        now: datetime,
        *,
        may_see: Callable[[Scope], bool] = lambda _scope: True,
        tree: TeamTree | None = None,
    ) -> Summary | Unreportable:
        """The summary of ``scope``, or why it cannot be shown and the nearest planned group
        above it that the viewer may see. What is shown is logged for the viewer."""
        tree = tree or await TeamTree.load(session)
        rounds = await closed_rounds(session, window)
        if not rounds:
            raise NoClosedRounds()
        summary = await self._summary(session, viewer, scope, window, rounds, now)
        if summary is not None:
            return summary
        fallback: Summary | None = None
        candidates: list[int | None] = [] if scope.is_org else list(tree.ancestors(scope.team_id))  # type: ignore[arg-type]
        if not scope.is_org:
            candidates.append(None)
        for candidate in candidates:
            parent = tree.scope(candidate)
            if candidate is not None and parent.team_ids == tree.scope(None).team_ids:
                continue  # the root team is the organisation, asked for below
            if not may_see(parent):
                continue
            fallback = await self._summary(session, viewer, parent, window, rounds, now)
            if fallback is not None:
                break
        return Unreportable(scope, fallback)

    async def _summary(
        self,
        session: AsyncSession,
        viewer: str,
        scope: Scope,
        window: Window,
        rounds: list[ClosedRound],
        now: datetime,
    ) -> Summary | None:
        key = group_key(scope)
        planned = await load_groups(session, [r.id for r in rounds], [key])
        figures: list[RoundFigures] = []
        pooled: dict[str, ItemSums] = {}
        pooled_reverse: dict[str, bool] = {}
        dimension_of: dict[str, str] = {}
        latest = rounds[-1].id
        for rnd in rounds:
            group = planned[rnd.id].get(key)
            if group is None:
                figures.append(RoundFigures(rnd.id, rnd.label, False))
                continue
            with_alpha = self.alpha_every_round or rnd.id == latest
            figures.append(self._round_figures(rnd, group, with_alpha))
            for item_key, item in rnd.items.items.items():
                if item.kind != "likert5" or not group.shows(item_measure(item_key)):
                    continue
                sums = group.sums.items.get(item_key)
                if sums is None:
                    continue
                pooled.setdefault(item_key, ItemSums()).add(sums)
                pooled_reverse[item_key] = item.reverse
                dimension_of[item_key] = item.dimension
            await record_shown(session, viewer, rnd.id, scope.team_ids, now)
        reportable = [f for f in figures if f.reportable]
        if not reportable:
            return None
        headline = reportable[-1]
        previous = reportable[-2] if len(reportable) > 1 else None
        return Summary(
            scope=scope,
            window=window,
            rounds=figures,
            headline=headline,
            previous=previous,
            dimensions=self._dimensions(pooled, pooled_reverse, dimension_of),
            index_change=_change(
                headline.index,
                previous.index if previous else None,
                headline.index_se,
                previous.index_se if previous else None,
            ),
            enps_change=_change(
                headline.enps,
                previous.enps if previous else None,
                headline.enps_se(),
                previous.enps_se() if previous else None,
            ),
            precise_from=self.config.precise_from,
            k=self.rules.k,
        )

    def _round_figures(
        self, rnd: ClosedRound, group: GroupRelease, with_alpha: bool
    ) -> RoundFigures:
        """A planned group's figures for one round: each measure only where the plan lets
        this group show it (its people, counted by that measure, sit in atoms of >= k)."""
        cfg = self.config
        people = group.sums.people
        out = RoundFigures(
            rnd.id,
            rnd.label,
            True,
            respondents=people.respondents,
            invited=group.invited or None,
        )
        if group.shows(INDEX) and people.index_n:
            out.index, out.index_n = people.index(), people.index_n
            out.index_ci, out.index_se = people.index_interval(), people.index_se()
        if with_alpha and group.shows(ALPHA) and people.complete_n >= cfg.alpha_min_n:
            out.alpha, out.alpha_n = people.alpha(rnd.items.index_items), people.complete_n
        for item_key, target in ((cfg.enps_item, "enps"), (cfg.product_nps_item, "product_nps")):
            sums = group.sums.items.get(item_key)
            if sums is None or not sums.n or not group.shows(item_measure(item_key)):
                continue
            setattr(out, target, sums.net())
            setattr(out, f"{target}_n", sums.n)
            setattr(
                out, f"{target}_ci", metrics.enps_interval(sums.promoters, sums.detractors, sums.n)
            )
        if group.shows(SEGMENTS) and people.segment_n:
            n = people.segment_n
            out.segment_n = n
            out.segments = {name: count / n for name, count in people.segments.items()}
            out.segment_ci = {
                name: metrics.wilson(count, n) for name, count in people.segments.items()
            }
        return out

    def _dimensions(
        self,
        pooled: dict[str, ItemSums],
        reverse: dict[str, bool],
        dimension_of: dict[str, str],
    ) -> list[DimensionFigure]:
        by_dimension: dict[str, list[str]] = defaultdict(list)
        for key in pooled:
            by_dimension[dimension_of[key]].append(key)
        out: list[DimensionFigure] = []
        for dimension, keys in by_dimension.items():
            n = sum(pooled[k].n for k in keys)
            if not self.rules.group_ok(n):
                continue
            favorable = sum(pooled[k].favorable(reverse[k]) for k in keys)
            score = sum((pooled[k].score(reverse[k]) or 0.0) * pooled[k].n for k in keys) / n
            out.append(
                DimensionFigure(
                    dimension, n, 100.0 * favorable / n, metrics.wilson(favorable, n), score
                )
            )
        out.sort(key=lambda d: (-d.favorable, -d.score, d.dimension))
        return out

    async def heatmap(
        self, session: AsyncSession, viewer: str, round_: ClosedRound, now: datetime
    ) -> HeatMap:
        """Teams x dimensions favorable % for one round (HR's digest and report), every team
        of the round a row, in tree order (the organisation is not a row).

        A team subtree in the round's plan gets its figures: one cell per dimension from the
        items the plan lets that group show (None where it shows none, or fewer than k
        answered). A team not in the plan gets a row of None cells and the reason
        :data:`TOO_FEW`, and nothing else: no figure, count or hint from outside the plan.
        Each row says what it covers (:class:`HeatRow`), so a parent's row is not read as
        the parent team alone."""
        tree = await TeamTree.load(session)
        planned = (await load_groups(session, [round_.id]))[round_.id]
        dims: dict[str, list[str]] = defaultdict(list)
        for key, item in round_.items.items.items():
            if item.kind == "likert5":
                dims[item.dimension].append(key)
        dimensions = sorted(dims)
        everyone = frozenset(tree.names)
        # The teams the round had when it closed (the organisation's group lists them all);
        # a team created since has no row.
        org = planned.get(ORG)
        order = [t for t in tree.depth_order() if org is None or t in org.teams]
        position = {team: place for place, team in enumerate(order)}
        # Planned groups whose team has left the tree since the close keep their place last.
        keys = order + sorted(
            (g.key for g in planned.values() if g.key != ORG and g.key not in position),
            key=lambda key: (planned[key].name, key),
        )
        rows: list[HeatRow] = []
        for team in keys:
            group = planned.get(team)
            if group is None:
                covers = _covers(tree.subtree(team), everyone)
                rows.append(
                    HeatRow(team, tree.names[team], covers, [None] * len(dimensions), TOO_FEW)
                )
                continue
            cells: list[float | None] = []
            for dimension in dimensions:
                n = favorable = 0
                for key in dims[dimension]:
                    sums = group.sums.items.get(key)
                    if sums is None or not group.shows(item_measure(key)):
                        continue
                    n += sums.n
                    favorable += sums.favorable(round_.items.items[key].reverse)
                cells.append(100.0 * favorable / n if self.rules.group_ok(n) else None)
            rows.append(HeatRow(team, group.name, _covers(group.teams, everyone), cells))
            await record_shown(session, viewer, round_.id, group.teams, now)
        return HeatMap(dimensions, rows)


#: Why a heat map row has no figures: the round's plan does not release that team.
TOO_FEW = "too_few"


@dataclass(frozen=True)
class HeatRow:
    """One heat map row: a team, what its row covers, and its cells (None = not shown).

    ``covers``: ``team`` (a team without sub-teams), ``subtree`` (the team and every team
    under it), ``organisation`` (a root team whose subtree is every team). ``reason`` is
    :data:`TOO_FEW` for a team the plan does not release (every cell None)."""

    team_id: int
    name: str
    covers: str
    cells: list[float | None]
    reason: str | None = None


@dataclass
class HeatMap:
    """One round's heat map: its dimensions (columns) and one :class:`HeatRow` per team."""

    dimensions: list[str]
    rows: list[HeatRow]

    @property
    def names(self) -> list[str]:
        return [row.name for row in self.rows]

    @property
    def values(self) -> list[list[float | None]]:
        return [row.cells for row in self.rows]

    def __bool__(self) -> bool:
        return bool(self.rows)


def _covers(teams: frozenset[int], everyone: frozenset[int]) -> str:
    if len(teams) <= 1:
        return "team"
    return "organisation" if teams >= everyone else "subtree"


def group_key(scope: Scope) -> int:
    """The plan's key of a scope: :data:`ORG` or the team id."""
    return ORG if scope.team_id is None else scope.team_id


def _change(
    now: float | None, before: float | None, se_now: float | None, se_before: float | None
) -> Change | None:
    """The change since the previous round; ``clear`` when it exceeds 1.96 standard errors of
    the difference (otherwise it is reported as no clear change)."""
    if now is None or before is None:
        return None
    delta = now - before
    if se_now is None or se_before is None:
        return Change(delta, False)
    return Change(delta, abs(delta) > metrics.Z95 * math.sqrt(se_now**2 + se_before**2))
