"""Internal loyalty measurement: indicators, eNPS, the satisfaction x loyalty matrix, under the
anonymity rules; summaries in chat, digests after each round, reports."""

from __future__ import annotations

from bot.feature import Feature, Wired, Wiring
from bot.loyalty import tables
from bot.loyalty.cli import report_app
from bot.loyalty.digest import DigestService
from bot.loyalty.indicators_cli import indicators_app
from bot.loyalty.privacy import parts
from handlers.summaries import register
from scheduler.loyalty import digest_jobs


def wire(wiring: Wiring) -> Wired:
    """The digest sweep: summaries sent unasked after each round closes."""
    digests = DigestService(wiring.settings, wiring.db, wiring.clock)
    return Wired(
        services={"loyalty_digests": digests},
        jobs=[digest_jobs(digests, wiring.settings.scheduler.sweep_s)],
    )


FEATURE = Feature(
    "loyalty",
    tables=tables,
    chat=register,
    commands=[("report", report_app), ("indicators", indicators_app)],
    wire=wire,
    personal_data=parts,
)
