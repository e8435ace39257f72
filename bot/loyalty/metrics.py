"""The figures of MEASUREMENT.md, computed in SQL where the volume is.

Two aggregate queries read the ``responses`` table of the chosen closed rounds and return
*atoms*: sums per (round, team) — per item (answers, top-2 and bottom-2 boxes, sum, promoters,
detractors) and per respondent set (person-first index sums, segment counts, the sums of
squares Cronbach's alpha needs). Sums add up, so any group (a team subtree, the organisation)
is a combination of its teams' atoms, and the anonymity rules can count every cell without
asking the database again. The small formulas (Wilson, adjusted Wald, alpha from sums) are
plain functions below, tested against MEASUREMENT.md's worked checks, statsmodels and pingouin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Response
from bot.surveys.content import Item

Z95 = 1.959963984540054
SEGMENTS = ("apostle", "mercenary", "hostage", "loose_cannon", "quiet_defector")


# --- formulas -------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion, in percent (None when nobody answered)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def enps(promoters: int, detractors: int, n: int) -> float | None:
    """100 x (promoters - detractors) / n; promoters answer 9-10, detractors 0-6."""
    return None if n <= 0 else 100.0 * (promoters - detractors) / n


def enps_interval(
    promoters: int, detractors: int, n: int, z: float = Z95
) -> tuple[float, float] | None:
    """Adjusted Wald interval for a net score: add 0.75 promoter, 0.75 detractor and 3 to n;
    SE = sqrt((p + d - (p - d)^2) / n'); clipped to -100..+100."""
    if n <= 0:
        return None
    n_adj = n + 3
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    centre = p - d
    se = math.sqrt(max(0.0, p + d - centre * centre) / n_adj)
    return (max(-100.0, 100 * (centre - z * se)), min(100.0, 100 * (centre + z * se)))


def rescale(value: float) -> float:
    """A 1-5 answer (or mean) on the 0-100 scale: 1 -> 0, 3 -> 50, 5 -> 100."""
    return (value - 1) * 25.0


def segment(s: int | None, l: int | None, a: int | None, satisfied_from: int) -> str | None:  # noqa: E741
    """The satisfaction x loyalty quadrant of one respondent set (None = no segment)."""
    if s is None or l is None:
        return None
    if s >= satisfied_from:
        return "apostle" if l >= 4 else "mercenary"
    if l >= 4:
        return "hostage"
    if a is None:
        return None
    return "loose_cannon" if a <= 6 else "quiet_defector"


def person_index(answers: Mapping[str, int | None], items: Mapping[str, Item]) -> float | None:
    """One person's subjective loyalty index: the mean of their index items on 0-100 after
    reversing reverse-keyed items; None with fewer than 2/3 of the items answered."""
    index_items = [key for key, item in items.items() if item.kind == "likert5"]
    values = [
        rescale(6 - v if items[key].reverse else v)
        for key in index_items
        if (v := answers.get(key)) is not None
    ]
    if not index_items or 3 * len(values) < 2 * len(index_items):
        return None
    return sum(values) / len(values)


def alpha_from_sums(
    n: int, item_sums: Sequence[tuple[float, float]], total: tuple[float, float]
) -> float | None:
    """Cronbach's alpha from complete cases: per item (sum, sum of squares) and the same for
    each person's total; None when it is undefined (fewer than 2 people or items, no
    variance)."""
    k = len(item_sums)
    if n < 2 or k < 2:
        return None

    def variance(s: float, ss: float) -> float:
        return (ss - s * s / n) / (n - 1)

    total_var = variance(*total)
    if total_var <= 0:
        return None
    return k / (k - 1) * (1 - sum(variance(s, ss) for s, ss in item_sums) / total_var)


# --- atoms ------------------------------------------------------------------------------------


@dataclass
class ItemSums:
    """Answers to one item in one group: everything its figures need."""

    n: int = 0
    top2: int = 0  # answers 4-5 (likert)
    bottom2: int = 0  # answers 1-2 (likert; favorable on reverse-keyed items)
    total: int = 0
    promoters: int = 0  # 9-10 (0-10 items)
    detractors: int = 0  # 0-6

    def add(self, other: ItemSums) -> None:
        self.n += other.n
        self.top2 += other.top2
        self.bottom2 += other.bottom2
        self.total += other.total
        self.promoters += other.promoters
        self.detractors += other.detractors

    def favorable(self, reverse: bool = False) -> int:
        return self.bottom2 if reverse else self.top2

    def favorable_pct(self, reverse: bool = False) -> float | None:
        return None if not self.n else 100.0 * self.favorable(reverse) / self.n

    def score(self, reverse: bool = False) -> float | None:
        """Mean on 0-100 (after reversing a reverse-keyed item)."""
        if not self.n:
            return None
        mean = self.total / self.n
        return rescale(6 - mean if reverse else mean)

    def net(self) -> float | None:
        return enps(self.promoters, self.detractors, self.n)


@dataclass
class PeopleSums:
    """Respondent sets of one group in one round (one set = one pseudonymous key)."""

    respondents: int = 0
    index_n: int = 0  # sets with at least 2/3 of the index items
    index_sum: float = 0.0
    index_sq: float = 0.0
    segments: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEGMENTS, 0))
    complete_n: int = 0  # sets with every index item (for alpha)
    item_sums: dict[str, list[float]] = field(default_factory=dict)  # item -> [sum, sumsq]
    total_sums: list[float] = field(default_factory=lambda: [0.0, 0.0])

    @property
    def segment_n(self) -> int:
        return sum(self.segments.values())

    def add(self, other: PeopleSums) -> None:
        self.respondents += other.respondents
        self.index_n += other.index_n
        self.index_sum += other.index_sum
        self.index_sq += other.index_sq
        for key, count in other.segments.items():
            self.segments[key] = self.segments.get(key, 0) + count
        self.complete_n += other.complete_n
        for key, (s, ss) in other.item_sums.items():
            mine = self.item_sums.setdefault(key, [0.0, 0.0])
            mine[0] += s
            mine[1] += ss
        self.total_sums[0] += other.total_sums[0]
        self.total_sums[1] += other.total_sums[1]

    def index(self) -> float | None:
        return None if not self.index_n else self.index_sum / self.index_n

    def index_interval(self, z: float = Z95) -> tuple[float, float] | None:
        """Normal interval of the mean of person indexes (None under two people)."""
        n = self.index_n
        if n < 2:
            return None
        mean = self.index_sum / n
        var = max(0.0, (self.index_sq - n * mean * mean) / (n - 1))
        half = z * math.sqrt(var / n)
        return (max(0.0, mean - half), min(100.0, mean + half))

    def index_se(self) -> float | None:
        ci = self.index_interval()
        return None if ci is None else (ci[1] - ci[0]) / (2 * Z95)

    def alpha(self, index_items: Sequence[str]) -> float | None:
        sums = [tuple(self.item_sums.get(key, (0.0, 0.0))) for key in index_items]
        return alpha_from_sums(
            self.complete_n,
            [(s[0], s[1]) for s in sums],
            (self.total_sums[0], self.total_sums[1]),
        )


@dataclass
class Atom:
    """Sums for one (round, team)."""

    items: dict[str, ItemSums] = field(default_factory=dict)
    people: PeopleSums = field(default_factory=PeopleSums)

    def add(self, other: Atom) -> None:
        for key, sums in other.items.items():
            self.items.setdefault(key, ItemSums()).add(sums)
        self.people.add(other.people)


@dataclass(frozen=True)
class RoundItems:
    """What a round asked: its items (from its schedule's snapshot), in order."""

    round_id: int
    items: dict[str, Item]

    @property
    def index_items(self) -> list[str]:
        return [key for key, item in self.items.items() if item.kind == "likert5"]


Atoms = dict[tuple[int, int], Atom]


def combine(atoms: Atoms, round_id: int, team_ids: Iterable[int]) -> Atom:
    """One group's sums for one round: the sum of its teams' atoms."""
    out = Atom()
    for team_id in team_ids:
        atom = atoms.get((round_id, team_id))
        if atom is not None:
            out.add(atom)
    return out


# --- SQL ---------------------------------------------------------------------------------------


async def fetch_atoms(
    session: AsyncSession,
    rounds: Sequence[RoundItems],
    team_ids: Iterable[int] | None,
    *,
    satisfaction_item: str,
    stay_item: str,
    enps_item: str,
    satisfied_from: int,
    alpha_rounds: Iterable[int] | None = None,
) -> Atoms:
    """Per (round, team) sums for ``rounds``, restricted to ``team_ids`` (None = every team).

    Grouped queries over ``responses``; nothing per person leaves the database. The item
    sums Cronbach's alpha needs are computed for ``alpha_rounds`` only (None = every round):
    they cost a column pair per index item, and a summary shows alpha for its latest round.
    """
    atoms: Atoms = {}
    if not rounds:
        return atoms
    teams = None if team_ids is None else sorted(set(team_ids))
    if teams is not None and not teams:
        return atoms
    round_ids = [r.round_id for r in rounds]
    r = Response.__table__.c
    where = [r.round_id.in_(round_ids)]
    if teams is not None:
        where.append(r.team_id.in_(teams))

    v = r.value_num
    one = 1
    items_query = (
        select(
            r.round_id,
            r.team_id,
            r.item_id,
            func.count(v),
            func.sum(case((v >= 4, one), else_=0)),
            func.sum(case((v <= 2, one), else_=0)),
            func.sum(v),
            func.sum(case((v >= 9, one), else_=0)),
            func.sum(case((v <= 6, one), else_=0)),
        )
        .where(*where, v.is_not(None))
        .group_by(r.round_id, r.team_id, r.item_id)
    )
    for round_id, team_id, item_id, n, top2, bottom2, total, prom, detr in await session.execute(
        items_query
    ):
        atom = atoms.setdefault((round_id, team_id), Atom())
        atom.items[item_id] = ItemSums(
            int(n),
            int(top2 or 0),
            int(bottom2 or 0),
            int(total or 0),
            int(prom or 0),
            int(detr or 0),
        )

    await _fetch_people(
        session,
        atoms,
        rounds,
        where,
        satisfaction_item=satisfaction_item,
        stay_item=stay_item,
        enps_item=enps_item,
        satisfied_from=satisfied_from,
        with_items=False,
    )
    wanted = None if alpha_rounds is None else set(alpha_rounds)
    chosen = [rnd for rnd in rounds if wanted is None or rnd.round_id in wanted]
    if chosen:
        alpha_where = [r.round_id.in_([rnd.round_id for rnd in chosen]), *where[1:]]
        await _fetch_people(
            session,
            atoms,
            chosen,
            alpha_where,
            satisfaction_item=satisfaction_item,
            stay_item=stay_item,
            enps_item=enps_item,
            satisfied_from=satisfied_from,
            with_items=True,
        )
    return atoms


async def _fetch_people(
    session: AsyncSession,
    atoms: Atoms,
    rounds: Sequence[RoundItems],
    where: list[Any],
    *,
    satisfaction_item: str,
    stay_item: str,
    enps_item: str,
    satisfied_from: int,
    with_items: bool,
) -> None:
    """Person-first figures: one row per respondent set inside the database, atoms out.
    ``with_items``: only the complete answer sets' per-item sums (for alpha), added to the
    atoms the first pass made."""
    r = Response.__table__.c
    v = r.value_num
    index_items = sorted({key for rnd in rounds for key in rnd.index_items})
    reverse = sorted({key for rnd in rounds for key, item in rnd.items.items() if item.reverse})
    flipped = case((r.item_id.in_(reverse), 6 - v), else_=v) if reverse else v
    in_index = r.item_id.in_(index_items) if index_items else r.item_id.is_(None)
    item_columns = [
        func.max(case((r.item_id == key, flipped))).label(f"i{j}")
        for j, key in enumerate(index_items if with_items else [])
    ]
    inner = (
        select(
            r.round_id.label("round_id"),
            func.max(r.team_id).label("team_id"),
            func.sum(case((and_(in_index, v.is_not(None)), 1), else_=0)).label("idx_n"),
            func.sum(case((in_index, (flipped - 1) * 25), else_=0)).label("idx_sum"),
            func.max(case((r.item_id == satisfaction_item, v))).label("s"),
            func.max(case((r.item_id == stay_item, v))).label("l"),
            func.max(case((r.item_id == enps_item, v))).label("a"),
            *item_columns,
        )
        .where(*where)
        .group_by(r.round_id, r.respondent_key)
        .subquery()
    )
    q = inner.c
    needed = {rnd.round_id: len(rnd.index_items) for rnd in rounds}
    k_round = case(needed, value=q.round_id, else_=0)
    qualified = and_(k_round > 0, q.idx_n * 3 >= k_round * 2)
    complete = and_(k_round > 1, q.idx_n == k_round)
    mean = cast(q.idx_sum, Float) / case((q.idx_n > 0, q.idx_n), else_=1)
    s, l, a = q.s, q.l, q.a  # noqa: E741
    c = satisfied_from
    seg = case(
        (and_(s >= c, l >= 4), "apostle"),
        (and_(s >= c, l <= 3), "mercenary"),
        (and_(s < c, l >= 4), "hostage"),
        (and_(s < c, l <= 3, a <= 6), "loose_cannon"),
        (and_(s < c, l <= 3, a >= 7), "quiet_defector"),
        else_=None,
    )
    zero = 0
    if with_items:
        total = sum(
            (func.coalesce(getattr(q, f"i{j}"), 0) for j in range(len(index_items))), start=0
        )
        alpha_columns: list[Any] = [
            q.round_id,
            q.team_id,
            func.sum(case((complete, total), else_=zero)),
            func.sum(case((complete, total * total), else_=zero)),
        ]
        for j in range(len(index_items)):
            col = getattr(q, f"i{j}")
            alpha_columns += [
                func.sum(case((complete, col), else_=zero)),
                func.sum(case((complete, col * col), else_=zero)),
            ]
        for row in await session.execute(select(*alpha_columns).group_by(q.round_id, q.team_id)):
            people = atoms.setdefault((row[0], row[1]), Atom()).people
            people.total_sums = [float(row[2] or 0), float(row[3] or 0)]
            for j, key in enumerate(index_items):
                people.item_sums[key] = [float(row[4 + 2 * j] or 0), float(row[5 + 2 * j] or 0)]
        return
    columns: list[Any] = [
        q.round_id,
        q.team_id,
        func.count(),
        func.sum(case((qualified, 1), else_=zero)),
        func.sum(case((qualified, mean), else_=0.0)),
        func.sum(case((qualified, mean * mean), else_=0.0)),
        *[func.sum(case((seg == name, 1), else_=zero)) for name in SEGMENTS],
        func.sum(case((complete, 1), else_=zero)),
    ]
    query = select(*columns).group_by(q.round_id, q.team_id)
    for row in await session.execute(query):
        round_id, team_id, respondents, idx_n, idx_sum, idx_sq = row[:6]
        seg_counts = row[6 : 6 + len(SEGMENTS)]
        complete_n = row[6 + len(SEGMENTS)]
        atoms.setdefault((round_id, team_id), Atom()).people = PeopleSums(
            respondents=int(respondents),
            index_n=int(idx_n or 0),
            index_sum=float(idx_sum or 0.0),
            index_sq=float(idx_sq or 0.0),
            segments={name: int(n or 0) for name, n in zip(SEGMENTS, seg_counts, strict=True)},
            complete_n=int(complete_n or 0),
        )


async def fetch_respondents(
    session: AsyncSession, round_ids: Sequence[int], team_ids: Iterable[int]
) -> dict[tuple[int, int], int]:
    """Respondent sets per (round, team): all the remainder rule needs of a parent's other
    teams (an index-only count, much lighter than :func:`fetch_atoms`)."""
    teams = sorted(set(team_ids))
    if not round_ids or not teams:
        return {}
    r = Response.__table__.c
    rows = await session.execute(
        select(r.round_id, r.team_id, func.count(func.distinct(r.respondent_key)))
        .where(r.round_id.in_(list(round_ids)), r.team_id.in_(teams))
        .group_by(r.round_id, r.team_id)
    )
    return {(rid, team): int(n) for rid, team, n in rows}
