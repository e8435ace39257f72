"""Failover between instances on one PostgreSQL database, in one process.

* Two schedulers: the first is active, the second passive. The first's lock session is
  terminated: it steps down at once, the second takes over within ``failover_s``, and a job
  due while neither was active runs once, on the new active instance. Then the other way
  round: the first, back to trying, takes over again.
* Two runtimes serving the Telegram webhook behind a round-robin load balancer: a burst of
  pulse answers, alternated between them (some delivered to both, as a platform retry
  would): nothing lost, nothing answered twice; the outbox rows (the invitations), sent by
  both outbox loops, each went out once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import ValidationError
from sqlalchemy import func, select, text

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import Delivery, DeliveryStatus, ProcessedEvent
from bot.db.session import Database
from bot.operations.server import health
from bot.pulse.content import load_survey
from bot.pulse.tables import Participation, Response
from scheduler import ADVISORY_LOCK_KEY, JobFactory, Scheduler, add_sweep

from .fakes.telegram import FakeTelegramServer
from .harness import (
    REPO,
    free_port,
    link_everyone_on_telegram,
    load_demo,
    make_settings,
    running,
    telegram_section,
)

#: Steps of 0.5 s: the old holder notices within one, the new one runs jobs after three.
FAILOVER_S = 4.0


def postgres_only(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: a SQLite file is served by one process, always active")


async def lock_holder(db: Database) -> int | None:
    """The PostgreSQL backend that holds Fidelio's scheduler lock, from ``pg_locks``."""
    async with db.engine.connect() as conn:
        return await conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = 0 AND objid = :key AND objsubid = 1"
            ),
            {"key": ADVISORY_LOCK_KEY},
        )


async def terminate(db: Database, pid: int) -> None:
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def until(condition: Any, timeout: float, what: str) -> float:
    """Wait for ``condition()``; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


class Ledger:
    """Stands for a service and its table: a periodic sweep, and one moment ("close") that
    the table says is still to do. Every run is written down, by instance."""

    def __init__(self) -> None:
        self.sweeps: list[str] = []
        self.closes: list[str] = []
        self.close_at: datetime | None = None

    def jobs(self, name: str) -> JobFactory:
        async def sweep() -> None:
            self.sweeps.append(name)

        async def factory(scheduler: AsyncIOScheduler) -> None:
            add_sweep(scheduler, "test:sweep", sweep, 0.05)
            if self.close_at is not None and not self.closes:
                # As a service would from its table: the moment, even if it is already past.
                self.plan_close(scheduler, name)

        return factory

    def plan_close(self, scheduler: AsyncIOScheduler, name: str) -> None:
        async def close() -> None:
            self.closes.append(name)  # deliberately not idempotent: a second run shows

        scheduler.add_job(close, "date", run_date=self.close_at, id="test:close")

    def phases(self) -> list[str]:
        """Who ran the sweep, in order, repeated names collapsed: one name per active spell."""
        return [name for name, _ in itertools.groupby(self.sweeps)]


def test_the_failover_setting_must_be_positive() -> None:
    url = "sqlite+aiosqlite:///never-opened.db"
    assert make_settings(url).scheduler.failover_s == 15.0
    with pytest.raises(ValidationError, match="failover_s"):
        make_settings(url, scheduler={"failover_s": 0})


async def test_a_terminated_lock_session_hands_the_jobs_over_once(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    postgres_only(database_url)
    settings = make_settings(database_url, scheduler={"failover_s": FAILOVER_S})
    ledger = Ledger()
    first, second = Scheduler(settings, db, clock), Scheduler(settings, db, clock)
    first.job_factories.append(ledger.jobs("first"))
    second.job_factories.append(ledger.jobs("second"))
    try:
        await first.start()
        await second.start()
        assert first.active and not second.active
        assert await lock_holder(db) == first.lock_pid is not None
        await until(lambda: ledger.sweeps, 2, "the first sweep")

        # Due between the first stepping down (within one step) and the second taking over
        # (after its hold-off of two steps): neither instance is active at that moment.
        ledger.close_at = datetime.now(UTC) + timedelta(seconds=first.step_s * 1.5)
        ledger.plan_close(first.scheduler, "first")  # as if scheduled while it runs
        await terminate(db, first.lock_pid)  # type: ignore[arg-type]
        stepped_down = await until(lambda: not first.active, FAILOVER_S, "the step-down")
        assert not first.scheduler.running
        took_over = await until(lambda: second.active, FAILOVER_S, "the takeover")
        await until(lambda: ledger.closes, FAILOVER_S, "the close that fell due")
        assert await lock_holder(db) == second.lock_pid

        # The first keeps trying but stays passive while the second holds the lock.
        await asyncio.sleep(first.step_s * 3)
        assert not first.active and ledger.phases() == ["first", "second"]

        await terminate(db, second.lock_pid)  # type: ignore[arg-type]
        took_back = await until(lambda: first.active, FAILOVER_S, "the second takeover")
        await until(lambda: ledger.phases()[-1] == "first", 2, "sweeps on the first again")
        assert not second.active and not second.scheduler.running
    finally:
        await second.stop()
        await first.stop()
    assert ledger.closes == ["second"]
    assert ledger.phases() == ["first", "second", "first"]
    print(
        f"\nfailover_s={FAILOVER_S}: stepped down in {stepped_down:.2f}s, taken over in "
        f"{took_over:.2f}s, taken back in {took_back:.2f}s"
    )


async def test_healthz_reports_the_role_of_each_instance(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url, scheduler={"failover_s": FAILOVER_S})
    async with running(settings, clock) as first, running(settings, clock) as second:
        ok_first, first_report = await health(first)
        ok_second, second_report = await health(second)
    assert ok_first and first_report["role"] == "active"
    assert first_report["scheduler"] == "active"
    # SQLite: one process per file, so every runtime is active; PostgreSQL: one of them.
    expected = "active" if db.is_sqlite else "passive"
    assert ok_second and second_report["role"] == second_report["scheduler"] == expected


class LoadBalancer:
    """A round-robin HTTP front for several webhook endpoints, as in front of Fidelio's
    instances. Every ``retry_every``-th update is also posted to the next instance after
    the first answered, as Telegram does when it did not get an answer in time."""

    def __init__(self, backends: list[str], retry_every: int = 4):
        self.backends = backends
        self.retry_every = retry_every
        self.posts: Counter[str] = Counter()
        self.retries = 0
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LoadBalancer:
        self.port = free_port()
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._runner is not None and self._http is not None
        await self._http.close()
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def _post(self, backend: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._http is not None
        self.posts[backend] += 1
        async with self._http.post(backend, data=body, headers=headers) as response:
            return response.status

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        turn = next(self._turn)
        status = await self._post(self.backends[turn % len(self.backends)], body, headers)
        if turn % self.retry_every == self.retry_every - 1:
            self.retries += 1
            await self._post(self.backends[(turn + 1) % len(self.backends)], body, headers)
        return web.Response(status=status)


WEBHOOK_PATH = "/telegram/webhook"
FORWARDED = {"content-type", "x-telegram-bot-api-secret-token"}
FIRST_ROUND = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # pulse-fortnightly opens (10:00 Rome)


def uid(person_id: int) -> int:
    return 40_000 + person_id


def instance_settings(
    database_url: str, fake: FakeTelegramServer, lb: LoadBalancer, port: int
) -> Settings:
    return make_settings(
        database_url,
        telegram=telegram_section(
            fake,
            mode="webhook",
            webhook_url=lb.url,
            webhook_secret="behind-the-balancer",
            webhook_port=port,
        ),
        rates={"telegram_per_chat_per_s": 50.0, "telegram_global_per_s": 1000.0},
        # Small batches, so that both outbox loops take part in sending the invitations.
        outbox={"batch_size": 3},
        scheduler={"failover_s": FAILOVER_S, "sweep_s": 0.2},
    )


async def press_everywhere(fake: FakeTelegramServer, chats: list[int], label: str | None) -> None:
    """Every person presses a button of their latest message at once (``None``: the first,
    as "Start" in any language); then each gets exactly one more message."""
    before = {chat: len(fake.messages_to(chat)) for chat in chats}
    for chat in chats:
        buttons = fake.last_message(chat).buttons()
        data = buttons[0][1] if label is None else dict(buttons)[label]
        await fake.press_data(chat, fake.last_message(chat).message_id, data)
    for chat in chats:
        await fake.wait_for_messages(chat, before[chat] + 1, timeout=20)


@pytest.mark.slow
async def test_two_instances_behind_a_load_balancer_lose_and_repeat_nothing(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    postgres_only(database_url)
    await load_demo(db, clock)
    async with FakeTelegramServer(rate_scale=50.0) as fake:
        await link_everyone_on_telegram(db, fake, clock, uid)
        survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
        ports = [free_port(), free_port()]
        async with LoadBalancer([f"http://127.0.0.1:{p}{WEBHOOK_PATH}" for p in ports]) as lb:
            settings = [instance_settings(database_url, fake, lb, port) for port in ports]
            clock.set(FIRST_ROUND)
            async with running(settings[0], clock) as one, running(settings[1], clock) as two:
                assert one.scheduler.active and not two.scheduler.active
                async with db.session() as session:
                    await one.service("surveys").schedule_in(
                        session, survey, items, "hr@demo.example"
                    )
                # The active instance's sweep opens the round; both outbox loops send.
                invited = await until_invited(db, fake)
                await press_everywhere(fake, invited, None)  # Start: the first question
                await press_everywhere(fake, invited, "4")  # its answer: the second one
                await asyncio.sleep(0.5)  # time for any duplicate to show up
                sent_by = [one.outbox.totals.sent, two.outbox.totals.sent]
        # 0 lost: every answer stored; 0 duplicated: one message per step per person.
        async with db.session() as session:
            answers = await session.scalar(select(func.count()).select_from(Response))
            handled = await session.scalar(select(func.count()).select_from(ProcessedEvent))
        assert answers == len(invited)
        assert {chat: len(fake.messages_to(chat)) for chat in invited} == dict.fromkeys(invited, 3)
        assert sum(sent_by) == len(invited)
        assert handled == 2 * len(invited) and lb.retries > 0
        assert min(lb.posts.values()) >= len(invited) - 1  # both instances got their half
    print(
        f"\nbehind a load balancer: {2 * len(invited)} updates ({lb.retries} delivered twice), "
        f"posts per instance {sorted(lb.posts.values())}, invitations sent per instance "
        f"{sent_by}; 0 lost, 0 duplicated"
    )


async def until_invited(db: Database, fake: FakeTelegramServer) -> list[int]:
    """Wait until the round is open and every invitation went out; the invited chats."""
    deadline = time.monotonic() + 20
    while True:
        async with db.session() as session:
            invited = list(await session.scalars(select(Participation.person_id)))
            settled = await session.scalar(
                select(func.count()).where(Delivery.status == DeliveryStatus.sent)
            )
        if invited and settled == len(invited):
            break
        assert time.monotonic() < deadline, "the invitations did not all go out"
        await asyncio.sleep(0.1)
    chats = [uid(p) for p in invited]
    assert all(len(fake.messages_to(chat)) == 1 for chat in chats)
    return chats
