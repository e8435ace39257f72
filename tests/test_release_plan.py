"""The release plan of a closed round (MEASUREMENT.md, anonymity rule 4), checked without a
database: worked cases, an exhaustive cross-check on small trees, and an attack by every
viewer together.

The attack is the promise taken literally. Each released figure of a group is a sum over
the people in it who count for that measure (their answers, and the count n itself). All
viewers pooling everything they saw know, per measure, the sums over the sets of people of
the released groups, so what they can determine is exactly the row space of the matrix whose
rows are those sets' indicator vectors. The plan is safe when no individual's unit vector,
and no indicator of fewer than k people, lies in that row space. The same attack run on what
the previous per-viewer rules released finds the leaks that rule 4 was rewritten for.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.previous_rules import Rules
from bot.config import AnonymitySettings
from bot.loyalty.plan import ORG, Plan, TreeShape, choose_groups, decide

# A small organisation with people


@dataclass
class Org:
    """Teams (parent per team, None at the top) and their members; people are numbered."""

    parent: dict[int, int | None]
    team_of: dict[int, int] = field(default_factory=dict)  # person -> own team
    responded: set[int] = field(default_factory=set)
    answered: dict[str, set[int]] = field(default_factory=dict)  # item -> people

    @property
    def shape(self) -> TreeShape:
        return TreeShape(dict(self.parent))

    def add(self, team: int, count: int) -> list[int]:
        """Add ``count`` members to ``team``, all of them respondents answering every item."""
        start = len(self.team_of)
        people = list(range(start, start + count))
        for person in people:
            self.team_of[person] = team
            self.responded.add(person)
            for who in self.answered.values():
                who.add(person)
        return people

    def subtree(self, group: int) -> set[int]:
        """The teams a group covers (the organisation: all)."""
        if group == ORG:
            return set(self.parent)
        out = {group}
        changed = True
        while changed:
            changed = False
            for team, parent in self.parent.items():
                if parent in out and team not in out:
                    out.add(team)
                    changed = True
        return out

    def people_in(self, group: int, counting: set[int]) -> frozenset[int]:
        teams = self.subtree(group)
        return frozenset(p for p in counting if self.team_of[p] in teams)

    def per_team(self, counting: Iterable[int]) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for person in counting:
            out[self.team_of[person]] += 1
        return dict(out)

    def decide(self, k: int) -> Plan:
        measures = {item: self.per_team(who) for item, who in self.answered.items()}
        return decide(self.shape, self.per_team(self.responded), measures, k)

    def releases(self, plan: Plan) -> dict[str, list[frozenset[int]]]:
        """Per measure, the sets of people whose sums the plan lets anyone see."""
        out = {"respondents": [self.people_in(g, self.responded) for g in sorted(plan.groups)]}
        for item, groups in plan.measures.items():
            out[item] = [self.people_in(g, self.answered[item]) for g in sorted(groups)]
        return out


def atoms(shape: TreeShape, counts: Mapping[int, int], groups: Iterable[int]) -> dict[int, int]:
    """People per atom, named by the smallest planned group holding them (computed here
    independently of the plan module)."""
    planned = set(groups)
    out: dict[int, int] = defaultdict(int)
    for team, n in counts.items():
        owner: int | None = team
        while owner is not None and owner not in planned:
            owner = shape.parent.get(owner)
        out[ORG if owner is None else owner] += n
    return dict(out)


def atoms_ok(shape: TreeShape, counts: Mapping[int, int], groups: Iterable[int], k: int) -> bool:
    planned = set(groups)
    if not planned:
        return True
    return all(n == 0 or n >= k for n in atoms(shape, counts, planned).values())


# Exact linear algebra over the rationals

Vector = dict[int, Fraction]


class RowSpace:
    """The row space of a 0/1 matrix over the rationals, kept in reduced row echelon form
    with sparse rows (people are columns; a row holds only the people in its set)."""

    def __init__(self, rows: Iterable[Iterable[int]] = ()) -> None:
        self.pivots: dict[int, Vector] = {}  # pivot column -> row: 1 there, 0 at other pivots
        for row in rows:
            self.add(indicator(row))

    @property
    def rank(self) -> int:
        return len(self.pivots)

    def reduce(self, vector: Mapping[int, Fraction | int]) -> Vector:
        """``vector`` minus its component in the span of the rows: empty iff it is in the span."""
        out: Vector = {c: Fraction(x) for c, x in vector.items() if x}
        # Subtracting a reduced row never touches another pivot column, so one pass over
        # the pivots present at the start is enough.
        for column in [c for c in out if c in self.pivots]:
            factor = out.get(column, Fraction(0))
            if not factor:
                continue
            for c, x in self.pivots[column].items():
                value = out.get(c, Fraction(0)) - factor * x
                if value:
                    out[c] = value
                else:
                    out.pop(c, None)
        return out

    def add(self, vector: Mapping[int, Fraction | int]) -> None:
        rest = self.reduce(vector)
        if not rest:
            return
        pivot = min(rest)
        scale = rest[pivot]
        rest = {c: x / scale for c, x in rest.items()}
        for row in self.pivots.values():
            factor = row.get(pivot)
            if factor:
                for c, x in rest.items():
                    value = row.get(c, Fraction(0)) - factor * x
                    if value:
                        row[c] = value
                    else:
                        row.pop(c, None)
        self.pivots[pivot] = rest

    def rank_with(self, vector: Mapping[int, Fraction | int]) -> int:
        """rank([M; vector])."""
        return self.rank + (1 if self.reduce(vector) else 0)

    def determines(self, people: Iterable[int]) -> bool:
        """True when the sum over ``people`` is a linear combination of the released sums."""
        return self.rank_with(indicator(people)) == self.rank


def indicator(people: Iterable[int]) -> Vector:
    return {p: Fraction(1) for p in people}


@dataclass(frozen=True)
class Leak:
    measure: str
    people: frozenset[int]


def attack(
    releases: Mapping[str, Sequence[frozenset[int]]], everyone: Iterable[int], k: int
) -> list[Leak]:
    """Every set of fewer than k people whose sum the released sums determine, per measure:
    single people by rank, then every class of people with identical columns (and unions
    of the small ones) by rank too."""
    people = sorted(everyone)
    leaks: list[Leak] = []
    for measure, sets in sorted(releases.items()):
        space = RowSpace(sets)
        # (a) nobody alone: e_p outside the row space, i.e. rank([M; e_p]) > rank(M).
        for person in people:
            if space.rank_with({person: 1}) == space.rank:
                leaks.append(Leak(measure, frozenset({person})))
        # (b) every vector of the row space is constant on people with identical columns,
        # so the smallest determinable set is a union of classes with a non-zero column.
        columns: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for person in people:
            columns[tuple(i for i, s in enumerate(sets) if person in s)].add(person)
        small = [frozenset(c) for sig, c in columns.items() if sig and len(c) < k]
        for size in range(1, min(len(small), k - 1) + 1):
            for union in itertools.combinations(small, size):
                group = frozenset().union(*union)
                if len(group) < k and space.determines(group):
                    leaks.append(Leak(measure, group))
        # The rank check above proves it; the class sizes say the same thing directly.
        for signature, members in columns.items():
            if signature and len(members) < k:
                leaks.append(Leak(measure, frozenset(members)))
    return sorted(set(leaks), key=lambda leak: (leak.measure, sorted(leak.people)))


def rules(k: int) -> Rules:
    return Rules(AnonymitySettings(min_group=k, comment_min_group=max(k, 10)))


# Worked cases


def test_small_team_beside_a_large_sibling_never_leaves_a_small_atom() -> None:
    # A parent with 3 own members, a 2-person team and a 10-person sibling under it.
    org = Org({1: None, 2: 1, 3: 1})
    org.add(1, 3)
    org.add(2, 2)
    org.add(3, 10)
    counts = org.per_team(org.responded)
    plan = org.decide(5)
    assert plan.groups == {ORG, 1, 3}  # the parent's atom: its 3 + the 2-person team = 5
    assert atoms(org.shape, counts, plan.groups) == {1: 5, 3: 10}
    # With only 2 own members the parent's atom would hold 4: something must give.
    org2 = Org({1: None, 2: 1, 3: 1})
    org2.add(1, 2)
    org2.add(2, 2)
    org2.add(3, 10)
    plan2 = org2.decide(5)
    counts2 = org2.per_team(org2.responded)
    assert all(n == 0 or n >= 5 for n in atoms(org2.shape, counts2, plan2.groups).values())
    assert not {1, 3} <= plan2.groups
    assert len(plan2.groups - {ORG}) == 1
    for groups in _all_choices(org2.shape, counts2, 5):
        sizes = atoms(org2.shape, counts2, groups).values()
        if any(0 < n < 5 for n in sizes):
            assert set(groups) != set(plan2.groups)


def test_hiding_the_smallest_sibling_beats_hiding_the_parent() -> None:
    # G (no own respondents) holds P and a 10-person team D; P (none of its own) holds a
    # 2-person team A, a 6-person team B and a 20-person team C. P's atom would hold only
    # A's 2: hiding B (6 + 2 = 8) keeps G, P, C and D; hiding P instead pushes A's 2 into
    # G's atom, which then needs D hidden too.
    org = Org({1: None, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2})  # G=1, P=2, D=3, A=4, B=5, C=6
    org.add(3, 10)
    org.add(4, 2)
    org.add(5, 6)
    org.add(6, 20)
    plan = org.decide(5)
    assert plan.groups == {ORG, 1, 2, 3, 6}
    assert atoms(org.shape, org.per_team(org.responded), plan.groups) == {2: 8, 3: 10, 6: 20}


def test_an_organisation_under_k_gets_an_empty_plan() -> None:
    org = Org({1: None, 2: 1})
    org.add(1, 2)
    org.add(2, 2)
    plan = org.decide(5)
    assert plan.groups == frozenset()
    assert plan.measures == {}
    assert org.releases(plan) == {"respondents": []}
    assert choose_groups(org.shape, {1: 2, 2: 2}, 5) == frozenset()


def test_the_same_inputs_give_the_same_plan_whatever_the_order() -> None:
    rng = random.Random(11)
    parent: dict[int, int | None] = {1: None}
    for team in range(2, 40):
        parent[team] = rng.randrange(1, team)
    respondents = {team: rng.randint(0, 9) for team in parent}
    measures = {
        item: {t: max(0, n - rng.randint(0, 2)) for t, n in respondents.items()}
        for item in ("q1", "q2", "q3")
    }
    first = decide(TreeShape(parent), respondents, measures, 5)
    assert len(first.groups) > 1
    for _ in range(20):
        order = list(parent)
        rng.shuffle(order)
        shuffled_measures = {
            item: {t: measures[item][t] for t in order}
            for item in rng.sample(sorted(measures), len(measures))
        }
        again = decide(
            TreeShape({t: parent[t] for t in order}),
            {t: respondents[t] for t in order},
            shuffled_measures,
            5,
        )
        assert again.groups == first.groups
        assert again.measures == first.measures
        assert again.atom_of_team == first.atom_of_team


def test_an_item_too_few_of_an_atom_answered_is_withheld_but_not_the_team() -> None:
    # Three 6-person teams; only 1 person of team 1 answered q.
    org = Org({1: None, 2: None, 3: None}, answered={"q": set()})
    for team in (1, 2, 3):
        org.add(team, 6)
    org.answered["q"] -= {p for p, t in org.team_of.items() if t == 1 and p != 0}
    plan = org.decide(5)
    assert plan.groups == {ORG, 1, 2, 3}
    # Team 1 cannot show q (1 answer), and showing both 2 and 3 would leave that 1 answer
    # as the organisation's remainder: one of them (the lower id on a tie) shows q.
    assert plan.measures["q"] == {ORG, 2}
    assert atoms(org.shape, org.per_team(org.answered["q"]), plan.measures["q"]) == {ORG: 7, 2: 6}
    assert attack(org.releases(plan), org.team_of, 5) == []


# Exhaustive cross-check on small trees


def _all_choices(shape: TreeShape, counts: Mapping[int, int], k: int) -> list[frozenset[int]]:
    """Every choice of team subtrees with at least k people, plus the organisation."""
    totals = {t: sum(counts.get(x, 0) for x in shape.subtree(t)) for t in shape.parent}
    big = sorted(t for t, n in totals.items() if n >= k)
    return [
        frozenset(chosen) | {ORG}
        for size in range(len(big) + 1)
        for chosen in itertools.combinations(big, size)
    ]


@st.composite
def small_trees(draw: st.DrawFn) -> tuple[TreeShape, dict[int, int], int]:
    size = draw(st.integers(1, 7))
    parent: dict[int, int | None] = {}
    for team in range(1, size + 1):
        parent[team] = draw(st.sampled_from([None, *range(1, team)]))
    counts = {team: draw(st.integers(0, 12)) for team in parent}
    return TreeShape(parent), counts, draw(st.sampled_from([3, 4, 5]))


@settings(max_examples=300, deadline=None)
@given(small_trees())
def test_choose_groups_releases_as_many_teams_as_the_best_valid_choice(
    case: tuple[TreeShape, dict[int, int], int],
) -> None:
    shape, counts, k = case
    chosen = choose_groups(shape, counts, k)
    if sum(counts.values()) < k:
        assert chosen == frozenset()
        return
    valid = [c for c in _all_choices(shape, counts, k) if atoms_ok(shape, counts, c, k)]
    assert ORG in chosen
    assert chosen in valid
    assert len(chosen) == max(len(c) for c in valid)


# The attack: every viewer together


@st.composite
def organisations(draw: st.DrawFn) -> tuple[Org, int]:
    """1-25 teams up to 4 levels deep, 1-30 members each; who responds and who answers each
    of 2-4 items is drawn per person from a seed (probabilities drawn per example)."""
    size = draw(st.integers(1, 25))
    depth: dict[int, int] = {}
    created: dict[int, int | None] = {}
    for team in range(size):
        options = [None, *(t for t in range(team) if depth[t] < 4)]
        parent = draw(st.sampled_from(options))
        created[team] = parent
        depth[team] = 1 if parent is None else depth[parent] + 1
    members = [draw(st.integers(1, 30)) for _ in range(size)]
    k = draw(st.sampled_from([3, 4, 5]))
    respond = draw(st.floats(0.2, 1.0))
    items = {f"q{i}": draw(st.floats(0.3, 1.0)) for i in range(draw(st.integers(2, 4)))}
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    ids = rng.sample(range(1, size + 1), size)  # ids in no particular tree order
    org = Org(
        {ids[t]: None if p is None else ids[p] for t, p in created.items()},
        answered={item: set() for item in items},
    )
    person = 0
    for team, count in enumerate(members):
        for _ in range(count):
            org.team_of[person] = ids[team]
            if rng.random() < respond:
                org.responded.add(person)
                for item, chance in items.items():
                    if rng.random() < chance:
                        org.answered[item].add(person)
            person += 1
    return org, k


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organisations())
def test_no_collusion_of_viewers_isolates_fewer_than_k_people(case: tuple[Org, int]) -> None:
    org, k = case
    plan = org.decide(k)
    counts = org.per_team(org.responded)
    assert atoms_ok(org.shape, counts, plan.groups, k)
    for item, groups in plan.measures.items():
        assert groups <= plan.groups
        assert atoms_ok(org.shape, org.per_team(org.answered[item]), groups, k)
    if len(org.responded) >= k:
        assert ORG in plan.groups
    else:
        assert plan.groups == frozenset()
    assert attack(org.releases(plan), org.team_of, k) == []


# The same attack on the previous per-viewer rules


def todays_releases(org: Org, k: int) -> dict[str, set[int]]:
    """What the previous rules let each viewer see of a round's respondents, viewer by viewer:
    HR the organisation and its top-level breakdown; each team's manager their team when it
    passes rules 1 and 2 against its parent, and (as the summary's breakdown and the heat map
    did) that team's children, with rule 3 applied among those children only. Nothing was
    coordinated across viewers: one manager's suppression did not hide another's team."""
    check = rules(k)
    counts = org.per_team(org.responded)
    total = {t: sum(counts.get(x, 0) for x in org.subtree(t)) for t in org.parent}
    kids: dict[int, list[int]] = defaultdict(list)
    for team, parent in org.parent.items():
        kids[ORG if parent is None else parent].append(team)
    everyone = sum(counts.values())

    def breakdown(parent_n: int, children: list[int]) -> set[int]:
        sizes = {c: total[c] for c in children}
        hidden = check.suppress_breakdown(parent_n, sizes)
        return {c for c in children if c not in hidden and check.group_ok(total[c])}

    views: dict[str, set[int]] = {}
    if check.group_ok(everyone):
        views["hr"] = {ORG} | breakdown(everyone, kids[ORG])
    for team, parent in org.parent.items():
        parent_n = everyone if parent is None else total[parent]
        if check.group_ok(total[team]) and check.remainder_ok(parent_n, total[team]):
            views[f"manager:{team}"] = {team} | breakdown(total[team], kids[team])
    return views


def respondent_sets(org: Org, groups: Iterable[int]) -> dict[str, list[frozenset[int]]]:
    return {"respondents": [org.people_in(g, org.responded) for g in sorted(groups)]}


def test_sibling_managers_pooling_defeated_the_old_rules_but_not_the_plan() -> None:
    # P (no respondents of its own) holds a 2-person team A, a 10-person B and a 12-person C.
    org = Org({1: None, 2: 1, 3: 1, 4: 1})  # P=1, A=2, B=3, C=4
    small = set(org.add(2, 2))
    org.add(3, 10)
    org.add(4, 12)
    views = todays_releases(org, 5)
    # P's manager: P, and C in P's breakdown (A hidden, B with it by rule 3); B's manager
    # still sees B, since rule 3 only ran inside P's breakdown.
    assert views["manager:1"] == {1, 4}
    assert views["manager:3"] == {3}
    for view in views.values():  # each viewer alone was safe
        assert attack(respondent_sets(org, view), org.team_of, 5) == []
    pooled = views["manager:1"] | views["manager:3"]
    leaks = attack(respondent_sets(org, pooled), org.team_of, 5)
    # P - B - C is the sum over A's two people.
    assert Leak("respondents", frozenset(small)) in leaks
    assert RowSpace(respondent_sets(org, pooled)["respondents"]).determines(small)

    plan = org.decide(5)
    assert not {1, 3, 4} <= plan.groups
    released = org.releases(plan)
    assert not RowSpace(released["respondents"]).determines(small)
    assert attack(released, org.team_of, 5) == []


def test_one_person_on_two_routes_defeated_per_viewer_history_but_not_the_plan() -> None:
    # The CEO is the root team's only member; four 6-person teams sit under it.
    org = Org({1: None, 2: 1, 3: 1, 4: 1, 5: 1})
    ceo = org.add(1, 1)[0]
    for team in (2, 3, 4, 5):
        org.add(team, 6)
    check = rules(5)
    counts = org.per_team(org.responded)
    everyone = frozenset(org.parent)
    # HR asks in chat for the organisation and teams 2 and 3, then on the command line for
    # the organisation and teams 4 and 5. Each route kept its own history, and each
    # sequence passed rules 1, 2 and the history check at every step.
    chat = [everyone, frozenset({2}), frozenset({3})]
    command_line = [everyone, frozenset({4}), frozenset({5})]
    for route in (chat, command_line):
        shown: list[frozenset[int]] = []
        for teams in route:
            parent = None if teams == everyone else everyone
            assert check.may_release(shown, teams, parent, counts)
            shown.append(teams)
    pooled = {ORG, 2, 3, 4, 5}
    leaks = attack(respondent_sets(org, pooled), org.team_of, 5)
    assert Leak("respondents", frozenset({ceo})) in leaks

    # The plan is one for every route: whatever chat and the command line showed between
    # them is a subset of it, and all of it together isolates nobody.
    plan = org.decide(5)
    assert len(plan.groups & {2, 3, 4, 5}) == 3
    assert not RowSpace(org.releases(plan)["respondents"]).determines({ceo})
    assert attack(org.releases(plan), org.team_of, 5) == []


def test_the_old_rules_leak_on_random_organisations_too() -> None:
    """The attack has teeth on the same kind of organisations the property test draws:
    pooling the old per-viewer views isolates fewer than k people in many of them."""
    rng = random.Random(5)
    leaking = 0
    for _ in range(60):
        size = rng.randint(3, 25)
        parent: dict[int, int | None] = {1: None}
        for team in range(2, size + 1):
            parent[team] = rng.randrange(1, team)
        org = Org(parent)
        for team in parent:
            org.add(team, rng.randint(0, 12))
        views = todays_releases(org, 5)
        pooled = set().union(*views.values()) if views else set()
        if attack(respondent_sets(org, pooled), org.team_of, 5):
            leaking += 1
        assert attack(org.releases(org.decide(5)), org.team_of, 5) == []
    assert leaking >= 10
