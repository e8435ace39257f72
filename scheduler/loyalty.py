"""The loyalty digest on the sweep: ``DigestService.run_due`` decides from the tables."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.loyalty.digest import DigestService
from scheduler import JobFactory, add_sweep


def digest_jobs(service: DigestService, sweep_s: float) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        add_sweep(scheduler, "loyalty:digest-sweep", service.run_due, sweep_s)

    return factory
