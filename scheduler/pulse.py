"""The pulse sweep: rounds open, remind and close when ``SurveyService.run_due`` says so."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.pulse.service import SurveyService
from scheduler import JobFactory, add_sweep


def survey_jobs(service: SurveyService, sweep_s: float) -> JobFactory:
    """Pulse rounds open, remind and close on the sweep: every decision is made by
    ``SurveyService.run_due`` from the tables and the injected clock."""

    async def factory(scheduler: AsyncIOScheduler) -> None:
        add_sweep(scheduler, "surveys:sweep", service.run_due, sweep_s)

    return factory
