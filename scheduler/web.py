"""The web console's sweep: sessions of people who left, were forgotten or changed role are
revoked (each request checks the same, so this only records it for sessions left idle)."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.web.access import LapsedSessions
from scheduler import JobFactory, add_sweep


def web_jobs(lapsed: LapsedSessions, sweep_s: float) -> JobFactory:
    """The lapsed-session sweep, every ``sweep_s`` seconds."""

    async def factory(scheduler: AsyncIOScheduler) -> None:
        add_sweep(scheduler, "web:lapsed-sessions", lapsed.run_due, sweep_s)

    return factory
