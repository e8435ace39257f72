"""The release plan of a closed round (MEASUREMENT.md, anonymity rule 4), decided once.

When a round closes, Fidelio decides for everyone and for good which groups of that round
may ever be reported: the organisation and team subtrees. Every route (chat, digests, the
command line, report files, charts, heat maps, exports) reports only planned groups, so
whatever any number of viewers see together is a combination of planned groups.

**The guarantee.** Team subtrees are nested or disjoint, so the planned groups cut the
round's respondents into *atoms*: for each planned group, the respondents in it who are in
no smaller planned group. Every figure of a planned group is a sum over its atoms, and any
combination of figures is a combination of atoms. The plan keeps every atom at either zero
or at least k respondents, so no collusion of viewers isolates fewer than k people.

**Measures.** A figure counts different people: those who answered one item, those with
enough items for the index, those with a segment, complete cases for alpha. Each measure
gets a plan of its own, drawn from the round's plan groups with that measure's counts, so its
atoms too hold zero or at least k people who answered. (A group can show its respondents and
eNPS yet withhold an item that too few of one atom answered.)

**How it decides.** The organisation is always planned when it has k respondents (nothing
is released otherwise). Then, among all choices of team subtrees whose atoms hold 0 or >= k
people, it takes one that releases the most teams' own summaries; ties go to the choice
that covers more respondents with a team-level view, then to the lower team ids. It is an
exact dynamic programme over the tree, not a greedy pass: what a subtree passes up to its
parent is only the number of its respondents not yet in a planned group, and beyond k-1
that number no longer matters, so each team keeps at most k+1 candidate choices. Hiding a
small team therefore hides the smallest sibling needed with it (complementary suppression),
or its parent instead when that keeps more teams visible. The same inputs always give the
same plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

ORG = 0  # the organisation's group key; team ids start at 1


def subtree_of(team: int, children: Mapping[int, Iterable[int]]) -> frozenset[int]:
    """``team`` and every team below it, following ``children`` (safe on cycles)."""
    seen: set[int] = set()
    stack = [team]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(children.get(current, ()))
    return frozenset(seen)


@dataclass(frozen=True)
class TreeShape:
    """The org tree as it was when the round closed: parent of every team (None = root)."""

    parent: Mapping[int, int | None]

    @cached_property
    def kids(self) -> dict[int, list[int]]:
        """Children of every team (and of :data:`ORG`: the roots), built once per shape."""
        out: dict[int, list[int]] = {team: [] for team in self.parent}
        out[ORG] = []
        for team, parent in sorted(self.parent.items()):
            out[ORG if parent is None or parent not in self.parent else parent].append(team)
        return out

    def subtree(self, team: int) -> frozenset[int]:
        return subtree_of(team, self.kids) - {ORG}


# A choice within one subtree: (teams released, respondents in released groups); ties go to
# the lower sorted team ids, so the same inputs always give the same plan.
_Value = tuple[int, int]


@dataclass
class _Choice:
    value: _Value
    released: frozenset[int]

    def better_than(self, other: _Choice | None) -> bool:
        if other is None:
            return True
        if self.value != other.value:
            return self.value > other.value
        return sorted(self.released) < sorted(other.released)


def choose_groups(
    shape: TreeShape,
    counts: Mapping[int, int],
    k: int,
    candidates: Iterable[int] | None = None,
) -> frozenset[int]:
    """The planned groups for one measure: ``counts`` are that measure's people per team
    (the team's own members, not its subtree); ``candidates`` limits which teams may be
    planned (None = every team). Returns team ids, plus :data:`ORG` when the organisation
    is planned; an empty set when the organisation has fewer than k people."""
    if k < 1:
        raise ValueError("k must be positive")
    allowed = set(shape.parent) if candidates is None else set(candidates)
    kids = shape.kids
    big = k  # state k stands for "k or more people still outside any planned group"

    def cap(n: int) -> int:
        return min(n, big)

    totals: dict[int, int] = {}

    def solve(team: int) -> dict[int, _Choice]:
        own = counts.get(team, 0) if team != ORG else 0
        table: dict[int, _Choice] = {cap(own): _Choice((0, 0), frozenset())}
        total = own
        for child in kids.get(team, ()):
            child_table = solve(child)
            total += totals[child]
            merged: dict[int, _Choice] = {}
            for state_a, a in table.items():
                for state_b, b in child_table.items():
                    state = cap(state_a + state_b)
                    choice = _Choice(
                        (a.value[0] + b.value[0], a.value[1] + b.value[1]),
                        a.released | b.released,
                    )
                    if choice.better_than(merged.get(state)):
                        merged[state] = choice
            table = merged
        totals[team] = total
        if team == ORG or team not in allowed or total < k:
            return table
        # Released: what is still outside a planned group below must be 0 or >= k.
        best_released: _Choice | None = None
        for state in (0, big):
            below = table.get(state)
            if below is None:
                continue
            # Released, the whole subtree sits under a team-level group: coverage = total.
            choice = _Choice((below.value[0] + 1, total), below.released | {team})
            if choice.better_than(best_released):
                best_released = choice
        if best_released is not None and best_released.better_than(table.get(0)):
            table[0] = best_released
        return table

    root = solve(ORG)
    if totals[ORG] < k:
        return frozenset()
    # The organisation itself is planned, so what no team covers must be 0 or >= k too.
    best: _Choice | None = None
    for state in (0, big):
        choice = root.get(state)
        if choice is not None and choice.better_than(best):
            best = choice
    assert best is not None  # state big exists: releasing nothing leaves total >= k
    return best.released | {ORG}


@dataclass
class Plan:
    """One closed round's plan: the groups per measure, and each team's atom."""

    shape: TreeShape
    groups: frozenset[int]  # the round's plan (respondents); ORG included
    measures: dict[str, frozenset[int]] = field(default_factory=dict)
    atom_of_team: dict[int, int] = field(default_factory=dict)  # team -> owning group

    def members(self, group: int) -> frozenset[int]:
        """The teams whose respondents a group covers."""
        return frozenset(self.shape.parent) if group == ORG else self.shape.subtree(group)

    def atoms_of(self, group: int) -> frozenset[int]:
        """The atoms (named by their owning group) whose union is ``group``."""
        teams = self.members(group)
        return frozenset(owner for team, owner in self.atom_of_team.items() if team in teams)


def owner_of(shape: TreeShape, team: int, groups: frozenset[int]) -> int:
    """The smallest planned group that contains ``team``'s respondents."""
    current: int | None = team
    seen: set[int] = set()
    while current is not None and current not in seen:
        if current in groups:
            return current
        seen.add(current)
        current = shape.parent.get(current)
    return ORG


def decide(
    shape: TreeShape,
    respondents: Mapping[int, int],
    measure_counts: Mapping[str, Mapping[int, int]],
    k: int,
) -> Plan:
    """The plan of a round: groups for its respondents, then for each measure the planned
    groups that keep that measure's atoms at 0 or >= k; every team's atom."""
    groups = choose_groups(shape, respondents, k)
    plan = Plan(shape, groups)
    if not groups:
        return plan
    teams = [t for t in groups if t != ORG]
    for name, counts in sorted(measure_counts.items()):
        plan.measures[name] = choose_groups(shape, counts, k, teams)
    plan.atom_of_team = {
        team: owner_of(shape, team, groups)
        for team in sorted(shape.parent)
        if respondents.get(team, 0) > 0
    }
    return plan
