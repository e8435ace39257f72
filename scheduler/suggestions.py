"""Wake-up jobs for suggestions: the "You said, we did" digest and sealed notices.

The digest job only wakes ``DigestService.run_due``, which decides from the tables and the
injected clock whether the latest occurrence has its digest. Sealed notices (messages for
anonymous authors) are sent on the outbox's polling interval; as scheduler jobs they run in
the one instance that holds the scheduler lock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.suggestions.digest import DigestService
from bot.suggestions.notices import SealedNotices
from scheduler import JobFactory


def suggestion_jobs(
    digests: DigestService, notices: SealedNotices, sweep_s: float, poll_s: float
) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            digests.run_due,
            "interval",
            seconds=sweep_s,
            id="suggestions:digest",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            notices.run_once,
            "interval",
            seconds=poll_s,
            id="suggestions:sealed-notices",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )

    return factory
