"""The web console in a real browser: Chromium from the system's packages driven by Playwright.

Fidelio runs with the console channel and the web console on a free port; people sign in with
the link the console prints for `web`. The dashboard shows (and is saved as a screenshot in
docs/screenshots/) and its readiness follows acknowledgements without a reload, an employee is refused HR pages, a used link and a form without its CSRF
token are refused, signing out works, the keyboard reaches every control, and the browser
reports no Content-Security-Policy violation on any page.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.app import Runtime, build_runtime
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.suggestions.service import SuggestionService

from .harness import REPO, ConsoleDialog, link_on_console, load_demo, schedule_demo_briefing
from .test_surveys_ops import schedule
from .web_helpers import AISHA, HR, link_token, web_settings

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed (pip install -e .[dev])"
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="no Chromium on this machine: install Debian's chromium package (.ci/run does)",
)

ROME = ZoneInfo("Europe/Rome")
BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
ROUND_OPEN = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # the first round of pulse-fortnightly
BRIEFED = datetime(2027, 2, 26, 9, 30, tzinfo=ROME)  # spring-trade-in is briefed on 26 Feb
SCREENSHOTS = REPO / "docs" / "screenshots"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/signin/[\w-]+")


@asynccontextmanager
async def fidelio_with_web(
    db: Database, clock: ManualClock, database_url: str, *emails: str
) -> AsyncIterator[Runtime]:
    """The demo organisation and Fidelio started with the console channel and the web
    console on a free port (the scheduler and outbox left to the test)."""
    await load_demo(db, clock)
    clock.set(BEFORE)
    settings = web_settings(database_url, idle_minutes=24 * 60)
    runtime = build_runtime(settings, clock=clock, with_console=True)
    await runtime.start(console=True, background=False)
    try:
        await link_on_console(runtime, *emails)
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def chromium(**context: Any) -> AsyncIterator[Any]:
    """A new browser page (``context`` sets its viewport, language...); CSP violations the
    browser reports are collected in ``page.csp_errors``."""
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await (await browser.new_context(**context)).new_page()
            page.csp_errors = []
            page.on(
                "console",
                lambda message: (
                    page.csp_errors.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            yield page
        finally:
            await browser.close()


async def link_from_console(runtime: Runtime, email: str) -> str:
    """What the console prints for `web`: the sign-in link."""
    printed = await ConsoleDialog(runtime, email).say("web")
    found = LINK.search(printed)
    assert found is not None, printed
    return found.group(0)


async def sign_in(page: Any, link: str) -> None:
    await page.goto(link)
    await page.get_by_role("button", name=re.compile("Sign in|Entra")).click()
    await page.wait_for_load_state()


async def busy_dashboard(runtime: Runtime, clock: ManualClock, db: Database) -> None:
    """A briefing sent to three teams, a pulse round open, an anonymous suggestion waiting."""
    await schedule_demo_briefing(runtime)
    await schedule(runtime)
    clock.set(ROUND_OPEN)
    await runtime.service("surveys").run_due()
    async with db.session() as session:
        aisha = await session.scalar(select(Person).where(Person.email == AISHA))
        assert aisha is not None
        await SuggestionService(runtime.settings, clock).create(
            session, aisha, "Longer opening hours on Saturdays", "workplace", True
        )
    clock.set(BRIEFED)
    await runtime.service("briefings").run_due()


async def acknowledge(db: Database, clock: ManualClock, *emails: str) -> None:
    """``emails`` press *Got it* on the briefing (as their receipts record it)."""
    async with db.session() as session:
        people = select(Person.id).where(Person.email.in_(emails))
        await session.execute(
            update(BriefingReceipt)
            .where(BriefingReceipt.person_id.in_(people))
            .values(acknowledged_at=clock.now())
        )


async def test_hr_signs_in_with_the_link_the_console_prints_and_sees_the_dashboard(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        await busy_dashboard(runtime, clock, db)
        link = await link_from_console(runtime, HR)
        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, link)
            assert page.url.endswith("/hr")
            await page.get_by_role("heading", name="Cruscotto", level=1).wait_for()
            launches = page.locator("#launches")
            assert "Permuta di primavera" in await launches.inner_text()
            assert await page.locator("#launches tbody tr").count() == 3
            assert "Suggerimenti nuovi: 1" in await page.locator("main").inner_text()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

            # Two people acknowledge: the open page shows it by itself within seconds.
            acknowledged = page.locator("#launches tfoot td").nth(2)
            assert await acknowledged.inner_text() == "0%"
            await acknowledge(db, clock, "kevin.liu@demo.fidelio.example", AISHA)
            # 2 of 29 people; the page reloads its launches every 10 seconds.
            await playwright_api.expect(acknowledged).to_have_text("7%", timeout=20_000)

            # The keyboard: the skip link first, then every link and button, each labelled.
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"
            await page.keyboard.press("Enter")
            await page.wait_for_url("**#main", timeout=10_000)
            await page.get_by_role("link", name="Registro delle attività").click()
            await page.get_by_label("Azione").fill("web")
            await page.get_by_role("button", name="Filtra").click()
            assert "web.sign_in" in await page.locator("table").inner_text()
            await page.screenshot(path=str(SCREENSHOTS / "audit-log.png"), full_page=True)
            assert page.csp_errors == []


async def test_on_a_phone_the_dashboard_fits_the_screen(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        await busy_dashboard(runtime, clock, db)
        link = await link_from_console(runtime, HR)
        async with chromium(viewport={"width": 390, "height": 844}, is_mobile=True) as page:
            await sign_in(page, link)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # wide tables scroll inside their own box
            await page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
            assert page.csp_errors == []


async def test_used_links_missing_csrf_tokens_and_employees_are_refused_and_sign_out_works(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR, AISHA) as runtime:
        # Employees get no link in chat; an operator can give one (fidelio web link).
        token = await link_token(db, AISHA, clock, runtime.settings)
        link = f"{runtime.service('web').base_url}/signin/{token}"
        async with chromium() as page:
            await sign_in(page, link)
            assert "nothing here for your role" in await page.locator("main").inner_text()
            refused = await page.goto(page.url.rstrip("/") + "/hr")
            assert refused is not None and refused.status == 403
            assert "not available to your role" in await page.locator("main").inner_text()

        async with chromium() as page:  # another browser, the same link
            used = await page.goto(link)
            assert used is not None and used.status == 410
            assert await page.get_by_role("button", name="Sign in").count() == 0

        hr_link = await link_from_console(runtime, HR)
        async with chromium() as page:
            await sign_in(page, hr_link)
            # A form without its CSRF token (as a forged one would be) is refused.
            await page.locator("form.signout input[name=csrf]").evaluate("e => e.remove()")
            async with page.expect_response(re.compile("/signout$")) as posted:
                await page.get_by_role("button", name="Esci").click()
            assert (await posted.value).status == 403
            back = await page.goto(hr_link.split("/signin/")[0] + "/hr")
            assert back is not None and back.status == 200  # still signed in

            await page.get_by_role("button", name="Esci").click()
            await page.get_by_text("Sei uscito.").wait_for()
            after = await page.goto(hr_link.split("/signin/")[0] + "/hr")
            assert after is not None and after.status == 401
            assert page.csp_errors == []
