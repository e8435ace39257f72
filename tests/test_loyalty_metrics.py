"""MEASUREMENT.md's definitions: the worked checks, golden values from statsmodels and
pingouin, independent reference formulas on generated data, and the SQL aggregates against a
person-by-person reference on generated data."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest

from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.loyalty import metrics
from bot.loyalty.metrics import ItemSums, RoundItems
from bot.pulse.content import Item, load_survey_content

from .harness import REPO, load_demo, make_settings
from .loyalty_seed import closed_round, schedule_survey

BANK = load_survey_content(REPO / "content" / "surveys").items
ROUND_ITEMS = [
    "sat_overall",
    "intent_stay",
    "enps",
    "trust_leadership",
    "frustration",
    "growth",
    "product_nps",
    "comment",
]


# Worked checks


def test_wilson_worked_checks() -> None:
    low, high = metrics.wilson(8, 10)
    assert (round(low, 1), round(high, 1)) == (49.0, 94.3)
    low, high = metrics.wilson(4, 5)
    assert (round(low, 1), round(high, 1)) == (37.6, 96.4)
    assert metrics.wilson(0, 0) is None


def test_favorable_and_score_are_both_reported() -> None:
    # Everyone answered 4: 100 % favorable, score 75 (MEASUREMENT.md: report both).
    sums = ItemSums(n=10, top2=10, bottom2=0, total=40)
    assert sums.favorable_pct() == 100.0
    assert sums.score() == 75.0
    # 1 -> 0, 2 -> 25, 3 -> 50, 4 -> 75, 5 -> 100
    assert [metrics.rescale(v) for v in (1, 2, 3, 4, 5)] == [0, 25, 50, 75, 100]
    # A reverse-keyed item is flipped: answering 1 to "frustrated" is favorable, scores 100.
    flipped = ItemSums(n=4, top2=0, bottom2=4, total=4)
    assert flipped.favorable_pct(reverse=True) == 100.0
    assert flipped.score(reverse=True) == 100.0


def test_enps_definition_and_adjusted_wald() -> None:
    # 5 promoters (9-10), 3 passives (7-8), 2 detractors (0-6): eNPS = 100 x (5 - 2) / 10.
    assert metrics.enps(5, 2, 10) == 30.0
    low, high = metrics.enps_interval(5, 2, 10)
    n = 13
    p, d = 5.75 / n, 2.75 / n
    se = math.sqrt((p + d - (p - d) ** 2) / n)
    assert low == pytest.approx(100 * (p - d - 1.959964 * se), abs=1e-3)
    assert high == pytest.approx(100 * (p - d + 1.959964 * se), abs=1e-3)
    # Clipped to -100..+100.
    low, high = metrics.enps_interval(3, 0, 3)
    assert high <= 100.0 and low > -100.0
    assert (
        metrics.enps_interval(0, 40, 40)[0] == -100.0 or metrics.enps_interval(0, 40, 40)[0] > -100
    )


@pytest.mark.parametrize(
    ("sat", "stay", "a", "c", "expected"),
    [
        (4, 4, 3, 4, "apostle"),
        (5, 5, None, 4, "apostle"),
        (4, 3, 10, 4, "mercenary"),
        (3, 4, 0, 4, "hostage"),
        (3, 3, 6, 4, "loose_cannon"),
        (2, 1, 7, 4, "quiet_defector"),
        (4, 4, 9, 5, "hostage"),  # strict reading: only 5 is satisfied
        (5, 2, 9, 5, "mercenary"),
        (None, 4, 9, 4, None),  # missing S or L: no segment
        (4, None, 9, 4, None),
        (3, 2, None, 4, "disloyal_unknown"),  # disloyal, advocacy unknown (A skipped)
    ],
)
def test_segments(
    sat: int | None, stay: int | None, a: int | None, c: int, expected: str | None
) -> None:
    assert metrics.segment(sat, stay, a, c) == expected


def test_person_index_needs_two_thirds_and_reverses() -> None:
    items = {key: BANK[key] for key in ("sat_overall", "intent_stay", "frustration")}
    # frustration is reverse-keyed: 1 -> 5 -> 100.
    assert (
        metrics.person_index({"sat_overall": 5, "intent_stay": 3, "frustration": 1}, items)
        == 250 / 3
    )
    # 2 of 3 answered counts; 1 of 3 does not; skipped is missing, never 0.
    assert metrics.person_index({"sat_overall": 5, "intent_stay": 3}, items) == 75.0
    assert metrics.person_index({"sat_overall": 5, "intent_stay": None}, items) is None


# Cross-checks

#: (successes, n, low %, high %) from statsmodels 0.15.0
#: ``proportion_confint(successes, n, alpha=0.05, method="wilson")``, times 100.
WILSON_GOLDEN = [
    (0, 1, 0.0, 79.34506856227627),
    (1, 1, 20.65493143772374, 100.0),
    (0, 10, 0.0, 27.753279986288927),
    (10, 10, 72.24672001371107, 100.0),
    (1, 2, 9.453120573423067, 90.54687942657694),
    (8, 10, 49.01624715366418, 94.33178485456247),
    (4, 5, 37.55346297625252, 96.37758913675698),
    (3, 7, 15.821985525146964, 74.95416354723427),
    (17, 40, 28.509392559950374, 57.80493145800894),
    (50, 100, 40.38315303659956, 59.61684696340044),
    (123, 400, 26.42873977313039, 35.43748355874003),
    (1, 400, 0.04414477868016353, 1.4023285075823395),
    (399, 400, 98.59767149241766, 99.95585522131984),
]


def _wilson_reference(successes: int, n: int) -> tuple[float, float]:
    """The Wilson interval as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n, in percent."""
    z = statistics.NormalDist().inv_cdf(0.975)
    p_hat = successes / n
    a = 1 + z * z / n
    b = -(2 * p_hat + z * z / n)
    c = p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return (100 * (-b - root) / (2 * a), 100 * (-b + root) / (2 * a))


def test_wilson_matches_statsmodels_golden_values() -> None:
    for successes, n, low, high in WILSON_GOLDEN:
        ours = metrics.wilson(successes, n)
        assert ours is not None
        assert ours[0] == pytest.approx(low, abs=1e-6), (successes, n)
        assert ours[1] == pytest.approx(high, abs=1e-6), (successes, n)
        reference = _wilson_reference(successes, n)
        assert reference[0] == pytest.approx(low, abs=1e-6), (successes, n)
        assert reference[1] == pytest.approx(high, abs=1e-6), (successes, n)


def test_wilson_matches_the_reference() -> None:
    rng = random.Random(6)
    for _ in range(300):
        n = rng.randint(1, 400)
        k = rng.randint(0, n)
        low, high = _wilson_reference(k, n)
        ours = metrics.wilson(k, n)
        assert ours is not None
        assert ours[0] == pytest.approx(low, abs=1e-6)
        assert ours[1] == pytest.approx(high, abs=1e-6)


#: (answers, alpha): one row per person, one column per item, no missing answers; alpha from
#: pingouin 0.7.0 ``cronbach_alpha(pandas.DataFrame(answers))`` (complete cases, so its
#: pairwise and listwise policies agree).
ALPHA_GOLDEN: list[tuple[list[list[int]], float]] = [
    (
        [[4, 5, 4], [3, 3, 2], [5, 5, 5], [2, 3, 2], [4, 4, 5], [1, 2, 1]],
        0.9619565217391304,
    ),
    (
        [
            [5, 4, 5, 4],
            [3, 3, 4, 2],
            [4, 4, 4, 4],
            [2, 1, 2, 3],
            [5, 5, 4, 5],
            [1, 2, 1, 1],
            [3, 4, 3, 3],
            [4, 3, 5, 4],
            [2, 2, 3, 1],
            [3, 3, 3, 4],
        ],
        0.921487603305785,
    ),
    # Items that disagree: alpha is negative, not clipped.
    ([[1, 5], [2, 4], [3, 3], [4, 2], [5, 1], [3, 4], [2, 2], [4, 5]], -2.0740740740740744),
    ([[2, 3], [4, 4], [3, 5], [5, 4], [1, 2]], 0.7936507936507937),
]


def _alpha_reference(rows: Sequence[Sequence[int]]) -> float:
    """Cronbach's alpha from its definition: k/(k-1) x (1 - sum of item variances / variance
    of the totals), sample variances."""
    k = len(rows[0])
    item_variances = sum(statistics.variance(column) for column in zip(*rows, strict=True))
    total_variance = statistics.variance([sum(row) for row in rows])
    return k / (k - 1) * (1 - item_variances / total_variance)


def _alpha_from_rows(rows: Sequence[Sequence[int]]) -> float | None:
    sums = [(float(sum(col)), float(sum(v * v for v in col))) for col in zip(*rows, strict=True)]
    totals = [sum(row) for row in rows]
    total = (float(sum(totals)), float(sum(t * t for t in totals)))
    return metrics.alpha_from_sums(len(rows), sums, total)


def test_alpha_from_sums_matches_pingouin_golden_values() -> None:
    for rows, theirs in ALPHA_GOLDEN:
        assert _alpha_from_rows(rows) == pytest.approx(theirs, abs=1e-9)
        assert _alpha_reference(rows) == pytest.approx(theirs, abs=1e-9)
    # Undefined: one person, one item, or no variance in the totals.
    assert _alpha_from_rows([[3, 4]]) is None
    assert _alpha_from_rows([[3], [4], [5]]) is None
    assert _alpha_from_rows([[3, 3], [3, 3], [3, 3]]) is None


def test_alpha_from_sums_matches_the_reference() -> None:
    rng = random.Random(7)
    for _ in range(20):
        n, k = rng.randint(30, 199), rng.randint(2, 8)
        rows = []
        for _person in range(n):
            trait = rng.gauss(0.0, 1.0)
            rows.append([min(5, max(1, round(3 + trait + rng.gauss(0.0, 1.0)))) for _ in range(k)])
        assert _alpha_from_rows(rows) == pytest.approx(_alpha_reference(rows), abs=1e-9)


# SQL against a person-by-person reference


def _random_answers(seed: int):  # type: ignore[no-untyped-def]
    def answers(person: Person, number: int) -> dict[str, int | None] | None:
        rng = random.Random(seed * 1_000_003 + person.id * 101 + number)
        if rng.random() < 0.1:
            return None  # did not answer at all
        out: dict[str, int | None] = {}
        base = rng.choice([2, 3, 4])
        for item in ROUND_ITEMS:
            if item == "comment" or rng.random() < 0.15:
                continue  # skipped
            if BANK[item].kind == "scale0_10":
                out[item] = rng.randint(0, 10)
            else:
                out[item] = max(1, min(5, base + rng.choice([-1, 0, 0, 1])))
        return out

    return answers


async def test_sql_aggregates_match_the_reference(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    answers = _random_answers(11)
    round_id = await closed_round(db, campaign, 1, ROUND_ITEMS, answers)
    items = {key: BANK[key] for key in ROUND_ITEMS}
    # The sums computed in SQL at close and stored with the plan's atoms (the organisation is
    # the union of every atom) against a person-by-person reference.
    async with db.session() as session:
        from sqlalchemy import select

        from bot.loyalty.plan import ORG
        from bot.loyalty.release import load_groups

        people = list(await session.scalars(select(Person).where(Person.leave_date.is_(None))))
        group = (await load_groups(session, [round_id], [ORG]))[round_id][ORG].sums
    given = [g for p in people if (g := answers(p, 1)) is not None]
    assert group.people.respondents == len(given)
    # Items: favorable (reverse-keyed flipped), score, eNPS.
    for key in ROUND_ITEMS[:-1]:
        values = [g[key] for g in given if g.get(key) is not None]
        sums = group.items[key]
        assert sums.n == len(values)
        if items[key].kind == "likert5":
            favorable = [v for v in values if (v <= 2 if items[key].reverse else v >= 4)]
            assert sums.favorable(items[key].reverse) == len(favorable)
            flipped = [6 - v if items[key].reverse else v for v in values]
            assert sums.score(items[key].reverse) == pytest.approx(
                statistics.fmean([metrics.rescale(v) for v in flipped])
            )
        else:
            expected = metrics.enps(
                sum(v >= 9 for v in values), sum(v <= 6 for v in values), len(values)
            )
            assert sums.net() == pytest.approx(expected)
    # Person-first index.
    person_indexes = [x for g in given if (x := metrics.person_index(g, items)) is not None]
    assert group.people.index_n == len(person_indexes)
    assert group.people.index() == pytest.approx(statistics.fmean(person_indexes))
    # Segments.
    expected_segments = {name: 0 for name in metrics.SEGMENTS}
    for g in given:
        name = metrics.segment(g.get("sat_overall"), g.get("intent_stay"), g.get("enps"), 4)
        if name:
            expected_segments[name] += 1
    assert group.people.segments == expected_segments
    # Cronbach's alpha over complete answer sets only (listwise), from its definition.
    index_items = RoundItems(round_id, items).index_items
    complete = [
        [(6 - g[k]) if items[k].reverse else g[k] for k in index_items]
        for g in given
        if all(g.get(k) is not None for k in index_items)
    ]
    assert group.people.complete_n == len(complete)
    assert group.people.alpha(index_items) == pytest.approx(_alpha_reference(complete), abs=1e-9)


def test_item_bank_defines_reverse_keyed_frustration() -> None:
    assert isinstance(BANK["frustration"], Item) and BANK["frustration"].reverse
