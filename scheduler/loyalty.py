"""The loyalty digest on the sweep: ``DigestService.run_due`` decides from the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.loyalty.digest import DigestService
from scheduler import JobFactory


def digest_jobs(service: DigestService, sweep_s: float) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            service.run_due,
            "interval",
            seconds=sweep_s,
            id="loyalty:digest-sweep",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )

    return factory
