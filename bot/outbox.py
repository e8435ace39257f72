"""Durable deliveries: enqueue, claim, render, send, retry, record.

Policy (also in docs/delivery.md):

* One row per (campaign, person, purpose) — the unique ``key`` — so enqueuing twice is a no-op.
* A row is claimed (``sending``, with a lease) before the send and marked ``sent`` with the
  platform's message id as soon as the platform answers (bot/outbox_journal.py: no outcome
  waits for others). A confirmed send is never repeated. A process that stops between the
  answer and that write leaves the row ``sending``, which the lease rule below covers.
* 429: wait the platform's ``retry_after`` / ``Retry-After`` and try again (not an attempt).
* 5xx / connection refused: exponential backoff, up to ``outbox.max_attempts``.
* 403 / blocked / account gone: ``failed`` at once (permanent).
* Timeout after the request left (outcome unknown), or a lease that expired because the
  process died mid-send (counted as ``in_doubt``): retried ``outbox.retry_unknown`` times
  (default once), then left as ``unknown`` and counted. Where the platform lets the bot read
  what it posted (Slack: the delivery key travels in the message's metadata), the retry first
  looks for the earlier copy and, if it is there, marks the row sent without sending again.
  Elsewhere (Telegram) it is at-least-once: such a person may get a duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from bot.outbox_journal import Journal, update_rows, write_outcomes
from bot.render import Renderer
from bot.replies import Reply, ReplyButton
from bot.sender import Sender, UnknownChannel
from bot.service import SendingService

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
    #: Rows a stopped process left ``sending`` (lease expired): their send may have gone out.
    in_doubt: int = 0
    #: Sends whose outcome was unknown, found on the platform (Slack history): not resent.
    recovered: int = 0

    def add(self, other: RunStats, *, claims: bool = True) -> None:
        """Add ``other``'s figures to these (``claims=False``: all but ``claimed``)."""
        for field in dataclasses.fields(self):
            if claims or field.name != "claimed":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclass(frozen=True)
class _Job:
    """A claimed delivery with everything its send needs, loaded in the claim's transaction."""

    id: int
    key: str
    first_claimed_at: datetime | None
    reply: Reply
    attempts: int
    unknown_retries: int
    locale: str | None
    timezone: str | None
    #: None when the person has no account on a running channel.
    address: Address | None


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
        #: Outcomes whose write failed: recorded by the next claim's transaction.
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
                "their outcome is unknown (see docs/delivery.md)",
                released,
            )
        return released

    async def _claim(self, limit: int, stats: RunStats) -> list[_Job]:
        """Record the outcomes an earlier write could not, then lease the next due rows."""
        now = self.clock.now()
        unwritten, self._unwritten = self._unwritten, []
        try:
            async with self.db.session() as session:
                await update_rows(session, unwritten)
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
            # Recovery after a crash: these requests may have reached the platform.
            stats.in_doubt += len(expired)
            log.warning(
                "outbox: %d deliveries were left sending by a stopped process; "
                "their send may have gone out (see docs/delivery.md)",
                len(expired),
            )
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
            .values(
                status=DeliveryStatus.sending,
                claimed_until=now + LEASE,
                first_claimed_at=func.coalesce(Delivery.first_claimed_at, now),
            )
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
                    Delivery.key,
                    Delivery.first_claimed_at,
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
                    row.key,
                    row.first_claimed_at,
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
            total.add(stats)
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
        """Claim up to ``limit`` rows and send them, recording each outcome as it comes.

        Outcomes whose write failed (database unreachable) are left in ``_unwritten`` for the
        next claim's transaction (or :meth:`_write_unwritten`); if a send failed unexpectedly,
        they are tried once more at once and that error is raised.
        """
        stats = RunStats()
        jobs = await self._claim(limit, stats)
        stats.claimed = len(jobs)
        semaphore = asyncio.Semaphore(self.concurrency)
        journal = Journal(self.db)

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
        self.totals.add(stats, claims=False)
        self._unwritten.extend(unwritten)
        for result in results:
            if isinstance(result, BaseException):
                await self._write_unwritten()  # record what is known before reporting it
                raise result
        return stats

    async def _write_unwritten(self) -> None:
        """Record the outcomes whose write failed, now (rather than with the next claim)."""
        unwritten, self._unwritten = self._unwritten, []
        try:
            await write_outcomes(self.db, unwritten)
        except BaseException:
            self._unwritten[:0] = unwritten
            raise

    async def _deliver(self, job: _Job, journal: Journal, stats: RunStats) -> None:
        if job.address is None:
            journal.record(
                job.id, self._finish(DeliveryStatus.failed, error="no reachable chat account")
            )
            stats.failed += 1
            return
        if job.unknown_retries and job.first_claimed_at is not None:
            # An earlier send's outcome is unknown: where the platform can tell, ask it first.
            found = await self._look_for_earlier_send(job, job.address, job.first_claimed_at, stats)
            if found is not None:
                journal.record(job.id, found)
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
        # The key travels with the message where the platform can carry it (Slack metadata).
        message = dataclasses.replace(message, delivery_key=job.key)
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

    async def _look_for_earlier_send(
        self, job: _Job, address: Address, since: datetime, stats: RunStats
    ) -> dict[str, Any] | None:
        """The row's new values if the platform already has the message, or if it cannot be
        asked right now (try again later, without sending); None to send it."""
        try:
            ref = await self.sender.find_delivery(address, job.key, since)
        except RateLimited as exc:
            stats.rate_limited += 1
            return self._later(timedelta(seconds=exc.retry_after), f"history: {exc}")
        except (UnknownChannel, PermanentFailure) as exc:
            # The history cannot be read (a missing scope, a closed DM): send as before.
            log.warning("delivery %s: looking for an earlier copy failed: %s", job.id, exc)
            return None
        except SendError as exc:
            return self._retry_or_fail(job, f"history: {exc}", stats)
        if ref is None:
            return None
        log.info("delivery %s: the earlier send did arrive (%s); not resent", job.id, ref)
        stats.sent += 1
        stats.recovered += 1
        return self._finish(DeliveryStatus.sent, message_id=ref.message_id, channel=ref.channel)

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
