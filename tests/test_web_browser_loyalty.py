"""The loyalty pages in a real browser (Chromium driven by Playwright, as in
tests/test_web_browser.py): a manager whose team is too small opens its trends and is shown
the nearest reportable group above it, with the notice saying so; HR opens the loyalty page
with its charts (every image loaded, no Content-Security-Policy violation), downloads the CSV
and reads the page on a phone. Screenshots: docs/screenshots/team-trends.png and loyalty.png.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import ManualClock
from bot.db.session import Database

from .loyalty_seed import FIRST, closed_round, schedule_survey
from .test_summaries_e2e import ITEMS, answers
from .test_web_browser import (
    SCREENSHOTS,
    chromium,
    fidelio_with_web,
    link_from_console,
    pytestmark,  # noqa: F401  (skipped without Chromium)
    sign_in,
)
from .web_helpers import HR, SILVIA


async def three_closed_rounds(runtime: Any, db: Database, clock: ManualClock) -> None:
    """Three closed pulse rounds of the demo organisation, every active person answering."""
    campaign = await schedule_survey(runtime.settings, db, clock)
    for number in range(1, 4):
        await closed_round(db, campaign, number, ITEMS, answers)
    clock.set(FIRST + timedelta(weeks=8))


async def images_loaded(page: Any) -> list[bool]:
    """For each image of the page: whether the browser loaded and decoded it."""
    return list(
        await page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    )


async def test_a_manager_opens_a_team_too_small_and_is_shown_the_parent(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, SILVIA) as runtime:
        await three_closed_rounds(runtime, db, clock)
        link = await link_from_console(runtime, SILVIA)
        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, link)
            await page.get_by_role("link", name="Andamento").click()
            await page.get_by_role("heading", name="Andamento", level=1).wait_for()
            # HR & People (4 people) is too small: the organisation instead, and why.
            notice = await page.locator("#parent-notice").inner_text()
            assert "Troppe poche risposte per mostrare HR & People" in notice
            assert "ecco l'organizzazione" in notice
            assert await page.locator("#shown-scope").inner_text() == "l'organizzazione"
            assert await page.locator("#rounds tbody tr").count() == 3
            assert await images_loaded(page) == [True]
            alt = await page.locator("figure.chart img").get_attribute("alt")
            assert alt is not None and "l'organizzazione" in alt
            # Choosing the team again by keyboard gives the same answer.
            await page.get_by_label("Team", exact=True).select_option("HR & People")
            await page.get_by_label("Turni").fill("2")
            await page.get_by_role("button", name="Mostra").press("Enter")
            await page.wait_for_url("**/team/trends?team=HR*")
            assert "ecco l'organizzazione" in await page.locator("#parent-notice").inner_text()
            assert await page.locator("#rounds tbody tr").count() == 2
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "team-trends.png"), full_page=True)
            assert page.csp_errors == []


async def test_hr_opens_the_loyalty_page_with_its_charts(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        await three_closed_rounds(runtime, db, clock)
        link = await link_from_console(runtime, HR)
        async with chromium(viewport={"width": 1280, "height": 900}, accept_downloads=True) as page:
            await sign_in(page, link)
            await page.get_by_role("link", name="Fedeltà").click()
            await page.get_by_role("heading", name="Fedeltà", level=1).wait_for()
            assert await images_loaded(page) == [True, True]  # summary chart and heat map
            assert await page.locator("#heatmap tbody tr").count() == 6
            hidden = page.locator("#heatmap tbody tr", has_text="HR & People")
            assert "Nascosto" in await hidden.inner_text()
            await page.screenshot(path=str(SCREENSHOTS / "loyalty.png"), full_page=True)

            async with page.expect_download() as downloading:
                await page.get_by_role("link", name="Valori (CSV)").click()
            download = await downloading.value
            assert download.suggested_filename == "loyalty-report.csv"
            saved = await download.path()
            assert saved is not None
            first = open(saved, encoding="utf-8").readline().strip()  # noqa: ASYNC230
            assert first == "scope,round,measure,n,value,low,high"

            # On a phone the page fits the screen: charts shrink, tables scroll in their box.
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.reload()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.csp_errors == []
