"""Opening the Home tab, in chat terms: the person is known, active and looking; the home
feature (bot/home) publishes their tab once this is committed. Its buttons are the chat's
own actions, so pressing one is handled by the feature it belongs to."""

from __future__ import annotations

from bot.changes import note_opened
from bot.handling import HandlerContext, Registry


def register(registry: Registry) -> None:
    registry.views["home"] = opened


async def opened(ctx: HandlerContext) -> None:
    """Publish the person's tab (bot.home.refresh) once this event is committed."""
    note_opened(ctx.session, ctx.person.id)
