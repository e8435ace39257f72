"""Each objective indicator derived from a small real database whose facts are known."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import Campaign, CampaignKind, CampaignStatus, Person, Role, Team, TeamChange
from bot.db.session import Database
from bot.loyalty.metrics import Atom, PeopleSums, atom_to_json
from bot.loyalty.objective import build_components, objective_summary, sample_days
from bot.loyalty.tables import IndicatorFigure, PlanAtom, ReleaseGroup
from bot.pulse.tables import Participation, RoundStatus, SurveyRound

from .harness import make_settings

SINCE, UNTIL = date(2026, 1, 1), date(2026, 3, 31)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def build_org(db: Database, clock: ManualClock) -> dict[str, int]:
    """Teams Alpha, Beta, Gamma and six people with known histories (see each line)."""
    now = clock.now()
    ids: dict[str, int] = {}
    async with db.session() as session:
        for name in ("Alpha", "Beta", "Gamma"):
            team = Team(name=name, created_at=now)
            session.add(team)
            await session.flush()
            ids[name] = team.id
        alpha, beta, gamma = ids["Alpha"], ids["Beta"], ids["Gamma"]

        def person(key: str, team: int, hired: date, left: date | None = None) -> Person:
            p = Person(
                email=f"{key}@example.com",
                name=key,
                team_id=team,
                role=Role.employee,
                locale="en",
                timezone="Europe/Rome",
                hire_date=hired,
                leave_date=left,
                created_at=now,
                updated_at=now,
            )
            session.add(p)
            return p

        people = {
            "p1": person("p1", alpha, date(2020, 1, 1)),  # stays all along
            "p2": person("p2", alpha, date(2020, 1, 1), date(2026, 2, 15)),  # leaves: separation
            "p3": person("p3", beta, date(2020, 1, 1)),  # moves Alpha -> Beta on 10 Feb
            "p4": person("p4", alpha, date(2026, 3, 1)),  # hired 1 March
            "p5": person("p5", gamma, date(2020, 1, 1), date(2026, 5, 1)),  # leaves later
            "p6": person("p6", alpha, date(2020, 1, 1), date(2025, 12, 31)),  # left before
        }
        await session.flush()
        ids.update({k: p.id for k, p in people.items()})
        for key, team in (("p1", alpha), ("p2", alpha), ("p3", alpha), ("p5", gamma)):
            session.add(
                TeamChange(
                    person_id=ids[key],
                    from_team_id=None,
                    to_team_id=team,
                    changed_at=at("2025-01-01"),
                )
            )
        session.add(
            TeamChange(
                person_id=ids["p3"],
                from_team_id=alpha,
                to_team_id=beta,
                changed_at=at("2026-02-10"),
            )
        )
        # A move before the period does not count.
        session.add(
            TeamChange(
                person_id=ids["p5"],
                from_team_id=gamma,
                to_team_id=gamma,
                changed_at=at("2026-01-05"),
            )
        )

        def campaign(
            kind: CampaignKind, launch: str, status: CampaignStatus, quiz: int
        ) -> Campaign:
            c = Campaign(
                kind=kind,
                content_id=f"c-{launch}-{status}",
                title="Spring promotion",
                status=status,
                snapshot={"quiz": [{"q": i} for i in range(quiz)]},
                starts_at=at(launch),
                launch_at=at(launch, 12),
                ends_at=at("2026-12-31"),
                created_by="hr",
                created_at=now,
            )
            session.add(c)
            return c

        live = campaign(CampaignKind.briefing, "2026-02-01", CampaignStatus.done, 2)
        cancelled = campaign(CampaignKind.briefing, "2026-02-02", CampaignStatus.cancelled, 2)
        later = campaign(CampaignKind.briefing, "2026-05-01", CampaignStatus.scheduled, 2)
        pulse = campaign(CampaignKind.pulse, "2026-01-01", CampaignStatus.scheduled, 0)
        await session.flush()

        def receipt(c: Campaign, key: str, **extra: object) -> None:
            session.add(
                BriefingReceipt(
                    campaign_id=c.id,
                    person_id=ids[key],
                    team_id=alpha,
                    queued_at=at("2026-01-20"),
                    **extra,
                )
            )

        # Audience 3 (p4 was queued late); p1 acknowledged before launch and scored 2/2;
        # p2 acknowledged after launch and scored 1/2; p3 did nothing.
        receipt(
            live,
            "p1",
            acknowledged_at=at("2026-01-25"),
            quiz_score=2,
            quiz_completed_at=at("2026-01-25"),
        )
        receipt(
            live,
            "p2",
            acknowledged_at=at("2026-02-03"),
            quiz_score=1,
            quiz_completed_at=at("2026-02-03"),
        )
        receipt(live, "p3")
        receipt(live, "p4", late=True, acknowledged_at=at("2026-03-02"))
        for c in (cancelled, later):
            receipt(c, "p1")
            receipt(c, "p2")

        closed = SurveyRound(
            campaign_id=pulse.id,
            number=1,
            opens_at=at("2026-03-03"),
            closes_at=at("2026-03-10"),
            status=RoundStatus.closed,
            items=["q1"],
            invited=3,
            planned_at=at("2026-03-10"),
        )
        still_open = SurveyRound(
            campaign_id=pulse.id,
            number=2,
            opens_at=at("2026-03-17"),
            closes_at=at("2026-03-20"),
            status=RoundStatus.open,
            items=["q1"],
            invited=3,
        )
        session.add_all([closed, still_open])
        await session.flush()
        for round_, finished in ((closed, ("p1", "p4")), (still_open, ())):
            for key in ("p1", "p2", "p4"):
                session.add(
                    Participation(
                        round_id=round_.id,
                        person_id=ids[key],
                        team_id=alpha,
                        answered=1,
                        finished=key in finished,
                    )
                )
        # The closed round's release plan (as decided at close) shows Alpha with 2 of its 3
        # invited people responding; derived participation reads the plan, nothing else.
        atom = PlanAtom(
            round_id=closed.id,
            owner=alpha,
            kind="answers",
            respondents=2,
            sums=atom_to_json(Atom(people=PeopleSums(respondents=2))),
        )
        session.add(atom)
        await session.flush()
        session.add(
            ReleaseGroup(
                round_id=closed.id,
                group_key=alpha,
                name="Alpha",
                teams=[alpha],
                atoms=[atom.id],
                measures=["respondents"],
                invited=3,
                sums=atom_to_json(Atom(people=PeopleSums(respondents=2))),
            )
        )
        for period, values in (
            ("2025-12", (100, 9, 100, 9, 0, 9)),  # outside the period
            ("2026-01", (5, 2, 60, 1, 2, 3)),
            ("2026-02", (3, 1, 40, 0, 1, 3)),
        ):
            days, spells, available, cases, participants, eligible = values
            session.add(
                IndicatorFigure(
                    team_id=alpha,
                    period=period,
                    absence_days=days,
                    absence_spells=spells,
                    available_days=available,
                    disciplinary_cases=cases,
                    initiative_participants=participants,
                    eligible=eligible,
                    imported_at=now,
                )
            )
    return ids


def test_headcount_is_sampled_at_the_ends_and_each_month_start() -> None:
    assert sample_days(SINCE, UNTIL) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
        date(2026, 3, 31),
    ]
    assert sample_days(date(2026, 1, 15), date(2026, 1, 31)) == [
        date(2026, 1, 15),
        date(2026, 1, 31),
    ]


async def test_each_indicator_of_one_team(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    ids = await build_org(db, clock)
    settings = make_settings(database_url)
    async with db.session() as session:
        summary = await objective_summary(session, settings, [ids["Alpha"]], SINCE, UNTIL)
    raw = {c.name: c.raw for c in summary.components}
    # Headcount 3, 3, 2, 2 on 1 Jan, 1 Feb, 1 Mar, 31 Mar: average 2.5.
    assert summary.average_headcount == pytest.approx(2.5)
    assert summary.separations == 1 and summary.internal_moves == 1
    assert raw["turnover"] == pytest.approx(40.0)
    assert raw["mobility"] == pytest.approx(40.0)
    assert raw["briefing_reach"] == pytest.approx(100 / 3)
    assert raw["quiz_score"] == pytest.approx(75.0)
    assert raw["pulse_participation"] == pytest.approx(200 / 3)
    assert raw["absence_rate"] == pytest.approx(8.0)  # 8 days of 100
    assert raw["absence_frequency"] == pytest.approx(120.0)  # 3 spells / 2.5 people
    assert raw["disciplinary_per_100"] == pytest.approx(40.0)
    assert raw["initiative_participation"] == pytest.approx(50.0)
    assert summary.voluntary_turnover is None and summary.bradford_share_above_trigger is None
    _, index, coverage = build_components(raw, settings.objective)
    assert summary.index == pytest.approx(index) and coverage == pytest.approx(1.0)
    assert summary.counts["briefing_audience"] == 3 and summary.counts["pulse_invited"] == 3


async def test_a_move_inside_the_team_set_counts_once(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    ids = await build_org(db, clock)
    async with db.session() as session:
        summary = await objective_summary(
            session, make_settings(database_url), [ids["Alpha"], ids["Beta"]], SINCE, UNTIL
        )
    assert summary.average_headcount == pytest.approx(3.0)
    assert summary.internal_moves == 1
    assert summary.component("mobility").raw == pytest.approx(100 / 3)
    assert summary.component("turnover").raw == pytest.approx(100 / 3)


async def test_missing_data_is_none_and_the_index_is_reweighted(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    ids = await build_org(db, clock)
    settings = make_settings(database_url)
    async with db.session() as session:
        gamma = await objective_summary(session, settings, [ids["Gamma"]], SINCE, UNTIL)
        nobody = await objective_summary(session, settings, [], SINCE, UNTIL)
    raw = {c.name: c.raw for c in gamma.components}
    # From the directory (and the idea box: nobody sent a suggestion, a rate of 0).
    known = ("turnover", "mobility", "suggestion_rate")
    assert raw["turnover"] == 0.0 and raw["mobility"] == 0.0 and raw["suggestion_rate"] == 0.0
    assert all(raw[name] is None for name in raw if name not in known)
    weights = settings.objective
    # Turnover 0 maps to 100 (better than the best bound), mobility and suggestions 0 to 0.
    covered = weights.turnover.weight + weights.mobility.weight + weights.suggestion_rate.weight
    assert gamma.index == pytest.approx(weights.turnover.weight * 100 / covered)
    assert gamma.coverage == pytest.approx(covered)
    assert nobody.index is None and nobody.coverage == 0.0
