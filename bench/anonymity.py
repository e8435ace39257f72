"""Release-plan benchmark: how much of a realistic organisation one closed round can show.

Run from the repository root (a benchmark, not a test; nothing asserts its figures)::

    .venv/bin/python -m bench.anonymity [--people 2000] [--k 5] [--seed 2027] [--repeat 25]

No database: a seeded organisation of ``--people`` people in about one team per 13 people
(2,000 people: about 150 teams) is generated as a real hierarchy, four levels deep counting
the organisation itself: the organisation, a few divisions, their departments, their teams,
plus a small executive office at the top. Divisions and departments have a few members of
their own (heads and staff), teams 2-30. One round closes with each person responding with
probability 0.75 and each respondent answering each of 10 items with probability 0.95.

Reported, for the release plan (:func:`bot.loyalty.plan.decide`) and for the previous rules
(a team's own summary released when rules 1 and 2 pass against its parent and rule 3 among
its siblings does not hide it, as the old heat map did):

* **teams released share**: of the teams whose subtree holds at least k respondents (the
  teams that could have a summary at all), the share whose own summary is released;
* **people covered share**: of the respondents, the share whose smallest released group is a
  team (any team subtree), not only the organisation; and, stricter, the share whose own
  team's summary is released;
* for the previous rules, how many groups of 1..k-1 respondents all viewers pooling their
  views could determine: the heat map's teams, and every manager's view of their own team
  (the plan: none, by construction);
* the time to decide the plan (median over ``--repeat`` runs, all measures included);
* per item, how many released teams withhold that item (too few answers in an atom);
* why each hidden team is hidden, and two variants measured on the same round: the
  organisation with heads counted in their largest team, and an "other teams" group pooling
  the hidden teams under one planned parent.

The last line is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.previous_rules import Rules
from bot.config import AnonymitySettings
from bot.loyalty.plan import ORG, Plan, TreeShape, decide

RESPONSE_RATE = 0.75
ANSWER_RATE = 0.95
ITEMS = [f"q{i:02d}" for i in range(1, 11)]
PEOPLE_PER_TEAM = 2000 / 150  # the shape the benchmark is calibrated on


# The organisation


@dataclass
class Org:
    """The round as the plan sees it: the tree, each team's level, and per-person results."""

    parent: dict[int, int | None]
    level: dict[int, str]  # "executive", "division", "department", "team"
    members: dict[int, int]  # own members per team
    respondents: dict[int, int]  # own respondents per team
    answers: dict[str, dict[int, int]]  # item -> own answerers per team

    @property
    def shape(self) -> TreeShape:
        return TreeShape(self.parent)

    @property
    def people(self) -> int:
        return sum(self.members.values())


def generate(people: int, seed: int) -> Org:
    """A seeded hierarchy: divisions hold departments, departments hold teams, and the
    organisation (:data:`ORG`, not a team) holds the divisions and an executive office.
    Heads and staff of divisions and departments are their own members; the team sizes are
    skewed towards 10-20 with a tail of small teams, all within 2-30."""
    rng = random.Random(seed)
    teams = max(8, round(people / PEOPLE_PER_TEAM))
    divisions = max(2, round(teams**0.5 / 2.4))
    departments = max(divisions, round(teams * 0.17))
    leaves = teams - 1 - divisions - departments
    parent: dict[int, int | None] = {}
    level: dict[int, str] = {}
    members: dict[int, int] = {}
    next_id = iter(range(1, teams + 1))

    def team(of: int | None, kind: str, size: int) -> int:
        ident = next(next_id)
        parent[ident], level[ident], members[ident] = of, kind, size
        return ident

    team(None, "executive", rng.randint(4, 8))
    division_ids = [team(None, "division", rng.randint(2, 5)) for _ in range(divisions)]
    # Every division gets a department, every department a team; the rest fall unevenly.
    homes = division_ids + [rng.choice(division_ids) for _ in range(departments - divisions)]
    department_ids = [team(home, "department", rng.randint(2, 8)) for home in sorted(homes)]
    weights = [rng.uniform(0.5, 2.0) for _ in department_ids]
    owners = department_ids + rng.choices(department_ids, weights, k=leaves - len(department_ids))
    leaf_ids = [
        team(owner, "team", min(30, max(2, round(rng.triangular(2, 30, 15)))))
        for owner in sorted(owners)
    ]
    # Bring the head count to exactly ``people`` by growing or shrinking random teams.
    missing = people - sum(members.values())
    while missing:
        pick = rng.choice(leaf_ids)
        step = 1 if missing > 0 else -1
        if 2 <= members[pick] + step <= 30:
            members[pick] += step
            missing -= step
    respondents: dict[int, int] = {}
    answers: dict[str, dict[int, int]] = {item: {} for item in ITEMS}
    for ident in sorted(members):
        responded = sum(rng.random() < RESPONSE_RATE for _ in range(members[ident]))
        respondents[ident] = responded
        for item in ITEMS:
            answers[item][ident] = sum(rng.random() < ANSWER_RATE for _ in range(responded))
    return Org(parent, level, members, respondents, answers)


# What each rule set releases


def subtree_totals(shape: TreeShape, counts: Mapping[int, int]) -> dict[int, int]:
    kids = shape.kids
    out: dict[int, int] = {}

    def walk(team: int) -> int:
        total = (counts.get(team, 0) if team != ORG else 0) + sum(walk(c) for c in kids[team])
        out[team] = total
        return total

    walk(ORG)
    return out


def owner_in(shape: TreeShape, team: int, planned: Iterable[int]) -> int:
    """The smallest planned group holding ``team``'s people (:data:`ORG` when none)."""
    groups = set(planned)
    current: int | None = team
    while current is not None and current not in groups:
        current = shape.parent.get(current)
    return ORG if current is None else current


def atom_sizes(shape: TreeShape, counts: Mapping[int, int], planned: Iterable[int]) -> Counter[int]:
    groups = set(planned)
    sizes: Counter[int] = Counter()
    for team, n in counts.items():
        sizes[owner_in(shape, team, groups)] += n
    return sizes


def todays_teams(
    shape: TreeShape, counts: Mapping[int, int], k: int, breakdown: bool = True
) -> set[int]:
    """Teams whose own summary the previous rules showed: rule 1, rule 2 against the parent,
    and (``breakdown``) not hidden by rule 3 in its parent's breakdown, as in the old heat
    map. Without ``breakdown``: what each team's manager saw of their own team, where rule 3
    never ran because nobody else's team was in the view."""
    rules = Rules(AnonymitySettings(min_group=k, comment_min_group=max(10, k)))
    totals = subtree_totals(shape, counts)
    hidden: set[int] = set()
    for group, children in shape.kids.items():
        if breakdown:
            hidden |= rules.suppress_breakdown(totals[group], {c: totals[c] for c in children})
    out: set[int] = set()
    for team, parent in shape.parent.items():
        parent_n = totals[ORG if parent is None else parent]
        if (
            team not in hidden
            and rules.group_ok(totals[team])
            and rules.remainder_ok(parent_n, totals[team])
        ):
            out.add(team)
    return out


def shares(
    shape: TreeShape, counts: Mapping[int, int], released: Iterable[int], k: int
) -> tuple[float, float, float]:
    """(teams released / teams with >= k respondents, respondents under a released team /
    respondents, respondents whose own team is released / respondents)."""
    totals = subtree_totals(shape, counts)
    teams = set(released) - {ORG}
    eligible = [t for t in shape.parent if totals[t] >= k]
    covered = sum(n for t, n in counts.items() if owner_in(shape, t, teams) != ORG)
    own = sum(n for t, n in counts.items() if t in teams)
    everyone = sum(counts.values()) or 1
    return (
        sum(1 for t in eligible if t in teams) / len(eligible) if eligible else 0.0,
        covered / everyone,
        own / everyone,
    )


def why_hidden(
    shape: TreeShape, counts: Mapping[int, int], planned: frozenset[int], k: int
) -> dict[int, str]:
    """For each team with >= k respondents that the plan hides, the atom that adding it back
    would leave with 1..k-1 people. (Adding a hidden team alone never keeps every atom valid:
    the plan releases the most teams possible.)"""
    totals = subtree_totals(shape, counts)
    reasons: dict[int, str] = {}
    for team in sorted(shape.parent):
        if team in planned or totals[team] < k:
            continue
        after = atom_sizes(shape, counts, planned | {team})
        owner = owner_in(shape, team, planned)
        if 0 < after[team] < k:
            reasons[team] = "own remainder: its own members (with its small teams) would be under k"
        elif 0 < after[owner] < k:
            # What would remain in the owner's atom: the owner's own members, teams too small
            # to show, or larger siblings hidden along with them.
            rest = [
                t
                for t in shape.parent
                if owner_in(shape, t, planned | {team}) == owner and counts.get(t, 0) and t != owner
            ]
            small = [t for t in rest if totals[t] < k]
            if small:
                reasons[team] = "small sibling: a team under k would be its parent's remainder"
            else:
                reasons[team] = "parent's own members would be the parent's remainder (under k)"
        else:
            reasons[team] = "other: only in combination with other choices"
    return reasons


# Variants measured on the same round


def heads_in_largest_team(org: Org) -> tuple[TreeShape, dict[int, int]]:
    """The same respondents with every division's and department's own members counted in
    its largest child team (the head "belongs to" a team they lead). Not how Fidelio models
    people today; it shows how much of the loss the heads' own remainders cause."""
    counts = dict(org.respondents)
    kids = org.shape.kids
    for team in sorted(org.parent, key=lambda t: -depth(org.parent, t)):
        if org.level[team] in ("division", "department") and kids[team]:
            largest = max(kids[team], key=lambda c: (org.members[c], -c))
            counts[largest] = counts.get(largest, 0) + counts.get(team, 0)
            counts[team] = 0
    return org.shape, counts


def depth(parent: Mapping[int, int | None], team: int) -> int:
    level = 0
    current = parent.get(team)
    while current is not None:
        level += 1
        current = parent.get(current)
    return level


def pooled_other_teams(
    shape: TreeShape, counts: Mapping[int, int], planned: frozenset[int], k: int
) -> tuple[int, int]:
    """An "other teams" group per planned parent (the organisation included): the union of
    its hidden child subtrees, planned when it holds >= k and the parent's own members left
    alone in the parent's atom are 0 or >= k. Such a group is a union of whole sibling
    subtrees, so the groups stay nested or disjoint and the atom guarantee carries over.
    Returns (groups added, respondents newly under a group below the organisation)."""
    kids = shape.kids
    totals = subtree_totals(shape, counts)
    added = 0
    newly = 0
    for group in sorted(planned):
        hidden_children = [c for c in kids[group] if c not in planned]
        pool = sum(
            counts.get(t, 0)
            for c in hidden_children
            for t in shape.subtree(c)
            if owner_in(shape, t, planned) == group
        )
        own = counts.get(group, 0) if group != ORG else 0
        if len(hidden_children) < 2 or pool < k or 0 < own < k:
            continue
        # Everyone in a hidden child subtree is in the pool or in a planned group below it.
        assert pool <= sum(totals[c] for c in hidden_children)
        added += 1
        if group == ORG:
            newly += pool
    return added, newly


# The run


def measure(org: Org, k: int, repeat: int) -> tuple[Plan, float]:
    """The plan, and the median time to decide it in milliseconds."""
    shape = org.shape
    times: list[float] = []
    plan = decide(shape, org.respondents, org.answers, k)
    for _ in range(repeat):
        started = time.perf_counter()
        plan = decide(shape, org.respondents, org.answers, k)
        times.append((time.perf_counter() - started) * 1000)
    return plan, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--repeat", type=int, default=25, help="timed runs of decide")
    args = parser.parse_args()
    k = args.k

    org = generate(args.people, args.seed)
    shape, counts = org.shape, org.respondents
    totals = subtree_totals(shape, counts)
    eligible = [t for t in shape.parent if totals[t] >= k]
    plan, plan_ms = measure(org, k, args.repeat)
    teams_share, people_share, own_share = shares(shape, counts, plan.groups, k)
    today = todays_teams(shape, counts, k)
    today_teams_share, today_people_share, today_own_share = shares(shape, counts, today, k)
    respondents = sum(counts.values())
    levels = Counter(org.level.values())

    print(
        f"organisation: {org.people} people in {len(org.parent)} teams "
        f"({levels['division']} divisions, {levels['department']} departments, "
        f"{levels['team']} teams, 1 executive office; seed {args.seed}); "
        f"{respondents} respondents ({respondents / org.people:.1%}), k = {k}"
    )
    print(
        f"teams whose subtree has >= k respondents: {len(eligible)} "
        f"(of {len(org.parent)}; {len(org.parent) - len(eligible)} too small to show at all)"
    )
    print(
        f"release plan: {len(plan.groups) - 1} team summaries released = {teams_share:.3f} of "
        f"those teams (goal >= 0.85); people covered {people_share:.3f} (respondents whose "
        f"smallest released group is a team, not only the organisation); own team shown "
        f"{own_share:.3f} (respondents whose own team's summary is released); decided in {plan_ms:.2f} ms (median of {args.repeat}, {len(ITEMS)} items)"
    )
    print(
        f"previous rules (heat map: rules 1-3, no coordination across viewers): "
        f"{len(today)} teams = {today_teams_share:.3f}; people covered {today_people_share:.3f}; "
        f"own team shown {today_own_share:.3f}"
    )
    # Team subtrees are nested or disjoint, so pooled releases determine exactly the atoms'
    # sums: an atom of 1..k-1 respondents is a figure about fewer than k people.
    exposed = {g: n for g, n in atom_sizes(shape, counts, today | {ORG}).items() if 0 < n < k}
    managers = todays_teams(shape, counts, k, breakdown=False)
    exposed_managers = {
        g: n for g, n in atom_sizes(shape, counts, managers | {ORG}).items() if 0 < n < k
    }
    print(
        f"previous rules, pooled: the heat map with the organisation determines "
        f"{len(exposed)} groups of 1..k-1 respondents ({sum(exposed.values())} respondents); "
        f"the managers' own-team views ({len(managers)} teams) with it determine "
        f"{len(exposed_managers)} ({sum(exposed_managers.values())} respondents, sizes "
        f"{sorted(exposed_managers.values())}); release plan: 0"
    )

    # Per measure: a released team withholds an item when its atom's answers fall under k.
    planned_teams = plan.groups - {ORG}
    lost = {item: sorted(planned_teams - plan.measures[item]) for item in ITEMS}
    print(
        "items withheld by released teams: "
        + ", ".join(f"{item} {len(teams)}" for item, teams in lost.items())
        + f" (of {len(planned_teams)} teams; {sum(1 for t in planned_teams if any(t in v for v in lost.values()))} "
        f"teams withhold at least one item, {sum(len(v) for v in lost.values())} team-items in all)"
    )

    # Why the hidden teams are hidden.
    reasons = why_hidden(shape, counts, plan.groups, k)
    by_reason = Counter(reasons.values())
    by_level = Counter(org.level[t] for t in reasons)
    print(
        f"hidden teams with >= k respondents: {len(reasons)} "
        f"({', '.join(f'{n} {lvl}' for lvl, n in sorted(by_level.items()))})"
    )
    for reason, n in by_reason.most_common():
        print(f"  {n:3d}  {reason}")
    small_parents = sum(
        1
        for t, lvl in org.level.items()
        if lvl in ("division", "department") and 0 < counts.get(t, 0) < k
    )
    print(
        f"divisions and departments whose own respondents are 1..k-1: {small_parents} of "
        f"{levels['division'] + levels['department']} (unless a team too small to show fills the parent's atom, each costs one team: itself or a child)"
    )

    # Variant 1: heads counted in their largest team.
    v_shape, v_counts = heads_in_largest_team(org)
    v_plan = decide(v_shape, v_counts, {}, k)
    v_teams, v_people, _ = shares(v_shape, v_counts, v_plan.groups, k)
    print(
        f"variant, heads counted in their largest team: teams {v_teams:.3f}, "
        f"people covered {v_people:.3f}"
    )
    # Variant 2: "other teams" groups beside the plan.
    added, newly = pooled_other_teams(shape, counts, plan.groups, k)
    print(
        f"variant, an 'other teams' group per planned parent: {added} groups possible, "
        f"{newly} more respondents under a group below the organisation "
        f"(people covered {people_share + newly / respondents:.3f}); teams released unchanged"
    )

    plan_atoms = atom_sizes(shape, counts, plan.groups)
    assert all(n == 0 or n >= k for n in plan_atoms.values())  # the plan's own guarantee

    print(
        json.dumps(
            {
                "teams_released_share": round(teams_share, 4),
                "people_covered_share": round(people_share, 4),
                "plan_ms": round(plan_ms, 3),
                "today_teams_released_share": round(today_teams_share, 4),
                "today_people_covered_share": round(today_people_share, 4),
                "own_team_shown_share": round(own_share, 4),
                "today_own_team_shown_share": round(today_own_share, 4),
                "today_exposed_groups": len(exposed),
                "today_managers_exposed_groups": len(exposed_managers),
                "today_managers_exposed_respondents": sum(exposed_managers.values()),
                "teams": len(org.parent),
                "eligible_teams": len(eligible),
                "teams_released": len(planned_teams),
                "people": org.people,
                "respondents": respondents,
                "k": k,
                "seed": args.seed,
                "team_items_withheld": sum(len(v) for v in lost.values()),
                "hidden_reasons": dict(by_reason),
                "heads_in_team_teams_share": round(v_teams, 4),
                "heads_in_team_people_share": round(v_people, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
