"""The anonymity rules (MEASUREMENT.md 1-6): thresholds in config, parent/child and
overlapping-filter differencing refused, and — property-based — no sequence of summary,
filter, breakdown or export requests by one viewer determines an individual answer."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import AnonymitySettings
from bot.db.models import Person, Team
from bot.db.session import Database
from bot.loyalty.anonymity import Rules, TeamSet, cells
from bot.loyalty.service import LoyaltyService, Summary, TeamTree, Unreportable, Window

from .harness import load_demo, make_settings
from .loyalty_seed import closed_round, schedule_survey

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def rules(k: int = 5) -> Rules:
    return Rules(AnonymitySettings(min_group=k, comment_min_group=max(k, 10)))


# --- configuration ----------------------------------------------------------------------------


def test_k_below_three_is_a_config_error(database_url: str) -> None:
    with pytest.raises(ValidationError, match="min_group"):
        make_settings(database_url, anonymity={"min_group": 2})
    with pytest.raises(ValidationError, match="comment_min_group"):
        make_settings(database_url, anonymity={"min_group": 6, "comment_min_group": 5})
    assert make_settings(database_url, anonymity={"min_group": 3}).anonymity.min_group == 3


# --- the rules one by one -----------------------------------------------------------------------


def test_rule_1_and_comments() -> None:
    r = rules(5)
    assert not r.group_ok(4) and r.group_ok(5)
    assert not r.comments_ok(9) and r.comments_ok(10)


def test_rule_2_remainder() -> None:
    r = rules(5)
    assert not r.remainder_ok(parent_n=14, group_n=11)  # the other 3 could be subtracted out
    assert r.remainder_ok(parent_n=16, group_n=11)
    assert r.remainder_ok(parent_n=11, group_n=11)  # nothing left over


def test_rule_3_complementary_suppression() -> None:
    r = rules(5)
    # One sibling is small: the next-smallest is hidden with it.
    assert r.suppress_breakdown(30, {"a": 3, "b": 6, "c": 21}) == {"a", "b"}
    # Hidden rest still under k: keep hiding.
    assert r.suppress_breakdown(30, {"a": 1, "b": 2, "c": 27}) == {"a", "b", "c"}
    assert r.suppress_breakdown(30, {"a": 10, "b": 20}) == set()
    # Direct members of the parent (30 - 26 = 4) would be revealed by subtraction.
    assert r.suppress_breakdown(30, {"a": 10, "b": 16}) == {"a"}


def test_parent_child_differencing_is_refused() -> None:
    r = rules(5)
    counts = {1: 3, 2: 11}  # team 1 = the parent's own members, team 2 = the child
    parent: TeamSet = frozenset({1, 2})
    child: TeamSet = frozenset({2})
    assert r.history_ok([], parent, counts)
    assert not r.history_ok([parent], child, counts)  # 14 - 11 = 3 people isolated
    assert not r.may_release([], child, parent, counts)  # rule 2 refuses it for anyone


def test_overlapping_filters_are_refused() -> None:
    r = rules(5)
    counts = {1: 2, 2: 10, 3: 2}
    first: TeamSet = frozenset({1, 2})
    second: TeamSet = frozenset({2, 3})
    assert r.history_ok([], first, counts) and r.history_ok([], second, counts)
    assert not r.history_ok([first], second, counts)
    assert sorted(cells([first, second], counts)) == [2, 2, 10]
    # Asking the very same thing again reveals nothing new.
    assert r.history_ok([first], first, counts)


# --- the whole pipeline on a database -----------------------------------------------------------


async def test_same_viewer_cannot_isolate_people_by_asking_around(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Headquarters' own staff and HR & People answer with 3 people together: after the
    organisation and four of the five sub-teams, the fifth would leave those 3 as a cell."""
    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    async with db.session() as session:
        teams = {t.name: t.id for t in await session.scalars(select(Team))}
        people = list(await session.scalars(select(Person)))
    few = {p.id for p in people if p.team_id == teams["HR & People"]}
    few = set(sorted(few)[:2]) | {
        sorted(p.id for p in people if p.team_id == teams["Headquarters"])[0]
    }

    def answers(person: Person, number: int) -> dict[str, int | None] | None:
        if person.team_id in (teams["HR & People"], teams["Headquarters"]) and person.id not in few:
            return None
        return {"sat_overall": 4, "intent_stay": person.id % 5 + 1, "enps": person.id % 11}

    await closed_round(db, campaign, 1, ["sat_overall", "intent_stay", "enps"], answers)
    service = LoyaltyService(settings)
    window = Window(last=1)

    async def ask(viewer: str, name: str | None) -> Summary | Unreportable:
        async with db.session() as session:
            tree = await TeamTree.load(session)
            scope = tree.scope(None if name is None else teams[name])
            return await service.summarise(session, viewer, scope, window, NOW, tree=tree)

    assert isinstance(await ask("person:1", None), Summary)
    for name in ("Sales Milano", "Sales Roma", "Customer Care"):
        assert isinstance(await ask("person:1", name), Summary), name
    refused = await ask("person:1", "Marketing")
    assert isinstance(refused, Unreportable)
    assert refused.fallback is not None and refused.fallback.scope.is_org
    # Asking again, or with another window, changes nothing.
    assert isinstance(await ask("person:1", "Marketing"), Unreportable)
    # The rule is per viewer: someone who saw less may see Marketing.
    assert isinstance(await ask("person:2", "Marketing"), Summary)
    # HR & People has 2 answers: never shown, to anyone.
    assert isinstance(await ask("person:3", "HR & People"), Unreportable)


# --- property: nothing a viewer sees determines one person's answer --------------------------


@st.composite
def org_and_requests(
    draw: st.DrawFn,
) -> tuple[int, dict[int, int | None], dict[int, int], list[tuple[str, int | None]]]:
    size = draw(st.integers(min_value=1, max_value=8))
    parent: dict[int, int | None] = {0: None}
    for team in range(1, size):
        parent[team] = draw(st.integers(min_value=0, max_value=team - 1))
    counts = {team: draw(st.integers(min_value=0, max_value=9)) for team in range(size)}
    k = draw(st.sampled_from([3, 4, 5]))
    kinds = st.sampled_from(["summary", "breakdown"])
    targets = st.one_of(st.none(), st.integers(min_value=0, max_value=size - 1))
    requests = draw(st.lists(st.tuples(kinds, targets), max_size=12))
    return k, parent, counts, requests


def _subtree(parent: dict[int, int | None], root: int) -> TeamSet:
    out = {root}
    changed = True
    while changed:
        changed = False
        for team, p in parent.items():
            if p in out and team not in out:
                out.add(team)
                changed = True
    return frozenset(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(org_and_requests())
def test_no_request_sequence_determines_an_individual(
    case: tuple[int, dict[int, int | None], dict[int, int], list[tuple[str, int | None]]],
) -> None:
    k, parent, counts, requests = case
    r = rules(k)
    everyone: TeamSet = frozenset(parent)
    shown: list[TeamSet] = []

    def offer(group: TeamSet, group_parent: TeamSet | None) -> None:
        # What LoyaltyService does for each round of a summary (rules 1, 2 and 4).
        if r.may_release(shown, group, group_parent, counts):
            shown.append(group)

    for kind, target in requests:
        root_set = everyone if target is None else _subtree(parent, target)
        parent_set = None
        if target is not None and parent[target] is not None:
            parent_set = _subtree(parent, parent[target])  # type: ignore[arg-type]
        if kind == "summary":
            offer(root_set, parent_set)
            continue
        # A breakdown (heat map / export by team): children of the target side by side.
        children = [t for t, p in parent.items() if p == (target if target is not None else 0)]
        groups = {child: sum(counts[t] for t in _subtree(parent, child)) for child in children}
        hidden = r.suppress_breakdown(sum(counts[t] for t in root_set), groups)
        for child in children:
            if child not in hidden and r.group_ok(groups[child]):
                if r.history_ok(shown, _subtree(parent, child), counts):
                    shown.append(_subtree(parent, child))

    # Individuals, team by team; each shown figure is a sum over one set of them.
    owner = [team for team in sorted(counts) for _ in range(counts[team])]
    if not shown or not owner:
        return
    matrix = np.array([[1.0 if team in s else 0.0 for team in owner] for s in shown])
    assert all(row.sum() >= k for row in matrix)  # rule 1 on every released figure
    rank = np.linalg.matrix_rank(matrix)
    for person in range(len(owner)):
        unit = np.zeros(len(owner))
        unit[person] = 1.0
        # If e_i were a combination of the shown sums, person i's answer would be known.
        assert np.linalg.matrix_rank(np.vstack([matrix, unit])) > rank


def test_property_checker_catches_a_leak() -> None:
    """The same check flags the classic attack when the history rule is left out."""
    owner = [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]  # one direct member, two sub-teams of 5
    sets = [{0, 1, 2}, {1}, {2}]
    matrix = np.array([[1.0 if t in s else 0.0 for t in owner] for s in sets])
    unit = np.zeros(len(owner))
    unit[0] = 1.0
    assert np.linalg.matrix_rank(np.vstack([matrix, unit])) == np.linalg.matrix_rank(matrix)
    r = rules(5)
    counts = {0: 1, 1: 5, 2: 5}
    shown = [frozenset({0, 1, 2}), frozenset({1})]
    assert not r.history_ok(shown, frozenset({2}), counts)


def test_random_answer_sets_keep_cells_at_k() -> None:
    rng = random.Random(3)
    r = rules(5)
    for _ in range(200):
        counts = {t: rng.randint(0, 8) for t in range(6)}
        shown: list[TeamSet] = []
        for _ in range(8):
            group = frozenset(t for t in range(6) if rng.random() < 0.5)
            if r.group_ok(sum(counts[t] for t in group)) and r.history_ok(shown, group, counts):
                shown.append(group)
        assert all(size >= 5 for size in cells(shown, counts))


async def test_open_rounds_are_never_reported(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Rule 5: a round still open (its secret alive) is left out of every summary."""
    from bot.db.models import RoundStatus, SurveyRound
    from bot.loyalty.service import NoClosedRounds

    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    items = ["sat_overall", "intent_stay", "enps"]

    def answers(person: Person, number: int) -> dict[str, int | None]:
        return {"sat_overall": 4, "intent_stay": 4, "enps": 9}

    first = await closed_round(db, campaign, 1, items, answers)
    second = await closed_round(db, campaign, 2, items, answers)
    async with db.session() as session:
        round_ = await session.get(SurveyRound, second)
        assert round_ is not None
        round_.status, round_.secret = RoundStatus.open, b"s" * 32
    service = LoyaltyService(settings)
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


async def test_heat_map_hides_small_teams_and_their_complement(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    from bot.loyalty.service import closed_rounds

    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    items = ["sat_overall", "intent_stay", "enps", "trust_manager", "frustration"]

    def answers(person: Person, number: int) -> dict[str, int | None]:
        return {key: (7 if key == "enps" else 1 + person.id % 5) for key in items}

    await closed_round(db, campaign, 1, items, answers)
    service = LoyaltyService(settings)
    async with db.session() as session:
        rounds = await closed_rounds(session, Window(last=1))
        teams, dimensions, values = await service.heatmap(session, "hr", rounds[0], NOW)
    assert "HR & People" not in teams  # 4 people
    # Complementary suppression: the next-smallest sibling (Marketing, 7) goes with it.
    assert "Marketing" not in teams
    assert {"Sales Milano", "Sales Roma", "Customer Care"} <= set(teams)
    assert dimensions == sorted(
        {"overall_satisfaction", "intent_to_stay", "trust_manager", "frustration"}
    )
    assert all(v is None or 0 <= v <= 100 for row in values for v in row)
