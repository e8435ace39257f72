"""The wake-up jobs for suggestions: the "You said, we did" digest and the scrub owed after
anonymous suggestions.

They only wake ``DigestService.run_due`` and ``SuggestionScrubber.run_due``, which decide from
the tables (and the injected clock) what is due: the latest occurrence without its digest, a
scrub marker left by an anonymous suggestion or answer (a scrub that failed, or that a stopped
process never ran, is retried by the next sweep). (Sealed notices for anonymous authors are
sent by a loop beside the outbox: see ``SealedNotices.run_forever``.) A run in flight when
Fidelio stops is allowed to finish (see ``Scheduler.stop``).
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.suggestions.digest import DigestService
from bot.suggestions.scrubbing import SuggestionScrubber
from scheduler import JobFactory, add_sweep


def suggestion_jobs(
    digests: DigestService, sweep_s: float, scrubber: SuggestionScrubber | None = None
) -> JobFactory:
    """The digest sweep and, given a scrubber, the scrub sweep (same period)."""

    async def factory(scheduler: AsyncIOScheduler) -> None:
        add_sweep(scheduler, "suggestions:digest", digests.run_due, sweep_s)
        if scrubber is not None:
            add_sweep(scheduler, "suggestions:scrub", scrubber.run_due, sweep_s)

    return factory
