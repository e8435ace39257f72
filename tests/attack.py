"""An attacker's toolkit for the anonymity tests: build an organisation and closed rounds in a
real database, collect every figure the routes release, and decide by exact rational
arithmetic what all viewers together could work out.

Each released figure is a sum over a set of *variables*: one per respondent and round for
head counts, index, segments; one per respondent, round and item for item answers. Figures of
one family can be added and subtracted; figures of different families cannot be combined
linearly (they are different quantities). For a family, the matrix has one row per released
figure (the indicator of its variables). Then:

* every vector of the row space is constant on *classes* (variables whose columns are equal),
  so if each class spans at least k different people, no combination of figures isolates
  fewer than k people (in particular no single answer);
* the reduced row echelon form (``fractions.Fraction``, exact) is checked too: no row of it,
  a combination of released figures, is supported by fewer than k people.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import insert, select

from bot.config import Settings
from bot.db.models import Campaign, CampaignKind, CampaignStatus, Person, Role, Team
from bot.db.session import Database
from bot.loyalty.release import close_round_storage, item_measure
from bot.loyalty.service import Summary, Unreportable
from bot.loyalty.tables import ReleaseGroup
from bot.pulse.content import load_survey
from bot.pulse.tables import Participation, Response

from .harness import REPO
from .loyalty_seed import closed_round_row

NOW = datetime(2027, 6, 1, tzinfo=UTC)
ITEMS = ["sat_overall", "intent_stay", "enps", "trust_manager", "frustration"]
LIKERT = ["sat_overall", "intent_stay", "trust_manager", "frustration"]


@dataclass
class Org:
    """What the test knows and the attacker is trying to learn."""

    team_ids: dict[int, int] = field(default_factory=dict)  # spec index -> team id
    parent: dict[int, int | None] = field(default_factory=dict)  # team id -> parent id
    names: dict[int, str] = field(default_factory=dict)
    team_of: dict[int, int] = field(default_factory=dict)  # person -> team
    managers: dict[int, str] = field(default_factory=dict)  # team id -> manager email
    hr: str = ""
    # round -> person -> item -> value (only respondents; missing item = skipped)
    answers: dict[int, dict[int, dict[str, int]]] = field(default_factory=dict)

    def subtree(self, team: int) -> frozenset[int]:
        out = {team}
        grew = True
        while grew:
            grew = False
            for t, p in self.parent.items():
                if p in out and t not in out:
                    out.add(t)
                    grew = True
        return frozenset(out)


async def build_org(db: Database, parents: list[int | None], sizes: list[int]) -> Org:
    """Teams T0..Tn (``parents`` by index), each with ``sizes[i]`` people: the first of each
    team manages it; one extra person in T0 is HR."""
    org = Org()
    async with db.session() as session:
        for index, parent in enumerate(parents):
            team = Team(
                name=f"T{index}",
                parent_id=None if parent is None else org.team_ids[parent],
                created_at=NOW,
            )
            session.add(team)
            await session.flush()
            org.team_ids[index] = team.id
            org.parent[team.id] = team.parent_id
            org.names[team.id] = team.name

        def person(email: str, team_id: int, role: Role) -> Person:
            return Person(
                email=email,
                name=email.split("@")[0],
                team_id=team_id,
                role=role,
                locale="en",
                timezone="Europe/Rome",
                created_at=NOW,
                updated_at=NOW,
            )

        for index, size in enumerate(sizes):
            team_id = org.team_ids[index]
            for n in range(size):
                email = f"p{index}-{n}@example.com"
                member = person(email, team_id, Role.manager if n == 0 else Role.employee)
                session.add(member)
                await session.flush()
                org.team_of[member.id] = team_id
                if n == 0:
                    (await session.get(Team, team_id)).manager_id = member.id  # type: ignore[union-attr]
                    org.managers[team_id] = email
        hr = person("hr@example.com", org.team_ids[0], Role.hr)
        session.add(hr)
        await session.flush()
        org.hr = hr.email
    return org


async def pulse_campaign(db: Database) -> int:
    _survey, bank = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    from dataclasses import asdict

    async with db.session() as session:
        campaign = Campaign(
            kind=CampaignKind.pulse,
            content_id="attack",
            title="Pulse",
            status=CampaignStatus.scheduled,
            snapshot={"items": {key: asdict(bank[key]) for key in ITEMS}},
            starts_at=NOW - timedelta(days=400),
            launch_at=None,
            ends_at=NOW + timedelta(days=400),
            created_by="test",
            created_at=NOW - timedelta(days=400),
        )
        session.add(campaign)
        await session.flush()
        return campaign.id


async def close_a_round(
    db: Database,
    settings: Settings,
    org: Org,
    campaign_id: int,
    number: int,
    given: dict[int, dict[str, int]],
) -> int:
    """A round that everyone was invited to, answered as ``given`` (person -> item ->
    value), closed the way Fidelio closes rounds."""
    opens = NOW - timedelta(days=100 - 14 * number)
    async with db.session() as session:
        round_ = closed_round_row(campaign_id, number, opens, list(ITEMS), invited=len(org.team_of))
        session.add(round_)
        await session.flush()
        people = sorted(org.team_of)
        session.add_all(
            Participation(
                round_id=round_.id,
                person_id=p,
                team_id=org.team_of[p],
                answered=len(ITEMS) if p in given else 0,
                finished=p in given,
            )
            for p in people
        )

        def key(person_id: int) -> str:
            return hashlib.sha256(f"{round_.id}:{person_id}".encode()).hexdigest()

        rows = [
            {
                "round_id": round_.id,
                "respondent_key": key(p),
                "item_id": item,
                "team_id": org.team_of[p],
                "value_num": value,
                "value_text": None,
            }
            for p, items in given.items()
            for item, value in items.items()
        ]
        if rows:
            await session.execute(insert(Response), rows)
        await close_round_storage(session, settings, round_, NOW, key_of=key)
        org.answers[round_.id] = given
        return round_.id


def random_answers(
    rng: random.Random, org: Org, respond: float, skip: float
) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for person in sorted(org.team_of):
        if rng.random() >= respond:
            continue
        items = {}
        for item in ITEMS:
            if rng.random() < skip:
                continue
            items[item] = rng.randint(0, 10) if item == "enps" else rng.randint(1, 5)
        if items:  # skipping every question leaves no answer: not a respondent
            out[person] = items
    return out


# What was released


@dataclass
class Pool:
    """Everything all viewers together were shown: figure rows per family."""

    org: Org
    k: int
    planned: dict[tuple[int, frozenset[int]], frozenset[str]] = field(default_factory=dict)
    rows: dict[str, set[frozenset[Any]]] = field(default_factory=lambda: defaultdict(set))
    figures: int = 0

    async def load_plans(self, db: Database) -> None:
        """Which measures the stored plan lets each group show (to know which items a
        pooled dimension figure added up)."""
        async with db.session() as session:
            for group in await session.scalars(select(ReleaseGroup)):
                self.planned[(group.round_id, frozenset(group.teams))] = frozenset(group.measures)

    def _people(self, round_id: int, teams: frozenset[int]) -> dict[int, dict[str, int]]:
        given = self.org.answers.get(round_id, {})
        return {p: a for p, a in given.items() if self.org.team_of[p] in teams}

    def add(self, family: str, variables: frozenset[Any], reported_n: int | None) -> None:
        """One released figure; its reported n must equal the people it is a sum over (else
        the attacker's model of the figure would be wrong)."""
        if reported_n is not None:
            persons = {v[1] for v in variables}
            assert len(persons) == reported_n or len(variables) == reported_n, (
                family,
                len(variables),
                reported_n,
            )
        assert variables, family
        self.rows[family].add(variables)
        self.figures += 1

    def add_summary(self, result: Summary | Unreportable) -> None:
        summary = result if isinstance(result, Summary) else result.fallback
        if summary is None:
            return
        self.add_summary_dict(summary.as_dict(), summary.scope.team_ids)

    def add_summary_dict(self, data: dict[str, Any], teams: frozenset[int]) -> None:
        """A summary as the JSON report and chat show it."""
        reportable = []
        for figure in data["rounds"]:
            if not figure["reportable"]:
                continue
            r = figure["round_id"]
            reportable.append(r)
            people = self._people(r, teams)
            self.add("respondents", frozenset((r, p) for p in people), figure["respondents"])
            if figure["enps"] is not None:
                answered = frozenset((r, p) for p, a in people.items() if "enps" in a)
                self.add("item:enps", answered, figure["enps_n"])
            if figure["segments"] is not None:
                both = frozenset(
                    (r, p) for p, a in people.items() if "sat_overall" in a and "intent_stay" in a
                )
                self.add("segments", both, figure["segment_n"])
            if figure["index"] is not None:
                qualified = frozenset(
                    (r, p)
                    for p, a in people.items()
                    if 3 * sum(1 for i in LIKERT if i in a) >= 2 * len(LIKERT)
                )
                self.add("index", qualified, figure["index_n"])
        for dimension in data["dimensions"]:
            item = next(i for i in LIKERT if _dimension(i) == dimension["dimension"])
            variables = frozenset(
                (r, p, item)
                for r in reportable
                if item_measure(item) in self.planned.get((r, teams), frozenset())
                for p, a in self._people(r, teams).items()
                if item in a
            )
            self.add("likert", variables, None)
            assert len(variables) == dimension["n"], (dimension, len(variables))

    def add_heatmap(
        self, round_id: int, names: list[str], dimensions: list[str], values: list[list[Any]]
    ) -> None:
        by_name = {name: team for team, name in self.org.names.items()}
        for name, row in zip(names, values, strict=True):
            teams = self.org.subtree(by_name[name])
            for dimension, value in zip(dimensions, row, strict=True):
                if value is None:
                    continue
                item = next(i for i in LIKERT if _dimension(i) == dimension)
                variables = frozenset(
                    (round_id, p, item)
                    for p, a in self._people(round_id, teams).items()
                    if item in a
                )
                self.add("likert", variables, None)

    def add_report_json(self, text: str) -> None:
        data = json.loads(text)
        summary = data.get("summary") or data.get("fallback")
        if not summary:
            return
        if summary["organisation"]:
            teams = frozenset(self.org.names)
        else:
            team = next(t for t, n in self.org.names.items() if n == summary["scope"])
            teams = self.org.subtree(team)
        self.add_summary_dict(summary, teams)


def _dimension(item: str) -> str:
    return {
        "sat_overall": "overall_satisfaction",
        "intent_stay": "intent_to_stay",
        "trust_manager": "trust_manager",
        "frustration": "frustration",
    }[item]


# The exact check


def rref(rows: list[list[Fraction]]) -> list[list[Fraction]]:
    """Reduced row echelon form, exact."""
    matrix = [row[:] for row in rows]
    out: list[list[Fraction]] = []
    columns = len(matrix[0]) if matrix else 0
    pivot_row = 0
    for col in range(columns):
        pick = next((i for i in range(pivot_row, len(matrix)) if matrix[i][col] != 0), None)
        if pick is None:
            continue
        matrix[pivot_row], matrix[pick] = matrix[pick], matrix[pivot_row]
        lead = matrix[pivot_row][col]
        matrix[pivot_row] = [x / lead for x in matrix[pivot_row]]
        for i in range(len(matrix)):
            if i != pivot_row and matrix[i][col] != 0:
                factor = matrix[i][col]
                matrix[i] = [
                    a - factor * b for a, b in zip(matrix[i], matrix[pivot_row], strict=True)
                ]
        pivot_row += 1
        if pivot_row == len(matrix):
            break
    out = [row for row in matrix[:pivot_row]]
    return out


def smallest_isolated(pool: Pool) -> tuple[int, str] | None:
    """The fewest people that some combination of released figures is a sum over, and its
    family, if that is under k; None when every combination covers at least k people."""
    worst: tuple[int, str] | None = None
    for family, rows in pool.rows.items():
        ordered = sorted(rows, key=lambda s: sorted(map(repr, s)))
        variables = sorted(set().union(*ordered), key=repr)
        # Classes: variables with the same column (the same released figures).
        signature: dict[Any, list[int]] = defaultdict(list)
        for index, row in enumerate(ordered):
            for v in row:
                signature[v].append(index)
        classes: dict[tuple[int, ...], set[Any]] = defaultdict(set)
        for v in variables:
            classes[tuple(signature[v])].add(v)
        keys = sorted(classes)
        for members in classes.values():
            people = len({v[1] for v in members})
            if people < pool.k and (worst is None or people < worst[0]):
                worst = (people, family)
        # Exact: the RREF of figures x classes; each of its rows is a combination of
        # released figures, so each must cover at least k people.
        matrix = [
            [Fraction(1 if index in key else 0) for key in keys] for index in range(len(ordered))
        ]
        for row in rref(matrix):
            support = [keys[j] for j, x in enumerate(row) if x != 0]
            people = len({v[1] for key in support for v in classes[key]})
            if people < pool.k and (worst is None or people < worst[0]):
                worst = (people, family)
    return worst
