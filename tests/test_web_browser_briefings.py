"""HR's briefing pages in a real browser (Chromium driven by Playwright), with Fidelio on the
fake Telegram server: HR signs in with a link, writes a briefing (a problem is shown at its
field), schedules it, people get it on Telegram and press *Got it* there, and the open page's
readiness follows without a reload. Screenshots go to docs/screenshots/ (briefing-editor.png,
briefings.png); the page fits a phone and the browser reports no CSP violation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.session import Database

from .fakes.telegram import FakeTelegramServer
from .harness import (
    TelegramDialog,
    fast_rates,
    free_port,
    link_everyone_on_telegram,
    load_demo,
    make_settings,
    running,
    telegram_section,
)
from .test_web_browser import SCREENSHOTS, chromium, playwright_api, sign_in
from .web_helpers import AISHA, HR, link_token

ROME = ZoneInfo("Europe/Rome")
BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
BRIEF_AT = datetime(2027, 1, 1, 13, 0, tzinfo=ROME)  # 23 hours before the launch below
FRANCESCA = "francesca.conti@demo.fidelio.example"
FIELDS = {
    "#f-id": "aurora-soundbar",
    "#f-launch_at": "2027-01-02 12:00 Europe/Rome",
    "#f-brief": "23h",
    "#f-audience": "teams: [Sales Milano]",
    "#f-title-en": "Aurora soundbar",
    "#f-summary-en": "A soundbar made for the Aurora TVs.",
    "#f-summary-it": "Una soundbar fatta per i TV Aurora.",
    "#f-body-en": "# What it is\nA **soundbar**, on sale from {{ launch_local }}.",
    "#f-body-it": "# Che cos'è\nUna **soundbar**, in vendita dal {{ launch_local }}.",
}


def user_id(person_id: int) -> int:
    return 20_000 + person_id


async def write_the_briefing(page: Any) -> None:
    """The editor: first without the Italian title (refused at that field), then complete."""
    await page.get_by_role("link", name="Briefing", exact=True).click()
    await page.get_by_role("heading", name="Briefing", level=1).wait_for()
    assert "spring-trade-in" in await page.locator("table").inner_text()
    await page.get_by_role("link", name="Nuovo briefing").click()
    for selector, value in FIELDS.items():
        await page.locator(selector).fill(value)
    await page.get_by_role("button", name="Salva").click()
    title_it = page.locator("#f-title-it")
    await playwright_api.expect(title_it).to_have_attribute("aria-invalid", "true")
    assert await title_it.get_attribute("aria-describedby") == "e-title-it"
    assert await page.locator("#e-title-it").inner_text() == "missing text for this locale"
    await page.screenshot(path=str(SCREENSHOTS / "briefing-editor.png"), full_page=True)
    await title_it.fill("Soundbar Aurora")
    await page.get_by_role("button", name="Salva").click()
    await page.get_by_text("Briefing salvato.").wait_for()


async def schedule_it(page: Any) -> None:
    """The times come from the briefing; pressing *Programma* schedules campaign B-1."""
    assert await page.locator("#f-launch_at").input_value() == FIELDS["#f-launch_at"]
    await page.get_by_role("button", name="Programma").click()
    await page.get_by_text("Programmato come campagna B-1.").wait_for()
    preview = page.locator('[data-preview="it-body-telegram"] .bubble')
    assert "soundbar" in await preview.inner_html() and "<b>" in await preview.inner_html()


async def deliver(runtime: Runtime, clock: ManualClock) -> None:
    """The briefing time comes: the cards go out through the outbox to Telegram."""
    clock.set(BRIEF_AT)
    stats = await runtime.service("briefings").run_due()
    assert stats.queued == 11  # Sales Milano
    await runtime.outbox.drain()


async def test_hr_writes_and_schedules_a_briefing_and_sees_readiness_follow_telegram(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    clock.set(BEFORE)
    people = await link_everyone_on_telegram(db, telegram, clock, user_id)
    settings = make_settings(
        database_url,
        web={"enabled": True, "port": free_port(), "idle_minutes": 24 * 60},
        telegram=telegram_section(telegram),
        rates=fast_rates(20.0),
    )
    async with running(settings, clock, background=False) as runtime:
        token = await link_token(db, HR, clock, settings)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, f"{runtime.service('web').base_url}/signin/{token}")
            await write_the_briefing(page)
            await schedule_it(page)
            await deliver(runtime, clock)
            total = page.locator('#readiness td[data-ack="total"]')
            await playwright_api.expect(total).to_have_text("0%", timeout=20_000)

            # Two people press the button on the card they got on Telegram.
            aisha = TelegramDialog(telegram, user_id(people[AISHA].id))
            assert "Aurora soundbar" in (aisha.last_message().text or "")
            assert "you have read" in (await aisha.press("Got it"))[0]
            francesca = TelegramDialog(telegram, user_id(people[FRANCESCA].id))
            assert "Soundbar Aurora" in (francesca.last_message().text or "")
            await francesca.press("Ho capito")
            # 2 of 11: the open page reloads its readiness every 5 seconds.
            await playwright_api.expect(total).to_have_text("18%", timeout=20_000)
            milano = page.locator('#readiness td[data-ack="Sales Milano"]')
            assert await milano.inner_text() == "18%"
            await page.screenshot(path=str(SCREENSHOTS / "briefings.png"), full_page=True)

            await page.set_viewport_size({"width": 390, "height": 844})
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.csp_errors == []
