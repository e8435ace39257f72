"""The digest: after a round closes, managers with a reportable team and HR get summaries
unasked through the outbox (photos on Telegram); HR's includes the team heat map."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.figure import Figure
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Delivery, Person
from bot.db.session import Database
from bot.loyalty.digest import DigestService
from bot.loyalty.tables import LoyaltyDigest

from .fakes.telegram import FakeTelegramServer
from .harness import REPO, make_settings, running, telegram_section
from .test_summaries_e2e import FAST_RATES, HR, LUCA, link_telegram, people_by_email, seed, uid

SILVIA = "silvia.rossi@demo.fidelio.example"  # manages HR & People: too few to report


async def test_digest_reaches_managers_and_hr_once(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed(db, clock, database_url, rounds=2)
    async with FakeTelegramServer(rate_scale=50.0) as fake:
        await link_telegram(db, fake, clock, LUCA, HR, SILVIA)
        people = await people_by_email(db)
        settings = make_settings(database_url, telegram=telegram_section(fake), rates=FAST_RATES)
        async with running(settings, clock, background=False) as runtime:
            digest = DigestService(settings, runtime.db, clock)
            stats = await digest.run_due()
            assert stats.rounds == 2
            again = await digest.run_due()
            assert again.rounds == 0
            await runtime.outbox.drain()

            luca = fake.messages_to(uid(people[LUCA].id))
            texts = [m.text or m.caption or "" for m in luca]
            assert any("Riepilogo fedeltà: Sales Milano" in t for t in texts)
            assert any("si è chiuso" in t for t in texts)
            assert sum(1 for m in luca if m.photo) == 2  # one chart per round's digest

            hr = fake.messages_to(uid(people[HR].id))
            assert any("l'organizzazione" in (m.text or "") for m in hr)
            heat = [m for m in hr if m.photo and "Mappa" in (m.caption or "")]
            assert heat and heat[0].photo is not None and heat[0].photo.startswith(b"\x89PNG")

            # Silvia's team (4 people) cannot be reported: she gets nothing unasked.
            assert fake.messages_to(uid(people[SILVIA].id)) == []

    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(LoyaltyDigest)) == 2
        keys = list(await session.scalars(select(Delivery.key)))
        assert len(keys) == len(set(keys))
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.digest"))
        )
        assert len(audit) == 2


async def test_digest_can_be_switched_off(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed(db, clock, database_url, rounds=1)
    settings = make_settings(database_url, loyalty={"digest": False})
    stats = await DigestService(settings, db, clock).run_due()
    assert stats.rounds == 0


def _assert_heat_map(
    heat_calls: list[tuple[list[str], list[list[float | None]], Figure]],
    texts: dict[str, str],
    locale: str,
) -> None:
    """HR & People (4 people) is a row with every cell hidden, and the legend says why; the
    root team's row is the whole organisation's, and says so."""
    [(teams, values, figure)] = heat_calls
    organisation = texts["chart.row_organisation"].replace("{team}", "Headquarters")
    assert teams[0] == organisation and "Headquarters" not in teams
    hidden = dict(zip(teams, values, strict=True))["HR & People"]
    assert hidden and all(v is None for v in hidden)
    assert {"Sales Milano", "Sales Roma", "Customer Care"} <= set(teams)
    assert any(v is not None for v in dict(zip(teams, values, strict=True))["Sales Milano"])
    [legend] = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [texts["chart.suppressed"]]
    assert ("persone" if locale == "it" else "identifying people") in texts["chart.suppressed"]
    ax = figure.axes[0]  # the map (then its colour bar)
    assert [t.get_text() for t in ax.get_yticklabels()] == teams


def _assert_summary_chart(
    args: dict[str, Any], figure: Figure, texts: dict[str, str], precise_from: int
) -> None:
    """Separate index and eNPS axes, n under each round, low precision marked, a line per
    segment."""
    assert args["precise_from"] == precise_from
    panels = {ax.get_gid(): ax for ax in figure.axes}
    assert set(panels) == {"index", "enps", "segments", "favorable"}
    assert panels["index"].get_ylim() == (0.0, 100.0)
    assert panels["enps"].get_ylim() == (-100.0, 100.0)
    [point] = args["trend"]
    ticks = [t.get_text() for t in panels["enps"].get_xticklabels()]
    assert f"n={point.enps_n}" in ticks[0]
    assert ticks[0].endswith("*") == (point.enps_n < precise_from)
    [drawn] = [
        line for line in panels["enps"].get_lines() if line.get_gid() in ("point", "low_precision")
    ]
    assert list(drawn.get_ydata()) == [point.enps]  # on the eNPS scale itself
    assert (drawn.get_gid() == "low_precision") == (point.enps_n < precise_from)
    note = figure.get_supxlabel()
    assert str(precise_from) in note and note.startswith("*")
    segment_legend = panels["segments"].get_legend()
    lines = [t.get_text() for t in segment_legend.get_texts()]
    assert len(lines) == 6 == len(args["segments"])
    assert lines[-1] == f"{texts['seg.disloyal_unknown']}: {texts['seg.about.disloyal_unknown']}"


@pytest.mark.parametrize("locale", ["it", "en"])
async def test_digest_charts_mark_hidden_teams_parent_rows_n_and_precision(
    db: Database,
    clock: ManualClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    locale: str,
) -> None:
    """What the digest hands the chart functions, and what the charts then show: every team
    in HR's heat map (a team too small to report present, its cells hidden, the reason in the
    legend), the root team's row named as the whole organisation; summaries with the index and
    eNPS on separate scales, their n, a low-precision mark and a line per segment."""
    from bot.loyalty import charts, present

    await seed(db, clock, database_url, rounds=1)
    async with db.session() as session:
        for person in await session.scalars(select(Person)):
            person.locale = locale
    settings = make_settings(database_url)
    heat_calls: list[tuple[list[str], list[list[float | None]], Figure]] = []
    summary_calls: list[tuple[dict[str, Any], Figure]] = []

    def heatmap_chart(teams, dimensions, values, **kwargs):  # type: ignore[no-untyped-def]
        figure = charts.heatmap_figure(teams, dimensions, values, **kwargs)
        heat_calls.append((teams, values, figure))
        return charts.heatmap_chart(teams, dimensions, values, **kwargs)

    def summary_chart(trend, segments, favorable, **kwargs):  # type: ignore[no-untyped-def]
        figure = charts.summary_figure(trend, segments, favorable, **kwargs)
        summary_calls.append(({"trend": trend, "segments": segments, **kwargs}, figure))
        return charts.summary_chart(trend, segments, favorable, **kwargs)

    monkeypatch.setattr(present, "heatmap_chart", heatmap_chart)
    monkeypatch.setattr(present, "summary_chart", summary_chart)
    digest = DigestService(settings, db, clock)
    assert (await digest.run_due()).rounds == 1
    texts = present.labels(REPO / "content" / "templates", locale)

    _assert_heat_map(heat_calls, texts, locale)

    # Summaries: separate index and eNPS axes, n under each round, low precision marked.
    precise_from = settings.loyalty.precise_from
    assert summary_calls
    for args, figure in summary_calls:
        _assert_summary_chart(args, figure, texts, precise_from)
    # Sales Milano (11 people) is below precise_from: its manager's chart marks it.
    low = [args for args, _ in summary_calls if args["title"] == "Sales Milano"]
    assert low and low[0]["trend"][0].index_n < precise_from
    assert low[0]["segment_n"] < precise_from
