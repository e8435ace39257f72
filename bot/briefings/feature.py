"""Briefings: product and promotion news delivered to employees before the external launch,
with acknowledgement, a knowledge check and "ask the bot"."""

from __future__ import annotations

from bot.briefings import tables
from bot.briefings.cli import campaign_app
from bot.briefings.privacy import parts
from bot.briefings.service import BriefingService
from bot.feature import Feature, Wired, Wiring
from handlers.briefings import register
from scheduler.briefings import briefing_jobs


def wire(wiring: Wiring) -> Wired:
    """The briefing service and its campaign jobs."""
    service = BriefingService(wiring.settings, wiring.db, wiring.clock)
    return Wired(
        services={"briefings": service},
        jobs=[briefing_jobs(service, wiring.settings.scheduler.sweep_s)],
    )


FEATURE = Feature(
    "briefings",
    tables=tables,
    chat=register,
    commands=[("campaign", campaign_app)],
    wire=wire,
    personal_data=parts,
)
