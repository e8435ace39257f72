"""Access, command by command: the role each command needs, the team subtree a manager sees,
and strangers who get nothing but onboarding. Table-driven over the handler registry, so a
command added without an entry here fails the first test."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Role
from bot.db.session import Database
from bot.events import ButtonPressed, ChannelUser, CommandInvoked, TextReceived
from bot.features import build_registry
from bot.handling import EVERYONE, HR, MANAGERS

from .harness import (
    ConsoleDialog,
    console_runtime,
    demo_console,
    load_demo,
    make_settings,
    schedule_demo_briefing,
)

ROME = ZoneInfo("Europe/Rome")

#: Every chat command and the roles that may use it. Managers' reach is their team subtree
#: (checked below for ``readiness``; ``suggestions`` and ``summary`` have their own subtree
#: tests in test_suggestions_e2e.py and the loyalty summary tests).
ACCESS = {
    "start": EVERYONE,
    "help": EVERYONE,
    "language": EVERYONE,
    "whoami": EVERYONE,
    "cancel": EVERYONE,
    "briefings": EVERYONE,
    "ask": EVERYONE,
    "pulse": EVERYONE,
    "readiness": MANAGERS,
    "campaign": HR,
    "survey": HR,
    "status": HR,
    "suggest": EVERYONE,
    "ideas": EVERYONE,
    "mysuggestions": EVERYONE,
    "suggestions": MANAGERS,
    "suggestion": MANAGERS,
    "summary": EVERYONE,
    "web": MANAGERS,
}

#: One demo person per role.
BY_ROLE = {
    Role.employee: "james.whitaker@demo.fidelio.example",
    Role.manager: "luca.moretti@demo.fidelio.example",
    Role.hr: "hr@demo.fidelio.example",
    Role.admin: "admin@demo.fidelio.example",
}

AUDIENCE_TEAMS = ("Sales Milano", "Sales Roma", "Customer Care")
#: Each demo manager and the audience teams inside the subtree they manage.
MANAGERS_SEE = {
    "giulia.ferretti@demo.fidelio.example": AUDIENCE_TEAMS,  # Headquarters: the whole tree
    "luca.moretti@demo.fidelio.example": ("Sales Milano",),
    "roberta.esposito@demo.fidelio.example": ("Sales Roma",),
    "andrea.ferrara@demo.fidelio.example": ("Customer Care",),
    "riccardo.gentile@demo.fidelio.example": (),  # Marketing: not in the audience
    "silvia.rossi@demo.fidelio.example": (),  # HR & People
}


def test_every_registered_command_has_an_access_rule() -> None:
    registry = build_registry()
    registered = {command.name: command.roles for command in registry.commands.values()}
    assert registered == ACCESS, (
        "a chat command was added or its roles changed: state who may use it in ACCESS"
    )


def _commands() -> list[tuple[str, str]]:
    """(name typed, canonical name) for every command and alias."""
    registry = build_registry()
    return sorted((typed, command.name) for typed, command in registry.commands.items())


@pytest.mark.parametrize("role", list(BY_ROLE), ids=lambda r: r.value)
async def test_each_command_is_checked_against_the_role(
    db: Database, clock: ManualClock, database_url: str, role: Role
) -> None:
    await load_demo(db, clock)
    email = BY_ROLE[role]
    settings = make_settings(database_url, console={"enabled": True})
    async with console_runtime(settings, clock) as runtime:
        from bot.console_session import console_person

        await console_person(runtime, email)
        dialog = ConsoleDialog(runtime, email)
        for typed, name in _commands():
            answer = await dialog.say(typed)
            refused = "is not available to you" in answer or "non è disponibile" in answer
            assert refused == (role not in ACCESS[name]), (role, typed, answer)
    async with db.session() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.actor_label == email))
        )
    denied = sorted(e.detail["command"] for e in entries if e.action == "denied")
    expected = sorted(typed_name for _, typed_name in _commands() if role not in ACCESS[typed_name])
    assert denied == expected  # every refusal is in the audit log
    audited = {e.action for e in entries if e.action.startswith("command.")}
    registry = build_registry()
    # ``readiness`` without a campaign id only answers how to use it: nothing is shown, so
    # nothing is audited (its audited use is in the subtree test below).
    assert audited == {
        f"command.{c.name}"
        for c in registry.commands.values()
        if c.audited and role in c.roles and c.name != "readiness"
    }


async def test_readiness_shows_each_manager_only_their_subtree(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, at=datetime(2027, 2, 26, 9, 0, tzinfo=ROME)
    ) as runtime:
        from bot.console_session import console_person

        campaign = await schedule_demo_briefing(runtime)
        await runtime.service("briefings").run_due()
        for email, visible in MANAGERS_SEE.items():
            await console_person(runtime, email)
            answer = await ConsoleDialog(runtime, email).say(f"readiness {campaign.id}")
            shown = {team for team in AUDIENCE_TEAMS if team in answer}
            assert shown == set(visible), (email, answer)


async def test_a_stranger_gets_only_onboarding_for_every_command_and_button(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = make_settings(database_url, console={"enabled": True})
    registry = build_registry()
    async with console_runtime(settings, clock) as runtime:
        stranger = ChannelUser("telegram", "999999", "999999", language_code="en")
        events = [
            *(CommandInvoked(stranger, f"c-{typed}", typed, "1") for typed, _ in _commands()),
            *(TextReceived(stranger, f"t-{typed}", f"{typed} 1") for typed, _ in _commands()),
            *(ButtonPressed(stranger, f"b-{action}", action, "1") for action in registry.buttons),
            TextReceived(stranger, "t-free", "hello, who are you?"),
        ]
        for event in events:
            result = await runtime.dispatcher.process(event)
            [reply] = [r.message.text for r in result.replies]
            # Onboarding, or for ``start CODE`` the reason the code does not link anyone.
            assert "I do not know you yet" in reply or "invite code is not valid" in reply, (
                event,
                reply,
            )
    async with db.session() as session:
        assert (
            list(
                await session.scalars(
                    select(AuditEntry.action).where(AuditEntry.action != "people.import")
                )
            )
            == []
        )
