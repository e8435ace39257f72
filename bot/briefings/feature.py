"""Briefings: product and promotion news delivered to employees before the external launch,
with acknowledgement, a knowledge check and "ask the bot"."""

from __future__ import annotations

from bot.briefings import tables
from bot.briefings.cli import campaign_app
from bot.briefings.privacy import parts
from bot.briefings.service import BriefingService
from bot.feature import Feature, swept_service
from handlers.briefings import register
from scheduler.briefings import briefing_jobs

FEATURE = Feature(
    "briefings",
    tables=tables,
    chat=register,
    commands=[("campaign", campaign_app)],
    wire=swept_service("briefings", BriefingService, briefing_jobs),
    personal_data=parts,
)
