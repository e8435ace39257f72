"""APScheduler wiring. The database owns schedules; the scheduler only wakes us up.

Jobs are derived from the tables whenever an instance becomes active, with stable ids and
``replace_existing=True``, so every start or takeover rebuilds exactly the same set. On
PostgreSQL a session-level advisory lock makes sure only one Fidelio process runs them.
The others stay passive and keep trying to take the lock; the active one checks that it still
holds it and steps down at once when it does not (see :class:`Scheduler`).
"""

from __future__ import annotations

import asyncio
import contextlib
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
#: What the lock connection calls itself in ``pg_stat_activity``.
LOCK_APPLICATION_NAME = "fidelio-scheduler-lock"
EVENT_MEMORY = timedelta(days=7)

JobFactory = Callable[[AsyncIOScheduler], Awaitable[None]]

# The lock holds while its PostgreSQL session lives. Everything is in steps of
# failover_s / 8, so that the worst case below stays within failover_s:
# * the active instance checks its lock every step and steps down at the first failure;
# * passive instances try to take the lock every step;
# * a new holder waits two steps before it runs anything: an active instance whose session
#   was cut (it is still alive) has checked in the meantime and stopped;
# * the database ends a lock session that stays silent for three steps
#   (``idle_session_timeout``): a machine that vanished without closing its connection
#   releases the lock then, not after the hours TCP keepalive would take.
# A process that dies is replaced within about three steps; a machine that vanishes within
# about six.
STEPS_PER_FAILOVER = 8
HOLD_OFF_STEPS = 2
SILENCE_STEPS = 3
#: The lock query: is the advisory lock granted to this very session?
HOLDS_LOCK = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = 0 AND objid = :key AND objsubid = 1)"
)


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
    """Owns the AsyncIOScheduler and the single-instance lock.

    ``active`` is True while this instance runs the scheduled work. On SQLite it always is
    (one process per file). On PostgreSQL :meth:`start` tries the lock once and then a
    watcher keeps at it: passive, it tries to take the lock every step; active, it checks
    the lock every step and steps down when the lock is gone (connection dropped, backend
    terminated, database restarted), then goes back to trying.
    """

    def __init__(self, settings: Settings, db: Database, clock: Clock):
        self.settings = settings
        self.db = db
        self.clock = clock
        self._executor = FinishingExecutor()
        self.scheduler = self._new_apscheduler()
        self._lock_conn: AsyncConnection | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.active = False
        #: The PostgreSQL backend holding the lock for this instance (logs, tests).
        self.lock_pid: int | None = None
        #: Feature modules add job builders here (campaigns, rounds, digests).
        self.job_factories: list[JobFactory] = []

    @property
    def step_s(self) -> float:
        """How often the lock is checked (active) or tried (passive)."""
        return self.settings.scheduler.failover_s / STEPS_PER_FAILOVER

    def _new_apscheduler(self) -> AsyncIOScheduler:
        # A fresh one at each activation: one that was shut down keeps its old jobs.
        self._executor = FinishingExecutor()
        return AsyncIOScheduler(
            timezone="UTC",
            executors={"default": self._executor},
            job_defaults={
                "misfire_grace_time": self.settings.scheduler.misfire_grace_s,
                "coalesce": True,
                "max_instances": 1,
            },
        )

    async def start(self) -> None:
        """Become active if the lock is free; otherwise stay passive and keep trying."""
        if self.db.is_sqlite:
            await self._run_jobs()  # one process per SQLite file by design
            return
        if await self._try_lock():
            await self._activate_or_release()
        if not self.active:
            log.warning(
                "another Fidelio instance holds the scheduler lock; staying passive "
                "(trying again every %.1fs)",
                self.step_s,
            )
        self._watcher = asyncio.create_task(self._watch(), name="scheduler-lock")

    async def stop(self) -> None:
        """Stop the watcher, let running jobs finish (up to STOP_GRACE_S), release the lock."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._stop_jobs(STOP_GRACE_S)
        await self._release_lock()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.step_s)
            try:
                if self.active:
                    if not await self._still_holds():
                        log.error(
                            "lost the scheduler lock (database connection gone?); "
                            "stepping down to passive"
                        )
                        await self._step_down()
                elif await self._try_lock():
                    # Whoever held the lock may be alive and not have noticed yet: give it
                    # time to check and stop before running anything here.
                    await asyncio.sleep(self.step_s * HOLD_OFF_STEPS)
                    if await self._still_holds():
                        await self._activate_or_release()
                    else:
                        await self._release_lock()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler lock watcher: unexpected error; trying again")
                await self._step_down()

    async def _try_lock(self) -> bool:
        """Take the advisory lock on a connection of its own, kept for as long as we hold it."""
        conn: AsyncConnection | None = None
        try:
            conn = await self.db.engine.connect()
            # Autocommit: the session, not a transaction left open, holds the lock, and the
            # connection counts as idle between checks (for idle_session_timeout).
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            if not got:
                await conn.close()
                return False
            await conn.execute(text(f"SET application_name = '{LOCK_APPLICATION_NAME}'"))
            self.lock_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        except Exception as exc:
            log.warning("could not try the scheduler lock: %s", exc)
            if conn is not None:
                await _discard(conn)
            return False
        silence_ms = max(1, int(self.step_s * SILENCE_STEPS * 1000))
        try:
            await conn.execute(text(f"SET idle_session_timeout = {silence_ms}"))
        except Exception:  # PostgreSQL before 14: the lock still works
            log.warning(
                "the database cannot end a silent session (PostgreSQL 14 or later can): "
                "if this machine vanishes, its lock lasts until TCP keepalive gives up"
            )
        self._lock_conn = conn
        return True

    async def _still_holds(self) -> bool:
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            async with asyncio.timeout(self.step_s):
                return bool(await conn.scalar(HOLDS_LOCK, {"key": ADVISORY_LOCK_KEY}))
        except Exception as exc:  # driver error or timeout: the lock cannot be vouched for
            log.warning("scheduler lock check failed: %s", type(exc).__name__)
            return False

    async def _release_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        self.lock_pid = None
        if conn is not None:
            # Ending the session releases the lock and drops its settings with it.
            await _discard(conn)

    async def _activate_or_release(self) -> None:
        try:
            await self._run_jobs()
        except Exception:
            log.exception("could not build the scheduled jobs; releasing the scheduler lock")
            await self._step_down()

    async def _run_jobs(self) -> None:
        """Build every job from the tables and start running them: this instance is active."""
        self.scheduler = self._new_apscheduler()
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
        self.active = True
        log.info("scheduler active with %d jobs", len(self.scheduler.get_jobs()))

    async def _step_down(self) -> None:
        # Jobs still running are cut off at once: the lock may already be someone else's,
        # and whatever they leave undone is redone from the tables by the new holder.
        self.active = False
        await self._stop_jobs(0.0)
        await self._release_lock()

    async def _stop_jobs(self, grace_s: float) -> None:
        self.active = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            # AsyncIOScheduler performs the shutdown on the next loop iteration; let it happen
            # so "stopped" means stopped when this returns.
            await asyncio.sleep(0)
            await self._executor.finish(grace_s)

    async def prune_processed_events(self) -> int:
        """Forget de-duplication ids older than a week (platforms retry for minutes, not days)."""
        cutoff = self.clock.now() - EVENT_MEMORY
        async with self.db.session() as session:
            result = await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _discard(conn: AsyncConnection) -> None:
    """Close a connection for good (not back to the pool): its session, and any advisory
    lock it holds, ends with it."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
