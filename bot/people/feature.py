"""People and onboarding: the directory, invites and identities, language and help."""

from __future__ import annotations

from bot.feature import Feature
from bot.handling import Registry
from bot.people.cli import people_app, slack_app
from bot.people.privacy import parts
from handlers import admin, dialogues, onboarding


def register(registry: Registry) -> None:
    """Start, help, language, cancel and whoami."""
    onboarding.register(registry)
    dialogues.register(registry)
    admin.register(registry)


FEATURE = Feature(
    "people",
    chat=register,
    commands=[("people", people_app), ("slack", slack_app)],
    personal_data=parts,
)
