"""`summary` end to end: real Telegram and Slack clients against the fakes, the console, a
real database with closed rounds, the audit log, and the anonymity refusals."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, ChannelName, Person
from bot.db.session import Database
from bot.identities import link
from bot.loyalty.tables import LoyaltyView

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import (
    ConsoleDialog,
    SlackDialog,
    TelegramDialog,
    console_runtime,
    fake_telegram,
    fast_rates,
    load_demo,
    make_settings,
    running,
    running_on_slack,
    telegram_section,
)
from .loyalty_seed import closed_round, schedule_survey

ITEMS = [
    "sat_overall",
    "intent_stay",
    "enps",
    "trust_leadership",
    "trust_manager",
    "recognition",
    "frustration",
    "comment",
]
FAST_RATES = fast_rates(50.0)
LUCA = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano (Italian)
ROBERTA = "roberta.esposito@demo.fidelio.example"  # manager of Sales Roma
AISHA = "aisha.khan@demo.fidelio.example"  # employee (English)
HR = "hr@demo.fidelio.example"


def answers(person: Person, number: int) -> dict[str, int | None]:
    rng = random.Random(person.id * 31 + number)
    base = 4 if person.id % 3 else 2
    out: dict[str, int | None] = {}
    for item in ITEMS:
        if item == "comment":
            continue
        if item == "enps":
            out[item] = rng.randint(5, 10)
        else:
            out[item] = max(1, min(5, base + rng.choice([-1, 0, 1])))
    return out


async def seed(db: Database, clock: ManualClock, database_url: str, rounds: int = 3) -> None:
    await load_demo(db, clock)
    campaign = await schedule_survey(make_settings(database_url), db, clock)
    for number in range(1, rounds + 1):
        await closed_round(db, campaign, number, ITEMS, answers)


def uid(person_id: int) -> int:
    return 30_000 + person_id


telegram = fake_telegram("telegram", 50.0)


async def people_by_email(db: Database) -> dict[str, Person]:
    async with db.session() as session:
        return {p.email: p for p in await session.scalars(select(Person))}


async def link_telegram(
    db: Database, fake: FakeTelegramServer, clock: ManualClock, *emails: str
) -> None:
    async with db.session() as session:
        for email in emails:
            person = await session.scalar(select(Person).where(Person.email == email))
            assert person is not None
            fake.add_user(uid(person.id), person.name.split()[0])
            chat = str(uid(person.id))
            await link(session, person, ChannelName.telegram, chat, chat, clock)


async def _say(fake: FakeTelegramServer, user: int, text: str, replies: int) -> list[Any]:
    return await TelegramDialog(fake, user).say_for_messages(text, replies=replies)


async def test_telegram_manager_gets_text_and_photo_and_is_refused_another_team(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer
) -> None:
    await seed(db, clock, database_url)
    await link_telegram(db, telegram, clock, LUCA, AISHA, HR)
    people = await people_by_email(db)
    settings = make_settings(database_url, telegram=telegram_section(telegram), rates=FAST_RATES)
    async with running(settings, clock, background=False):
        luca = uid(people[LUCA].id)
        text, photo = await _say(telegram, luca, "summary", 2)
        assert "Riepilogo fedeltà: Sales Milano" in (text.text or "")
        assert "eNPS" in (text.text or "") and "Tasso di risposta" in (text.text or "")
        assert photo.photo is not None and photo.photo.startswith(b"\x89PNG")
        assert "Sales Milano" in (photo.caption or "")
        assert telegram.calls_to("sendPhoto")

        # Another manager's team: refused, nothing shown, and the refusal audited.
        (refused,) = await _say(telegram, luca, "summary Sales Roma last 2 rounds", 1)
        assert "non di <b>Sales Roma</b>" in (refused.text or "")

        # An employee sees the organisation only.
        aisha = uid(people[AISHA].id)
        (only,) = await _say(telegram, aisha, "summary Sales Milano", 1)
        assert "whole organisation" in (only.text or "")
        text, photo = await _say(telegram, aisha, "summary", 2)
        assert "Loyalty summary: the organisation" in (text.text or "")
        assert photo.photo is not None

        # Bad input is named.
        (bad,) = await _say(telegram, aisha, "summary since 2027-13-45", 1)
        assert "2027-13-45" in (bad.text or "")

        # A small team gets the honest answer and the nearest reportable parent.
        hr = uid(people[HR].id)
        honest, text, photo = await _say(telegram, hr, "summary HR & People", 3)
        assert "Non ci sono abbastanza risposte da <b>HR &amp; People</b>" in (honest.text or "")
        assert "l'organizzazione" in (honest.text or "")
        assert "Riepilogo fedeltà: l'organizzazione" in (text.text or "")
        assert photo.photo is not None

    async with db.session() as session:
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        views = [a for a in audit if a.action == "loyalty.view"]
        refusals = [a for a in audit if a.action == "loyalty.refused"]
        shown = list(await session.scalars(select(LoyaltyView)))
    assert [(a.actor_label, a.detail["asked"], a.detail["shown"]) for a in views] == [
        (LUCA, "Sales Milano", "Sales Milano"),
        (AISHA, "the organisation", "the organisation"),
        (HR, "HR & People", "the organisation"),
    ]
    assert {a.actor_label for a in refusals} == {LUCA, AISHA}
    assert {v.viewer for v in shown} == {
        f"person:{people[LUCA].id}",
        f"person:{people[AISHA].id}",
        f"person:{people[HR].id}",
    }


async def test_slack_upload_carries_the_chart(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed(db, clock, database_url, rounds=2)
    async with FakeSlackServer(rate_scale=20.0) as fake:
        fake.add_user(SlackUser("U0ROBERTA", ROBERTA, "roberta"))
        async with running_on_slack(
            fake, clock, database_url, background=False, rates=FAST_RATES
        ) as runtime:
            await runtime.channels["slack"].sync_directory(db, clock)
            roberta = SlackDialog(fake, "U0ROBERTA")
            dm = roberta.dm
            assert "Sales Roma" in (await roberta.say("summary"))[0]
            for _ in range(250):
                if fake.uploads:
                    break
                import asyncio

                await asyncio.sleep(0.02)
            (upload,) = fake.uploads
            assert upload["content"].startswith(b"\x89PNG")
            assert upload["channel_id"] == dm
            assert "Sales Roma" in (upload["initial_comment"] or "")


async def test_console_prints_the_chart_path(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Any
) -> None:
    await seed(db, clock, database_url, rounds=2)
    settings = make_settings(database_url, console={"enabled": True})
    async with console_runtime(settings, clock) as runtime:
        from bot.console_session import console_person

        await console_person(runtime, HR)
        runtime.channels["console"].image_dir = tmp_path
        dialog = ConsoleDialog(runtime, HR)
        out = await dialog.say("summary last 1 rounds")
        assert "Riepilogo fedeltà: l'organizzazione" in out
        assert "image saved to" in out
        saved = list(tmp_path.glob("*.png"))
        assert len(saved) == 1 and saved[0].read_bytes().startswith(b"\x89PNG")
        out = await dialog.say("summary Customer Care")
        assert "Customer Care" in out and "Indice di fedeltà" in out
