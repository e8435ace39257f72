"""Suggestions: the idea box, triage, replies to anonymous authors, the "You said, we did"
digest."""

from __future__ import annotations

from bot.feature import Feature, Wired, Wiring
from bot.suggestions import tables
from bot.suggestions.cli import suggestions_app
from bot.suggestions.digest import DigestService
from bot.suggestions.notices import SealedNotices
from bot.suggestions.privacy import parts, retention_rules
from bot.suggestions.scrubbing import SuggestionScrubber
from handlers.suggestions import register
from scheduler.suggestions import suggestion_jobs


def wire(wiring: Wiring) -> Wired:
    """The digest and scrub sweeps, and the loop that delivers sealed notices."""
    digests = DigestService(wiring.settings, wiring.db, wiring.clock)
    notices = SealedNotices(
        wiring.settings, wiring.db, wiring.sender, wiring.renderer, wiring.clock
    )
    scrubber = SuggestionScrubber(wiring.db)
    return Wired(
        services={"suggestion_digests": digests, "sealed_notices": notices},
        jobs=[suggestion_jobs(digests, wiring.settings.scheduler.sweep_s, scrubber)],
        loops=[notices.run_forever],
    )


FEATURE = Feature(
    "suggestions",
    tables=tables,
    chat=register,
    commands=[("suggestions", suggestions_app)],
    wire=wire,
    personal_data=parts,
    retention=retention_rules,
)
