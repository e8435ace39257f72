"""Chat features, one module each. No module here imports a platform library."""

from __future__ import annotations

from bot.handling import Registry


def build_registry() -> Registry:
    """Every feature's commands and buttons, registered explicitly (no import side effects)."""
    from handlers import admin, briefings, dialogues, onboarding, pulse

    registry = Registry()
    onboarding.register(registry)
    dialogues.register(registry)
    briefings.register(registry)
    pulse.register(registry)
    admin.register(registry)
    # --- suggestions ---
    from handlers import suggestions

    suggestions.register(registry)
    # --- loyalty measurement ---
    from handlers import summaries

    summaries.register(registry)
    return registry
