"""Retention: personal data older than its configured lifetime is deleted by a daily job.

Each rule names a ``privacy.*_retention_days`` setting and a purge function: the audit log's
entries are deleted; the texts of suggestions closed long ago are replaced by a marker
(bot/suggestions/privacy.py), keeping their counts and statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database

log = logging.getLogger(__name__)

#: ``purge(session, cutoff, days)``: what is older than ``cutoff`` (``days`` before now) goes.
Purge = Callable[[AsyncSession, datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class RetentionRule:
    """Delete (or blank) what ``purge`` covers from before ``now - days(settings)``; None
    keeps all."""

    name: str
    days: Callable[[Settings], int | None]
    purge: Purge


async def apply_retention(
    settings: Settings, db: Database, clock: Clock, rules: Sequence[RetentionRule]
) -> dict[str, int]:
    """Apply every rule once; returns rows deleted or blanked per rule (rules without a
    limit skipped)."""
    deleted: dict[str, int] = {}
    now = clock.now()
    for rule in rules:
        days = rule.days(settings)
        if days is None:
            continue
        # One transaction per rule: a failing rule does not undo the others.
        async with db.session() as session:
            deleted[rule.name] = await rule.purge(session, now - timedelta(days=days), days)
    if any(deleted.values()):
        log.info("retention: deleted %s", ", ".join(f"{k}={v}" for k, v in deleted.items()))
    return deleted


def retention_jobs(
    settings: Settings, db: Database, clock: Clock, rules: Sequence[RetentionRule]
) -> Callable[[AsyncIOScheduler], Awaitable[None]]:
    """Scheduler job factory: retention once at start-up, then every 24 hours."""

    async def run() -> None:
        try:
            await apply_retention(settings, db, clock, rules)
        except Exception:
            log.exception("retention job failed; it runs again in 24 hours")

    async def factory(scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            run,
            "interval",
            hours=24,
            id="privacy:retention",
            replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=60),
        )

    return factory
