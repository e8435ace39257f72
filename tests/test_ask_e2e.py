"""``ask`` end to end: real python-telegram-bot / slack-bolt clients against the fake servers,
a real database and an injected clock. A question in other words than the FAQ's finds the
right passage and quotes its briefing; a question no briefing answers offers the briefings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.briefings.content import load_briefing
from bot.clock import ManualClock
from bot.db.session import Database

from . import harness
from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, SlackDialog, TelegramDialog, load_demo, running

ROME = ZoneInfo("Europe/Rome")
BRIEFINGS = REPO / "content" / "briefings"
# aurora-oled-55: briefed on 10 Mar 2027 09:00 Rome, five days before its launch.
AURORA_BRIEF = datetime(2027, 3, 10, 9, 0, tzinfo=ROME)
FAST_RATES = harness.fast_rates(20.0)

fake = harness.fake_telegram("fake", 20.0)


def user_id(person_id: int) -> int:
    return 10_000 + person_id


async def test_a_paraphrased_italian_question_finds_the_faq_and_quotes_its_briefing(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    people = await harness.link_everyone_on_telegram(db, fake, clock, user_id)
    clock.set(AURORA_BRIEF)
    settings = harness.make_settings(
        database_url, telegram=harness.telegram_section(fake), rates=FAST_RATES
    )
    async with running(settings, clock, background=False) as runtime:
        aurora = load_briefing(BRIEFINGS, "aurora-oled-55")
        await runtime.service("briefings").schedule(aurora, actor="hr")
        await runtime.service("briefings").run_due()
        await runtime.outbox.drain()
        antonio = TelegramDialog(fake, user_id(people["antonio.romano@demo.fidelio.example"].id))

        # The FAQ says "Si può appendere al muro?": no word of the question is in it.
        answer = (await antonio.say("/chiedi il televisore lo posso montare sulla parete?"))[0]
        first = answer.split("Da <i>")[1]
        assert first.startswith("Aurora OLED 55: il nostro nuovo TV di punta</i>")
        assert "<b>Si può appendere al muro?</b>" in first and "staffa sottile" in first


async def test_a_question_no_briefing_answers_offers_the_briefing_list_on_slack(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    async with FakeSlackServer(rate_scale=20.0) as slack:
        grace = SlackUser("U0GRACE", "grace.adeyemi@demo.fidelio.example", "grace")
        slack.add_user(grace)
        clock.set(AURORA_BRIEF)
        async with harness.running_on_slack(
            slack, clock, database_url, background=False, rates=FAST_RATES
        ) as runtime:
            await runtime.channels["slack"].sync_directory(db, clock)
            aurora = load_briefing(BRIEFINGS, "aurora-oled-55")
            await runtime.service("briefings").schedule(aurora, actor="hr")
            await runtime.service("briefings").run_due()
            await runtime.outbox.drain()
            dialog = SlackDialog(slack, "U0GRACE")

            nothing, listing = await dialog.say("ask where do I find next week's rota", replies=2)
            assert 'Nothing in your active briefing answers "where do I find' in nothing
            assert "Your briefings" in listing and "not read yet" in listing
            opened = await dialog.press("Aurora OLED 55: our new flagship TV")
            assert "What it is" in opened[0]
