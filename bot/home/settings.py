"""The ``home`` section of config.yaml: how the Home tab is kept up to date."""

from __future__ import annotations

from pydantic import Field

from bot.settings_section import Section


class HomeSettings(Section):
    """How often a person's Home tab is published and how much it shows."""

    refresh_s: float = Field(
        default=10.0,
        ge=0,
        description="A person's Slack Home tab is published at most once every this many "
        "seconds; a change in between is published when the time is up, so the last one is "
        "not lost.",
    )
    items: int = Field(
        default=5,
        ge=1,
        le=10,
        description="Entries per section of the Home tab; the others are counted, with the "
        "command that lists them.",
    )
    watch_hours: float = Field(
        default=12.0,
        gt=0,
        description="After opening their Home tab, a person's tab follows changes for this "
        "many hours; opening it again publishes it afresh anyway.",
    )
