"""Wake-up jobs for briefing campaigns, derived from the campaigns table.

Each scheduled campaign gets date jobs (``campaign:{id}:{moment}``) at its briefing time, each
reminder, 24 h before launch and at expiry; a periodic sweep catches everything else (people
who join the audience later, campaigns scheduled from another process, time lost to downtime).
Every job just calls ``BriefingService.run_due``, which works out from the tables what is due.
"""

from __future__ import annotations

from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from bot.briefings.content import Briefing
from bot.briefings.service import BriefingService, readiness_at
from bot.db.models import Campaign, CampaignKind, CampaignStatus
from scheduler import JobFactory, add_sweep


def campaign_moments(briefing: Briefing) -> dict[str, datetime]:
    """The moments at which a briefing campaign has work to do."""
    moments = {
        "brief": briefing.brief_at,
        "readiness": readiness_at(briefing),
        "launch": briefing.launch_at,
        "expire": briefing.expires_at,
    }
    for index, when in briefing.reminder_times():
        moments[f"reminder-{index}"] = when
    return moments


def briefing_jobs(service: BriefingService, sweep_s: float) -> JobFactory:
    async def factory(scheduler: AsyncIOScheduler) -> None:
        now = service.clock.now()
        # APScheduler runs on real time: it only wakes us up. What is due is decided by
        # run_due with the injected clock, so the first sweep is "right now" in real time.
        add_sweep(scheduler, "briefings:sweep", service.run_due, sweep_s)
        assert service.db is not None
        async with service.db.session() as session:
            campaigns = list(
                await session.scalars(
                    select(Campaign).where(
                        Campaign.kind == CampaignKind.briefing,
                        Campaign.status == CampaignStatus.scheduled,
                    )
                )
            )
        for campaign in campaigns:
            briefing = Briefing.from_json(campaign.snapshot)
            for name, when in campaign_moments(briefing).items():
                if when > now:
                    scheduler.add_job(
                        service.run_due,
                        "date",
                        run_date=when,
                        id=f"campaign:{campaign.id}:{name}",
                        replace_existing=True,
                    )

    return factory
