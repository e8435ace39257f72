"""Dispatch: identity, role checks with audit, errors that never leak internals."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, ProcessedEvent
from bot.db.session import Database
from bot.events import ButtonPressed, ChannelUser, TextReceived
from bot.handling import EVERYONE
from bot.replies import Reply

from .harness import (
    ConsoleDialog,
    demo_console,
    link_on_console,
)

HR = "hr@demo.fidelio.example"
EMPLOYEE = "james.whitaker@demo.fidelio.example"


async def test_role_check_refuses_and_audits(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, EMPLOYEE, HR) as runtime:
        employee = ConsoleDialog(runtime, EMPLOYEE)
        refused = await employee.say("status")
        assert "`status` is not available to you" not in refused  # console shows plain text
        assert "status is not available to you" in refused
        assert "status" not in (await employee.say("help")).split("•")[-1]
        hr = ConsoleDialog(runtime, HR)
        allowed = await hr.say("status")
        assert "48 persone in 6 team" in allowed
    async with db.session() as session:
        entries = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    actions = [(e.actor_label, e.action) for e in entries if e.action != "people.import"]
    assert (EMPLOYEE, "denied") in actions
    assert (HR, "command.status") in actions


async def test_help_lists_only_what_the_role_may_use(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, EMPLOYEE, HR) as runtime:
        employee_help = await ConsoleDialog(runtime, EMPLOYEE).say("help")
        hr_help = await ConsoleDialog(runtime, HR).say("help")
    assert "• whoami" in employee_help and "• status" not in employee_help
    assert "• status" in hr_help


async def test_handler_crash_gives_an_apology_not_a_traceback(
    db: Database, clock: ManualClock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with demo_console(db, clock, database_url) as runtime:

        async def explode(ctx: object) -> Reply:
            raise RuntimeError("secret internal detail")

        runtime.dispatcher.registry.command("explode", summary="help/help", roles=EVERYONE)(explode)
        await link_on_console(runtime, EMPLOYEE)
        with caplog.at_level(logging.ERROR):
            answer = await ConsoleDialog(runtime, EMPLOYEE).say("explode")
    assert "something went wrong on my side" in answer
    assert "secret internal detail" not in answer and "Traceback" not in answer
    assert any("secret internal detail" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_unknown_person_gets_only_onboarding(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url) as runtime:
        user = ChannelUser("console", "intruder@x", "intruder@x")
        for text in ("help", "status", "whoami", "language it"):
            result = await runtime.dispatcher.process(TextReceived(user, f"e-{text}", text))
            assert len(result.replies) == 1
            assert "I do not know you yet" in result.replies[0].message.text


async def test_oversized_and_odd_messages_are_handled(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, EMPLOYEE) as runtime:
        dialog = ConsoleDialog(runtime, EMPLOYEE)
        assert "too long for me (10000 characters" in await dialog.say("x" * 10_000)
        assert "did not understand" in await dialog.say("\u202e\u0000 ﷽ 𝕳𝖊𝖑𝖑𝖔")


async def test_a_refused_button_is_audited_like_a_refused_command(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, EMPLOYEE) as runtime:
        user = ChannelUser("console", EMPLOYEE, EMPLOYEE)
        # A manager's button (a message forwarded, or sent before a change of role).
        press = ButtonPressed(user, "b-1", "sugg_show", "1")
        result = await runtime.dispatcher.process(press)
        assert "sugg_show" in result.replies[0].message.text.replace("\\", "")
        assert "not available" in result.replies[0].message.text
    async with db.session() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))
        )
        claimed = await session.scalar(select(ProcessedEvent.event_id))
    assert [(e.actor_label, e.detail) for e in entries] == [
        (EMPLOYEE, {"button": "sugg_show", "role": "employee"})
    ]
    assert claimed == "b-1"  # refused, and remembered: a retry is dropped
