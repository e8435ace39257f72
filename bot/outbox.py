"""Durable deliveries: enqueue, claim, render, send, retry, record.

Policy (also in README, "Delivery guarantees"):

* One row per (campaign, person, purpose) — the unique ``key`` — so enqueuing twice is a no-op.
* A row is claimed (``sending``, with a lease) before the send and marked ``sent`` with the
  platform's message id right after it. A confirmed send is never repeated. (Outcomes are
  written in small batches: within ``JOURNAL_LINGER`` of the answer, or together with the
  next claim. A process that stops before writing them leaves those rows ``sending``, which
  the lease rule below covers.)
* 429: wait the platform's ``retry_after`` / ``Retry-After`` and try again (not an attempt).
* 5xx / connection refused: exponential backoff, up to ``outbox.max_attempts``.
* 403 / blocked / account gone: ``failed`` at once (permanent).
* Timeout after the request left (outcome unknown), or a lease that expired because the
  process died mid-send: retried ``outbox.retry_unknown`` times (default once: at-least-once,
  so such a person may get a duplicate), then left as ``unknown`` and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
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
from bot.db.models import (
    ChannelIdentity,
    ChannelName,
    Delivery,
    DeliveryImage,
    DeliveryStatus,
    Person,
)
from bot.db.session import Database
from bot.operations.observability import log_context
from bot.render import Renderer
from bot.replies import Reply, ReplyButton
from bot.sender import Sender, UnknownChannel
from bot.service import SendingService

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
#: Longest an outcome waits for others to share its transaction (see _Journal).
JOURNAL_LINGER = 0.05
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
    if reply.image is not None:
        # The image is stored beside the row (outbox_images), in the same transaction, so a
        # queued chart survives a restart like its text; it is sent as a photo / file upload
        # with the rendered text as its caption (buttons are not sent with images).
        delivery_id = (await session.execute(stmt.returning(Delivery.id))).scalar()
        if delivery_id is None:
            return False
        session.add(DeliveryImage(delivery_id=delivery_id, name=reply.image_name, png=reply.image))
        await session.flush()
        return True
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


@dataclass(frozen=True)
class _Job:
    """A claimed delivery with everything its send needs, loaded in the claim's transaction."""

    id: int
    reply: Reply
    attempts: int
    unknown_retries: int
    locale: str | None
    timezone: str | None
    #: None when the person has no account on a running channel.
    address: Address | None


class _Journal:
    """Records one round's send outcomes in the outbox table, several per transaction.

    The first outcome recorded while nothing is being written starts a writer, which waits
    up to :data:`JOURNAL_LINGER` so that outcomes of sends finishing meanwhile share its
    transaction, then writes everything queued, and again while more has arrived (group
    commit). A broadcast then costs a few transactions per second instead of one per
    delivery. When the round ends, :meth:`close` hands back what is not written yet: the
    dispatcher writes it in the same transaction as its next claim.
    """

    def __init__(self, db: Database):
        self._db = db
        self._queued: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def record(self, delivery_id: int, values: dict[str, Any]) -> None:
        """Queue ``values`` (column -> new value) for row ``delivery_id``; written shortly."""
        self._queued.append({"id": delivery_id, **values})
        if not self._closing.is_set() and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_queued(), name="outbox-journal")

    async def close(self) -> list[dict[str, Any]]:
        """Let a write in progress finish; return the outcomes not written yet."""
        self._closing.set()
        if self._writer is not None:
            await self._writer
        unwritten, self._queued = self._queued, []
        return unwritten

    def abandon(self) -> None:
        """Drop what is not written yet, as a stopped process would (the round was cancelled)."""
        self._queued.clear()
        if self._writer is not None:
            self._writer.cancel()

    async def _write_queued(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), JOURNAL_LINGER)
        while self._queued and not self._closing.is_set():
            batch, self._queued = self._queued, []
            try:
                await _write_outcomes(self._db, batch)
            except Exception:
                # Kept for the next write, or for the dispatcher's next transaction.
                log.warning("recording %d outbox outcomes failed", len(batch), exc_info=True)
                self._queued[:0] = batch
                return


async def _write_outcomes(db: Database, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record ``outcomes`` in a transaction of their own (none if there are none)."""
    if not outcomes:
        return
    async with db.session() as session:
        await _update_rows(session, outcomes)


async def _update_rows(session: AsyncSession, outcomes: Sequence[dict[str, Any]]) -> None:
    """An executemany UPDATE per distinct set of changed columns (``id`` picks the row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        groups.setdefault(tuple(sorted(k for k in outcome if k != "id")), []).append(outcome)
    if not groups:
        return
    table = cast(Table, Delivery.__table__)
    connection = await session.connection()
    for columns, rows in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({table.c[c]: bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
        )
        await connection.execute(
            statement,
            [{"row_id": row["id"], **{f"new_{c}": row[c] for c in columns}} for row in rows],
        )


class OutboxDispatcher(SendingService):
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
        super().__init__(settings, db, sender, renderer, clock)
        self.concurrency = concurrency
        self.totals = RunStats()
        #: Outcomes of the last round not written yet: recorded by the next claim's transaction.
        self._unwritten: list[dict[str, Any]] = []

    async def release_orphaned_leases(self) -> int:
        """At start-up on SQLite, end the leases a stopped process left behind at once.

        Only one Fidelio process uses a SQLite file, so a row still ``sending`` belongs to a
        process that died mid-send: waiting out its lease would only delay the broadcast.
        The rows then follow the expired-lease rule (an unknown outcome, retried
        ``outbox.retry_unknown`` times). Never used on PostgreSQL, where another instance
        may hold live leases.
        """
        now = self.clock.now()
        async with self.db.session() as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.sending, Delivery.claimed_until >= now)
                .values(claimed_until=now - timedelta(seconds=1))
            )
        released = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if released:
            log.warning(
                "outbox: %d deliveries were being sent when Fidelio last stopped; "
                "their outcome is unknown (see README, Delivery guarantees)",
                released,
            )
        return released

    async def _claim(self, limit: int, stats: RunStats) -> list[_Job]:
        """Record the previous round's last outcomes, then lease the next due rows.

        One transaction does both, so in the middle of a broadcast the table never shows the
        previous batch finished and the next one not yet claimed.
        """
        now = self.clock.now()
        unwritten, self._unwritten = self._unwritten, []
        try:
            async with self.db.session() as session:
                await _update_rows(session, unwritten)
                return await self._lease(session, now, limit, stats)
        except BaseException:
            self._unwritten[:0] = unwritten  # not recorded: kept for the next attempt
            raise

    async def _lease(
        self, session: AsyncSession, now: datetime, limit: int, stats: RunStats
    ) -> list[_Job]:
        """Lease up to ``limit`` due rows; expired leases count as unknown outcomes."""
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
                    .values(
                        status=DeliveryStatus.unknown,
                        claimed_until=None,
                        last_error="lease expired during send (process stopped?)",
                    )
                )
                # Reported in this round's stats (the round adds them to the totals), so
                # callers see them and drain() does not stop on a round that only gave up
                # expired leases while due rows are still queued behind them.
                stats.unknown += len(dead)
                ids = [i for i in ids if i not in set(dead)]
        if not ids:
            return []
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(status=DeliveryStatus.sending, claimed_until=now + LEASE)
        )
        return await self._load(session, ids)

    async def _load(self, session: AsyncSession, ids: list[int]) -> list[_Job]:
        """The claimed rows with their people's locale, time zone and chat addresses.

        Two queries for the whole batch (deliveries joined with people, then identities),
        instead of several per delivery; jobs keep the claim's order.
        """
        rows = {
            row.id: row
            for row in await session.execute(
                select(
                    Delivery.id,
                    Delivery.person_id,
                    Delivery.template,
                    Delivery.context,
                    Delivery.buttons,
                    Delivery.attempts,
                    Delivery.unknown_retries,
                    Person.id.label("found"),
                    Person.locale,
                    Person.timezone,
                    DeliveryImage.png,
                    DeliveryImage.name.label("image_name"),
                )
                .outerjoin(Person, Person.id == Delivery.person_id)
                .outerjoin(DeliveryImage, DeliveryImage.delivery_id == Delivery.id)
                .where(Delivery.id.in_(ids))
            )
        }
        addresses: dict[int, dict[ChannelName, str]] = {}
        identities = await session.execute(
            select(
                ChannelIdentity.person_id, ChannelIdentity.channel, ChannelIdentity.address
            ).where(ChannelIdentity.person_id.in_({row.person_id for row in rows.values()}))
        )
        for identity in identities:
            if identity.address:
                addresses.setdefault(identity.person_id, {})[identity.channel] = identity.address
        jobs: list[_Job] = []
        for delivery_id in ids:
            row = rows.get(delivery_id)
            if row is None:  # deleted since it was selected (its person was removed)
                continue
            reply = Reply(
                row.template,
                dict(row.context),
                tuple(ReplyButton(*b) for b in row.buttons),
                image=row.png,
                image_name=row.image_name or "chart.png",
            )
            address = (
                self._address(addresses.get(row.person_id, {})) if row.found is not None else None
            )
            jobs.append(
                _Job(
                    row.id,
                    reply,
                    row.attempts,
                    row.unknown_retries,
                    row.locale,
                    row.timezone,
                    address,
                )
            )
        return jobs

    def _address(self, identities: dict[ChannelName, str]) -> Address | None:
        """Where to reach a person: the preferred channel that is running and has an address."""
        for channel in CHANNEL_PREFERENCE:
            address = identities.get(channel)
            if address is not None and channel.value in self.sender.ports:
                return Address(channel.value, address)
        return None

    async def run_once(self, limit: int | None = None) -> RunStats:
        """Send every delivery that is due now (up to ``limit``); returns what happened.

        Every outcome is recorded when it returns. If one send fails unexpectedly, the others
        still finish and are recorded, then that error is raised. If the round is cancelled,
        outcomes not yet written are dropped, as when the process stops: those rows stay
        ``sending`` until their lease runs out.
        """
        stats = await self._round(limit or self.settings.outbox.batch_size)
        await self._write_unwritten()
        return stats

    async def drain(self, max_rounds: int = 1000) -> RunStats:
        """Run until nothing is due (tests and one-shot CLI sends)."""
        total = RunStats()
        for _ in range(max_rounds):
            stats = await self._round(self.settings.outbox.batch_size)
            for field in ("claimed", "sent", "retried", "rate_limited", "failed", "unknown"):
                setattr(total, field, getattr(total, field) + getattr(stats, field))
            if stats.claimed == 0 and stats.unknown == 0:  # unknown here = expired leases given up
                break
        await self._write_unwritten()
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll for due deliveries until ``stop`` is set."""
        poll = self.settings.scheduler.outbox_poll_s
        while not stop.is_set():
            try:
                stats = await self._round(self.settings.outbox.batch_size)
            except Exception:
                log.exception("outbox round failed; retrying in %.1fs", poll)
                stats = RunStats()
            if stats.claimed == 0 and stats.unknown == 0:  # as in drain(): more may be due now
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll)
                except TimeoutError:
                    pass
        await self._write_unwritten()

    async def _round(self, limit: int) -> RunStats:
        """Claim up to ``limit`` rows and send them; the last outcomes may stay unwritten.

        Those are left in ``_unwritten`` for the next claim's transaction (or
        :meth:`_write_unwritten`), unless a send failed unexpectedly: then they are written at
        once and that error is raised.
        """
        stats = RunStats()
        jobs = await self._claim(limit, stats)
        stats.claimed = len(jobs)
        semaphore = asyncio.Semaphore(self.concurrency)
        journal = _Journal(self.db)

        async def one(job: _Job) -> None:
            async with semaphore:
                # Every record logged while delivering says which delivery it is about.
                with log_context(delivery_id=job.id):
                    await self._deliver(job, journal, stats)

        try:
            results = await asyncio.gather(*(one(job) for job in jobs), return_exceptions=True)
            unwritten = await journal.close()
        except asyncio.CancelledError:
            journal.abandon()
            raise
        for field in ("sent", "retried", "rate_limited", "failed", "unknown"):
            setattr(self.totals, field, getattr(self.totals, field) + getattr(stats, field))
        self._unwritten.extend(unwritten)
        for result in results:
            if isinstance(result, BaseException):
                await self._write_unwritten()  # record what is known before reporting it
                raise result
        return stats

    async def _write_unwritten(self) -> None:
        """Record the outcomes the last round left for the next claim, now."""
        unwritten, self._unwritten = self._unwritten, []
        try:
            await _write_outcomes(self.db, unwritten)
        except BaseException:
            self._unwritten[:0] = unwritten
            raise

    async def _deliver(self, job: _Job, journal: _Journal, stats: RunStats) -> None:
        if job.address is None:
            journal.record(
                job.id, self._finish(DeliveryStatus.failed, error="no reachable chat account")
            )
            stats.failed += 1
            return
        try:
            message = self.renderer.render(job.reply, job.locale, job.address.channel, job.timezone)
        except Exception as exc:
            # A broken template or context will not heal by retrying; nothing was sent.
            log.exception("delivery %s: rendering %s failed", job.id, job.reply.template)
            journal.record(
                job.id, self._finish(DeliveryStatus.failed, error=f"render error: {exc}")
            )
            stats.failed += 1
            return
        try:
            ref = await self.sender.send(job.address, message)
        except RateLimited as exc:
            stats.rate_limited += 1
            journal.record(job.id, self._later(timedelta(seconds=exc.retry_after), str(exc)))
            return
        except (TransientFailure, UnknownChannel) as exc:
            journal.record(job.id, self._retry_or_fail(job, str(exc), stats))
            return
        except PermanentFailure as exc:
            journal.record(job.id, self._finish(DeliveryStatus.failed, error=str(exc)))
            stats.failed += 1
            return
        except UnknownOutcome as exc:
            journal.record(job.id, self._unknown(job, str(exc), stats))
            return
        except SendError as exc:  # any other platform answer: treat as transient
            journal.record(job.id, self._retry_or_fail(job, str(exc), stats))
            return
        journal.record(
            job.id,
            self._finish(
                DeliveryStatus.sent, message_id=ref.message_id, channel=job.address.channel
            ),
        )
        stats.sent += 1

    def _finish(
        self,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        message_id: str | None = None,
        channel: str | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        """The row's new values once it is done (sent, failed or unknown)."""
        values: dict[str, Any] = {"status": status, "claimed_until": None, "last_error": error}
        if attempts is not None:
            values["attempts"] = attempts
        if status == DeliveryStatus.sent:
            values.update(sent_at=self.clock.now(), platform_message_id=message_id, channel=channel)
        return values

    def _later(
        self, delay: timedelta, error: str, *, attempts: int | None = None
    ) -> dict[str, Any]:
        """The row's new values to try again after ``delay`` (``attempts``: new count, if any)."""
        values: dict[str, Any] = {
            "status": DeliveryStatus.pending,
            "claimed_until": None,
            "not_before": self.clock.now() + delay,
            "last_error": error,
        }
        if attempts is not None:
            values["attempts"] = attempts
        return values

    def _retry_or_fail(self, job: _Job, error: str, stats: RunStats) -> dict[str, Any]:
        # The row is leased to us, so the attempts read with the claim are still current.
        attempts = job.attempts + 1
        if attempts >= self.settings.outbox.max_attempts:
            # Record the final failed attempt too, so a row given up after max_attempts
            # failures says attempts == max_attempts (it used to stop one short).
            stats.failed += 1
            return self._finish(DeliveryStatus.failed, error=f"gave up: {error}", attempts=attempts)
        backoff = min(
            self.settings.outbox.backoff_base_s * (2 ** (attempts - 1)),
            self.settings.outbox.backoff_max_s,
        )
        stats.retried += 1
        return self._later(timedelta(seconds=backoff), error, attempts=attempts)

    def _unknown(self, job: _Job, error: str, stats: RunStats) -> dict[str, Any]:
        retries = job.unknown_retries + 1
        if retries > self.settings.outbox.retry_unknown:
            stats.unknown += 1
            values = self._finish(DeliveryStatus.unknown, error=error)
        else:
            stats.retried += 1
            values = self._later(timedelta(seconds=1), error)
        return {**values, "unknown_retries": retries}


async def queue_depth(
    db: Database, statuses: Sequence[DeliveryStatus] = (DeliveryStatus.pending,)
) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status.in_(statuses))
            )
            or 0
        )
