"""Pulse surveys end to end: real Telegram / Slack clients against the fakes, the console,
a real database and an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.loyalty.tables import ClosedResponse
from bot.pulse.content import load_survey
from bot.pulse.schedule import respondent_key
from bot.pulse.tables import Participation, Response, RoundStatus, SurveyRound

from . import harness
from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, ConsoleDialog, TelegramDialog, load_demo, running

ROME = ZoneInfo("Europe/Rome")
SURVEYS = REPO / "content" / "surveys"
FIRST = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # Monday; every second Monday, open 4 days
FAST_RATES = harness.fast_rates(50.0)


def uid(person_id: int) -> int:
    return 20_000 + person_id


fake = harness.fake_telegram("fake", 50.0)


async def link_all(db: Database, fake: FakeTelegramServer, clock: ManualClock) -> dict[str, Person]:
    return await harness.link_everyone_on_telegram(db, fake, clock, uid)


async def tick(runtime: Runtime) -> None:
    await runtime.service("surveys").run_due()
    await runtime.outbox.drain()


async def schedule(runtime: Runtime) -> int:
    survey, items = load_survey(SURVEYS, "pulse-fortnightly")
    async with runtime.db.session() as session:
        campaign = await runtime.service("surveys").schedule_in(
            session, survey, items, "hr@demo.fidelio.example"
        )
        return campaign.id


def settings_for(database_url: str, **extra: Any) -> Any:
    return harness.make_settings(database_url, rates=FAST_RATES, **extra)


async def _first_round_opens_with_an_invitation_each(
    runtime: Runtime,
    db: Database,
    clock: ManualClock,
    fake: FakeTelegramServer,
    active: list[Person],
    aisha: Person,
) -> SurveyRound:
    """Scheduled on Friday, the first round opens on Monday 10:00, not a minute earlier, and
    every active person gets one invitation."""
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
    card = fake.last_message(uid(aisha.id)).text or ""
    assert "Fortnightly pulse" in card and "8 quick questions" in card
    assert "nobody, not even an administrator" in card
    return round_


async def _aisha_answers_every_kind_and_changes_one(dialog: TelegramDialog) -> None:
    """Likert, likert, 0-10, likert x4 (incl. reversed), comment; then one answer changed."""
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
    # Frustration (reverse-keyed item), then the comment.
    comment_q = (await dialog.press("2"))[0]
    assert "8/8" in comment_q and "Type your answer as a message" in comment_q
    thanks = (await dialog.say("More training on the new TVs, please."))[0]
    assert "Thank you!" in thanks

    # Changing an answer while the round is open replaces it.
    review = (await dialog.press("Change my answers"))[0]
    assert "Your answer so far: <b>4</b>" in review
    await dialog.press("5")


async def _marco_presses_twice_then_forges(
    marco_dialog: TelegramDialog, aisha_dialog: TelegramDialog, round_: SurveyRound
) -> tuple[Any, str]:
    """A duplicated press stores one answer; forged and stale callbacks are refused.  Returns
    Marco's first question and the data of its "2" button."""
    await marco_dialog.press("Inizia")
    q1 = marco_dialog.last_message()
    await marco_dialog.press("3", message_id=q1.message_id)
    await marco_dialog.press("3", message_id=q1.message_id)

    # Forged and stale callbacks are refused.
    data = dict(q1.buttons())["2"]
    other_round = data.replace(f"pa|{round_.id}.", f"pa|{round_.id + 7}.")
    refused = (await marco_dialog.press_data(other_round, message_id=q1.message_id))[0]
    assert "non è più valido" in refused
    # Someone else's button: Aisha's chat cannot use data signed for Marco's chat.
    aisha_message = aisha_dialog.last_message().message_id
    assert "no longer valid" in (await aisha_dialog.press_data(data, message_id=aisha_message))[0]
    return q1, data


async def _halfway_reminder_only_to_who_has_not_finished(
    runtime: Runtime,
    db: Database,
    clock: ManualClock,
    fake: FakeTelegramServer,
    active: list[Person],
    round_: SurveyRound,
    marco: Person,
) -> None:
    """Wednesday 10:00: a reminder to everyone but Aisha; two respondents, Marco stored once."""
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


async def _assert_closed_round_kept_no_answers(db: Database, round_: SurveyRound) -> None:
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


async def test_cadence_answers_reminders_close_and_anonymity(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    people = await link_all(db, fake, clock)
    active = [p for p in people.values() if p.leave_date is None]
    clock.set(datetime(2027, 1, 1, 12, 0, tzinfo=ROME))
    settings = settings_for(database_url, telegram=harness.telegram_section(fake))
    aisha = people["aisha.khan@demo.fidelio.example"]  # English
    marco = people["marco.bianchi@demo.fidelio.example"]
    async with running(settings, clock, background=False) as runtime:
        round_ = await _first_round_opens_with_an_invitation_each(
            runtime, db, clock, fake, active, aisha
        )
        dialog = TelegramDialog(fake, uid(aisha.id))
        await _aisha_answers_every_kind_and_changes_one(dialog)
        marco_dialog = TelegramDialog(fake, uid(marco.id))
        q1, data = await _marco_presses_twice_then_forges(marco_dialog, dialog, round_)
        await _halfway_reminder_only_to_who_has_not_finished(
            runtime, db, clock, fake, active, round_, marco
        )

        # Close on time; late answers are refused politely.
        clock.set(FIRST + timedelta(days=4))
        await tick(runtime)
        late = (await marco_dialog.press_data(data, message_id=q1.message_id))[0]
        assert "è chiuso" in late

    await _assert_closed_round_kept_no_answers(db, round_)
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
        async with harness.running_on_slack(
            slack,
            clock,
            database_url,
            background=False,
            slack={"request_timeout_s": 10.0},
            rates=FAST_RATES,
            console={"enabled": True},
        ) as runtime:
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
            await harness.until(lambda: bool(slack.views))  # the modal opens after Slack's ack
            assert slack.views and slack.views[-1]["view"]["callback_id"] == "pulse_text"
            metadata = slack.views[-1]["view"]["private_metadata"]
            # A blank answer is refused under its field; the modal stays open.
            blank = {"block_answer": {"answer": "  "}}
            await slack.submit_view("U0GRACE", "pulse_text", blank, private_metadata=metadata)
            errors = {"block_answer": "This cannot be empty."}
            assert slack.last_ack == {"response_action": "errors", "errors": errors}
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
