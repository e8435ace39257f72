"""The anonymity promise, checked as an attacker would (MEASUREMENT.md, rules 1-6).

Several viewers pool what they were shown — any managers in chat, HR in chat and on the
command line, the digests with their heat map — over random organisations, rounds with skips
and request sequences. By exact rational arithmetic (tests/attack.py) no combination of what
they saw together is a sum over fewer than k people, so no individual answer follows. The two
leaks found before release plans existed (sibling managers, one person on two routes) have
tests of their own.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import AnonymitySettings
from bot.db.models import Person
from bot.db.session import Database
from bot.handling import HR
from bot.loyalty.access import ScopeRefused
from bot.loyalty.anonymity import Rules
from bot.loyalty.asked import summary_for
from bot.loyalty.cli import loyalty_report
from bot.loyalty.digest import DigestService, DigestStats
from bot.loyalty.objective import objective_summary
from bot.loyalty.report_files import report_file
from bot.loyalty.service import HeatMap, LoyaltyService, Summary, TeamTree, Unreportable, Window
from bot.replies import Reply
from bot.web.loyalty_views import loyalty_page
from bot.web.views import loyalty_summary

from .attack import (
    NOW,
    Org,
    Pool,
    build_org,
    close_a_round,
    pulse_campaign,
    random_answers,
    smallest_isolated,
)
from .harness import load_demo, make_settings
from .loyalty_seed import closed_round, schedule_survey


def rules(k: int = 5) -> Rules:
    return Rules(AnonymitySettings(min_group=k, comment_min_group=max(k, 10)))


# Configuration


def test_k_below_three_is_a_config_error(database_url: str) -> None:
    with pytest.raises(ValidationError, match="min_group"):
        make_settings(database_url, anonymity={"min_group": 2})
    with pytest.raises(ValidationError, match="comment_min_group"):
        make_settings(database_url, anonymity={"min_group": 6, "comment_min_group": 5})
    assert make_settings(database_url, anonymity={"min_group": 3}).anonymity.min_group == 3


def test_rule_1_and_comments() -> None:
    r = rules(5)
    assert not r.group_ok(4) and r.group_ok(5)
    assert not r.comments_ok(9) and r.comments_ok(10)
    assert not r.remainder_ok(parent_n=14, group_n=11) and r.remainder_ok(16, 11)


# Every viewer, every route


@dataclass
class Released:
    """What the routes a person asks on released: summaries and heat maps as the service
    computed them, what the charts were drawn from, and the JSON files downloaded."""

    summaries: list[Summary | Unreportable] = field(default_factory=list)
    heatmaps: list[tuple[int, HeatMap]] = field(default_factory=list)
    json_files: list[str] = field(default_factory=list)

    def pool_into(self, pool: Pool) -> None:
        for result in self.summaries:
            pool.add_summary(result)
        for round_id, heat in self.heatmaps:
            pool.add_heatmap(round_id, heat.names, heat.dimensions, heat.values)
        for text in self.json_files:
            pool.add_report_json(text)


async def released_on_routes(
    db: Database, config: Any, email: str, team: str, last: int
) -> Released:
    """What ``summary [team]`` releases to ``email`` in chat and on the Slack Home tab (both
    :func:`summary_for`), on the web console's team page, HR's loyalty page (with its heat
    map) and a manager's trends page, and in the web console's downloads (the files of
    ``report loyalty``), as the service computed it for those routes; what each chart was
    drawn from is pooled too (refusals release nothing)."""
    released = Released()
    summarise, heatmap = LoyaltyService.summarise, LoyaltyService.heatmap

    async def recording(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = await summarise(self, *args, **kwargs)
        released.summaries.append(result)
        return result

    async def recording_heat(self, session, viewer, round_, now):  # type: ignore[no-untyped-def]
        heat = await heatmap(self, session, viewer, round_, now)
        released.heatmaps.append((round_.id, heat))
        return heat

    def summary_chart(shown: Summary, *args: Any) -> bytes:
        released.summaries.append(shown)  # the chart's figures: the summary it draws
        return b"\x89PNG"

    def heat_chart(heat: HeatMap, *args: Any) -> bytes:
        # Drawn from a heat map the service made (recorded with its round above).
        assert any(heat is h for _, h in released.heatmaps)
        return b"\x89PNG"

    with (
        patch.object(LoyaltyService, "summarise", recording),
        patch.object(LoyaltyService, "heatmap", recording_heat),
        patch("bot.web.loyalty_views.summary_png", summary_chart),
        patch("bot.web.loyalty_views.heatmap_png", heat_chart),
        patch("bot.loyalty.report_files.summary_png", summary_chart),
        patch("bot.loyalty.report_files.heatmap_png", heat_chart),
    ):
        async with db.session() as session:
            viewer = await session.scalar(select(Person).where(Person.email == email))
            assert viewer is not None
            clock = ManualClock(NOW)
            window = Window(last=last)
            await summary_for(session, config, clock, viewer, team, window, via="chat")
            await summary_for(session, config, clock, viewer, team, window, via="home")
            await loyalty_summary(session, config, viewer, team, NOW, "en")
            # HR's loyalty page (with the heat map) and the trends page.
            hr = viewer.role in HR
            await loyalty_page(session, config, viewer, team, window, NOW, "en", with_heatmap=hr)
            # The downloads: every format is formatted from one summary computed the same
            # way (bot.loyalty.report_files), so JSON (pooled as the file says) and HTML (its
            # chart and, for HR, the heat map) release all that CSV, PNG and text can.
            for fmt in ("json", "html"):
                try:
                    made = await report_file(
                        session, config, viewer, team, window, fmt, "en", NOW, route="web"
                    )
                except ScopeRefused:
                    break  # the same refusal for every format
                if fmt == "json":
                    released.json_files.append(str(made.payload))
    return released


async def ask_everything(
    db: Database, org: Org, k: int, requests: list[tuple[str, int | None, int]]
) -> Pool:
    """Run ``requests`` (viewer email, team or None for the organisation, last N rounds) on
    every route a person asks on (chat, the Home tab, the web console's pages and downloads), HR's
    command-line JSON report, and every round's digest; pool all that was shown."""
    config = make_settings(db.url, anonymity={"min_group": k, "comment_min_group": max(k, 10)})
    pool = Pool(org, k)
    await pool.load_plans(db)
    for email, team, last in requests:
        name = "" if team is None else org.names[team]
        (await released_on_routes(db, config, email, name, last)).pool_into(pool)
        if email == org.hr:
            # The same person on the command line (its JSON report).
            text = await loyalty_report(config, name or None, None, last, "json", "en", email)
            pool.add_report_json(str(text))

    # The digests: every manager's summary and HR's heat map, as queued after each close.
    recorded: list[Summary | Unreportable] = []
    heatmaps: list[tuple[int, list[str], list[str], list[list[float | None]]]] = []

    class Recording(LoyaltyService):
        async def summarise(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            result = await super().summarise(*args, **kwargs)
            recorded.append(result)
            return result

        async def heatmap(self, session, viewer, round_, now):  # type: ignore[no-untyped-def]
            heat = await super().heatmap(session, viewer, round_, now)
            heatmaps.append((round_.id, heat.names, heat.dimensions, heat.values))
            return heat

    digest = DigestService(config, db, ManualClock(NOW))
    digest.service = Recording(config)
    # The figures are what is pooled; drawing each digest's charts would only cost time.
    with (
        patch("bot.loyalty.digest.summary_replies", lambda *a, **k: [Reply("summaries/no_rounds")]),
        patch("bot.loyalty.digest.heatmap_png", lambda *a, **k: b""),
    ):
        for round_id in org.answers:
            async with db.session() as session:
                await digest.digest_in(session, round_id, DigestStats())
    for result in recorded:
        pool.add_summary(result)
    for round_id, names, dims, values in heatmaps:
        pool.add_heatmap(round_id, names, dims, values)

    # The objective indicators: pulse participation per team subtree and organisation, over
    # a period holding every round (respondents summed over the rounds whose plan has it).
    for team in [None, *org.names]:
        teams = frozenset(org.names) if team is None else org.subtree(team)
        async with db.session() as session:
            objective = await objective_summary(
                session, config, sorted(teams), NOW.date() - timedelta(days=365), NOW.date()
            )
        planned = [r for r in org.answers if (r, teams) in pool.planned]
        if objective.counts["pulse_responded"]:
            pool.add(
                "respondents",
                frozenset(
                    (r, p) for r in planned for p in org.answers[r] if org.team_of[p] in teams
                ),
                int(objective.counts["pulse_responded"]),
            )
            assert objective.counts["pulse_rounds_withheld"] == len(org.answers) - len(planned)
    return pool


@st.composite
def organisations(draw: st.DrawFn) -> tuple[list[int | None], list[int], int, int, int]:
    teams = draw(st.integers(min_value=1, max_value=8))
    parents: list[int | None] = [None]
    depth = [0]
    for index in range(1, teams):
        choices = [t for t in range(index) if depth[t] < 3]
        parent = draw(st.sampled_from(choices))
        parents.append(parent)
        depth.append(depth[parent] + 1)
    sizes = [draw(st.integers(min_value=1, max_value=30)) for _ in range(teams)]
    k = draw(st.sampled_from([3, 4, 5]))
    rounds = draw(st.integers(min_value=1, max_value=3))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    return parents, sizes, k, rounds, seed


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=organisations())
async def test_no_pool_of_viewers_and_routes_isolates_fewer_than_k(
    case: tuple[list[int | None], list[int], int, int, int],
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    parents, sizes, k, rounds, seed = case
    rng = random.Random(seed)
    path = tmp_path / f"attack-{rng.getrandbits(48)}.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        org = await build_org(db, parents, sizes)
        settings_k = make_settings(db.url, anonymity={"min_group": k, "comment_min_group": 10})
        campaign = await pulse_campaign(db)
        for number in range(1, rounds + 1):
            given_answers = random_answers(
                rng, org, respond=rng.uniform(0.3, 1.0), skip=rng.uniform(0.0, 0.4)
            )
            await close_a_round(db, settings_k, org, campaign, number, given_answers)
        viewers = [org.hr, *org.managers.values()]
        targets: list[int | None] = [None, *org.names]
        requests = [
            (rng.choice(viewers), rng.choice(targets), rng.randint(1, rounds)) for _ in range(12)
        ]
        # Every manager asks for their own team and the organisation, HR for everything (in
        # chat and on the command line): the most that can be pooled.
        requests += [(email, team, rounds) for team, email in org.managers.items()]
        requests += [(email, None, rounds) for email in org.managers.values()]
        requests += [(org.hr, team, rounds) for team in targets]
        pool = await ask_everything(db, org, k, requests)
    finally:
        await db.dispose()
    assert smallest_isolated(pool) is None


# The two leaks found before release plans


async def test_sibling_managers_cannot_pool_a_hidden_team(db: Database) -> None:
    """Parent P (1 own member) with children A (2 people) and B (8): P shown to its manager
    and B to its own would leave P - B = A plus P's own member, 3 people. The plan refuses
    one of them to everyone, and all managers and HR together isolate no one."""
    org = await build_org(db, [None, 0, 0, 0], [6, 1, 2, 8])  # T0 root, T1 = P
    # Re-hang A and B under P (T1): parents by team id.
    from bot.db.models import Team

    async with db.session() as session:
        p, a, b = (org.team_ids[i] for i in (1, 2, 3))
        for child in (a, b):
            (await session.get(Team, child)).parent_id = p  # type: ignore[union-attr]
            org.parent[child] = p
    settings_k = make_settings(db.url)
    campaign = await pulse_campaign(db)
    everyone = {
        person: {
            "sat_overall": 4,
            "intent_stay": 4,
            "enps": person % 11,
            "trust_manager": 3,
            "frustration": 2,
        }
        for person in org.team_of
    }
    await close_a_round(db, settings_k, org, campaign, 1, everyone)
    requests = [(org.managers[team], team, 1) for team in org.names] + [
        (org.hr, team, 1) for team in [None, *org.names]
    ]
    pool = await ask_everything(db, org, 5, requests)
    assert smallest_isolated(pool) is None
    shown = {frozenset(v[1] for v in row) for row in pool.rows["respondents"]}
    p_people = {q for q, t in org.team_of.items() if t in org.subtree(org.team_ids[1])}
    b_people = {q for q, t in org.team_of.items() if t == org.team_ids[3]}
    assert not (p_people in shown and b_people in shown)  # never both, to anyone


async def test_one_person_on_two_routes_sees_one_plan(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """HR asks chat for the organisation and three teams, then the command line for the
    fourth: whatever each route shows comes from the same plan, so together they isolate
    no one (before, the command line was a separate viewer with a history of its own)."""
    settings_ = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings_, db, clock)
    async with db.session() as session:
        from sqlalchemy import select

        from bot.db.models import Team

        teams = {t.name: t.id for t in await session.scalars(select(Team))}
        people = list(await session.scalars(select(Person)))
    few = {p.id for p in people if p.team_id == teams["HR & People"]}
    few = set(sorted(few)[:2]) | {
        sorted(p.id for p in people if p.team_id == teams["Headquarters"])[0]
    }

    def answers(person: Person, number: int) -> dict[str, int | str | None] | None:
        if person.team_id in (teams["HR & People"], teams["Headquarters"]) and person.id not in few:
            return None
        return {"sat_overall": 4, "intent_stay": person.id % 5 + 1, "enps": person.id % 11}

    await closed_round(db, campaign, 1, ["sat_overall", "intent_stay", "enps"], answers)
    service = LoyaltyService(settings_)
    hr = "hr@demo.fidelio.example"
    chat: dict[str | None, Summary | Unreportable] = {}
    async with db.session() as session:
        tree = await TeamTree.load(session)
        for name in (None, "Sales Milano", "Sales Roma", "Customer Care"):
            scope = tree.scope(None if name is None else teams[name])
            chat[name] = await service.summarise(
                session, "person:hr", scope, Window(last=1), NOW, tree=tree
            )
    cli = await loyalty_report(settings_, "Marketing", None, 1, "json", "en", hr)
    import json

    marketing = json.loads(str(cli))
    async with db.session() as session:
        tree = await TeamTree.load(session)
        again = await service.summarise(
            session, "person:other", tree.scope(teams["Marketing"]), Window(last=1), NOW, tree=tree
        )
    # The command line answers exactly what any other viewer gets: one plan for everyone.
    assert marketing["reportable"] == isinstance(again, Summary)
    shown_teams = [name for name, r in chat.items() if isinstance(r, Summary)]
    if marketing["reportable"]:
        shown_teams.append("Marketing")
    org_n = chat[None].headline.respondents  # type: ignore[union-attr]
    shown_n = sum(
        r.headline.respondents  # type: ignore[union-attr]
        for name, r in chat.items()
        if name is not None and isinstance(r, Summary)
    ) + (marketing["summary"]["headline"]["respondents"] if marketing["reportable"] else 0)
    # What the organisation has beyond the teams shown is never 1 to k-1 people.
    assert not 0 < org_n - shown_n < 5
    # HR & People (2 respondents) is never shown, by any route.
    cli_hr = json.loads(
        str(await loyalty_report(settings_, "HR & People", None, 1, "json", "en", hr))
    )
    assert cli_hr["reportable"] is False


async def test_open_rounds_are_never_reported(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Rule 5: a round still open is left out of every summary."""
    from bot.loyalty.service import NoClosedRounds
    from bot.pulse.tables import RoundStatus, SurveyRound

    settings_ = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings_, db, clock)
    items = ["sat_overall", "intent_stay", "enps"]

    def answers(person: Person, number: int) -> dict[str, int | str | None]:
        return {"sat_overall": 4, "intent_stay": 4, "enps": 9}

    first = await closed_round(db, campaign, 1, items, answers)
    second = await closed_round(db, campaign, 2, items, answers)
    async with db.session() as session:
        round_ = await session.get(SurveyRound, second)
        assert round_ is not None
        round_.status, round_.secret = RoundStatus.open, b"s" * 32
    service = LoyaltyService(settings_)
    async with db.session() as session:
        tree = await TeamTree.load(session)
        result = await service.summarise(session, "v", tree.scope(None), Window(last=6), NOW)
    assert isinstance(result, Summary)
    assert [r.round_id for r in result.rounds] == [first]
    async with db.session() as session:
        round_ = await session.get(SurveyRound, first)
        assert round_ is not None
        round_.status = RoundStatus.open
    async with db.session() as session:
        with pytest.raises(NoClosedRounds):
            await service.summarise(session, "v", tree.scope(None), Window(last=6), NOW)


async def test_heat_map_lists_unplanned_teams_without_figures(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Every team of the round is a row: a team the plan does not release has every cell
    None and the reason, never a figure; a parent's row says it covers its sub-teams (or the
    whole organisation); the organisation itself is not a row."""
    from datetime import UTC, datetime

    from bot.db.models import Team
    from bot.loyalty.service import TOO_FEW, closed_rounds
    from bot.loyalty.tables import ReleaseGroup

    settings_ = make_settings(database_url)
    await load_demo(db, clock)
    async with db.session() as session:
        teams_by_name = {t.name: t for t in await session.scalars(select(Team))}
        sales = Team(
            name="Sales",
            parent_id=teams_by_name["Headquarters"].id,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        session.add(sales)
        await session.flush()
        for name in ("Sales Milano", "Sales Roma"):
            teams_by_name[name].parent_id = sales.id
    campaign = await schedule_survey(settings_, db, clock)
    items = ["sat_overall", "intent_stay", "enps", "trust_manager", "frustration"]

    def answers(person: Person, number: int) -> dict[str, int | str | None]:
        return {key: (7 if key == "enps" else 1 + person.id % 5) for key in items}

    round_id = await closed_round(db, campaign, 1, items, answers)
    async with db.session() as session:
        planned = set(
            await session.scalars(
                select(ReleaseGroup.group_key).where(ReleaseGroup.round_id == round_id)
            )
        )
    service = LoyaltyService(settings_)
    async with db.session() as session:
        rounds = await closed_rounds(session, Window(last=1))
        heat = await service.heatmap(session, "hr", rounds[0], NOW)
        tree = await TeamTree.load(session)
    assert heat.dimensions == sorted(
        {"overall_satisfaction", "intent_to_stay", "trust_manager", "frustration"}
    )
    rows = {row.name: row for row in heat.rows}
    # Every team of the round, in tree order, and no row for the organisation.
    assert heat.names == [tree.names[t] for t in tree.depth_order()]
    hidden = rows["HR & People"]  # 4 people: not in the plan
    assert hidden.cells == [None] * len(heat.dimensions) and hidden.reason == TOO_FEW
    assert hidden.team_id not in planned
    for row in heat.rows:
        released = row.team_id in planned
        assert (row.reason is None) == released, row
        if not released:
            assert all(v is None for v in row.cells), row
        assert all(v is None or 0 <= v <= 100 for v in row.cells)
    for name in ("Sales Milano", "Sales Roma", "Customer Care"):
        assert rows[name].reason is None and any(v is not None for v in rows[name].cells)
    # What each row covers: a leaf team, a parent with its sub-teams, the root = everyone.
    assert rows["Sales Milano"].covers == "team"
    assert rows["Sales"].covers == "subtree"
    assert rows["Headquarters"].covers == "organisation"


def test_attack_pool_takes_no_figure_from_a_hidden_heat_map_row() -> None:
    """A heat map row of a team outside the plan (every cell None) tells the attacker's
    model nothing; a shown cell is one figure over its subtree's people."""
    org = Org(
        parent={1: None, 2: 1},
        names={1: "Root", 2: "Small"},
        team_of={10: 1, 11: 1, 12: 2},
        answers={7: {10: {"sat_overall": 4}, 11: {"sat_overall": 5}, 12: {"sat_overall": 2}}},
    )
    pool = Pool(org, 3)
    pool.add_heatmap(7, ["Small"], ["overall_satisfaction"], [[None]])
    assert pool.figures == 0 and not pool.rows
    pool.add_heatmap(7, ["Root", "Small"], ["overall_satisfaction"], [[67.0], [None]])
    assert pool.figures == 1
    assert pool.rows["likert"] == {frozenset((7, p, "sat_overall") for p in (10, 11, 12))}
