"""Briefing commands in chat: HR schedules and follows campaigns; managers see their teams."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Campaign, CampaignStatus
from bot.db.session import Database
from bot.events import ButtonPressed, ChannelUser

from .harness import ConsoleDialog, demo_console, schedule_demo_briefing
from .italian import english_words

ROME = ZoneInfo("Europe/Rome")
HR = "hr@demo.fidelio.example"
SALES_MILANO_MANAGER = "luca.moretti@demo.fidelio.example"
MARKETING_EMPLOYEE = "olivia.bennett@demo.fidelio.example"
SALES_EMPLOYEE = "kevin.liu@demo.fidelio.example"


async def test_hr_schedules_and_cancels_in_chat_and_employees_cannot(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, HR, SALES_EMPLOYEE, at=datetime(2027, 2, 1, 10, 0, tzinfo=ROME)
    ) as runtime:
        hr = ConsoleDialog(runtime, HR)
        scheduled = await hr.say("campaign schedule spring-trade-in")
        assert "Programmata la campagna B-1" in scheduled
        assert "26 feb 2027, 09:00" in scheduled and "1 mar 2027, 09:00" in scheduled
        again = await hr.say("campaign schedule spring-trade-in")
        assert "è già programmato nella campagna B-1" in again
        missing = await hr.say("campaign schedule no-such-briefing")
        assert "Non c’è un briefing con id no-such-briefing" in missing
        listing = await hr.say("campaign list")
        # The reference, the title in Marta's language, the status too.
        assert "B-1: Permuta di primavera" in listing and "(programmata)" in listing

        refused = await ConsoleDialog(runtime, SALES_EMPLOYEE).say("campaign cancel 1")
        assert "not available to you" in refused

        assert "annullata" in await hr.say("campaign cancel 1")
        cancelled_again = await hr.say("campaign cancel 1")
        assert "La campagna B-1 è già annullata." in cancelled_again
        # Marta writes in Italian: no English in what she read, beyond the briefing's title.
        for reply in (scheduled, again, missing, listing, cancelled_again):
            # (the console marks a message for someone other than the last speaker "[to ...]")
            assert english_words(reply.replace(f"[to {HR}]", "")) == []
    async with db.session() as session:
        campaign = await session.get(Campaign, 1)
        assert campaign is not None and campaign.status == CampaignStatus.cancelled
        actions = [
            a.action for a in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert "campaign.schedule" in actions and "campaign.cancel" in actions and "denied" in actions


async def test_readiness_is_scoped_to_the_managers_subtree(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db,
        clock,
        database_url,
        HR,
        SALES_MILANO_MANAGER,
        SALES_EMPLOYEE,
        MARKETING_EMPLOYEE,
        at=datetime(2027, 2, 26, 9, 0, tzinfo=ROME),
    ) as runtime:
        campaign = await schedule_demo_briefing(runtime)
        await runtime.service("briefings").run_due()

        employee = ConsoleDialog(runtime, SALES_EMPLOYEE)
        listing = await employee.say("briefings")
        assert "Spring trade-in" in listing and "not read yet" in listing
        assert "[1] Spring trade-in" in listing
        await employee.say("1")  # Read more
        assert "Got it" in employee.console.out.getvalue().splitlines()[-1]
        await employee.say("1")  # Got it
        assert "1 of 2" not in await employee.say("briefings")

        manager = await ConsoleDialog(runtime, SALES_MILANO_MANAGER).say(f"readiness {campaign.id}")
        assert "Sales Milano" in manager and "Customer Care" not in manager
        assert "Kevin Liu" not in manager.split("Non ancora letto:")[1]  # he has read it
        assert "Aisha Khan" in manager

        everything = await ConsoleDialog(runtime, HR).say(f"campaign show {campaign.id}")
        for team in ("Sales Milano", "Sales Roma", "Customer Care"):
            assert team in everything
        assert "Totale (29)" in everything

        outsider = await ConsoleDialog(runtime, MARKETING_EMPLOYEE).say("briefings")
        assert "no active briefings" in outsider
        assert "not available to you" in await ConsoleDialog(runtime, MARKETING_EMPLOYEE).say(
            "readiness 1"
        )

        # After expiry the briefing is closed: buttons are refused politely.
        clock.set(datetime(2027, 5, 1, 9, 0, tzinfo=ROME) + timedelta(days=1))
        await runtime.service("briefings").run_due()
        user = ChannelUser("console", SALES_EMPLOYEE, SALES_EMPLOYEE)
        closed = await runtime.dispatcher.process(
            ButtonPressed(user, "late-press", "brief_more", str(campaign.id))
        )
        assert "is closed" in closed.replies[0].message.text
    async with db.session() as session:
        stored = await session.get(Campaign, campaign.id)
        assert stored is not None and stored.status == CampaignStatus.done
