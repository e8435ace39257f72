"""Briefings end to end: real python-telegram-bot / slack-bolt clients, fake servers, a real
database and an injected clock. The due-work job and the outbox are driven by the test, the
way APScheduler would wake them, so time moves without sleeping."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import Runtime
from bot.briefings.content import load_briefing
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import ChannelName, Delivery, DeliveryStatus, Person, Team
from bot.db.session import Database
from bot.identities import link
from bot.people import import_people

from . import harness
from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, TelegramDialog, load_demo, running

ROME = ZoneInfo("Europe/Rome")
BRIEFINGS = REPO / "content" / "briefings"
# spring-trade-in: briefing 26 Feb 2027 09:00 Rome (3 days before launch on 1 March 09:00).
BRIEF_AT = datetime(2027, 2, 26, 9, 0, tzinfo=ROME)
LAUNCH = datetime(2027, 3, 1, 9, 0, tzinfo=ROME)
AUDIENCE_TEAMS = {"Sales Milano", "Sales Roma", "Customer Care"}
FAST_RATES = harness.fast_rates(20.0)


def user_id(person_id: int) -> int:
    return 10_000 + person_id


fake = harness.fake_telegram("fake", 20.0)


async def demo_on_telegram(
    db: Database, fake: FakeTelegramServer, clock: ManualClock
) -> dict[str, Person]:
    """The demo directory, every person on Telegram (chat id 10000 + person id); returns
    people by email."""
    await load_demo(db, clock)
    return await harness.link_everyone_on_telegram(db, fake, clock, user_id, language_code="en")


async def audience_emails(db: Database, day: datetime) -> set[str]:
    async with db.session() as session:
        rows = await session.execute(
            select(Person.email, Person.leave_date)
            .join(Team, Team.id == Person.team_id)
            .where(Team.name.in_(AUDIENCE_TEAMS))
        )
        return {email for email, left in rows.all() if left is None or left > day.date()}


async def tick(runtime: Runtime) -> None:
    """What a scheduler wake-up does: compute due work, then deliver it."""
    await runtime.service("briefings").run_due()
    await runtime.outbox.drain()


def settings_for(database_url: str, fake: FakeTelegramServer, **extra: Any) -> Any:
    return harness.make_settings(
        database_url, telegram=harness.telegram_section(fake), rates=FAST_RATES, **extra
    )


async def _briefing_goes_out_on_time_in_each_language(
    runtime: Runtime,
    clock: ManualClock,
    fake: FakeTelegramServer,
    people: dict[str, Person],
    audience: set[str],
) -> None:
    """Scheduled a week ahead: nothing a minute early, then one card per audience member, in
    their language and time zone."""
    briefing = load_briefing(BRIEFINGS, "spring-trade-in")
    campaign, warnings = await runtime.service("briefings").schedule(
        briefing, actor="hr@demo.fidelio.example"
    )
    assert warnings == []

    clock.set(BRIEF_AT - timedelta(minutes=1))
    await tick(runtime)
    assert fake.calls_to("sendMessage") == []  # not yet

    clock.set(BRIEF_AT)
    await tick(runtime)
    got = {email for email, p in people.items() if fake.messages_to(user_id(p.id))}
    assert got == audience
    for email in audience:
        assert len(fake.messages_to(user_id(people[email].id))) == 1

    italian = fake.last_message(user_id(people["francesca.conti@demo.fidelio.example"].id))
    assert "Prima del lancio: Permuta di primavera" in (italian.text or "")
    assert "1 mar 2027, 09:00" in (italian.text or "")
    assert [label for label, _ in italian.buttons()] == ["Leggi tutto", "Ho capito"]
    lisbon = fake.last_message(user_id(people["carlos.mendes@demo.fidelio.example"].id))
    assert "Before launch: Spring trade-in" in (lisbon.text or "")
    assert "1 Mar 2027, 08:00" in (lisbon.text or "")  # his own time zone


async def _aisha_acknowledges_and_takes_the_quiz(aisha: TelegramDialog) -> None:
    """Got it, then the quiz: question 1 wrong, question 2 right; old buttons change nothing."""
    thanks, question1 = await aisha.press("Got it", replies=2)
    assert "you have read" in thanks and "2 quick questions" in thanks
    assert "question 1 of 2" in question1
    question1_id = aisha.last_message().message_id
    assert "question 2 of 2" in (await aisha.press("Nothing: it must work"))[0]
    result = (await aisha.press("TVs over 699 euro"))[0]
    assert "1 of 2 right" in result
    assert "Question 1: the answer is <b>150 euro</b>" in result
    # A second press on an old button does not change the score.
    again = await aisha.press("150 euro", message_id=question1_id)
    assert "your first answer counts" in again[0]


async def _antonio_reads_it_all_and_asks(antonio: TelegramDialog) -> None:
    body = (await antonio.press("Leggi tutto"))[0]
    assert "<b>L&#x27;offerta</b>" in body or "<b>L'offerta</b>" in body
    assert "Dal 1 mar 2027, 09:00 CET al 30 aprile" in body
    assert "Domande dei clienti" in body
    answer = (await antonio.say("/chiedi il tv rotto vale qualcosa?"))[0]
    assert "Da <i>Permuta di primavera" in answer
    assert "150 euro" in answer


async def _reminder_a_day_later_for_everyone_but_aisha(
    runtime: Runtime,
    clock: ManualClock,
    fake: FakeTelegramServer,
    people: dict[str, Person],
    audience: set[str],
) -> None:
    clock.set(BRIEF_AT + timedelta(hours=24))
    await tick(runtime)
    reminded = {
        email
        for email in audience
        if any(
            "Reminder" in (m.text or "") or "Promemoria" in (m.text or "")
            for m in fake.messages_to(user_id(people[email].id))
        )
    }
    assert reminded == audience - {"aisha.khan@demo.fidelio.example"}
    await tick(runtime)  # nothing is sent twice
    assert sum(len(fake.messages_to(user_id(people[e].id))) for e in audience) == (
        29 + 28 + 4 + 1 + 2  # cards, reminders, Aisha's 4 quiz replies + note, Antonio's 2
    )


async def _managers_get_readiness_a_day_before_launch(
    runtime: Runtime, clock: ManualClock, fake: FakeTelegramServer, people: dict[str, Person]
) -> None:
    """Each audience manager gets the readiness of their own team, HR nothing."""
    clock.set(LAUNCH - timedelta(hours=24))
    await tick(runtime)
    manager = fake.last_message(user_id(people["luca.moretti@demo.fidelio.example"].id))
    note = manager.text or ""
    assert "Prontezza al lancio" in note and "Sales Milano" in note
    assert "Sales Roma" not in note  # only his own team
    assert "Non ancora letto:" in note and "Aisha Khan" not in note.split("Non ancora letto:")[1]
    assert "domanda 1" in note  # the most-missed question
    hr = people["hr@demo.fidelio.example"]
    assert fake.messages_to(user_id(hr.id)) == []  # HR is not in the audience
    # The Headquarters manager sees every audience team below her.
    top = fake.last_message(user_id(people["giulia.ferretti@demo.fidelio.example"].id)).text or ""
    assert all(team in top for team in AUDIENCE_TEAMS) and "<b>Totale</b> (29)" in top


async def _newcomer_after_launch_gets_it_labelled_late(
    runtime: Runtime, db: Database, clock: ManualClock, fake: FakeTelegramServer, tmp_path: Path
) -> Person:
    """A person who joins Sales Roma after launch gets the briefing, labelled late."""
    clock.set(LAUNCH + timedelta(days=2))
    newcomer = REPO / "content" / "demo" / "people.csv"
    extra = newcomer.read_text(encoding="utf-8") + (
        "new.hire@demo.fidelio.example,Nuovo Assunto,Sales Roma,Headquarters,"
        "roberta.esposito@demo.fidelio.example,employee,it,Europe/Rome,Roma,2027-03-02,\n"
    )
    path = tmp_path / "people.csv"
    path.write_text(extra, encoding="utf-8")
    await import_people(db, path, clock)
    async with db.session() as session:
        new = await session.scalar(
            select(Person).where(Person.email == "new.hire@demo.fidelio.example")
        )
        assert new is not None
        chat = str(user_id(new.id))
        await link(session, new, ChannelName.telegram, chat, chat, clock)
    fake.add_user(user_id(new.id), "Nuovo")
    await tick(runtime)
    late = fake.messages_to(user_id(new.id))
    assert len(late) == 1 and "Ora in vendita" in (late[0].text or "")
    return new


async def _assert_receipts_of_aisha_and_the_newcomer(
    db: Database, aisha: Person, new: Person
) -> None:
    async with db.session() as session:
        receipt = await session.scalar(
            select(BriefingReceipt).where(BriefingReceipt.person_id == aisha.id)
        )
        assert receipt is not None and receipt.quiz_score == 1
        assert receipt.acknowledged_at == BRIEF_AT
        assert receipt.quiz_answers == {"0": 0, "1": 1}
        late_receipt = await session.scalar(
            select(BriefingReceipt).where(BriefingReceipt.person_id == new.id)
        )
        assert late_receipt is not None and late_receipt.late


async def test_briefing_reaches_its_audience_on_time_in_each_language_and_tracks_readiness(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer, tmp_path: Path
) -> None:
    people = await demo_on_telegram(db, fake, clock)
    audience = await audience_emails(db, BRIEF_AT)
    assert len(audience) == 29  # 30 people in the three teams, one of whom has left

    clock.set(datetime(2027, 2, 20, 12, 0, tzinfo=ROME))
    async with running(settings_for(database_url, fake), clock, background=False) as runtime:
        await _briefing_goes_out_on_time_in_each_language(runtime, clock, fake, people, audience)
        aisha = people["aisha.khan@demo.fidelio.example"]
        await _aisha_acknowledges_and_takes_the_quiz(TelegramDialog(fake, user_id(aisha.id)))
        antonio = people["antonio.romano@demo.fidelio.example"]
        await _antonio_reads_it_all_and_asks(TelegramDialog(fake, user_id(antonio.id)))
        await _reminder_a_day_later_for_everyone_but_aisha(runtime, clock, fake, people, audience)
        await _managers_get_readiness_a_day_before_launch(runtime, clock, fake, people)
        new = await _newcomer_after_launch_gets_it_labelled_late(runtime, db, clock, fake, tmp_path)

    await _assert_receipts_of_aisha_and_the_newcomer(db, aisha, new)


async def test_person_who_links_an_account_later_still_gets_the_briefing(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people = await demo_on_telegram(db, fake, clock)
    kevin = people["kevin.liu@demo.fidelio.example"]
    async with db.session() as session:
        from bot.db.models import ChannelIdentity

        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.person_id == kevin.id)
        )
        await session.delete(identity)
    clock.set(BRIEF_AT)
    async with running(settings_for(database_url, fake), clock, background=False) as runtime:
        await runtime.service("briefings").schedule(
            load_briefing(BRIEFINGS, "spring-trade-in"), actor="hr"
        )
        await tick(runtime)
        assert fake.messages_to(user_id(kevin.id)) == []
        async with db.session() as session:
            failed = await session.scalar(select(Delivery).where(Delivery.person_id == kevin.id))
            assert failed is not None and failed.status == DeliveryStatus.failed
            chat = str(user_id(kevin.id))
            await link(session, kevin, ChannelName.telegram, chat, chat, clock)
        clock.advance(timedelta(hours=1))
        await tick(runtime)
        card = fake.messages_to(user_id(kevin.id))
        assert len(card) == 1 and "Before launch" in (card[0].text or "")


async def test_broadcast_killed_midway_resumes_without_duplicates(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people = await demo_on_telegram(db, fake, clock)
    audience = await audience_emails(db, BRIEF_AT)
    clock.set(BRIEF_AT)
    settings = settings_for(database_url, fake, outbox={"batch_size": 5})
    async with running(settings, clock, background=False) as runtime:
        await runtime.service("briefings").schedule(
            load_briefing(BRIEFINGS, "spring-trade-in"), actor="hr"
        )
        await runtime.service("briefings").run_due()
        # Kill the outbox in the middle of the broadcast: a slow platform keeps sends in flight.
        fake.inject("timeout", method="sendMessage", times=3, delay=2.0)
        task = asyncio.create_task(runtime.outbox.drain())
        # Check on every turn of the loop: once the held sends are released, the rest of the
        # broadcast can finish within a few milliseconds, and then there is nothing to kill.
        while len(fake.calls_to("sendMessage")) < 12:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with db.session() as session:
        confirmed = set(
            await session.scalars(
                select(Delivery.person_id).where(Delivery.status == DeliveryStatus.sent)
            )
        )
        in_flight = set(
            await session.scalars(
                select(Delivery.person_id).where(Delivery.status == DeliveryStatus.sending)
            )
        )
    assert confirmed and in_flight  # the kill really happened mid-broadcast

    # Restart: a new runtime on the same database, after the leases ran out.
    clock.advance(timedelta(minutes=5))
    async with running(settings, clock, background=False) as runtime:
        await tick(runtime)
        await tick(runtime)
    by_person = {
        p.id: len(fake.messages_to(user_id(p.id))) for e, p in people.items() if e in audience
    }
    assert all(count >= 1 for count in by_person.values())  # nobody lost
    duplicated = {pid for pid, count in by_person.items() if count > 1}
    # Only sends whose outcome was unknown at the kill may repeat (at-least-once); a send that
    # was confirmed before the kill is never repeated.
    assert duplicated <= in_flight
    assert not duplicated & confirmed
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(BriefingReceipt)) == len(
            audience
        )


async def test_429_storm_slows_the_broadcast_without_losing_anyone(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people = await demo_on_telegram(db, fake, clock)
    audience = await audience_emails(db, BRIEF_AT)
    clock.set(BRIEF_AT)
    async with running(settings_for(database_url, fake), clock, background=False) as runtime:
        await runtime.service("briefings").schedule(
            load_briefing(BRIEFINGS, "spring-trade-in"), actor="hr"
        )
        await runtime.service("briefings").run_due()
        fake.inject("429", method="sendMessage", times=40, retry_after=3)
        rounds = 0
        while True:
            stats = await runtime.outbox.run_once()
            rounds += 1
            if stats.claimed == 0:
                async with db.session() as session:
                    pending = await session.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status == DeliveryStatus.pending)
                    )
                if not pending:
                    break
                clock.advance(timedelta(seconds=3))  # honour retry_after
            assert rounds < 100
    assert fake.rate_limited >= 29
    assert runtime.outbox.totals.rate_limited >= 29
    for email in audience:
        assert len(fake.messages_to(user_id(people[email].id))) == 1, email
    async with db.session() as session:
        statuses = set(await session.scalars(select(Delivery.status)))
    assert statuses == {DeliveryStatus.sent}


async def test_briefing_on_slack_with_buttons(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    async with FakeSlackServer(rate_scale=20.0) as slack:
        slack.add_user(
            SlackUser("U0GRACE", "grace.adeyemi@demo.fidelio.example", "grace", tz="Europe/London")
        )
        clock.set(BRIEF_AT)
        async with harness.running_on_slack(
            slack,
            clock,
            database_url,
            background=False,
            slack={"request_timeout_s": 10.0},
            rates=FAST_RATES,
        ) as runtime:
            await runtime.channels["slack"].sync_directory(db, clock)
            await runtime.service("briefings").schedule(
                load_briefing(BRIEFINGS, "spring-trade-in"), actor="hr"
            )
            await tick(runtime)
            dm = slack.dm_channel_of("U0GRACE")
            card = slack.last_message(dm)
            assert "Before launch: Spring trade-in" in (card.text or "")
            assert "1 Mar 2027, 08:00" in (card.text or "")  # London
            assert await slack.press("U0GRACE", "Got it") == 200
            question = (await slack.wait_for_messages(dm, 3))[2]
            assert "question 1 of 2" in (question.text or "")
            assert await slack.press("U0GRACE", "150 euro") == 200
            await slack.wait_for_messages(dm, 4)
            assert await slack.press("U0GRACE", "TVs over 699 euro") == 200
            result = (await slack.wait_for_messages(dm, 5))[4]
            assert "2 of 2 right" in (result.text or "")


async def test_the_scheduler_wakes_the_due_work_and_rebuilds_jobs_from_the_table(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """Not driven by the test: APScheduler's sweep calls the due-work and the outbox loop sends."""
    people = await demo_on_telegram(db, fake, clock)
    clock.set(datetime(2027, 2, 20, 12, 0, tzinfo=ROME))
    settings = settings_for(database_url, fake, scheduler={"sweep_s": 0.2, "outbox_poll_s": 0.05})
    async with running(settings, clock, background=False) as runtime:
        campaign, _ = await runtime.service("briefings").schedule(
            load_briefing(BRIEFINGS, "spring-trade-in"), actor="hr"
        )
    # A fresh start rebuilds the campaign's wake-up jobs from the table, with stable ids.
    async with running(settings, clock) as runtime:
        job_ids = {job.id for job in runtime.scheduler.scheduler.get_jobs()}
        assert {
            "briefings:sweep",
            f"campaign:{campaign.id}:brief",
            f"campaign:{campaign.id}:readiness",
            f"campaign:{campaign.id}:reminder-0",
            f"campaign:{campaign.id}:reminder-1",
        } <= job_ids
        clock.set(BRIEF_AT)
        kevin = user_id(people["kevin.liu@demo.fidelio.example"].id)
        card = (await fake.wait_for_messages(kevin, 1, timeout=10))[0]
        assert "Before launch: Spring trade-in" in (card.text or "")
