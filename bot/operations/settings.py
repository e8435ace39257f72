"""The ``operations`` (health and metrics port, logs) and ``privacy`` (retention) sections of
config.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.settings_section import Section


class OperationsSettings(Section):
    """The optional operations HTTP port (`/healthz`, `/metrics`; see [Operations and personal
    data](administration.md#monitoring)) and the log format."""

    # Off by default: nothing listens unless asked.
    http_enabled: bool = Field(default=False, description="Serve `/healthz` and `/metrics`.")
    http_listen: str = Field(default="127.0.0.1", description="Address of the operations port.")
    http_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of `/healthz` and `/metrics`; 0 picks a free one, logged at start-up.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="One readable line per record, or one JSON object per line "
        "(`fidelio run --log-format` overrides it).",
    )


class PrivacySettings(Section):
    """How long personal data is kept; applied by a job that runs one minute after start-up and
    then every 24 hours."""

    audit_retention_days: int | None = Field(
        default=730,
        ge=1,
        description="Audit entries older than this many days are deleted; empty keeps them "
        "forever.",
    )
    suggestion_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Texts of suggestions closed (done or declined) more than this many days "
        "ago are replaced by a marker (counts and statuses stay); empty keeps them forever.",
    )
