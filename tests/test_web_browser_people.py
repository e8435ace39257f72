"""HR imports the directory in a real browser (Chromium driven by Playwright): the file is
checked, the dry run shows what would change while the directory stays as it was, and the
confirmation applies it. Saved as docs/screenshots/people-import.png; on a phone the dry run
fits the screen; no Content-Security-Policy violation."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database

from .test_web_browser import (
    SCREENSHOTS,
    chromium,
    fidelio_with_web,
    link_from_console,
    playwright_api,
    sign_in,
)
from .test_web_people import NINA, changed_demo
from .web_helpers import HR


async def people_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Person)) or 0)


async def test_hr_checks_a_people_file_then_applies_it(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        link = await link_from_console(runtime, HR)
        before = await people_count(db)
        file = {"name": "people.csv", "mimeType": "text/csv", "buffer": changed_demo().encode()}
        async with chromium(viewport={"width": 1280, "height": 900}) as page:
            await sign_in(page, link)
            await page.get_by_role("link", name="Persone").click()
            await page.get_by_label("File delle persone (CSV)").set_input_files(file)
            await page.get_by_role("button", name="Controlla il file").click()
            await page.get_by_role("heading", name="Importazione — prova", level=1).wait_for()
            main = await page.locator("main").inner_text()
            assert "Nina Park" in main and "Sara Greco → Sara Greco-Villa" in main
            assert "In uscita (1)" in main
            assert await people_count(db) == before  # a dry run applies nothing
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "people-import.png"), full_page=True)

            await page.get_by_role("button", name="Applica queste modifiche").click()
            notice = page.get_by_role("status").filter(has_text="Il file è stato applicato")
            await playwright_api.expect(notice).to_contain_text("1 persone aggiunte")
            assert await people_count(db) == before + 1
            assert page.csp_errors == []

        async with chromium(viewport={"width": 390, "height": 844}, is_mobile=True) as page:
            await sign_in(page, await link_from_console(runtime, HR))
            await page.goto(page.url.rstrip("/") + "/people")
            await page.get_by_label("File delle persone (CSV)").set_input_files(
                file | {"buffer": changed_demo().replace("Nina Park", "Nina P.").encode()}
            )
            await page.get_by_role("button", name="Controlla il file").click()
            await page.get_by_role("heading", name="Importazione — prova", level=1).wait_for()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.csp_errors == []
    async with db.session() as session:
        assert await session.scalar(select(Person.name).where(Person.email == NINA)) == "Nina Park"
