"""The figures of MEASUREMENT.md, computed in SQL where the volume is.

Two aggregate queries read the ``responses`` table of the chosen closed rounds and return
*atoms*: sums per (round, team) — per item (answers, top-2 and bottom-2 boxes, sum, promoters,
detractors) and per respondent set (person-first index sums, segment counts, the sums of
squares Cronbach's alpha needs). Sums add up, so any group (a team subtree, the organisation)
is a combination of its teams' atoms. They are computed once, when a round closes, and kept per
plan atom (bot.loyalty.release). The small formulas (Wilson, adjusted Wald, alpha from sums) are
plain functions below, tested against MEASUREMENT.md's worked checks, golden values computed once
with statsmodels (Wilson) and pingouin (alpha), and reference formulas on generated data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pulse.content import Item
from bot.pulse.tables import Response

Z95 = 1.959963984540054
#: The satisfaction x loyalty buckets; the last holds the disloyal who skipped the eNPS item,
#: so that the buckets of everyone with S and L sum to 100 % (MEASUREMENT.md).
SEGMENTS = (
    "apostle",
    "mercenary",
    "hostage",
    "loose_cannon",
    "quiet_defector",
    "disloyal_unknown",
)


# Formulas


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
        return "disloyal_unknown"
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


# Atoms


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


def atom_to_json(atom: Atom) -> dict[str, Any]:
    """An atom's sums as plain JSON (stored with the plan atom at close)."""
    people = atom.people
    return {
        "items": {
            key: [s.n, s.top2, s.bottom2, s.total, s.promoters, s.detractors]
            for key, s in sorted(atom.items.items())
        },
        "people": {
            "respondents": people.respondents,
            "index_n": people.index_n,
            "index_sum": people.index_sum,
            "index_sq": people.index_sq,
            "segments": dict(people.segments),
            "complete_n": people.complete_n,
            "item_sums": {key: list(v) for key, v in sorted(people.item_sums.items())},
            "total_sums": list(people.total_sums),
        },
    }


def atom_from_json(data: Mapping[str, Any]) -> Atom:
    """The inverse of :func:`atom_to_json`."""
    p = data.get("people", {})
    segments = dict.fromkeys(SEGMENTS, 0)
    segments.update({key: int(n) for key, n in p.get("segments", {}).items()})
    people = PeopleSums(
        respondents=int(p.get("respondents", 0)),
        index_n=int(p.get("index_n", 0)),
        index_sum=float(p.get("index_sum", 0.0)),
        index_sq=float(p.get("index_sq", 0.0)),
        segments=segments,
        complete_n=int(p.get("complete_n", 0)),
        item_sums={key: [float(a), float(b)] for key, (a, b) in p.get("item_sums", {}).items()},
        total_sums=[float(x) for x in p.get("total_sums", [0.0, 0.0])],
    )
    items = {
        key: ItemSums(*(int(x) for x in values)) for key, values in data.get("items", {}).items()
    }
    return Atom(items=items, people=people)


@dataclass(frozen=True)
class RoundItems:
    """What a round asked: its items (from its schedule's snapshot), in order."""

    round_id: int
    items: dict[str, Item]

    @property
    def index_items(self) -> list[str]:
        return [key for key, item in self.items.items() if item.kind == "likert5"]


Atoms = dict[tuple[int, int], Atom]


# SQL


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

    One pass over ``responses``: the inner query pivots each respondent set (round,
    pseudonymous key) into one row of answers, the outer one sums those rows per (round,
    team) — item counts and boxes, the person-first index, segments, and the sums Cronbach's
    alpha needs (for ``alpha_rounds`` only; None = every round). Nothing per person leaves
    the database.
    """
    atoms: Atoms = {}
    teams = None if team_ids is None else sorted(set(team_ids))
    if not rounds or (teams is not None and not teams):
        return atoms
    meta: dict[str, Item] = {}
    for rnd in rounds:
        for key, item in rnd.items.items():
            if item.kind in ("likert5", "scale0_10"):
                meta.setdefault(key, item)
    keys = sorted(meta)
    likert = [key for key in keys if meta[key].kind == "likert5"]
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # PostgreSQL would JIT-compile this wide aggregate (its cost estimate is high) and
        # spend seconds compiling what runs in a fraction of that: off for this transaction.
        await session.execute(text("SET LOCAL jit = off"))
    r = Response.__table__.c
    where = [r.round_id.in_([rnd.round_id for rnd in rounds])]
    if teams is not None:
        where.append(r.team_id.in_(teams))
    # Inner query, one row per respondent set. Everything per person is computed here, over
    # the pivoted answers (each aggregate once), so the outer sums only read columns.
    raw = {key: func.max(r.value_num).filter(r.item_id == key) for key in keys}
    flipped = {key: (6 - raw[key]) if meta[key].reverse else raw[key] for key in likert}
    idx_n: Any = sum((case((raw[key].is_not(None), 1), else_=0) for key in likert), start=0)
    idx_sum: Any = sum((func.coalesce((flipped[key] - 1) * 25, 0) for key in likert), start=0)
    k_round = case(
        {rnd.round_id: len(rnd.index_items) for rnd in rounds}, value=r.round_id, else_=0
    )
    qualified = and_(k_round > 0, idx_n * 3 >= k_round * 2)
    complete = and_(k_round > 1, idx_n == k_round)
    alpha_ids = None if alpha_rounds is None else sorted(set(alpha_rounds))
    in_alpha = complete if alpha_ids is None else and_(complete, r.round_id.in_(alpha_ids or [-1]))
    none = cast(None, Integer)
    s, l, a = (raw.get(key, none) for key in (satisfaction_item, stay_item, enps_item))  # noqa: E741
    c = satisfied_from
    seg = case(
        (and_(s >= c, l >= 4), "apostle"),
        (and_(s >= c, l <= 3), "mercenary"),
        (and_(s < c, l >= 4), "hostage"),
        (and_(s < c, l <= 3, a <= 6), "loose_cannon"),
        (and_(s < c, l <= 3, a >= 7), "quiet_defector"),
        (and_(s < c, l <= 3, a.is_(None)), "disloyal_unknown"),
        else_=None,
    )
    total: Any = sum((func.coalesce(flipped[key], 0) for key in likert), start=0)
    inner = (
        select(
            r.round_id.label("round_id"),
            func.max(r.team_id).label("team_id"),
            case((qualified, cast(idx_sum, Float) / idx_n)).label("mean"),
            case((complete, 1), else_=0).label("complete"),
            seg.label("seg"),
            case((in_alpha, total)).label("alpha_total"),
            *[case((in_alpha, flipped[key])).label(f"a{j}") for j, key in enumerate(likert)],
            *[raw[key].label(f"v{j}") for j, key in enumerate(keys)],
        )
        .where(*where)
        .group_by(r.round_id, r.respondent_key)
        .subquery()
    )
    q = inner.c
    zero = 0
    columns: list[Any] = [
        q.round_id,
        q.team_id,
        func.count(),
        func.count(q.mean),
        func.sum(q.mean),
        func.sum(q.mean * q.mean),
        func.sum(q.complete),
        *[func.sum(case((q.seg == name, 1), else_=zero)) for name in SEGMENTS],
        func.sum(q.alpha_total),
        func.sum(q.alpha_total * q.alpha_total),
    ]
    for j, _key in enumerate(likert):
        column = getattr(q, f"a{j}")
        columns += [func.sum(column), func.sum(column * column)]
    for j, key in enumerate(keys):
        v = getattr(q, f"v{j}")
        if meta[key].kind == "likert5":
            high, low = case((v >= 4, 1), else_=zero), case((v <= 2, 1), else_=zero)
        else:
            high, low = case((v >= 9, 1), else_=zero), case((v <= 6, 1), else_=zero)
        columns += [func.count(v), func.sum(high), func.sum(low), func.sum(v)]
    for row in await session.execute(select(*columns).group_by(q.round_id, q.team_id)):
        values = list(row)
        round_id, team_id, respondents, index_n, index_sum, index_sq, complete_n = values[:7]
        at = 7
        segments = {name: int(values[at + i] or 0) for i, name in enumerate(SEGMENTS)}
        at += len(SEGMENTS)
        people = PeopleSums(
            respondents=int(respondents),
            index_n=int(index_n or 0),
            index_sum=float(index_sum or 0.0),
            index_sq=float(index_sq or 0.0),
            segments=segments,
            complete_n=int(complete_n or 0),
            total_sums=[float(values[at] or 0), float(values[at + 1] or 0)],
        )
        at += 2
        for key in likert:
            people.item_sums[key] = [float(values[at] or 0), float(values[at + 1] or 0)]
            at += 2
        atom = Atom(people=people)
        for key in keys:
            n, upper, lower, total_v = (int(x or 0) for x in values[at : at + 4])
            at += 4
            if not n:
                continue
            if meta[key].kind == "likert5":
                atom.items[key] = ItemSums(n, top2=upper, bottom2=lower, total=total_v)
            else:
                atom.items[key] = ItemSums(n, total=total_v, promoters=upper, detractors=lower)
        atoms[(round_id, team_id)] = atom
    return atoms
