"""The ``operations`` (health and metrics port, logs) and ``privacy`` (retention) sections of
config.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.settings_section import Section


class OperationsSettings(Section):
    """The optional operations HTTP port (``/healthz``, ``/metrics``) and the log format."""

    #: Off by default: nothing listens unless asked.
    http_enabled: bool = False
    http_listen: str = "127.0.0.1"
    #: 0 picks a free port (tests); the bound port is logged.
    http_port: int = Field(default=9464, ge=0, le=65535)
    #: ``text`` (one readable line per record) or ``json`` (one JSON object per line).
    log_format: Literal["text", "json"] = "text"


class PrivacySettings(Section):
    """How long personal data is kept; applied by a daily scheduled job."""

    #: Audit entries older than this many days are deleted; empty keeps them forever.
    audit_retention_days: int | None = Field(default=730, ge=1)
    #: Texts of suggestions closed (done or declined) more than this many days ago are
    #: replaced by a marker (counts and statuses stay); empty keeps them forever.
    suggestion_retention_days: int | None = Field(default=None, ge=1)
