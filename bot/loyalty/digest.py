"""The digest: after each round closes, every manager whose team can be reported gets its
summary unasked, and HR gets the organisation's with a team heat map — through the outbox.

``run_due`` is idempotent: a ``loyalty_digests`` row is written in the same transaction as the
deliveries it queues, and each delivery has a unique outbox key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.models import AuditEntry, Person, Role, Team
from bot.db.session import Database
from bot.loyalty.access import resolve_scope
from bot.loyalty.present import heatmap_png, labels, round_day, summary_replies
from bot.loyalty.service import LoyaltyService, Summary, TeamTree, Window, closed_rounds
from bot.loyalty.tables import LoyaltyDigest
from bot.outbox import enqueue
from bot.pulse.tables import RoundStatus, SurveyRound
from bot.replies import Reply
from bot.service import Service

log = logging.getLogger(__name__)


@dataclass
class DigestStats:
    rounds: int = 0
    managers: int = 0
    hr: int = 0
    skipped: int = 0


class DigestService(Service):
    db: Database

    def __init__(self, settings: Settings, db: Database, clock: Clock):
        super().__init__(settings, db, clock)
        self.service = LoyaltyService(settings)

    async def run_due(self) -> DigestStats:
        """Queue the digest of every closed round that has none yet."""
        stats = DigestStats()
        if not self.settings.loyalty.digest:
            return stats
        async with self.db.session() as session:
            done = select(LoyaltyDigest.round_id)
            pending = list(
                await session.scalars(
                    select(SurveyRound.id)
                    .where(SurveyRound.status == RoundStatus.closed, SurveyRound.id.not_in(done))
                    .order_by(SurveyRound.closed_at, SurveyRound.id)
                )
            )
        for round_id in pending:
            try:
                async with self.db.session() as session:
                    await self.digest_in(session, round_id, stats)
            except Exception:
                log.exception("loyalty digest of round %s failed", round_id)
        return stats

    async def digest_in(self, session: AsyncSession, round_id: int, stats: DigestStats) -> None:
        now = self.clock.now()
        if await session.get(LoyaltyDigest, round_id) is not None:
            return
        record = LoyaltyDigest(round_id=round_id, queued_at=now, deliveries=0)
        session.add(record)
        await session.flush()  # a second process stops at the primary key
        rounds = await closed_rounds(session, Window(last=self.settings.loyalty.default_rounds))
        if not rounds or round_id not in {r.id for r in rounds}:
            return  # an older round closed late: newer digests already cover it
        tree = await TeamTree.load(session)
        today = now.date()
        managers = [
            p
            for p in await session.scalars(
                select(Person)
                .where(Person.id.in_(select(Team.manager_id)), Person.role == Role.manager)
                .order_by(Person.id)
            )
            if p.is_active(today)
        ]
        hr_people = [
            p
            for p in await session.scalars(
                select(Person).where(Person.role == Role.hr).order_by(Person.id)
            )
            if p.is_active(today)
        ]
        when = next(r.label for r in rounds if r.id == round_id)
        window = Window(last=self.settings.loyalty.default_rounds)
        templates = self.settings.content_dir / "templates"
        for person in managers:
            scope, may_see = await resolve_scope(session, person, "", tree)
            if scope.is_org:
                continue
            result = await self.service.summarise(
                session, f"person:{person.id}", scope, window, now, may_see=may_see, tree=tree
            )
            if not isinstance(result, Summary):
                stats.skipped += 1
                continue
            texts = labels(templates, person.locale)
            replies = summary_replies(result, person.locale, texts, digest=when)
            record.deliveries += await self._queue(session, round_id, person, replies)
            stats.managers += 1
        latest = rounds[-1]
        for person in hr_people:
            viewer = f"person:{person.id}"
            result = await self.service.summarise(
                session, viewer, tree.scope(None), window, now, tree=tree
            )
            if not isinstance(result, Summary):
                stats.skipped += 1
                continue
            texts = labels(templates, person.locale)
            replies = summary_replies(result, person.locale, texts, digest=when)
            heat = await self.service.heatmap(session, viewer, latest, now)
            if heat:
                replies.append(
                    Reply(
                        "summaries/heatmap",
                        {"round": round_day(latest.label, person.locale)},
                        image=heatmap_png(heat, texts, person.locale),
                        image_name="loyalty-heatmap.png",
                    )
                )
            record.deliveries += await self._queue(session, round_id, person, replies)
            stats.hr += 1
        session.add(
            _audit(now, "loyalty.digest", round_id, stats.managers + stats.hr, record.deliveries)
        )
        stats.rounds += 1

    async def _queue(
        self, session: AsyncSession, round_id: int, person: Person, replies: list[Reply]
    ) -> int:
        queued = 0
        for index, reply in enumerate(replies):
            queued += int(
                await enqueue(
                    session,
                    key=f"loyalty:{round_id}:digest:{person.id}:{index}",
                    person_id=person.id,
                    purpose="loyalty-digest",
                    reply=reply,
                    now=self.clock.now(),
                )
            )
        return queued


def _audit(now: datetime, action: str, round_id: int, people: int, deliveries: int) -> AuditEntry:
    return AuditEntry.by(
        "scheduler", now, action, round=round_id, people=people, deliveries=deliveries
    )
