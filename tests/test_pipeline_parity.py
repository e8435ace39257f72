"""One inbound pipeline (bot/pipeline.py): a button press handled on its own
(``Dispatcher.process``) and the same press handled in a group with others
(``Dispatcher.process_many``) go through the same steps with the same outcome: the same
reply, the same audit rows, the same processed-event rows, the same stored answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.models import AuditEntry, ChannelName, Person, ProcessedEvent, Role
from bot.db.session import Database
from bot.dispatch import DispatchResult
from bot.errors import UserFacingError
from bot.events import ButtonPressed, ChannelUser, InboundEvent
from bot.handling import HR, HandlerContext, HandlerResult
from bot.identities import link
from bot.pulse.tables import Participation, SurveyRound
from bot.replies import Reply

from .harness import demo_console
from .test_pulse_e2e import FIRST, schedule

#: A batch button only HR (and admin) may press, registered for these tests: the one real
#: batch button (survey answers) is open to everyone, so it can never be refused by role.
HR_TAP = "hr_tap"
LEFT = {
    "single": "paolo.gallo@demo.fidelio.example",
    "grouped": "stefano.mariani@demo.fidelio.example",
}
HR_PERSON = {"single": "hr@demo.fidelio.example", "grouped": "admin@demo.fidelio.example"}


async def hr_tap(ctxs: list[HandlerContext]) -> list[HandlerResult | UserFacingError]:
    """Audits each press (as a handler may) and answers it."""
    for ctx in ctxs:
        ctx.audit("test.hr_tap", value=ctx.args)
    return [Reply("language/set", {"language": ctx.args}) for ctx in ctxs]


def user(email: str) -> ChannelUser:
    return ChannelUser("console", email, email)


async def _setup(runtime: Runtime, db: Database, clock: ManualClock) -> tuple[int, list[Person]]:
    """Open a pulse round; link everybody to the console. Returns the round id and the
    active Italian employees invited to it."""
    runtime.dispatcher.registry.batch_button(HR_TAP, roles=HR)(hr_tap)
    clock.set(FIRST - timedelta(days=3))
    await schedule(runtime)
    clock.set(FIRST)
    await runtime.service("surveys").run_due()
    async with db.session() as session:
        round_id = await session.scalar(select(SurveyRound.id))
        assert round_id is not None
        invited = set(
            await session.scalars(
                select(Participation.person_id).where(Participation.round_id == round_id)
            )
        )
        people = list(await session.scalars(select(Person).order_by(Person.id)))
        for person in people:
            await link(session, person, ChannelName.console, person.email, person.email, clock)
    employees = [
        p
        for p in people
        if p.role is Role.employee and p.locale == "it" and p.leave_date is None and p.id in invited
    ]
    return round_id, employees


def _scenario(
    mode: str, round_id: int, employees: Sequence[Person]
) -> tuple[list[tuple[str, list[ButtonPressed]]], dict[str, str]]:
    """The groups of presses of one mode (each group: one button, one press per person) and
    the slot each email plays, so that the two modes, played by different people, compare."""
    answerer, refused, stale, second = employees
    slots = {
        answerer.email: "answerer",
        refused.email: "employee",
        stale.email: "stale",
        second.email: "second",
        LEFT[mode]: "left",
        HR_PERSON[mode]: "hr",
        f"stranger-{mode}@example.com": "stranger",
    }
    answer = ButtonPressed(user(answerer.email), f"{mode}-1", "pa", f"{round_id}.0.4")
    groups = [
        (
            "pa",
            [
                ButtonPressed(
                    user(f"stranger-{mode}@example.com"), f"{mode}-2", "pa", f"{round_id}.0.3"
                ),
                ButtonPressed(user(LEFT[mode]), f"{mode}-3", "pa", f"{round_id}.0.3"),
                answer,
                ButtonPressed(user(stale.email), f"{mode}-4", "pa", "not.a.press"),
            ],
        ),
        (
            HR_TAP,
            [
                ButtonPressed(user(refused.email), f"{mode}-5", HR_TAP, "it"),
                ButtonPressed(user(HR_PERSON[mode]), f"{mode}-6", HR_TAP, "it"),
            ],
        ),
        # The platform redelivers the answer, together with somebody else's first press.
        ("pa", [answer, ButtonPressed(user(second.email), f"{mode}-7", "pa", f"{round_id}.0.5")]),
    ]
    return groups, slots


async def _play(
    runtime: Runtime, db: Database, mode: str, round_id: int, employees: Sequence[Person]
) -> dict[str, Any]:
    """Run one mode's presses and return what they left, with people as slots and event ids
    without the mode's prefix."""
    groups, slots = _scenario(mode, round_id, employees)
    async with db.session() as session:
        first_entry = (
            await session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()))
        ) or 0
    dispatcher = runtime.dispatcher
    replies = []
    for action, events in groups:
        if mode == "single":
            results = [await dispatcher.process(event) for event in events]
        else:
            results = await dispatcher.process_many(action, events)
        for event, result in zip(events, results, strict=True):
            texts = [outgoing.message.text for outgoing in result.replies]
            replies.append((slots[event.user.external_id], result.duplicate, texts))
    async with db.session() as session:
        audit = [
            (slots.get(e.actor_label, e.actor_label), e.action, e.detail)
            for e in await session.scalars(
                select(AuditEntry).where(AuditEntry.id > first_entry).order_by(AuditEntry.id)
            )
        ]
        processed = sorted(
            (channel, event_id.removeprefix(f"{mode}-"))
            for channel, event_id in (
                await session.execute(
                    select(ProcessedEvent.channel, ProcessedEvent.event_id).where(
                        ProcessedEvent.event_id.startswith(f"{mode}-")
                    )
                )
            ).all()
        )
        answered = {
            slots[email]: n
            for email, n in (
                await session.execute(
                    select(Person.email, Participation.answered)
                    .join(Participation, Participation.person_id == Person.id)
                    .where(Participation.round_id == round_id, Person.email.in_(list(slots)))
                )
            ).all()
        }
    return {"replies": replies, "audit": audit, "processed": processed, "answered": answered}


async def test_a_press_alone_and_in_a_group_have_the_same_outcome(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url) as runtime:
        round_id, employees = await _setup(runtime, db, clock)
        assert len(employees) >= 8
        single = await _play(runtime, db, "single", round_id, employees[:4])
        alone: list[InboundEvent] = []
        process = runtime.dispatcher.process

        async def spied(event: InboundEvent) -> DispatchResult:
            alone.append(event)
            return await process(event)

        runtime.dispatcher.process = spied  # type: ignore[method-assign]
        grouped = await _play(runtime, db, "grouped", round_id, employees[4:8])

    # Strangers, leavers and refusals stay in their group's transaction, as answers do.
    assert alone == []

    assert grouped == single
    replies = {(slot, duplicate): texts for slot, duplicate, texts in single["replies"]}
    [stranger] = replies[("stranger", False)]
    [left] = replies[("left", False)]
    for onboarding in (stranger, left):  # who has left is a stranger again
        assert "do not know you" in onboarding or "Non ti conosco" in onboarding, onboarding
    [refusal] = replies[("employee", False)]
    assert "non è disponibile" in refusal, refusal
    [stale] = replies[("stale", False)]
    assert "valido" in stale, stale
    assert "2/8" in replies[("answerer", False)][0]
    assert replies[("answerer", True)] == []  # the redelivered press: dropped, not answered
    assert "2/8" in replies[("second", False)][0]
    # A refused press is audited like a refused command; the handler's own audit commits.
    assert single["audit"] == [
        ("employee", "denied", {"button": HR_TAP, "role": "employee"}),
        ("hr", "test.hr_tap", {"value": "it"}),
    ]
    # Every press is remembered once, whatever its outcome; the redelivery adds nothing.
    assert single["processed"] == [("console", str(n)) for n in range(1, 8)]
    answered = single["answered"]
    assert answered["answerer"] == answered["second"] == 1
    assert answered["employee"] == answered["stale"] == 0
