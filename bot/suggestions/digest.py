""" "You said, we did": a digest to everyone of the suggestions whose status changed.

Scheduled like a campaign: the cadence comes from config (``suggestions.digest_cron`` in the
organisation's time zone, every ``digest_every_weeks`` weeks), APScheduler only wakes us up,
and :meth:`DigestService.run_due` works out from the tables whether the latest occurrence has
its digest yet. One :class:`~bot.db.models.SuggestionDigest` row per occurrence (unique) and
one outbox row per person (unique key), so running it twice sends nothing twice.

A digest lists each suggestion whose status changed in (previous digest, this one], once,
with its status and latest response as of the occurrence; the suggestion's own text only when
HR has published it (otherwise its category). An occurrence with no change sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import ChannelIdentity, Person
from bot.outbox import enqueue
from bot.pulse.content import Cadence
from bot.replies import Reply
from bot.service import Service
from bot.suggestions.content import excerpt, reference
from bot.suggestions.tables import Suggestion, SuggestionDigest, SuggestionEvent, SuggestionStatus

log = logging.getLogger(__name__)

#: Weeks are counted from this Monday when the digest runs every N > 1 weeks.
ANCHOR = "2024-01-01"


@dataclass
class DigestStats:
    digests: int = 0
    items: int = 0
    queued: int = 0


def digest_key(digest_id: int, person_id: int) -> str:
    return f"suggestions:digest:{digest_id}:{person_id}"


class DigestService(Service):
    def cadence(self) -> Cadence:
        cfg = self.settings.suggestions
        return Cadence(
            cron=cfg.digest_cron,
            timezone=self.settings.organisation.default_timezone,
            every_weeks=cfg.digest_every_weeks,
            start=ANCHOR if cfg.digest_every_weeks > 1 else None,
        )

    def period(self) -> timedelta:
        return timedelta(weeks=self.settings.suggestions.digest_every_weeks)

    async def run_due(self) -> DigestStats:
        """Send the digest of the latest occurrence if it is not sent yet."""
        stats = DigestStats()
        if not self.settings.suggestions.digest_enabled:
            return stats
        now = self.clock.now()
        due = self.cadence().latest(now, self.period())
        if due is None:
            return stats
        async with self.session() as session:
            await self.send_in(session, due, stats)
        return stats

    async def send_in(
        self, session: AsyncSession, due: datetime, stats: DigestStats | None = None
    ) -> SuggestionDigest | None:
        """The digest for occurrence ``due`` (None if it exists already)."""
        stats = stats or DigestStats()
        exists = await session.scalar(
            select(SuggestionDigest.id).where(SuggestionDigest.due_at == due)
        )
        if exists is not None:
            return None
        previous = await session.scalar(
            select(func.max(SuggestionDigest.due_at)).where(SuggestionDigest.due_at < due)
        )
        since = previous or due - self.period()
        items = await self.items(session, since, due)
        now = self.clock.now()
        digest = SuggestionDigest(due_at=due, since=since, items=len(items), created_at=now)
        session.add(digest)
        await session.flush()
        stats.digests += 1
        stats.items += len(items)
        if not items:
            return digest
        people = await session.scalars(
            select(Person.id)
            .where(
                (Person.leave_date.is_(None)) | (Person.leave_date > now.date()),
                Person.id.in_(select(ChannelIdentity.person_id)),
            )
            .order_by(Person.id)
        )
        reply = Reply("suggestions/digest", {"items": items, "since": since.isoformat()})
        for person_id in people:
            added = await enqueue(
                session,
                key=digest_key(digest.id, person_id),
                person_id=person_id,
                purpose="suggestion-digest",
                reply=reply,
                now=now,
            )
            digest.recipients += int(added)
            stats.queued += int(added)
        log.info("suggestions digest %s: %d changes for %d people", due, len(items), stats.queued)
        return digest

    async def items(
        self, session: AsyncSession, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """Suggestions whose status changed in (since, until], each once, with
        its status and latest response (reply or reason) as of ``until``."""
        changed = list(
            await session.scalars(
                select(Suggestion)
                .where(
                    Suggestion.id.in_(
                        select(SuggestionEvent.suggestion_id).where(
                            SuggestionEvent.kind == "status",
                            SuggestionEvent.at > since,
                            SuggestionEvent.at <= until,
                        )
                    ),
                    Suggestion.status != SuggestionStatus.merged,
                )
                .order_by(Suggestion.id)
            )
        )
        out = []
        for suggestion in changed:
            response = await session.scalar(
                select(SuggestionEvent.text)
                .where(
                    SuggestionEvent.suggestion_id == suggestion.id,
                    SuggestionEvent.kind.in_(("status", "reply")),
                    SuggestionEvent.text.is_not(None),
                    SuggestionEvent.at <= until,
                )
                .order_by(SuggestionEvent.id.desc())
                .limit(1)
            )
            status = await session.scalar(
                select(SuggestionEvent.status)
                .where(
                    SuggestionEvent.suggestion_id == suggestion.id,
                    SuggestionEvent.kind == "status",
                    SuggestionEvent.at <= until,
                )
                .order_by(SuggestionEvent.id.desc())
                .limit(1)
            )
            category = self.settings.suggestions.category(suggestion.category)
            out.append(
                {
                    "reference": reference(suggestion.id),
                    # Everyone reads the digest: the text only of what HR chose to publish.
                    "excerpt": excerpt(suggestion.text) if suggestion.published_at else None,
                    "category": (
                        {"en": category.en, "it": category.it}
                        if category
                        else {"en": suggestion.category}
                    ),
                    "status": (status or suggestion.status).value,
                    "response": response,
                }
            )
        return out
