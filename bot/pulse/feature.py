"""Pulse surveys: anonymous rounds answered with one tap in chat."""

from __future__ import annotations

from bot.feature import Feature, Wired, Wiring
from bot.pulse import tables
from bot.pulse.cli import survey_app
from bot.pulse.privacy import parts
from bot.pulse.service import SurveyService
from handlers.pulse import register
from scheduler.pulse import survey_jobs


def wire(wiring: Wiring) -> Wired:
    """The survey service and the sweep that opens, reminds and closes rounds."""
    service = SurveyService(wiring.settings, wiring.db, wiring.clock)
    return Wired(
        services={"surveys": service},
        jobs=[survey_jobs(service, wiring.settings.scheduler.sweep_s)],
    )


FEATURE = Feature(
    "pulse",
    tables=tables,
    chat=register,
    commands=[("survey", survey_app)],
    wire=wire,
    personal_data=parts,
)
