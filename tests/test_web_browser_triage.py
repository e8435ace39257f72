"""The Surveys and Suggestions pages in a real browser (Chromium driven by Playwright).

An employee sends an anonymous suggestion on (the fake) Telegram; HR gets a sign-in link by
writing `web` there, opens the suggestion in the browser, which never shows who wrote it,
sets its status and replies; the author's notices arrive on Telegram, and nothing stored
names her. HR pauses a survey schedule and previews a round on the Surveys page. Screenshots
are saved in docs/screenshots/ (suggestions.png, surveys.png); the pages fit a phone's
screen and the browser reports no Content-Security-Policy violation.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import Campaign, CampaignStatus
from bot.db.session import Database

from . import harness
from .fakes.telegram import FakeTelegramServer
from .harness import TelegramDialog, running
from .test_suggestions_e2e import AISHA, HR, deliver, demo_on_telegram, rows_naming, uid
from .test_surveys_ops import schedule
from .test_web_browser import (
    LINK,
    ROUND_OPEN,
    SCREENSHOTS,
    chromium,
    fidelio_with_web,
    link_from_console,
    playwright_api,
    sign_in,
)

fake = harness.fake_telegram("fake", 50.0)
expect = playwright_api.expect


async def test_hr_triages_in_the_browser_and_the_anonymous_author_is_told_on_telegram(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    web = {"enabled": True, "port": harness.free_port(), "idle_minutes": 24 * 60}
    people, settings = await demo_on_telegram(db, clock, fake, database_url, web=web)
    aisha = people[AISHA]
    async with running(settings, clock, background=False) as runtime:
        author = TelegramDialog(fake, uid(aisha.id))
        await author.say("/suggest A demo OLED at every till")
        await author.press("Product")
        assert "S-0001" in (await author.press("Anonymously"))[0]
        link = LINK.search((await TelegramDialog(fake, uid(people[HR].id)).say("/web"))[0])
        assert link is not None

        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, link.group(0))
            await page.get_by_role("link", name="Suggerimenti", exact=True).click()
            await page.get_by_label("Stato").select_option("new")
            await page.get_by_role("button", name="Filtra").click()
            await page.get_by_role("link", name="S-0001").click()
            main = page.locator("main")
            await expect(main).to_contain_text("A demo OLED at every till")
            await page.get_by_label("Nuovo stato").select_option("planned")
            await page.get_by_role("button", name="Cambia lo stato").click()
            await expect(main).to_contain_text("S-0001: stato cambiato")
            await page.get_by_label("Risposta all'autore").fill("We will try it in Milano.")
            await page.get_by_role("button", name="Invia la risposta").click()
            await expect(main).to_contain_text("risposta inviata")
            shown = await main.inner_text()
            assert "Anonimo" in shown and "Pianificato" in shown
            for trace in ("Aisha", "Khan", AISHA):
                assert trace not in await page.content()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "suggestions.png"), full_page=True)
            assert page.csp_errors == []

        before = len(fake.messages_to(uid(aisha.id)))
        await deliver(runtime)
        await fake.wait_for_messages(uid(aisha.id), before + 2)
        told = [m.text or "" for m in fake.messages_to(uid(aisha.id))[before:]]
        assert "Your suggestion S-0001</b> is now <b>planned</b>" in told[0]
        assert "A reply to your suggestion S-0001" in told[1]
        assert "We will try it in Milano." in told[1]
    assert await rows_naming(db, aisha.id) == []


async def test_hr_pauses_a_schedule_and_previews_a_round_on_a_desktop_and_a_phone(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        await schedule(runtime)
        clock.set(ROUND_OPEN)
        await runtime.service("surveys").run_due()
        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, await link_from_console(runtime, HR))
            await page.get_by_role("link", name="Sondaggi", exact=True).click()
            await page.get_by_role("button", name="Metti in pausa P-1").click()
            main = page.locator("main")
            await expect(main).to_contain_text("La pianificazione P-1 è in pausa")
            await expect(page.get_by_role("button", name="Riprendi P-1")).to_be_visible()
            await page.screenshot(path=str(SCREENSHOTS / "surveys.png"), full_page=True)

            await page.get_by_role("link", name=re.compile("Anteprima di un turno")).click()
            await page.get_by_label("Lingua", exact=True).select_option("en")
            await page.get_by_label("Numero del turno").fill("0")
            await page.get_by_role("button", name="Mostra").click()
            await expect(page.locator("#error-round")).to_be_visible()
            await page.get_by_label("Numero del turno").fill("2")
            await page.get_by_role("button", name="Mostra").click()
            telegram = page.locator("section.preview").first
            await expect(telegram).to_contain_text("Fortnightly pulse, 8/8")
            assert await telegram.locator("b").first.inner_text() == "Fortnightly pulse"
            await page.screenshot(path=str(SCREENSHOTS / "survey-preview.png"), full_page=True)
            assert page.csp_errors == []

        async with chromium(viewport={"width": 390, "height": 844}, is_mobile=True) as phone:
            await sign_in(phone, await link_from_console(runtime, HR))
            for path in ("/hr/surveys", "/hr/surveys/preview", "/suggestions"):
                await phone.goto(phone.url.split("/hr")[0].rstrip("/") + path)
                width = await phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, path  # wide tables and messages scroll in their own box
            assert phone.csp_errors == []
    async with db.session() as session:
        status = await session.scalar(select(Campaign.status))
    assert status == CampaignStatus.paused
