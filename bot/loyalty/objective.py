"""Objective loyalty indicators per team set and period, and the objective index.

Definitions (MEASUREMENT.md, "Objective indicators"); every rate is a percentage:

Rates that count events (turnover, mobility, absence frequency, disciplinary cases) are over
the period asked, not annualised: the default bounds in config.yaml are set for a year, which
is what ``fidelio indicators show`` covers unless told otherwise.

* **turnover** = separations / average headcount × 100. A separation is a person whose
  ``leave_date`` falls in the period and who belonged to one of the teams on their last day.
  The directory records no leave reason, so *voluntary* turnover is not known
  (``voluntary_turnover`` is always None) and the index uses total turnover.
* **average headcount** = mean of the headcount on ``since``, on the first day of every month
  after it, and on ``until``. A person counts on a day when hired on or before it, not yet left
  (``leave_date`` after it), and in one of the teams that day according to the team history.
* **mobility** = internal moves / average headcount × 100: team changes (not the first join)
  dated in the period that leave or enter one of the teams; a move between two teams of the
  set counts once.
* **briefing_reach** = share of a briefing's audience (its receipts queued before launch, in
  the teams) who acknowledged before the external launch, over briefings launched in the
  period; **quiz_score** = mean knowledge-check score in % of the questions, over completed
  quizzes.
* **pulse_participation** = respondents / invited over pulse rounds *closed* in the period
  (rounds are reported only once closed), only rounds whose release plan holds the team set
  (MEASUREMENT.md rule 4); the others are counted as withheld.
* From the imported monthly figures (bot/loyalty/indicators_import.py), months whose first
  day lies between the first day of ``since``'s month and ``until``: **absence_rate** =
  absence days / available days × 100; **absence_frequency** = spells / average headcount ×
  100; **disciplinary_per_100** = cases / average headcount × 100;
  **initiative_participation** = participants / eligible × 100.
* **suggestion_rate** = suggestions sent in the period by the teams / average headcount ×
  100: participation in the idea box (bot/suggestions/measurement.py; an anonymous
  suggestion counts for the team it was filed under). The counts beside it: sent, answered,
  implemented, and the median hours to a first response.
* **Bradford factor**: needs absence spells per person; the import holds team totals only, so
  it is not available (``bradford_share_above_trigger`` is always None) and no name is ever
  listed.

The **objective index**: each indicator is mapped to 0–100 between the fixed bounds of
config.yaml (``objective``: worst → 0, best → 100, so the orientation is in the bounds),
clipped, then averaged with the configured weights. When an indicator has no data (no people,
no briefing, nothing imported), it is left out and the index is the weighted mean of the
components that have data, re-weighted over their weights; ``coverage`` says which share of
the total weight that is, so a reader sees an index built on half the evidence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.tables import BriefingReceipt
from bot.config import Settings
from bot.db.models import Campaign, CampaignKind, CampaignStatus, Person, TeamChange
from bot.durations import start_of_day
from bot.loyalty.settings import IndicatorBounds, ObjectiveSettings
from bot.loyalty.tables import FIGURES, IndicatorFigure
from bot.pulse.tables import RoundStatus, SurveyRound
from bot.suggestions.measurement import TOTAL, SuggestionCounts, suggestion_counts

INDICATORS = tuple(ObjectiveSettings.model_fields)


@dataclass(frozen=True)
class Component:
    """One indicator: its raw value, its 0–100 value between the bounds, and its weight."""

    name: str
    raw: float | None
    mapped: float | None
    weight: float
    worst: float
    best: float


@dataclass(frozen=True)
class ObjectiveSummary:
    """The objective indicators of a team set over a period, and the index built on them."""

    since: date
    until: date
    team_ids: tuple[int, ...]
    components: tuple[Component, ...]
    #: Weighted mean of the components with data (re-weighted), None when none has data.
    index: float | None
    #: Share of the configured weight the index rests on (1.0 when every component has data).
    coverage: float
    average_headcount: float | None
    separations: int
    internal_moves: int
    #: Not known from the directory (no leave reason): always None for now.
    voluntary_turnover: float | None = None
    #: Needs person-level absence data, which is not imported: always None.
    bradford_share_above_trigger: float | None = None
    counts: dict[str, float] = field(default_factory=dict)

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["until"] = self.until.isoformat()
        return data


# The index


def map_to_scale(value: float, bounds: IndicatorBounds) -> float:
    """``value`` on 0–100 between ``bounds.worst`` (0) and ``bounds.best`` (100), clipped."""
    share = (value - bounds.worst) / (bounds.best - bounds.worst)
    return 100.0 * min(1.0, max(0.0, share))


def build_components(
    raw: dict[str, float | None], settings: ObjectiveSettings
) -> tuple[tuple[Component, ...], float | None, float]:
    """Map raw indicator values; returns (components, index, coverage).

    Components without data (None) are shown but left out of the index, which is
    re-weighted over the weights of those with data.
    """
    components = []
    weighted = available = 0.0
    for name, bounds in settings.indicators().items():
        value = raw.get(name)
        mapped = None if value is None else map_to_scale(value, bounds)
        components.append(Component(name, value, mapped, bounds.weight, bounds.worst, bounds.best))
        if mapped is not None and bounds.weight > 0:
            weighted += bounds.weight * mapped
            available += bounds.weight
    index = weighted / available if available > 0 else None
    return tuple(components), index, available


# Derivations


def _pct(numerator: float, denominator: float | None) -> float | None:
    return None if not denominator else 100.0 * numerator / denominator


def sample_days(since: date, until: date) -> list[date]:
    """``since``, the first day of every later month up to ``until``, and ``until``."""
    days = [since]
    month = date(since.year, since.month, 1)
    while True:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if month > until:
            break
        days.append(month)
    if until != days[-1]:
        days.append(until)
    return days


def months_between(since: date, until: date) -> list[str]:
    """The ``YYYY-MM`` periods whose first day lies in [first of since's month, until]."""
    months = []
    month = date(since.year, since.month, 1)
    while month <= until:
        months.append(f"{month.year:04d}-{month.month:02d}")
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


class _History:
    """Which team a person was in on a given day, from the team-change history."""

    def __init__(self, person: Person, changes: list[tuple[date, int | None, int]]):
        self.hire = person.hire_date
        self.leave = person.leave_date
        changes.sort(key=lambda c: c[0])
        self.days = [c[0] for c in changes]
        self.changes = changes
        self.current = person.team_id

    def active(self, day: date) -> bool:
        return (self.hire is None or self.hire <= day) and (self.leave is None or self.leave > day)

    def team_on(self, day: date) -> int:
        position = bisect_right(self.days, day)
        if position:
            return self.changes[position - 1][2]
        if self.changes:
            first_from, first_to = self.changes[0][1], self.changes[0][2]
            # Before the first recorded change: where they came from, or (a join, recorded
            # when the directory was imported rather than on the hire date) where they joined.
            return first_from if first_from is not None else first_to
        return self.current


async def _histories(session: AsyncSession, teams: set[int]) -> list[_History]:
    """People who are or ever were in one of ``teams``, with their team history."""
    touched = select(TeamChange.person_id).where(
        or_(TeamChange.to_team_id.in_(teams), TeamChange.from_team_id.in_(teams))
    )
    people = list(
        await session.scalars(
            select(Person).where(or_(Person.team_id.in_(teams), Person.id.in_(touched)))
        )
    )
    changes: dict[int, list[tuple[date, int | None, int]]] = {p.id: [] for p in people}
    if people:
        rows = await session.execute(
            select(
                TeamChange.person_id,
                TeamChange.changed_at,
                TeamChange.from_team_id,
                TeamChange.to_team_id,
            ).where(TeamChange.person_id.in_(list(changes)))
        )
        for person_id, changed_at, from_team, to_team in rows:
            changes[person_id].append((changed_at.date(), from_team, to_team))
    return [_History(p, changes[p.id]) for p in people]


async def _directory_figures(
    session: AsyncSession, teams: set[int], since: date, until: date
) -> tuple[float | None, int, int]:
    """(average headcount, separations, internal moves) of ``teams`` over the period."""
    histories = await _histories(session, teams)
    days = sample_days(since, until)
    counts = [sum(1 for h in histories if h.active(d) and h.team_on(d) in teams) for d in days]
    average = sum(counts) / len(counts) if counts else None
    separations = sum(
        1
        for h in histories
        if h.leave is not None
        and since <= h.leave <= until
        and h.team_on(h.leave - timedelta(days=1)) in teams
    )
    moves = await session.scalar(
        select(func.count())
        .select_from(TeamChange)
        .where(
            TeamChange.from_team_id.is_not(None),
            TeamChange.from_team_id != TeamChange.to_team_id,
            TeamChange.changed_at >= start_of_day(since),
            TeamChange.changed_at < start_of_day(until + timedelta(days=1)),
            or_(TeamChange.from_team_id.in_(teams), TeamChange.to_team_id.in_(teams)),
        )
    )
    return average, separations, int(moves or 0)


async def _briefing_figures(
    session: AsyncSession, teams: set[int], since: date, until: date
) -> tuple[float | None, float | None, dict[str, float]]:
    """(reach %, mean quiz score %, counts) over briefings launched in the period."""
    acked_before = case(
        (
            and_(
                BriefingReceipt.acknowledged_at.is_not(None),
                BriefingReceipt.acknowledged_at < Campaign.launch_at,
            ),
            1,
        ),
        else_=0,
    )
    rows = (
        await session.execute(
            select(
                Campaign.id,
                func.count(),
                func.sum(acked_before),
                func.count(BriefingReceipt.quiz_completed_at),
                func.sum(
                    case(
                        (
                            BriefingReceipt.quiz_completed_at.is_not(None),
                            BriefingReceipt.quiz_score,
                        ),
                        else_=0,
                    )
                ),
            )
            .join(Campaign, Campaign.id == BriefingReceipt.campaign_id)
            .where(
                Campaign.kind == CampaignKind.briefing,
                Campaign.status != CampaignStatus.cancelled,
                Campaign.launch_at >= start_of_day(since),
                Campaign.launch_at < start_of_day(until + timedelta(days=1)),
                BriefingReceipt.team_id.in_(teams),
                BriefingReceipt.late.is_(False),
            )
            .group_by(Campaign.id)
        )
    ).all()
    # Quiz lengths from the content snapshots (JSON cannot be grouped by on PostgreSQL).
    snapshots = dict(
        (
            await session.execute(
                select(Campaign.id, Campaign.snapshot).where(Campaign.id.in_([r[0] for r in rows]))
            )
        )
        .tuples()
        .all()
    )
    audience = acknowledged = quizzes = 0
    score_pct_sum = 0.0
    for campaign_id, members, acked, done, score_sum in rows:
        audience += int(members)
        acknowledged += int(acked or 0)
        questions = len((snapshots.get(campaign_id) or {}).get("quiz") or [])
        if questions and done:
            quizzes += int(done)
            score_pct_sum += 100.0 * float(score_sum or 0) / questions
    counts: dict[str, float] = {
        "briefing_audience": audience,
        "briefing_acknowledged_before_launch": acknowledged,
        "quizzes_completed": quizzes,
    }
    quiz = score_pct_sum / quizzes if quizzes else None
    return _pct(acknowledged, audience), quiz, counts


async def _pulse_figures(
    session: AsyncSession, teams: set[int], since: date, until: date
) -> tuple[float | None, dict[str, float]]:
    """Respondents / invited over the rounds closed in the period whose release plan holds
    exactly this set of teams (a team subtree or the organisation): a round that withholds
    the group is left out and counted in ``pulse_rounds_withheld`` (rule 4: nothing outside
    the plan, not even a response count)."""
    from bot.loyalty.release import RESPONDENTS, load_groups

    round_ids = list(
        await session.scalars(
            select(SurveyRound.id).where(
                SurveyRound.status == RoundStatus.closed,
                SurveyRound.planned_at.is_not(None),
                SurveyRound.closes_at >= start_of_day(since),
                SurveyRound.closes_at < start_of_day(until + timedelta(days=1)),
            )
        )
    )
    planned = await load_groups(session, round_ids)
    invited = responded = withheld = 0
    wanted = frozenset(teams)
    for groups in planned.values():
        match = next(
            (g for g in groups.values() if g.teams == wanted and g.shows(RESPONDENTS)), None
        )
        if match is None:
            withheld += 1
            continue
        invited += match.invited
        responded += match.sums.people.respondents
    counts: dict[str, float] = {
        "pulse_invited": invited,
        "pulse_responded": responded,
        "pulse_rounds_withheld": withheld,
    }
    return _pct(responded, invited), counts


async def _imported_figures(
    session: AsyncSession, teams: set[int], since: date, until: date
) -> dict[str, float] | None:
    row = (
        await session.execute(
            select(
                func.count(),
                func.sum(IndicatorFigure.absence_days),
                func.sum(IndicatorFigure.absence_spells),
                func.sum(IndicatorFigure.available_days),
                func.sum(IndicatorFigure.disciplinary_cases),
                func.sum(IndicatorFigure.initiative_participants),
                func.sum(IndicatorFigure.eligible),
            ).where(
                IndicatorFigure.team_id.in_(teams),
                IndicatorFigure.period.in_(months_between(since, until)),
            )
        )
    ).one()
    if not row[0]:
        return None
    return {k: float(v or 0) for k, v in zip(("rows", *FIGURES), row, strict=True)}


async def _suggestion_figures(
    session: AsyncSession, teams: set[int], since: date, until: date
) -> dict[str, float]:
    """Suggestions sent from ``since`` to ``until`` inclusive by the teams, how many were
    answered and implemented, and the median hours to a first response (-1 when none)."""
    counts = await suggestion_counts(
        session, teams, start_of_day(since), start_of_day(until + timedelta(days=1)), total=True
    )
    together = counts.get(TOTAL, SuggestionCounts())
    median = together.median_hours_to_first_response
    return {
        "suggestions_sent": together.sent,
        "suggestions_answered": together.answered,
        "suggestions_implemented": together.implemented,
        "suggestions_median_hours_to_first_response": -1.0 if median is None else median,
    }


async def objective_summary(
    session: AsyncSession,
    settings: Settings,
    team_ids: Sequence[int],
    since: date,
    until: date,
) -> ObjectiveSummary:
    """Every objective indicator of ``team_ids`` (taken as they are: pass a subtree for a
    team and its sub-teams) from ``since`` to ``until`` inclusive, and the objective index."""
    teams = set(team_ids)
    headcount, separations, moves = await _directory_figures(session, teams, since, until)
    reach, quiz, counts = await _briefing_figures(session, teams, since, until)
    participation, pulse_counts = await _pulse_figures(session, teams, since, until)
    counts.update(pulse_counts)
    imported = await _imported_figures(session, teams, since, until)
    ideas = await _suggestion_figures(session, teams, since, until)
    counts.update(ideas)
    raw: dict[str, float | None] = {
        "turnover": _pct(separations, headcount),
        "mobility": _pct(moves, headcount),
        "pulse_participation": participation,
        "briefing_reach": reach,
        "quiz_score": quiz,
        "absence_rate": None,
        "absence_frequency": None,
        "disciplinary_per_100": None,
        "initiative_participation": None,
        "suggestion_rate": _pct(ideas["suggestions_sent"], headcount),
    }
    if imported is not None:
        counts.update({f"imported_{k}": v for k, v in imported.items()})
        raw["absence_rate"] = _pct(imported["absence_days"], imported["available_days"])
        raw["absence_frequency"] = _pct(imported["absence_spells"], headcount)
        raw["disciplinary_per_100"] = _pct(imported["disciplinary_cases"], headcount)
        raw["initiative_participation"] = _pct(
            imported["initiative_participants"], imported["eligible"]
        )
    components, index, coverage = build_components(raw, settings.objective)
    return ObjectiveSummary(
        since=since,
        until=until,
        team_ids=tuple(sorted(teams)),
        components=components,
        index=index,
        coverage=coverage,
        average_headcount=headcount,
        separations=separations,
        internal_moves=moves,
        counts=counts,
    )
