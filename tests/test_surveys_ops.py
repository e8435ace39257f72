"""Pulse survey operations on a real database: HR's `survey` command in chat, pausing,
resuming and stopping schedules, closing rounds early, downtime, response rates under the
anonymity rules, who is invited, what is left in the database after a round closes, and the
`fidelio survey` commands as a real process."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select, text, update

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.models import (
    AuditEntry,
    Base,
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Person,
)
from bot.db.session import Database
from bot.events import ButtonPressed, ChannelUser
from bot.loyalty.tables import ClosedResponse
from bot.pulse.content import load_survey, parse_survey
from bot.pulse.rates import count_responses, response_rates
from bot.pulse.schedule import respondent_key
from bot.pulse.service import SurveyService
from bot.pulse.tables import Participation, Response, ResponseRateSnapshot, RoundStatus, SurveyRound

from .harness import REPO, ConsoleDialog, console_runtime, load_demo, make_settings
from .italian import english_words
from .test_cli import fidelio, write_config

ROME = ZoneInfo("Europe/Rome")
SURVEYS = REPO / "content" / "surveys"
FIRST = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # Monday; every second Monday, open 4 days
SECOND = FIRST + timedelta(weeks=2)
THIRD = FIRST + timedelta(weeks=4)
BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
HR = "hr@demo.fidelio.example"  # Marta Galli, HR & People (4 people), writes in Italian
EMPLOYEE = "kevin.liu@demo.fidelio.example"  # Sales Milano
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano, English
SMALL_TEAM = "HR & People"


#: One question answered, the rest skipped: a respondent (someone who skipped everything
#: gave no answer, and after close counts as not having answered).
ANSWERED = {"sat_overall": 4}


def settings_for(database_url: str) -> Any:
    return make_settings(database_url, console={"enabled": True}, anonymity={"min_group": 5})


async def link(runtime: Runtime, *emails: str) -> None:
    from bot.console_session import console_person

    for email in emails:
        await console_person(runtime, email)


async def schedule(runtime: Runtime, survey_text: str | None = None) -> int:
    if survey_text is None:
        survey, items = load_survey(SURVEYS, "pulse-fortnightly")
    else:
        _, items = load_survey(SURVEYS, "pulse-fortnightly")
        parsed, problems = parse_survey(survey_text, "s.yaml", items)
        assert parsed is not None, problems
        survey = parsed
    async with runtime.db.session() as session:
        campaign = await runtime.service("surveys").schedule_in(session, survey, items, HR)
        return campaign.id


async def at(runtime: Runtime, clock: ManualClock, when: datetime) -> Any:
    clock.set(when)
    return await runtime.service("surveys").run_due()


async def rounds_of(db: Database) -> list[SurveyRound]:
    async with db.session() as session:
        return list(await session.scalars(select(SurveyRound).order_by(SurveyRound.id)))


async def person(db: Database, email: str) -> Person:
    async with db.session() as session:
        found = await session.scalar(select(Person).where(Person.email == email))
        assert found is not None
        return found


async def answer_all(
    runtime: Runtime, round_id: int, email: str, values: dict[str, Any], *, upto: int | None = None
) -> None:
    """Answer a round as ``email`` through the service: ints, texts, or None to skip."""
    async with runtime.db.session() as session:
        who = await session.scalar(select(Person).where(Person.email == email))
        assert who is not None
        round_, schedule_, participation = await runtime.service("surveys").open_round_for(
            session, round_id, who
        )
        for item_id in round_.items[:upto]:
            value = values.get(item_id)
            if isinstance(value, str):
                await runtime.service("surveys").record(
                    session, round_, participation, who, item_id, text=value
                )
            elif value is None:
                await runtime.service("surveys").record(
                    session, round_, participation, who, item_id, skipped=True
                )
            else:
                await runtime.service("surveys").record(
                    session, round_, participation, who, item_id, value=value
                )


@asynccontextmanager
async def survey_runtime(db: Database, clock: ManualClock, settings: Any) -> AsyncIterator[Runtime]:
    """The demo loaded, the clock set before the first round, a console runtime."""
    await load_demo(db, clock)
    clock.set(BEFORE)
    async with console_runtime(settings, clock) as runtime:
        yield runtime


async def first_round(runtime: Runtime, clock: ManualClock, db: Database, *emails: str) -> int:
    """``emails`` linked, the fortnightly pulse scheduled and its first round open: its id."""
    await link(runtime, *emails)
    await schedule(runtime)
    await at(runtime, clock, FIRST)
    return (await rounds_of(db))[0].id


async def shown_rates(
    db: Database, round_id: int, anonymity: Any, clock: ManualClock
) -> dict[str, Any]:
    """The response rates every route shows for the round, under ``anonymity``."""
    async with db.session() as session:
        round_ = await session.get(SurveyRound, round_id)
        assert round_ is not None
        return await response_rates(session, round_, anonymity, clock)


async def invited_to(db: Database, round_id: int) -> set[int]:
    """The ids of the people invited to the round."""
    async with db.session() as session:
        return set(
            await session.scalars(
                select(Participation.person_id).where(Participation.round_id == round_id)
            )
        )


async def audit_actions(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    async with db.session() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(a.actor_label, a.action, a.detail) for a in rows]


# HR in chat


async def test_hr_schedules_lists_pauses_resumes_and_stops_in_chat(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        await link(runtime, HR)
        hr = ConsoleDialog(runtime, HR)
        assert "Nessun sondaggio programmato" in await hr.say("survey list")
        assert "Programmato il sondaggio P-1: Pulse quindicinale" in await hr.say(
            "survey schedule pulse-fortnightly"
        )
        assert "è già programmato come sondaggio P-1" in await hr.say(
            "survey schedule pulse-fortnightly"
        )
        assert "Non c’è un sondaggio valido con id no-such-survey" in await hr.say(
            "survey schedule no-such-survey"
        )
        assert "Uso: survey list, survey schedule" in await hr.say("survey dance")

        assert (await at(runtime, clock, FIRST)).opened == 1
        listing = await hr.say("survey list")
        assert "P-1: Pulse quindicinale (attivo)" in listing
        assert (
            "turno 1 (n. 1): aperto, dal 4 gen 2027, 10:00 CET al 8 gen 2027, 10:00 CET" in listing
        )
        assert english_words(listing) == []

        # Paused: the open round runs to its end, but no round opens, even when an
        # occurrence passes.
        paused = await hr.say("survey pause 1")
        assert "ora è in pausa" in paused
        paused_again = await hr.say("survey pause 1")
        assert "Il sondaggio P-1 è in pausa: ora non si può fare." in paused_again
        for reply in (paused, paused_again):
            assert english_words(reply) == []
        assert (await at(runtime, clock, FIRST + timedelta(days=4))).closed == 1
        assert (await at(runtime, clock, SECOND)).opened == 0
        assert (await at(runtime, clock, SECOND + timedelta(days=1))).opened == 0
        assert [r.opens_at for r in await rounds_of(db)] == [FIRST]

        # Resumed after that round's window: nothing late, the next occurrence opens.
        clock.set(SECOND + timedelta(days=5))
        assert "ora è attivo" in await hr.say("survey resume 1")
        assert (await runtime.service("surveys").run_due()).opened == 0
        assert (await at(runtime, clock, THIRD)).opened == 1
        rounds = await rounds_of(db)
        assert [(r.number, r.opens_at) for r in rounds] == [(1, FIRST), (2, THIRD)]

        # Stopped: the open round still runs to its end; no further round opens.
        assert "ora è fermato" in await hr.say("survey stop 1")
        assert "Il sondaggio P-1 è fermato: ora non si può fare." in await hr.say("survey resume 1")
        assert "Non esiste il sondaggio programmato P-9" in await hr.say("survey pause 9")
        assert (await at(runtime, clock, THIRD + timedelta(days=4))).closed == 1
        assert (await at(runtime, clock, THIRD + timedelta(weeks=2))).opened == 0
        assert len(await rounds_of(db)) == 2
        # Once stopped, the survey can be scheduled afresh.
        assert "Programmato il sondaggio P-2" in await hr.say("survey schedule pulse-fortnightly")
    async with db.session() as session:
        stopped = await session.get(Campaign, 1)
        assert stopped is not None and stopped.status == CampaignStatus.cancelled
    actions = [action for _, action, _ in await audit_actions(db)]
    for expected in ("survey.schedule", "survey.pause", "survey.resume", "survey.stop"):
        assert expected in actions
    assert actions.count("command.survey") >= 7  # the successful ones
    assert ("scheduler", "survey.close", {"round": 1, "early": False}) in await audit_actions(db)


async def test_an_employee_cannot_use_survey_and_the_refusal_is_audited(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        await link(runtime, EMPLOYEE)
        employee = ConsoleDialog(runtime, EMPLOYEE)
        for command in ("survey list", "survey schedule pulse-fortnightly", "survey rates 1"):
            assert "not available to you" in await employee.say(command)
        # `pulse` is for everyone.
        assert "no survey open for you" in await employee.say("pulse")
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 0
    denied = [d for actor, action, d in await audit_actions(db) if action == "denied"]
    assert denied == [{"command": "survey", "role": "employee"}] * 3


async def test_rates_are_counts_only_and_hide_teams_under_k(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        round_id = await first_round(runtime, clock, db, HR)
        await answer_all(runtime, round_id, HR, {"sat_overall": 4, "comment": "fine"})
        await answer_all(runtime, round_id, AISHA, {"sat_overall": 2}, upto=2)
        await answer_all(runtime, round_id, EMPLOYEE, {})  # all skipped: finished

        async with db.session() as session:
            rates = await count_responses(session, round_id, 5)
        shown = {t["team"]: t for t in rates["teams"]}
        assert SMALL_TEAM not in shown
        assert set(shown) == {"Customer Care", "Marketing", "Sales Milano", "Sales Roma"}
        assert shown["Sales Milano"] == {
            "team": "Sales Milano",
            "invited": 11,
            "finished": 1,
            "started": 2,
        }
        # HR & People (4) is pooled; a pool of 4 could be worked out as total minus the
        # teams shown, so the next-smallest team (Headquarters, 6) joins it.
        assert rates["pooled"] == {"invited": 10, "finished": 1, "started": 1}
        assert rates["total"] == {"invited": 46, "finished": 2, "started": 3}
        for key in ("invited", "finished", "started"):
            remainder = rates["total"][key] - sum(t[key] for t in rates["teams"])
            assert remainder == rates["pooled"][key]

        # In chat the round is open: the same pooling, counts rounded down to fives.
        reply = await ConsoleDialog(runtime, HR).say(f"survey rates {round_id}")
        assert "0 su 46 completati, 0 iniziati" in reply
        assert "Sales Milano: 0/11 completati" in reply
        assert "altri team, insieme: 0/10 completati" in reply
        assert SMALL_TEAM not in reply and "Headquarters" not in reply
        # Counts only: no answer, no item, no name.
        for leak in ("sat_overall", "fine", "Aisha", "Marta", "Kevin", "4/", "2/"):
            assert leak not in reply

        # With k above every team, nothing is shown per team; the pool has everyone.
        async with db.session() as session:
            strict = await count_responses(session, round_id, 12)
        assert strict["teams"] == [] and strict["pooled"] == strict["total"]
        # A round that does not exist is named.
        assert "Non esiste il turno di sondaggio 99" in await ConsoleDialog(runtime, HR).say(
            "survey rates 99"
        )


SALES_MILANO = [
    f"{name}@demo.fidelio.example"
    for name in (
        "francesca.conti",
        "alessandro.marino",
        "sara.greco",
        "matteo.bruno",
        "giorgio.rinaldi",
        "valentina.costa",
    )
]
ADMIN = "admin@demo.fidelio.example"


async def test_live_rates_are_a_stepped_snapshot_refreshed_at_most_hourly(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Rule 5: while a round is open, HR cannot time a known person's answer. Every route
    shows one stored snapshot, refreshed at most hourly, with counts rounded down to fives."""
    from bot.pulse.cli import survey_rates_report

    settings = settings_for(database_url)
    async with survey_runtime(db, clock, settings) as runtime:
        round_id = await first_round(runtime, clock, db, HR, ADMIN)

        async def shown() -> dict[str, Any]:
            return await shown_rates(db, round_id, settings.anonymity, clock)

        async def exact() -> dict[str, Any]:
            async with db.session() as session:
                return await count_responses(session, round_id, 5)

        def sales(rates: dict[str, Any]) -> dict[str, Any]:
            return next(t for t in rates["teams"] if t["team"] == "Sales Milano")

        for email in SALES_MILANO[:4]:
            await answer_all(runtime, round_id, email, ANSWERED)
        clock.set(FIRST + timedelta(hours=1))
        first = await shown()
        assert first["live"] and first["step"] == 5
        assert first["taken_at"] == clock.now().isoformat()
        assert sales(first) == {"team": "Sales Milano", "invited": 11, "started": 0, "finished": 0}
        assert first["total"] == {"invited": 46, "started": 0, "finished": 0}
        hr_before = await ConsoleDialog(runtime, HR).say(f"survey rates {round_id}")
        assert "Sales Milano: 0/11 completati" in hr_before
        assert "aggiornati al massimo ogni 60 minuti" in hr_before and "multiplo di 5" in hr_before

        # A known person answers right after the snapshot: the exact count moves to 5...
        clock.advance(timedelta(minutes=1))
        await answer_all(runtime, round_id, SALES_MILANO[4], ANSWERED)
        assert sales(await exact())["finished"] == 5
        # ...but for the rest of the hour every route shows the very same snapshot.
        clock.set(FIRST + timedelta(hours=1, minutes=59, seconds=59))
        assert await shown() == first
        assert await ConsoleDialog(runtime, HR).say(f"survey rates {round_id}") == hr_before
        admin = await ConsoleDialog(runtime, ADMIN).say(f"survey rates {round_id}")
        assert "Sales Milano: 0/11 completati" in admin and "0 su 46 completati" in admin
        cli = await survey_rates_report(settings, round_id, clock)
        assert cli["taken_at"] == first["taken_at"] and cli["teams"] == first["teams"]

        # An hour after the snapshot it is refreshed, for everyone.
        clock.set(FIRST + timedelta(hours=2))
        second = await shown()
        assert second["taken_at"] == clock.now().isoformat()
        assert sales(second)["finished"] == 5 and second["total"]["finished"] == 5
        assert "Sales Milano: 5/11 completati" in await ConsoleDialog(runtime, ADMIN).say(
            f"survey rates {round_id}"
        )

        # Stepped: a sixth answer is still shown as 5 after the next refresh.
        await answer_all(runtime, round_id, SALES_MILANO[5], ANSWERED)
        clock.set(FIRST + timedelta(hours=3))
        assert sales(await exact())["finished"] == 6
        third = await shown()
        assert third["taken_at"] == clock.now().isoformat()
        assert sales(third)["finished"] == 5 and sales(third)["started"] == 5

        # Closed, participation is no longer live: the final counts are exact.
        closed = await ConsoleDialog(runtime, HR).say(f"survey close {round_id}")
        assert str(round_id) in closed
        final = await shown()
        assert not final["live"] and final["taken_at"] is None
        assert sales(final)["finished"] == 6 and final["total"]["finished"] == 6
        reply = await ConsoleDialog(runtime, HR).say(f"survey rates {round_id}")
        assert "Sales Milano: 6/11 completati" in reply and "aggiornati" not in reply


async def test_live_rates_follow_the_refresh_setting_and_a_change_of_k(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(
        database_url,
        console={"enabled": True},
        anonymity={"min_group": 5, "live_rates_refresh_s": 600},
    )
    async with survey_runtime(db, clock, settings) as runtime:
        round_id = await first_round(runtime, clock, db, HR)

        async def shown(anonymity: Any = settings.anonymity) -> dict[str, Any]:
            return await shown_rates(db, round_id, anonymity, clock)

        taken = (await shown())["taken_at"]
        for email in SALES_MILANO[:5]:
            await answer_all(runtime, round_id, email, ANSWERED)
        clock.advance(timedelta(seconds=599))
        assert (await shown())["taken_at"] == taken
        assert (await shown())["total"]["finished"] == 0
        clock.advance(timedelta(seconds=1))
        assert (await shown())["total"]["finished"] == 5
        # A larger k applies at once: figures pooled for the smaller k are not shown again.
        strict = settings.anonymity.model_copy(update={"min_group": 12})
        pooled = await shown(strict)
        assert pooled["teams"] == [] and pooled["pooled"] == pooled["total"]
        async with db.session() as session:
            stored = await session.get(ResponseRateSnapshot, round_id)
            assert stored is not None and stored.counts["min_group"] == 12


async def test_closing_a_round_destroys_the_secret_at_once(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        round_id = await first_round(runtime, clock, db, HR, EMPLOYEE)
        await answer_all(runtime, round_id, EMPLOYEE, {"sat_overall": 3}, upto=1)
        clock.set(FIRST + timedelta(days=1))
        await runtime.service("surveys").run_due()  # nothing due; invitations wait in the outbox

        closed = await ConsoleDialog(runtime, HR).say(f"survey close {round_id}")
        assert f"Il turno {round_id} è chiuso" in closed and "segreto è distrutto" in closed
        async with db.session() as session:
            round_ = await session.get(SurveyRound, round_id)
            assert round_ is not None
            assert round_.status == RoundStatus.closed and round_.secret is None
            assert round_.closed_at == clock.now() < round_.closes_at
            # Messages of this round not sent yet are dropped.
            pending = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.key.like(f"pulse:{round_id}:%"),
                    Delivery.status == DeliveryStatus.pending,
                )
            )
            assert pending == 0

        # A later answer (an old button) is refused politely, and nothing is stored.
        user = ChannelUser("console", EMPLOYEE, EMPLOYEE)
        late = await runtime.dispatcher.process(
            ButtonPressed(user, "late-answer", "pa", f"{round_id}.1.4")
        )
        assert "is closed" in late.replies[0].message.text
        assert "no survey open for you" in await ConsoleDialog(runtime, EMPLOYEE).say("pulse")
        # Closing again is harmless; the halfway reminder never goes out.
        assert "è chiuso" in await ConsoleDialog(runtime, HR).say(f"survey close {round_id}")
        assert (await at(runtime, clock, FIRST + timedelta(days=2))).reminders == 0
    async with db.session() as session:
        # One respondent, fewer than k: no group of this round can ever be reported, so
        # nothing of it is kept (rule 6: never a group smaller than k).
        assert list(await session.scalars(select(Response))) == []
        assert list(await session.scalars(select(ClosedResponse))) == []
        participation = list(await session.scalars(select(Participation)))
        assert sum(p.finished for p in participation) == 1
    closes = [(a, d) for a, action, d in await audit_actions(db) if action == "survey.close"]
    assert closes == [(HR, {"round": round_id, "early": True})]


async def test_downtime_skips_a_missed_round_and_opens_the_next(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        await schedule(runtime)
        # Down from before the first round until after its whole window: not opened late.
        assert (await at(runtime, clock, FIRST + timedelta(days=4, minutes=1))).opened == 0
        assert await rounds_of(db) == []
        assert (await at(runtime, clock, SECOND)).opened == 1
        # Down again across the third round's window while the second is open: the second
        # closes, the third is skipped, the fourth opens on time.
        due = await at(runtime, clock, THIRD + timedelta(days=5))
        assert (due.opened, due.closed) == (0, 1)
        assert (await at(runtime, clock, THIRD + timedelta(weeks=2))).opened == 1
        rounds = await rounds_of(db)
        assert [(r.number, r.opens_at) for r in rounds] == [
            (1, SECOND),
            (2, THIRD + timedelta(weeks=2)),
        ]
        # Numbering and rotation follow the rounds that opened.
        survey, _ = load_survey(SURVEYS, "pulse-fortnightly")
        assert [r.items for r in rounds] == [survey.items_for_round(0), survey.items_for_round(1)]
        # Within a window, a round opens late for the time it has left.
        assert (await at(runtime, clock, THIRD + timedelta(weeks=4, days=1))).opened == 1
        latest = (await rounds_of(db))[-1]
        assert latest.opens_at == THIRD + timedelta(weeks=4)
        assert latest.closes_at == THIRD + timedelta(weeks=4, days=4)


async def test_every_second_week_without_start_keeps_its_weeks(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    text_ = (SURVEYS / "pulse-fortnightly.yaml").read_text(encoding="utf-8")
    text_ = text_.replace("  start: 2027-01-04", "")
    await load_demo(db, clock)
    # Friday 8 January, after the window of Monday 4 January: the first round is on the 11th.
    clock.set(datetime(2027, 1, 8, 12, 0, tzinfo=ROME))
    async with console_runtime(settings_for(database_url), clock) as runtime:
        await schedule(runtime, text_)
        monday = datetime(2027, 1, 11, 10, 0, tzinfo=ROME)
        for week in range(5):
            await at(runtime, clock, monday + timedelta(weeks=week, hours=1))
        opened = [r.opens_at for r in await rounds_of(db)]
        assert opened == [monday, monday + timedelta(weeks=2), monday + timedelta(weeks=4)]
    async with db.session() as session:
        campaign = await session.get(Campaign, 1)
        assert campaign is not None
        assert campaign.snapshot["survey"]["cadence"]["start"] == "2027-01-11"


async def test_people_who_left_are_not_invited(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        leaver = await person(db, AISHA)
        await schedule(runtime)
        # She leaves after the survey was scheduled, before its first round.
        async with db.session() as session:
            await session.execute(
                update(Person).where(Person.id == leaver.id).values(leave_date=date(2027, 1, 3))
            )
        await at(runtime, clock, FIRST)
    invited = await invited_to(db, 1)
    async with db.session() as session:
        people = list(await session.scalars(select(Person)))
        keys = set(await session.scalars(select(Delivery.key)))
        round_ = await session.get(SurveyRound, 1)
    active = {p.id for p in people if p.leave_date is None or p.leave_date > FIRST.date()}
    assert invited == active and leaver.id not in invited
    assert len(invited) == 45  # 48 in the demo, two who left in 2025, and Aisha
    assert f"pulse:1:invite:{leaver.id}" not in keys
    assert round_ is not None and round_.invited == 45


async def test_future_hires_are_not_invited_until_their_first_day(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        newcomer = await person(db, AISHA)
        async with db.session() as session:
            await session.execute(
                update(Person).where(Person.id == newcomer.id).values(hire_date=date(2027, 1, 10))
            )
        await schedule(runtime)
        await at(runtime, clock, FIRST)  # before her first day
        await at(runtime, clock, SECOND)  # after it
    first = await invited_to(db, 1)
    second = await invited_to(db, 2)
    assert newcomer.id not in first and newcomer.id in second


async def test_a_round_opened_late_sends_no_reminder_that_was_already_due(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with survey_runtime(db, clock, settings_for(database_url)) as runtime:
        await schedule(runtime)
        # Down from before the opening until after the halfway reminder (Wednesday 10:00).
        stats = await at(runtime, clock, FIRST + timedelta(days=2, hours=1))
        assert stats.opened == 1 and stats.reminders == 0
        assert (await at(runtime, clock, FIRST + timedelta(days=2, hours=2))).reminders == 0
        # The 24 h-before-close reminder (Thursday 10:00) was not yet due at opening: it is sent.
        assert (await at(runtime, clock, FIRST + timedelta(days=3))).reminders == 46
    async with db.session() as session:
        keys = set(await session.scalars(select(Delivery.key)))
    assert not any(":reminder:0:" in key for key in keys)


# What is left after a round closes


async def _five_answer_and_one_changes(
    runtime: Runtime, db: Database, round_id: int
) -> tuple[bytes, set[str]]:
    """Five people answer in an order unrelated to their keys, Kevin changes one answer;
    while open, the round's secret maps each of them to their key.  Returns the secret and
    the keys."""
    answerers: list[tuple[str, dict[str, Any]]] = [
        ("luca.moretti@demo.fidelio.example", {"sat_overall": 5, "enps": 10}),
        (AISHA, {"sat_overall": 2, "intent_stay": 1, "enps": 3, "comment": "More staff."}),
        (EMPLOYEE, {"sat_overall": 4}),
        (HR, {"enps": 8}),
        ("olivia.bennett@demo.fidelio.example", {"sat_overall": 3, "intent_stay": 4}),
    ]
    for email, values in answerers:
        await answer_all(runtime, round_id, email, values)
    await answer_all(runtime, round_id, EMPLOYEE, {"sat_overall": 1}, upto=1)
    secret = (await rounds_of(db))[0].secret
    assert secret is not None
    # While open, the secret links keys to people (so answers can be changed) ...
    async with db.session() as session:
        keys_before = set(await session.scalars(select(Response.respondent_key)))
    ids = {email: (await person(db, email)).id for email, _ in answerers}
    assert {respondent_key(secret, pid) for pid in ids.values()} == keys_before
    return secret, keys_before


async def test_after_close_nothing_links_an_answer_to_a_person(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = settings_for(database_url)
    async with survey_runtime(db, clock, settings) as runtime:
        round_id = await first_round(runtime, clock, db)
        secret, keys_before = await _five_answer_and_one_changes(runtime, db, round_id)

        await at(runtime, clock, FIRST + timedelta(days=4))

    async with db.session() as session:
        round_ = await session.get(SurveyRound, round_id)
        assert round_ is not None and round_.status == RoundStatus.closed
        assert round_.secret is None
        assert (
            await session.scalar(select(func.count()).where(SurveyRound.secret.is_not(None))) == 0
        )
        assert list(await session.scalars(select(Response))) == []
        rows = list(await session.scalars(select(ClosedResponse)))
        people = list(await session.scalars(select(Person.id)))
        stored = await every_stored_value(session)
    # ... after close no pseudonym is kept, and no value stored anywhere in the database is
    # that secret or a key made with anything stored.
    assert not any(key.encode() in stored for key in keys_before)
    assert len(rows) == 10  # 9 numeric answers and one comment
    candidates = stored | {settings.security.secret_key.get_secret_value().encode()}
    assert secret not in candidates
    for candidate in candidates:
        for person_id in people:
            for form in (str(person_id).encode(), person_id.to_bytes(8, "big")):
                digest = hmac.new(candidate, form, hashlib.sha256).hexdigest()
                assert digest not in keys_before, (candidate, person_id)
    # The answers themselves are kept, the last change winning (Kevin changed 4 to 1).
    assert sorted(r.value_num or 0 for r in rows if r.item_id == "sat_overall") == [1, 2, 3, 5]
    # Five respondents: one atom, the organisation; the comment sits in an atom of its own.
    assert len({r.atom_id for r in rows if r.value_text is None}) == 1
    assert {r.atom_id for r in rows if r.value_text} & {
        r.atom_id for r in rows if not r.value_text
    } == set()

    await _assert_schema_and_row_order_say_nothing(db, round_id)


async def _assert_schema_and_row_order_say_nothing(db: Database, round_id: int) -> None:
    """The schema as it is in the database, not only as the models say: kept answers carry
    no person, team or time; their physical order is (atom, random set number)."""
    async with db.engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {
                t: {col["name"] for col in inspect(c).get_columns(t)}
                for t in ("responses", "closed_responses", "participation")
            }
        )
        foreign = await conn.run_sync(
            lambda c: {
                fk["referred_table"] for fk in inspect(c).get_foreign_keys("closed_responses")
            }
        )
        physical = "rowid" if db.is_sqlite else "ctid"
        order = list(
            (
                await conn.execute(
                    text(
                        f"SELECT atom_id, set_no, item_id FROM closed_responses "
                        f"WHERE round_id = :r ORDER BY {physical}"
                    ),
                    {"r": round_id},
                )
            ).all()
        )
    assert columns["closed_responses"] == {
        "round_id",
        "atom_id",
        "set_no",
        "item_id",
        "value_num",
        "value_text",
    }
    assert "person_id" not in columns["closed_responses"] and "people" not in foreign
    assert "teams" not in foreign and "team_id" not in columns["closed_responses"]
    assert "respondent_key" not in columns["participation"]
    assert not any(c.endswith("_at") for c in columns["participation"] | columns["responses"])
    # Rows were written in (atom, random set number) order: their physical order says
    # nothing about who answered first.
    assert [tuple(r) for r in order] == sorted(tuple(r) for r in order)


async def every_stored_value(session: Any) -> set[bytes]:
    """Every text and binary value of every table, as bytes (JSON values as their text)."""
    found: set[bytes] = set()
    for table in Base.metadata.sorted_tables:
        for row in (await session.execute(select(table))).all():
            for value in row:
                if isinstance(value, bytes):
                    found.add(value)
                elif isinstance(value, str):
                    found.add(value.encode())
                elif isinstance(value, dict | list):
                    found.add(json.dumps(value).encode())
                    found.update(str(v).encode() for v in _leaves(value))
    return found


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


# Fidelio survey, as a real process


async def test_survey_preview_prints_the_italian_invitation_and_questions(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'never-created.db'}")
    code, out, err = await fidelio(
        config, "survey", "preview", "pulse-fortnightly", "--locale", "it"
    )
    assert code == 0, err
    assert "Pulse quindicinale: 8 domande veloci, un tocco ciascuna." in out
    assert "Anonimo per costruzione" in out and "[1] Inizia" in out
    for number in range(1, 9):
        assert f"Pulse quindicinale, {number}/8" in out
    assert out.index("Anonimo per costruzione") < out.index("Pulse quindicinale, 1/8")
    assert "Tutto considerato, sono soddisfatto di lavorare qui." in out
    assert out.count("[1]  [2]  [3]  [4]  [5]  [s] Salta") == 6
    assert out.count("[0]  [1]  [2]") == 1 and "[10]  [s] Salta" in out
    assert "Scrivi la risposta come messaggio; oppure Salta." in out
    assert not (tmp_path / "never-created.db").exists()  # no database needed

    # Round 2 rotates to the next four items, in English on request.
    code, out, _ = await fidelio(config, "survey", "preview", "pulse-fortnightly", "--round", "2")
    assert code == 0
    assert "round 2 if scheduled now: opens 2027-01-18 10:00" in out
    assert "My work here lets me learn and grow." in out and "Fortnightly pulse, 8/8" in out

    code, _, err = await fidelio(config, "survey", "preview", "pulse-fortnightly", "--locale", "fr")
    assert code == 2 and "--locale" in err and "'fr' is not supported" in err
    code, _, err = await fidelio(config, "survey", "preview", "no-such-survey")
    assert code == 2 and "no-such-survey" in err and "Traceback" not in err


async def test_survey_commands_schedule_list_rates_close(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url, anonymity={"min_group": 5})
    code, out, err = await fidelio(config, "survey", "list")
    assert code == 0, err
    assert "No survey is scheduled" in out
    code, out, err = await fidelio(config, "survey", "schedule", "pulse-fortnightly")
    assert code == 0, err
    assert "Scheduled survey schedule P-1: Fortnightly pulse (pulse-fortnightly)" in out
    assert "2027-01-04 10:00, 2027-01-18 10:00, 2027-02-01 10:00" in out
    code, _, err = await fidelio(config, "survey", "schedule", "pulse-fortnightly")
    assert code == 2 and "already scheduled as survey schedule P-1" in err
    code, out, _ = await fidelio(config, "survey", "list")
    assert "schedule P-1: pulse-fortnightly, Fortnightly pulse (scheduled)" in out
    assert "no round yet" in out
    code, out, _ = await fidelio(config, "campaign", "list")  # briefings only
    assert code == 0 and "pulse" not in out

    # The first round opens (the clock of this process stands at its opening).
    clock.set(FIRST)
    service = SurveyService(make_settings(database_url), db, clock)
    assert (await service.run_due()).opened == 1
    await answer_all_with(service, db, 1, HR)
    code, out, err = await fidelio(config, "survey", "list")
    assert code == 0, err
    assert "round 1 (no. 1): open, 2027-01-04 10:00 to 2027-01-08 10:00, 46 invited" in out
    assert "Times in Europe/Rome." in out

    code, out, err = await fidelio(config, "survey", "rates", "1")
    assert code == 0, err
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert set(lines) == {
        "Customer Care",
        "Marketing",
        "Sales Milano",
        "Sales Roma",
        "other teams (pooled)",
        "ALL",
    }
    # Open: the live snapshot, counts rounded down to fives (HR's one answer shows as 0).
    assert [c.strip() for c in lines["ALL"].split("│")[2:6]] == ["46", "0", "0", "0%"]
    assert [c.strip() for c in lines["other teams (pooled)"].split("│")[2:5]] == ["10", "0", "0"]
    assert SMALL_TEAM not in out and "Counts only" in out
    assert "The round is open" in out and "rounded down to a multiple of 5" in out

    code, out, err = await fidelio(config, "survey", "pause", "1")
    assert code == 0 and "is now paused" in out
    code, _, err = await fidelio(config, "survey", "pause", "1")
    assert code == 2 and "survey schedule P-1: the schedule is paused" in err
    code, _, err = await fidelio(config, "survey", "stop", "7")
    assert code == 2 and "P-7: no survey schedule with this reference" in err
    code, _, err = await fidelio(config, "survey", "rates", "99")
    assert code == 2 and "round 99: no survey round with this id" in err
    code, _, err = await fidelio(config, "survey", "close", "99")
    assert code == 2 and "round 99: no survey round with this id" in err

    code, out, err = await fidelio(config, "survey", "close", "1")
    assert code == 0, err
    assert "Round 1 closed: its secret is destroyed" in out.replace("\n", " ")
    code, out, _ = await fidelio(config, "survey", "close", "1")
    assert code == 0 and "Round 1 was already closed." in out
    # Closed: the final counts are exact, and count respondents: HR skipped every question,
    # so gave no answer (after close participation keeps only "answered anything").
    code, out, err = await fidelio(config, "survey", "rates", "1")
    assert code == 0, err
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert [c.strip() for c in lines["ALL"].split("│")[2:6]] == ["46", "0", "0", "0%"]
    assert [c.strip() for c in lines["other teams (pooled)"].split("│")[2:5]] == ["10", "0", "0"]
    assert "The round is open" not in out
    async with db.session() as session:
        round_ = await session.get(SurveyRound, 1)
        assert round_ is not None and round_.secret is None
    actions = [(actor, action) for actor, action, _ in await audit_actions(db)]
    for action in ("survey.schedule", "survey.rates", "survey.pause", "survey.close"):
        assert ("cli", action) in actions


async def answer_all_with(service: SurveyService, db: Database, round_id: int, email: str) -> None:
    async with db.session() as session:
        who = await session.scalar(select(Person).where(Person.email == email))
        assert who is not None
        round_, _, participation = await service.open_round_for(session, round_id, who)
        for item_id in round_.items:
            await service.record(session, round_, participation, who, item_id, skipped=True)
