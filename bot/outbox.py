"""Durable deliveries: enqueue, claim, render, send, retry, record.

Policy (also in README, "Delivery guarantees"):

* One row per (campaign, person, purpose) — the unique ``key`` — so enqueuing twice is a no-op.
* A row is claimed (``sending``, with a lease) before the send and marked ``sent`` with the
  platform's message id right after it. A confirmed send is never repeated.
* 429: wait the platform's ``retry_after`` / ``Retry-After`` and try again (not an attempt).
* 5xx / connection refused: exponential backoff, up to ``outbox.max_attempts``.
* 403 / blocked / account gone: ``failed`` at once (permanent).
* Timeout after the request left (outcome unknown), or a lease that expired because the
  process died mid-send: retried ``outbox.retry_unknown`` times (default once: at-least-once,
  so such a person may get a duplicate), then left as ``unknown`` and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.port import (
    Address,
    PermanentFailure,
    RateLimited,
    SendError,
    TransientFailure,
    UnknownOutcome,
)
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import ChannelIdentity, ChannelName, Delivery, DeliveryStatus, Person
from bot.db.session import Database
from bot.render import Renderer
from bot.replies import Reply, ReplyButton
from bot.sender import Sender, UnknownChannel

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
#: Preferred channel when a person has several accounts.
CHANNEL_PREFERENCE = (ChannelName.slack, ChannelName.telegram, ChannelName.console)


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    person_id: int,
    purpose: str,
    reply: Reply,
    now: datetime,
    not_before: datetime | None = None,
) -> bool:
    """Queue one message for one person; returns False if ``key`` was already queued."""
    values: dict[str, Any] = {
        "key": key,
        "person_id": person_id,
        "purpose": purpose,
        "template": reply.template,
        "context": reply.context,
        "buttons": [[b.label, b.action, b.value] for b in reply.buttons],
        "status": DeliveryStatus.pending,
        "attempts": 0,
        "unknown_retries": 0,
        "not_before": not_before or now,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Delivery).values(**values).on_conflict_do_nothing(index_elements=["key"])
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass
class RunStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    failed: int = 0
    unknown: int = 0


class OutboxDispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        sender: Sender,
        renderer: Renderer,
        clock: Clock,
        *,
        concurrency: int = 64,
    ):
        self.settings = settings
        self.db = db
        self.sender = sender
        self.renderer = renderer
        self.clock = clock
        self.concurrency = concurrency
        self.totals = RunStats()

    async def _claim(self, limit: int, stats: RunStats) -> list[int]:
        now = self.clock.now()
        async with self.db.session() as session:
            due = or_(
                and_(Delivery.status == DeliveryStatus.pending, Delivery.not_before <= now),
                # A lease that ran out means the process died mid-send: outcome unknown.
                and_(Delivery.status == DeliveryStatus.sending, Delivery.claimed_until < now),
            )
            query = (
                select(Delivery.id, Delivery.status)
                .where(due)
                .order_by(Delivery.not_before, Delivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = (await session.execute(query)).all()
            ids = [row.id for row in rows]
            expired = [row.id for row in rows if row.status == DeliveryStatus.sending]
            if expired:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(expired))
                    .values(unknown_retries=Delivery.unknown_retries + 1)
                )
                gave_up = await session.scalars(
                    select(Delivery.id).where(
                        Delivery.id.in_(expired),
                        Delivery.unknown_retries > self.settings.outbox.retry_unknown,
                    )
                )
                dead = list(gave_up)
                if dead:
                    await session.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(dead))
                        .values(status=DeliveryStatus.unknown, claimed_until=None,
                                last_error="lease expired during send (process stopped?)")
                    )
                    # Reported in this round's stats (run_once adds them to the totals), so
                    # callers see them and drain() does not stop on a round that only gave up
                    # expired leases while due rows are still queued behind them.
                    stats.unknown += len(dead)
                    ids = [i for i in ids if i not in set(dead)]
            if ids:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(status=DeliveryStatus.sending, claimed_until=now + LEASE)
                )
        return ids

    async def run_once(self, limit: int | None = None) -> RunStats:
        """Send every delivery that is due now (up to ``limit``); returns what happened."""
        stats = RunStats()
        ids = await self._claim(limit or self.settings.outbox.batch_size, stats)
        stats.claimed = len(ids)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(delivery_id: int) -> None:
            async with semaphore:
                await self._deliver(delivery_id, stats)

        await asyncio.gather(*(one(i) for i in ids))
        for field in ("sent", "retried", "rate_limited", "failed", "unknown"):
            setattr(self.totals, field, getattr(self.totals, field) + getattr(stats, field))
        return stats

    async def drain(self, max_rounds: int = 1000) -> RunStats:
        """Run until nothing is due (tests and one-shot CLI sends)."""
        total = RunStats()
        for _ in range(max_rounds):
            stats = await self.run_once()
            for field in ("claimed", "sent", "retried", "rate_limited", "failed", "unknown"):
                setattr(total, field, getattr(total, field) + getattr(stats, field))
            if stats.claimed == 0 and stats.unknown == 0:  # unknown here = expired leases given up
                break
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll for due deliveries until ``stop`` is set."""
        poll = self.settings.scheduler.outbox_poll_s
        while not stop.is_set():
            try:
                stats = await self.run_once()
            except Exception:
                log.exception("outbox round failed; retrying in %.1fs", poll)
                stats = RunStats()
            if stats.claimed == 0 and stats.unknown == 0:  # as in drain(): more may be due now
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll)
                except TimeoutError:
                    pass

    async def _target(self, session: AsyncSession, person_id: int) -> tuple[Person, Address] | None:
        person = await session.get(Person, person_id)
        if person is None:
            return None
        identities = {
            i.channel: i
            for i in await session.scalars(
                select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
            )
        }
        for channel in CHANNEL_PREFERENCE:
            identity = identities.get(channel)
            if identity is not None and identity.address and channel.value in self.sender.ports:
                return person, Address(channel.value, identity.address)
        return None

    async def _deliver(self, delivery_id: int, stats: RunStats) -> None:
        async with self.db.session() as session:
            delivery = await session.get(Delivery, delivery_id)
            assert delivery is not None
            target = await self._target(session, delivery.person_id)
            template, context = delivery.template, dict(delivery.context)
            buttons = tuple(ReplyButton(*b) for b in delivery.buttons)
        if target is None:
            await self._finish(delivery_id, DeliveryStatus.failed, error="no reachable chat account")
            stats.failed += 1
            return
        person, address = target
        message = self.renderer.render(
            Reply(template, context, buttons), person.locale, address.channel, person.timezone
        )
        try:
            ref = await self.sender.send(address, message)
        except RateLimited as exc:
            stats.rate_limited += 1
            await self._later(delivery_id, timedelta(seconds=exc.retry_after), str(exc), attempt=False)
            return
        except (TransientFailure, UnknownChannel) as exc:
            await self._retry_or_fail(delivery_id, str(exc), stats)
            return
        except PermanentFailure as exc:
            await self._finish(delivery_id, DeliveryStatus.failed, error=str(exc))
            stats.failed += 1
            return
        except UnknownOutcome as exc:
            await self._unknown(delivery_id, str(exc), stats)
            return
        except SendError as exc:  # any other platform answer: treat as transient
            await self._retry_or_fail(delivery_id, str(exc), stats)
            return
        await self._finish(
            delivery_id, DeliveryStatus.sent, message_id=ref.message_id, channel=address.channel
        )
        stats.sent += 1

    async def _finish(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        message_id: str | None = None,
        channel: str | None = None,
        attempts: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "claimed_until": None, "last_error": error}
        if attempts is not None:
            values["attempts"] = attempts
        if status == DeliveryStatus.sent:
            values.update(sent_at=self.clock.now(), platform_message_id=message_id, channel=channel)
        async with self.db.session() as session:
            await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    async def _later(self, delivery_id: int, delay: timedelta, error: str, *, attempt: bool) -> None:
        values: dict[str, Any] = {
            "status": DeliveryStatus.pending,
            "claimed_until": None,
            "not_before": self.clock.now() + delay,
            "last_error": error,
        }
        if attempt:
            values["attempts"] = Delivery.attempts + 1
        async with self.db.session() as session:
            await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    async def _retry_or_fail(self, delivery_id: int, error: str, stats: RunStats) -> None:
        async with self.db.session() as session:
            attempts = await session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id))
        attempts = (attempts or 0) + 1
        if attempts >= self.settings.outbox.max_attempts:
            # Record the final failed attempt too, so a row given up after max_attempts
            # failures says attempts == max_attempts (it used to stop one short).
            await self._finish(
                delivery_id, DeliveryStatus.failed, error=f"gave up: {error}", attempts=attempts
            )
            stats.failed += 1
            return
        backoff = min(
            self.settings.outbox.backoff_base_s * (2 ** (attempts - 1)),
            self.settings.outbox.backoff_max_s,
        )
        await self._later(delivery_id, timedelta(seconds=backoff), error, attempt=True)
        stats.retried += 1

    async def _unknown(self, delivery_id: int, error: str, stats: RunStats) -> None:
        async with self.db.session() as session:
            retries = await session.scalar(
                select(Delivery.unknown_retries).where(Delivery.id == delivery_id)
            )
            retries = (retries or 0) + 1
            await session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(unknown_retries=retries)
            )
        if retries > self.settings.outbox.retry_unknown:
            await self._finish(delivery_id, DeliveryStatus.unknown, error=error)
            stats.unknown += 1
        else:
            await self._later(delivery_id, timedelta(seconds=1), error, attempt=False)
            stats.retried += 1


async def queue_depth(db: Database, statuses: Sequence[DeliveryStatus] = (DeliveryStatus.pending,)) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status.in_(statuses))
            )
            or 0
        )
