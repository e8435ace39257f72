"""The wake-up job for the "You said, we did" digest.

It only wakes ``DigestService.run_due``, which decides from the tables and the injected clock
whether the latest occurrence has its digest. (Sealed notices for anonymous authors are sent
by a loop beside the outbox: see ``SealedNotices.run_forever``.) A run in flight when Fidelio
stops is allowed to finish (see ``Scheduler.stop``).
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.suggestions.digest import DigestService
from scheduler import JobFactory, add_sweep


def suggestion_jobs(digests: DigestService, sweep_s: float) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        add_sweep(scheduler, "suggestions:digest", digests.run_due, sweep_s)

    return factory
