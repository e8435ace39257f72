"""The Telegram command menu ("/"), end to end: python-telegram-bot against the fake Bot API,
which records every setMyCommands and deleteMyCommands and refuses what Telegram would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import ChannelIdentity, ChannelName, Person
from bot.db.session import Database
from bot.identities import link
from bot.people import import_people

from .fakes.telegram import FakeTelegramServer
from .harness import fake_telegram, load_demo, make_settings, running, telegram_section, until

fake = fake_telegram("fake", 20.0)

EMPLOYEE = [
    "briefings",
    "ask",
    "pulse",
    "summary",
    "suggest",
    "ideas",
    "mysuggestions",
    "help",
    "language",
    "whoami",
    "start",
    "cancel",
]
MANAGER = [
    *EMPLOYEE[:2],
    "readiness",
    *EMPLOYEE[2:7],
    "suggestions",
    "suggestion",
    "web",
    *EMPLOYEE[7:],
]
HR = [
    *EMPLOYEE[:2],
    "readiness",
    "campaign",
    "pulse",
    "summary",
    "survey",
    *EMPLOYEE[4:7],
    "suggestions",
    "suggestion",
    "status",
    "web",
    *EMPLOYEE[7:],
]
#: Telegram chats of demo people: employees with English apps, an Italian manager and HR.
JAMES, LUCA, MARTA, AISHA = 1001, 1002, 1003, 1004
PEOPLE = {
    JAMES: "james.whitaker@demo.fidelio.example",
    LUCA: "luca.moretti@demo.fidelio.example",
    MARTA: "hr@demo.fidelio.example",
    AISHA: "aisha.khan@demo.fidelio.example",
}
HEADER = "email,name,team,role,locale,timezone\n"
LUCA_DEMOTED = (
    "luca.moretti@demo.fidelio.example,Luca Moretti,Sales Milano,employee,it,Europe/Rome\n"
)
AISHA_PROMOTED = "aisha.khan@demo.fidelio.example,Aisha Khan,Sales Milano,manager,en,Europe/Rome\n"
MARTA_DEMOTED = "hr@demo.fidelio.example,Marta Galli,HR & People,employee,it,Europe/Rome\n"


async def _link_on_telegram(db: Database, fake: FakeTelegramServer, clock: ManualClock) -> None:
    await load_demo(db, clock)
    async with db.session() as session:
        for chat, email in PEOPLE.items():
            person = await session.scalar(select(Person).where(Person.email == email))
            assert person is not None
            fake.add_user(chat, person.name.split()[0], language_code="en")
            await link(session, person, ChannelName.telegram, str(chat), str(chat), clock)


def _settings(database_url: str, fake: FakeTelegramServer) -> Any:
    """The organisation speaks Italian by default; menus are compared every 0.1 s."""
    return make_settings(
        database_url,
        telegram=telegram_section(fake, menu_refresh_s=0.1),
        organisation={"name": "Demo Elettronica", "default_locale": "it"},
    )


def _names(call: dict[str, Any]) -> list[str]:
    return [name for name, _ in call["commands"]]


def _chat_calls(fake: FakeTelegramServer, chat: int) -> list[dict[str, Any]]:
    return [c for c in fake.command_calls() if c["scope"] == {"type": "chat", "chat_id": chat}]


def _import(tmp_path: Path, name: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


async def _digests(db: Database) -> dict[int, str | None]:
    async with db.session() as session:
        rows = await session.execute(
            select(ChannelIdentity.address, ChannelIdentity.menu_digest).where(
                ChannelIdentity.channel == ChannelName.telegram
            )
        )
        return {int(chat): digest for chat, digest in rows.tuples()}


async def test_everyone_sees_the_employee_menu_and_managers_and_hr_their_own(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await _link_on_telegram(db, fake, clock)
    async with running(_settings(database_url, fake), clock, background=False):
        await until(lambda: bool(_chat_calls(fake, LUCA) and _chat_calls(fake, MARTA)))
    general = [c for c in fake.command_calls() if c["scope"] == {"type": "default"}]
    assert [(c["method"], c["language_code"], _names(c)) for c in general] == [
        ("setMyCommands", "en", EMPLOYEE),
        ("setMyCommands", "it", EMPLOYEE),
        ("setMyCommands", "", EMPLOYEE),  # in the organisation's language, Italian
    ]
    english, italian, default = (dict(c["commands"]) for c in general)
    assert english["suggest"] == "send a suggestion, named or anonymous"
    assert english["ask"] == "look up an answer in your briefings: ask trade-in"  # plain text
    assert italian["suggest"] == default["suggest"] == "invia un suggerimento, firmato o anonimo"

    # Luca (manager) and Marta (HR): their chat's own menu, in their language (Italian),
    # whatever their app's; the employees have none.
    [luca], [marta] = _chat_calls(fake, LUCA), _chat_calls(fake, MARTA)
    assert (luca["method"], luca["language_code"], _names(luca)) == ("setMyCommands", "", MANAGER)
    assert (marta["language_code"], _names(marta)) == ("", HR)
    assert dict(marta["commands"])["status"] == (
        "dimensione dell’anagrafica e copertura per canale (HR)"
    )
    assert _chat_calls(fake, JAMES) == _chat_calls(fake, AISHA) == []
    assert all(c["status"] == 200 for c in fake.command_calls())
    assert fake.commands_shown(LUCA) == MANAGER and fake.commands_shown(MARTA) == HR
    assert fake.commands_shown(JAMES) == EMPLOYEE
    digests = await _digests(db)
    assert digests[LUCA] and digests[MARTA] and digests[JAMES] is None


async def test_a_people_import_changes_the_menus_of_those_whose_role_changed(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer, tmp_path: Path
) -> None:
    """The import runs apart from the running Fidelio (as ``fidelio people import`` does);
    Fidelio notices by comparing the directory with the menus it gave."""
    await _link_on_telegram(db, fake, clock)
    async with running(_settings(database_url, fake), clock, background=False):
        await until(lambda: bool(_chat_calls(fake, LUCA) and _chat_calls(fake, MARTA)))
        await import_people(db, _import(tmp_path, "roles.csv", LUCA_DEMOTED, AISHA_PROMOTED), clock)
        await until(lambda: len(_chat_calls(fake, LUCA)) == 2 and bool(_chat_calls(fake, AISHA)))
        # Luca, demoted: his menu is deleted and his chat shows everyone's again.
        assert _chat_calls(fake, LUCA)[1]["method"] == "deleteMyCommands"
        assert fake.commands_shown(LUCA) == EMPLOYEE
        # Aisha, promoted: the manager's menu, in her language (English).
        [aisha] = _chat_calls(fake, AISHA)
        assert (aisha["method"], _names(aisha)) == ("setMyCommands", MANAGER)
        assert dict(aisha["commands"])["suggestions"].startswith("list suggestions to triage")
        assert fake.commands_shown(AISHA) == MANAGER
        assert len(_chat_calls(fake, MARTA)) == 1  # unchanged: nothing sent again
    digests = await _digests(db)
    assert digests[LUCA] is None and digests[AISHA] and digests[MARTA]


async def test_a_role_changed_while_fidelio_was_stopped_is_caught_up_at_start(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer, tmp_path: Path
) -> None:
    await _link_on_telegram(db, fake, clock)
    settings = _settings(database_url, fake)
    async with running(settings, clock, background=False):
        await until(lambda: bool(_chat_calls(fake, LUCA) and _chat_calls(fake, MARTA)))
    await import_people(db, _import(tmp_path, "hr.csv", MARTA_DEMOTED), clock)
    before = len(fake.command_calls())
    async with running(settings, clock, background=False):
        await until(lambda: len(_chat_calls(fake, MARTA)) == 2)
        await until(lambda: len(fake.command_calls()) >= before + 4)
    again = fake.command_calls()[before:]
    # Everyone's menus are set again at start; of people's own, only Marta's changed.
    assert [(c["method"], c["scope"]["type"]) for c in again] == [
        ("setMyCommands", "default"),
        ("setMyCommands", "default"),
        ("setMyCommands", "default"),
        ("deleteMyCommands", "chat"),
    ]
    assert again[3]["scope"]["chat_id"] == MARTA and fake.commands_shown(MARTA) == EMPLOYEE
    assert fake.commands_shown(LUCA) == MANAGER
