"""The wake-up job for the "You said, we did" digest.

It only wakes ``DigestService.run_due``, which decides from the tables and the injected clock
whether the latest occurrence has its digest. (Sealed notices for anonymous authors are sent
by a loop beside the outbox: see ``SealedNotices.run_forever``.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.suggestions.digest import DigestService
from scheduler import JobFactory

log = logging.getLogger(__name__)


def _guarded(
    scheduler: AsyncIOScheduler, name: str, work: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[None]]:
    """Run ``work``; a failure is logged, and one caused by shutting down (the database
    closing under a run in flight) is only noted: the next start does the work."""

    async def job() -> None:
        try:
            await work()
        except Exception:
            if not scheduler.running:
                log.info("%s: interrupted by shutdown; resumes at the next start", name)
            else:
                log.exception("%s failed; retried on the next run", name)

    return job


def suggestion_jobs(digests: DigestService, sweep_s: float) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            _guarded(scheduler, "suggestions digest", digests.run_due),
            "interval",
            seconds=sweep_s,
            id="suggestions:digest",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )

    return factory
