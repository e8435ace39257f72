"""Survey answers handled in groups (bot/batching.py, Dispatcher.process_many): presses that
arrive together share one transaction, yet each is checked, de-duplicated and answered on its
own, and one failing press cannot cost the others their answers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.batching import GroupQueue
from bot.clock import ManualClock
from bot.db.models import Person, ProcessedEvent
from bot.db.session import Database
from bot.pulse.service import SurveyService
from bot.pulse.tables import Participation, Response, SurveyRound

from .fakes.telegram import FakeTelegramServer
from .harness import TelegramDialog, fake_telegram, load_demo, running, telegram_section
from .test_pulse_e2e import FIRST, link_all, schedule, settings_for, tick, uid

# The queue on its own


async def test_group_queue_takes_everything_queued_one_per_key_in_order() -> None:
    runs: list[list[tuple[str, int]]] = []

    async def handle_many(items: list[tuple[str, int]]) -> list[str]:
        runs.append(items)
        await asyncio.sleep(0)
        return [f"{key}{n}" for key, n in items]

    queue: GroupQueue[tuple[str, int], str] = GroupQueue(handle_many, lambda i: i[0], max_size=3)
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("d", 1)]
    results = await asyncio.gather(*(queue.submit(i) for i in items))
    assert results == ["a1", "b1", "a2", "c1", "d1"]
    # First run: everything queued, at most 3, one per key; "a2" waits for a1's run to end.
    assert runs[0] == [("a", 1), ("b", 1), ("c", 1)]
    assert runs[1] == [("a", 2), ("d", 1)]


async def test_group_queue_failure_reaches_every_caller_of_that_run_only() -> None:
    calls = 0

    async def handle_many(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return [n * 10 for n in items]

    queue: GroupQueue[int, int] = GroupQueue(handle_many, lambda n: n)
    first = await asyncio.gather(queue.submit(1), queue.submit(2), return_exceptions=True)
    assert [type(r) for r in first] == [RuntimeError, RuntimeError]
    assert await queue.submit(3) == 30  # the queue keeps working


fake = fake_telegram("fake", 50.0)


async def _open_round_and_start(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer, count: int
) -> tuple[list[Person], dict[int, int], int]:
    """Open a round; ``count`` people press Start. Returns them, the message id of each one's
    first question, and the round id."""
    await load_demo(db, clock)
    people = [p for p in (await link_all(db, fake, clock)).values() if p.leave_date is None]
    chosen = people[:count]
    clock.set(FIRST - timedelta(days=3))
    settings = settings_for(database_url, telegram=telegram_section(fake))
    async with running(settings, clock, background=False) as runtime:
        await schedule(runtime)
        clock.set(FIRST)
        await tick(runtime)
        questions = {}
        for person in chosen:
            dialog = TelegramDialog(fake, uid(person.id))
            await dialog.press("Start" if person.locale == "en" else "Inizia")
            questions[person.id] = dialog.last_message().message_id
    async with db.session() as session:
        round_id = await session.scalar(select(SurveyRound.id))
    assert round_id is not None
    return chosen, questions, round_id


def _spy_groups(runtime: object) -> list[int]:
    """Record the size of every group the dispatcher handles."""
    sizes: list[int] = []
    dispatcher = runtime.dispatcher  # type: ignore[attr-defined]
    original = dispatcher.process_many

    async def spied(action: str, events: list) -> list:  # type: ignore[type-arg]
        sizes.append(len(events))
        return await original(action, events)

    dispatcher.process_many = spied
    return sizes


async def test_a_burst_of_presses_is_stored_in_groups_each_checked_alone(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people, questions, round_id = await _open_round_and_start(db, clock, database_url, fake, 12)
    forger, *answering = people
    # The burst arrives while Fidelio is down: it finds all of it at the next start.
    pressed = {}
    for person in answering:
        pressed[person.id] = await fake.press(uid(person.id), "4", message_id=questions[person.id])
    # A redelivered update, and a press whose data was signed for somebody else's chat.
    fake.redeliver(pressed[answering[0].id])
    stolen = dict(fake.last_message(uid(answering[1].id)).buttons())["2"]
    await fake.press_data(uid(forger.id), questions[forger.id], stolen)
    before = {p.id: len(fake.messages_to(uid(p.id))) for p in people}

    settings = settings_for(database_url, telegram=telegram_section(fake))
    async with running(settings, clock, background=False) as runtime:
        sizes = _spy_groups(runtime)
        for person in answering:
            replies = await fake.wait_for_messages(uid(person.id), before[person.id] + 1)
            assert "2/8" in (replies[before[person.id]].text or "")
        refusal = await fake.wait_for_messages(uid(forger.id), before[forger.id] + 1)
        assert "no longer valid" in (refusal[-1].text or "") or "non è più valido" in (
            refusal[-1].text or ""
        )
        await asyncio.sleep(0.3)  # let the redelivery arrive and be dropped

    assert max(sizes) > 1, sizes  # presses did share a transaction
    async with db.session() as session:
        round_ = await session.get(SurveyRound, round_id)
        assert round_ is not None and round_.secret is not None
        stored = {
            key: value
            for key, value in (
                await session.execute(
                    select(Response.respondent_key, Response.value_num).where(
                        Response.item_id == round_.items[0]
                    )
                )
            ).all()
        }
        progress = {
            p.person_id: p.answered
            for p in await session.scalars(
                select(Participation).where(Participation.round_id == round_id)
            )
        }
    from bot.pulse.schedule import respondent_key

    assert stored == {respondent_key(round_.secret, p.id): 4 for p in answering}
    assert all(progress[p.id] == 1 for p in answering)
    assert progress[forger.id] == 0
    # The redelivered press was answered once: one reply, not two.
    assert len(fake.messages_to(uid(answering[0].id))) == before[answering[0].id] + 1


async def test_one_failing_press_does_not_cost_the_others_their_answers(
    db: Database,
    clock: ManualClock,
    database_url: str,
    fake: FakeTelegramServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    people, questions, round_id = await _open_round_and_start(db, clock, database_url, fake, 6)
    broken = people[2]
    record = SurveyService.record

    async def failing(self: SurveyService, session, round_, participation, person, *a, **k):  # type: ignore[no-untyped-def]
        if person.id == broken.id:
            raise RuntimeError("a bug that only this press meets")
        return await record(self, session, round_, participation, person, *a, **k)

    monkeypatch.setattr(SurveyService, "record", failing)
    for person in people:
        await fake.press(uid(person.id), "5", message_id=questions[person.id])
    before = {p.id: len(fake.messages_to(uid(p.id))) for p in people}

    settings = settings_for(database_url, telegram=telegram_section(fake))
    with caplog.at_level(logging.ERROR):
        async with running(settings, clock, background=False) as runtime:
            sizes = _spy_groups(runtime)
            for person in people:
                await fake.wait_for_messages(uid(person.id), before[person.id] + 1)

    assert max(sizes) > 1
    assert "handling them one by one" in caplog.text
    apology = fake.messages_to(uid(broken.id))[-1].text or ""
    assert "2/8" not in apology and "Traceback" not in apology and "bug" not in apology
    async with db.session() as session:
        progress = {
            p.person_id: p.answered
            for p in await session.scalars(
                select(Participation).where(Participation.round_id == round_id)
            )
        }
        stored = await session.scalar(select(func.count()).select_from(Response))
        claimed = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert {pid: n for pid, n in progress.items() if pid in {p.id for p in people}} == {
        p.id: (0 if p.id == broken.id else 1) for p in people
    }
    assert stored == len(people) - 1
    # Every press is remembered as handled (the failed one too: a retry would fail again).
    assert claimed is not None and claimed >= len(people)
