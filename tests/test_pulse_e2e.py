"""Pulse surveys end to end: real Telegram / Slack clients against the fakes, the console,
a real database and an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.loyalty.tables import ClosedResponse
from bot.pulse.content import load_survey
from bot.pulse.service import respondent_key
from bot.pulse.tables import Participation, Response, RoundStatus, SurveyRound

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import (
    REPO,
    ConsoleDialog,
    TelegramDialog,
    free_port,
    link_everyone_on_telegram,
    load_demo,
    make_settings,
    running,
    telegram_section,
)

ROME = ZoneInfo("Europe/Rome")
SURVEYS = REPO / "content" / "surveys"
FIRST = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # Monday; every second Monday, open 4 days
FAST_RATES = {
    "telegram_per_chat_per_s": 50.0,
    "telegram_global_per_s": 1000.0,
    "slack_per_channel_per_s": 50.0,
    "slack_global_per_s": 1000.0,
}


def uid(person_id: int) -> int:
    return 20_000 + person_id


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_scale=50.0) as server:
        yield server


async def link_all(db: Database, fake: FakeTelegramServer, clock: ManualClock) -> dict[str, Person]:
    return await link_everyone_on_telegram(db, fake, clock, uid)


async def tick(runtime: Runtime) -> None:
    await runtime.surveys.run_due()
    await runtime.outbox.drain()


async def schedule(runtime: Runtime) -> int:
    survey, items = load_survey(SURVEYS, "pulse-fortnightly")
    async with runtime.db.session() as session:
        campaign = await runtime.surveys.schedule_in(
            session, survey, items, "hr@demo.fidelio.example"
        )
        return campaign.id


async def until(condition: Any, timeout: float = 5.0) -> None:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


def settings_for(database_url: str, **extra: Any) -> Any:
    return make_settings(database_url, rates=FAST_RATES, **extra)


async def test_cadence_answers_reminders_close_and_anonymity(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    people = await link_all(db, fake, clock)
    active = [p for p in people.values() if p.leave_date is None]
    clock.set(datetime(2027, 1, 1, 12, 0, tzinfo=ROME))
    settings = settings_for(database_url, telegram=telegram_section(fake))
    async with running(settings, clock, background=False) as runtime:
        await schedule(runtime)
        clock.set(FIRST - timedelta(minutes=1))
        await tick(runtime)
        assert fake.calls_to("sendMessage") == []
        clock.set(FIRST)
        await tick(runtime)
        async with db.session() as session:
            rounds = list(await session.scalars(select(SurveyRound)))
        assert len(rounds) == 1 and rounds[0].opens_at == FIRST
        assert rounds[0].closes_at == FIRST + timedelta(days=4)
        round_ = rounds[0]
        assert len(round_.items) == 8 and round_.items[-1] == "comment"
        for person in active:
            invite = fake.messages_to(uid(person.id))
            assert len(invite) == 1
        aisha = people["aisha.khan@demo.fidelio.example"]  # English
        card = fake.last_message(uid(aisha.id)).text or ""
        assert "Fortnightly pulse" in card and "8 quick questions" in card
        assert "nobody, not even an administrator" in card

        # Aisha answers every kind: likert, likert, 0-10, likert x4 (incl. reversed), comment.
        dialog = TelegramDialog(fake, uid(aisha.id))
        first = (await dialog.press("Start"))[0]
        assert "1/8" in first and "satisfied with working here" in first
        assert [label for label, _ in dialog.last_message().buttons()] == [
            "1",
            "2",
            "3",
            "4",
            "5",
            "Skip",
        ]
        assert "2/8" in (await dialog.press("4"))[0]
        third = (await dialog.press("5"))[0]
        assert "3/8" in third and "recommend this company" in third
        assert [label for label, _ in dialog.last_message().buttons()][:11] == [
            str(v) for v in range(11)
        ]
        await dialog.press("9")
        await dialog.press("4")
        await dialog.press("Skip")  # trust in manager: skipped = missing, never 0
        await dialog.press("3")
        comment_q = (await dialog.press("2"))[
            0
        ]  # frustration (reverse-keyed item), then the comment
        assert "8/8" in comment_q and "Type your answer as a message" in comment_q
        thanks = (await dialog.say("More training on the new TVs, please."))[0]
        assert "Thank you!" in thanks

        # Changing an answer while the round is open replaces it.
        review = (await dialog.press("Change my answers"))[0]
        assert "Your answer so far: <b>4</b>" in review
        await dialog.press("5")

        # A duplicated press stores one answer.
        marco = people["marco.bianchi@demo.fidelio.example"]
        marco_dialog = TelegramDialog(fake, uid(marco.id))
        await marco_dialog.press("Inizia")
        q1 = marco_dialog.last_message()
        await marco_dialog.press("3", message_id=q1.message_id)
        await marco_dialog.press("3", message_id=q1.message_id)

        # Forged and stale callbacks are refused.
        data = dict(q1.buttons())["2"]
        other_round = data.replace(f"pa|{round_.id}.", f"pa|{round_.id + 7}.")
        before = len(fake.messages_to(uid(marco.id)))
        await fake.press_data(uid(marco.id), q1.message_id, other_round)
        refused = (await fake.wait_for_messages(uid(marco.id), before + 1))[before].text or ""
        assert "non è più valido" in refused
        # Someone else's button: Aisha's chat cannot use data signed for Marco's chat.
        before = len(fake.messages_to(uid(aisha.id)))
        await fake.press_data(uid(aisha.id), dialog.last_message().message_id, data)
        assert (
            "no longer valid"
            in (await fake.wait_for_messages(uid(aisha.id), before + 1))[before].text
        )

        # Halfway reminder (Wednesday 10:00): only people who have not finished.
        clock.set(FIRST + timedelta(days=2))
        await tick(runtime)
        reminded = {
            p.email
            for p in active
            if "Reminder" in (fake.last_message(uid(p.id)).text or "")
            or "Promemoria" in (fake.last_message(uid(p.id)).text or "")
        }
        assert "aisha.khan@demo.fidelio.example" not in reminded
        assert "marco.bianchi@demo.fidelio.example" in reminded
        assert len(reminded) == len(active) - 1

        async with db.session() as session:
            keys = await session.scalar(select(func.count(func.distinct(Response.respondent_key))))
            marco_rows = await session.scalar(
                select(func.count())
                .select_from(Response)
                .where(Response.respondent_key == respondent_key(round_.secret or b"", marco.id))
            )
        assert keys == 2 and marco_rows == 1

        # Close on time; late answers are refused politely.
        clock.set(FIRST + timedelta(days=4))
        await tick(runtime)
        before = len(fake.messages_to(uid(marco.id)))
        await fake.press_data(uid(marco.id), q1.message_id, data)
        late = (await fake.wait_for_messages(uid(marco.id), before + 1))[before].text or ""
        assert "è chiuso" in late

    async with db.session() as session:
        closed = await session.get(SurveyRound, round_.id)
        assert closed is not None and closed.status == RoundStatus.closed and closed.secret is None
        # Two people answered, fewer than k: no group of the round can ever be
        # reported, so no answer of it is kept after close (rule 6).
        assert list(await session.scalars(select(Response))) == []
        assert list(await session.scalars(select(ClosedResponse))) == []
        # After close, participation keeps only "answered anything" (Aisha finished, Marco
        # answered part): how far each got is gone.
        responded = await session.scalar(
            select(func.count()).select_from(Participation).where(Participation.finished.is_(True))
        )
        assert responded == 2
        assert not await session.scalar(select(func.max(Participation.answered)))
    assert_no_link_between_answers_and_people()


def assert_no_link_between_answers_and_people() -> None:
    """The schema itself: responses reference no person, participation holds no key."""
    from bot.db.models import Base

    responses = Base.metadata.tables["responses"]
    participation = Base.metadata.tables["participation"]
    closed = Base.metadata.tables["closed_responses"]
    assert {c.name for c in closed.columns} == {
        "round_id",
        "atom_id",
        "set_no",
        "item_id",
        "value_num",
        "value_text",
    }
    assert {fk.column.table.name for fk in closed.foreign_keys} == {"survey_rounds", "plan_atoms"}
    assert {c.name for c in responses.columns} == {
        "round_id",
        "respondent_key",
        "item_id",
        "team_id",
        "value_num",
        "value_text",
    }
    assert not any(fk.column.table.name == "people" for fk in responses.foreign_keys)
    assert "respondent_key" not in {c.name for c in participation.columns}
    assert not any(
        "time" in str(c.type).lower() or c.name.endswith("_at") for c in responses.columns
    )
    assert inspect(Response).primary_key[1].name == "respondent_key"


async def test_comment_by_slack_modal_and_console(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    clock.set(datetime(2027, 1, 1, 12, 0, tzinfo=ROME))
    async with FakeSlackServer(rate_scale=50.0) as slack:
        slack.add_user(SlackUser("U0GRACE", "grace.adeyemi@demo.fidelio.example", "grace"))
        port = free_port()
        settings = settings_for(
            database_url,
            console={"enabled": True},
            slack={
                "enabled": True,
                "mode": "http",
                "bot_token": slack.bot_token,
                "signing_secret": slack.signing_secret,
                "base_url": slack.base_url,
                "http_port": port,
            },
        )
        async with running(settings, clock, background=False) as runtime:
            slack.set_request_url(f"http://127.0.0.1:{port}/slack/events")
            await runtime.channels["slack"].sync_directory(db, clock)
            from bot.console_session import console_person

            await console_person(runtime, "james.whitaker@demo.fidelio.example")
            await schedule(runtime)
            clock.set(FIRST)
            await tick(runtime)
            dm = slack.dm_channel_of("U0GRACE")
            assert "Fortnightly pulse" in (slack.last_message(dm).text or "")
            await slack.press("U0GRACE", "Start")
            answers = ["4", "4", "10", "5", "5", "5", "1"]
            for count, label in enumerate(answers, start=2):
                await slack.wait_for_messages(dm, count)
                assert await slack.press("U0GRACE", label) == 200
            comment = (await slack.wait_for_messages(dm, 9))[8]
            assert "8/8" in (comment.text or "")
            assert await slack.press("U0GRACE", "Write answer") == 200
            await until(lambda: bool(slack.views))  # the modal opens after Slack's ack
            assert slack.views and slack.views[-1]["view"]["callback_id"] == "pulse_text"
            metadata = slack.views[-1]["view"]["private_metadata"]
            assert (
                await slack.submit_view(
                    "U0GRACE",
                    "pulse_text",
                    {"block_answer": {"answer": "Great team."}},
                    private_metadata=metadata,
                )
                == 200
            )
            thanks = (await slack.wait_for_messages(dm, 10))[9]
            assert "Thank you!" in (thanks.text or "")

            # The console: numbered choices and a typed comment.
            james = ConsoleDialog(runtime, "james.whitaker@demo.fidelio.example")
            shown = await james.say("pulse")
            assert "Fortnightly pulse" in shown and "0/8 done" in shown
            text = await james.press(1)  # Start
            assert "1/8" in text and "[1]  [2]  [3]  [4]  [5]  [s] Skip" in text
            for _ in range(7):
                text = await james.press(4)
            assert "8/8" in text
            assert "Thank you!" in await james.say("Please keep these short.")
    async with db.session() as session:
        comments = set(
            await session.scalars(select(Response.value_text).where(Response.item_id == "comment"))
        )
    assert comments == {"Great team.", "Please keep these short."}
