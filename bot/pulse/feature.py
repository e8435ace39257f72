"""Pulse surveys: anonymous rounds answered with one tap in chat."""

from __future__ import annotations

from bot.feature import Feature, swept_service
from bot.pulse import tables
from bot.pulse.cli import survey_app
from bot.pulse.privacy import parts
from bot.pulse.service import SurveyService
from handlers.pulse import register
from scheduler.pulse import survey_jobs

FEATURE = Feature(
    "pulse",
    tables=tables,
    chat=register,
    commands=[("survey", survey_app)],
    wire=swept_service("surveys", SurveyService, survey_jobs),
    personal_data=parts,
)
