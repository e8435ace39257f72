"""The pictures of README.md and docs/, made from Fidelio's own output and saved in
docs/screenshots/ each time these tests run.

- A briefing card and a pulse question exactly as the Telegram channel sent them (its HTML text
  and inline keyboard, recorded by the fake Telegram server), laid out as a chat and
  photographed with the system's Chromium.
- A manager's loyalty summary chart as `summary` sends it: closed rounds of the demo organisation, read
  through the release plan, drawn by bot/loyalty/charts.py (the console saves it as a PNG).
"""

from __future__ import annotations

import html
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.console_session import console_person
from bot.db.session import Database
from bot.pulse.content import load_survey

from . import harness
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, ConsoleDialog, TelegramDialog, console_runtime, make_settings, running
from .test_summaries_e2e import seed

SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAX_BYTES = 200_000  # keep the repository small
ROME = ZoneInfo("Europe/Rome")
FIRST_ROUND = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # pulse-fortnightly's first opening
BRIEF_AT = datetime(2027, 2, 26, 9, 0, tzinfo=ROME)  # spring-trade-in's briefing time
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano, English

fake = harness.fake_telegram("fake", 50.0)

#: A chat as Telegram lays it out: the bot's bubble, its inline keyboard under it.
CHAT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #c8d6c0; font: 15px/1.4 "DejaVu Sans", sans-serif; }}
#chat {{ width: 420px; padding: 14px; }}
.bubble {{ background: #fff; border-radius: 12px; padding: 8px 12px; white-space: pre-wrap;
          box-shadow: 0 1px 1px rgba(0,0,0,.15); }}
.from {{ color: #3a7bd5; font-weight: bold; margin-bottom: 2px; }}
.row {{ display: flex; gap: 4px; margin-top: 4px; }}
.row span {{ flex: 1; text-align: center; padding: 8px 4px; border-radius: 8px;
            background: rgba(0,0,0,.28); color: #fff; font-weight: bold; }}
</style></head><body><div id="chat"><div class="bubble"><div class="from">Fidelio</div>{text}</div>
{keyboard}</div></body></html>"""


def chat_page(message: Any) -> str:
    """The page showing one message the Telegram channel sent (its HTML is Telegram's subset:
    b, i, u, s, code, pre, a; kept as it is), with its keyboard row by row."""
    assert message.parse_mode == "HTML"
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    keyboard = "\n".join(
        '<div class="row">'
        + "".join(f"<span>{html.escape(button['text'])}</span>" for button in row)
        + "</div>"
        for row in rows
    )
    return CHAT_PAGE.format(text=(message.text or "").strip(), keyboard=keyboard)


async def photograph(pages: dict[str, str], tmp_path: Path) -> None:
    """Save each page's chat as docs/screenshots/<name>.png."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium on this machine: install Debian's chromium package")
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 448, "height": 400})
            for name, content in pages.items():
                source = tmp_path / f"{name}.html"
                source.write_text(content, encoding="utf-8")
                await page.goto(source.as_uri())
                await page.locator("#chat").screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        finally:
            await browser.close()


async def test_a_briefing_card_and_a_pulse_question_as_telegram_shows_them(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer, tmp_path: Path
) -> None:
    await harness.load_demo(db, clock)
    people = await harness.link_everyone_on_telegram(db, fake, clock, lambda i: 40_000 + i)
    aisha = TelegramDialog(fake, 40_000 + people[AISHA].id)
    settings = make_settings(
        database_url, telegram=harness.telegram_section(fake), rates=harness.fast_rates(50.0)
    )
    async with running(settings, clock, background=False) as runtime:
        survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
        async with runtime.db.session() as session:
            await runtime.service("surveys").schedule_in(session, survey, items, "hr")
        clock.set(FIRST_ROUND)
        await runtime.service("surveys").run_due()
        await runtime.outbox.drain()
        await aisha.press("Start")
        question = aisha.last_message()
        await harness.schedule_demo_briefing(runtime)
        clock.set(BRIEF_AT)
        await runtime.service("briefings").run_due()
        await runtime.outbox.drain()
        card = aisha.last_message()

    assert (question.text or "").startswith("<b>Fortnightly pulse</b>, 1/8")
    assert [label for label, _ in question.buttons()] == ["1", "2", "3", "4", "5", "Skip"]
    assert "Before launch" in (card.text or "") and "Spring trade-in" in (card.text or "")
    assert [label for label, _ in card.buttons()] == ["Read more", "Got it"]
    pages = {"briefing-card": chat_page(card), "pulse-question": chat_page(question)}
    await photograph(pages, tmp_path)
    for name in ("briefing-card", "pulse-question"):
        picture = (SCREENSHOTS / f"{name}.png").read_bytes()
        assert picture.startswith(b"\x89PNG") and len(picture) < MAX_BYTES, name


async def test_a_loyalty_summary_chart_as_summary_sends_it(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    """Three closed rounds of the demo organisation; the manager of Sales Milano asks
    `summary` in English on the console, which saves the chart of his team, as the release
    plan allows it, as a PNG."""
    await seed(db, clock, database_url, rounds=3)
    luca = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano
    async with console_runtime(make_settings(database_url, console={"enabled": True}), clock) as rt:
        await console_person(rt, luca)
        rt.channels["console"].image_dir = tmp_path
        dialog = ConsoleDialog(rt, luca)
        await dialog.say("language en")
        answer = await dialog.say("summary")
    assert "Loyalty summary: Sales Milano" in answer and "image saved to" in answer
    (chart,) = tmp_path.glob("*.png")
    picture = chart.read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) < MAX_BYTES, len(picture)
    (SCREENSHOTS / "summary-chart.png").write_bytes(picture)
