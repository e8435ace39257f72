"""Operations as a feature: ``fidelio config`` and ``fidelio db``; deliveries and the audit
log as personal data; the audit log's retention."""

from __future__ import annotations

from bot.feature import Feature
from bot.operations.cli import config_app, db_app
from bot.operations.privacy import parts, retention_rules

FEATURE = Feature(
    "operations",
    commands=[("config", config_app), ("db", db_app)],
    personal_data=parts,
    retention=retention_rules,
)
