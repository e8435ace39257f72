"""Internal loyalty measurement: indicators, eNPS, the satisfaction x loyalty matrix, under the
anonymity rules; summaries in chat, digests after each round, reports."""

from __future__ import annotations

from bot.feature import Feature, swept_service
from bot.loyalty import tables
from bot.loyalty.cli import report_app
from bot.loyalty.digest import DigestService
from bot.loyalty.indicators_cli import indicators_app
from bot.loyalty.privacy import parts
from handlers.summaries import register
from scheduler.loyalty import digest_jobs

FEATURE = Feature(
    "loyalty",
    tables=tables,
    chat=register,
    commands=[("report", report_app), ("indicators", indicators_app)],
    wire=swept_service("loyalty_digests", DigestService, digest_jobs),
    personal_data=parts,
)
