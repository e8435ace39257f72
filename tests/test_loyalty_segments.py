"""The satisfaction x loyalty matrix as MEASUREMENT.md defines it: a sixth bucket for the
disloyal who skipped the eNPS item (so the buckets of everyone with S and L sum to 100 %), and
a Wilson interval on every share, in chat text, reports and the chart."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.loyalty import metrics, report
from bot.loyalty.present import labels, summary_context
from bot.loyalty.service import LoyaltyService, Summary, TeamTree, Window

from .harness import REPO, load_demo, make_settings
from .loyalty_seed import closed_round, schedule_survey

NOW = datetime(2027, 3, 1, tzinfo=UTC)


async def test_disloyal_with_advocacy_unknown_is_a_bucket_of_its_own(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    expected: dict[str, int] = dict.fromkeys(metrics.SEGMENTS, 0)

    def answers(person: Person, number: int) -> dict[str, int | str | None]:
        # Everyone answers S and L; a third of the disloyal skip the eNPS item.
        s, l = (2, 2) if person.id % 2 else (4 + person.id % 2, 3 + person.id % 3 // 2)  # noqa: E741
        a: int | None = None if person.id % 3 == 0 else person.id % 11
        expected[metrics.segment(s, l, a, 4) or "none"] += 1
        return {"sat_overall": s, "intent_stay": l, "enps": a}

    await closed_round(db, campaign, 1, ["sat_overall", "intent_stay", "enps"], answers)
    assert expected["disloyal_unknown"] >= 5
    async with db.session() as session:
        tree = await TeamTree.load(session)
        result = await LoyaltyService(settings).summarise(
            session, "v", tree.scope(None), Window(last=1), NOW, tree=tree
        )
    assert isinstance(result, Summary)
    headline = result.headline
    assert headline.segments is not None and headline.segment_ci is not None
    n = sum(expected.values())
    assert headline.segment_n == n
    assert sum(headline.segments.values()) == pytest.approx(1.0)  # nobody dropped
    for name in metrics.SEGMENTS:
        assert headline.segments[name] == pytest.approx(expected[name] / n)
        assert headline.segment_ci[name] == pytest.approx(metrics.wilson(expected[name], n))

    # Chat text: the bucket's name and each share's range, in both languages.
    for locale, bucket in (("en", "disloyal, advocacy unknown"), ("it", "passaparola non noto")):
        texts = labels(REPO / "content" / "templates", locale)
        context = summary_context(result, locale, texts)
        shown = {s["name"]: s for s in context["segments"]}
        assert any(bucket in name for name in shown)
        assert all(s["range"] for s in shown.values())
    # The CSV report: every segment share with its low and high.
    rows = list(csv.DictReader(io.StringIO(report.as_csv(result))))
    unknown = next(r for r in rows if r["measure"] == "segment_disloyal_unknown_pct")
    low, high = metrics.wilson(expected["disloyal_unknown"], n)  # type: ignore[misc]
    assert float(unknown["low"]) == pytest.approx(low, abs=0.05)
    assert float(unknown["high"]) == pytest.approx(high, abs=0.05)
