"""``ask`` in chat answers only from briefings the person has received: in their audience and
past the briefing time; when nothing fits it offers the briefings themselves."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.briefings.content import load_briefing
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import AuditEntry, Person
from bot.db.session import Database

from .harness import REPO, ConsoleDialog, demo_console, schedule_demo_briefing

ROME = ZoneInfo("Europe/Rome")
SALES = "kevin.liu@demo.fidelio.example"  # Sales Milano, English
SALES_IT = "antonio.romano@demo.fidelio.example"  # Sales Roma, Italian
MARKETING = "olivia.bennett@demo.fidelio.example"  # in the Aurora's audience, not the trade-in's
# spring-trade-in is briefed on 26 Feb 2027 09:00; aurora-oled-55 on 10 Mar 2027 09:00.
TRADE_IN_BRIEF = datetime(2027, 2, 26, 9, 0, tzinfo=ROME)
BOTH_BRIEFED = datetime(2027, 3, 10, 9, 0, tzinfo=ROME)


async def test_ask_never_answers_from_a_briefing_outside_the_persons_audience(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, SALES, MARKETING, at=BOTH_BRIEFED) as runtime:
        await schedule_demo_briefing(runtime)
        aurora = load_briefing(REPO / "content" / "briefings", "aurora-oled-55")
        await runtime.service("briefings").schedule(aurora, actor="hr")
        await runtime.service("briefings").run_due()

        question = "ask how much off for an old broken TV with the trade-in?"
        seller = await ConsoleDialog(runtime, SALES).say(question)
        assert "From Spring trade-in" in seller and "150 euro" in seller
        outsider = await ConsoleDialog(runtime, MARKETING).say(question)
        # Olivia has the Aurora briefing only: the trade-in is never quoted to her.
        assert "Spring trade-in" not in outsider
        assert "Aurora OLED 55" in outsider  # answers or the offer of briefings: hers only
        assert "150 euro" not in outsider


async def test_ask_finds_nothing_before_the_briefing_time_even_with_a_receipt(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, SALES_IT, at=datetime(2027, 2, 25, 9, 0, tzinfo=ROME)
    ) as runtime:
        campaign = await schedule_demo_briefing(runtime)
        await runtime.service("briefings").run_due()  # a day early: nothing is queued
        antonio = ConsoleDialog(runtime, SALES_IT)
        question = "chiedi il tv rotto vale qualcosa nella permuta?"
        assert "non hai briefing attivi" in await antonio.say(question)

        # Even a receipt written ahead of time does not open the briefing before its time.
        async with runtime.db.session() as session:
            person = await session.scalar(select(Person).where(Person.email == SALES_IT))
            assert person is not None
            session.add(
                BriefingReceipt(
                    campaign_id=campaign.id,
                    person_id=person.id,
                    team_id=person.team_id,
                    queued_at=clock.now(),
                    late=False,
                    quiz_answers={},
                )
            )
        assert "non hai briefing attivi" in await antonio.say(question)

        clock.set(TRADE_IN_BRIEF)
        assert "Da Permuta di primavera" in await antonio.say(question)


async def test_when_nothing_fits_ask_says_so_and_offers_the_briefings(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, SALES, at=TRADE_IN_BRIEF) as runtime:
        await schedule_demo_briefing(runtime)
        await runtime.service("briefings").run_due()
        kevin = ConsoleDialog(runtime, SALES)
        reply = await kevin.say("ask what time does the shop open on sunday")
        assert 'Nothing in your active briefing answers "what time does the shop open' in reply
        assert "Your briefings" in reply and "not read yet" in reply
        assert "[1] Spring trade-in" in reply  # one tap opens it
        assert "The offer" in await kevin.say("1")
    async with db.session() as session:
        audits = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "briefings.ask"))
        )
    assert [a.detail for a in audits] == [{"hits": 0}]
