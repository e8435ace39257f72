"""APScheduler wiring. The database owns schedules; the scheduler only wakes us up.

Jobs are derived from the tables at start-up with stable ids and ``replace_existing=True``,
so a restart rebuilds exactly the same set. On PostgreSQL a session-level advisory lock makes
sure only one Fidelio process runs them; a second instance stays passive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import ProcessedEvent
from bot.db.session import Database
from scheduler.executor import FinishingExecutor

log = logging.getLogger(__name__)

#: Arbitrary constant shared by every Fidelio process on one database.
ADVISORY_LOCK_KEY = 0x46494445  # "FIDE"
EVENT_MEMORY = timedelta(days=7)

JobFactory = Callable[[AsyncIOScheduler], Awaitable[None]]


def add_sweep(
    scheduler: AsyncIOScheduler, job_id: str, work: Callable[[], Awaitable[Any]], seconds: float
) -> None:
    """A periodic job that runs ``work`` at once and then every ``seconds``. APScheduler runs
    on real time and only wakes us up: ``work`` decides from the tables and the injected clock
    what is due (and logs its own progress; APScheduler logs a failure, retried next time)."""
    scheduler.add_job(
        work,
        "interval",
        seconds=seconds,
        id=job_id,
        replace_existing=True,
        next_run_time=datetime.now(UTC),
    )


#: How long stopping waits for running jobs (a sweep mid-way) before cutting them off.
STOP_GRACE_S = 10.0


class Scheduler:
    """Owns the AsyncIOScheduler and the single-instance lock."""

    def __init__(self, settings: Settings, db: Database, clock: Clock):
        self.settings = settings
        self.db = db
        self.clock = clock
        self._executor = FinishingExecutor()
        self.scheduler = AsyncIOScheduler(
            timezone="UTC",
            executors={"default": self._executor},
            job_defaults={
                "misfire_grace_time": settings.scheduler.misfire_grace_s,
                "coalesce": True,
                "max_instances": 1,
            },
        )
        self._lock_conn: AsyncConnection | None = None
        self.active = False
        #: Feature modules add job builders here (campaigns, rounds, digests).
        self.job_factories: list[JobFactory] = []

    async def _take_lock(self) -> bool:
        if self.db.is_sqlite:
            return True  # one process per SQLite file by design
        self._lock_conn = await self.db.engine.connect()
        got = await self._lock_conn.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
        if not got:
            await self._lock_conn.close()
            self._lock_conn = None
        return bool(got)

    async def start(self) -> None:
        self.active = await self._take_lock()
        if not self.active:
            log.warning("another Fidelio instance holds the scheduler lock; staying passive")
            return
        self.scheduler.add_job(
            self.prune_processed_events,
            "interval",
            hours=6,
            id="maintenance:prune-events",
            replace_existing=True,
        )
        for factory in self.job_factories:
            await factory(self.scheduler)
        self.scheduler.start()
        log.info("started with %d jobs", len(self.scheduler.get_jobs()))

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            # AsyncIOScheduler performs the shutdown on the next loop iteration; let it happen
            # so "stopped" means stopped when this returns.
            await asyncio.sleep(0)
            await self._executor.finish(STOP_GRACE_S)
        if self._lock_conn is not None:
            await self._lock_conn.close()
            self._lock_conn = None

    async def prune_processed_events(self) -> int:
        """Forget de-duplication ids older than a week (platforms retry for minutes, not days)."""
        cutoff = self.clock.now() - EVENT_MEMORY
        async with self.db.session() as session:
            result = await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
