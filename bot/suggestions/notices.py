"""Delivering sealed notices: messages for anonymous authors.

The recipient is opened from the notice's sealed token in memory, their chat address looked
up, the message rendered and sent through the one sender, and the row deleted. Policy (kept
simple, these are few): 429 waits the platform's delay; a transient failure or no reachable
account is retried with backoff up to ``outbox.max_attempts``; a permanent failure, a token
that no longer opens, or an unknown outcome (timeout: at most once, unlike the outbox, since
the row must not outlive its purpose) drops the notice; so does a recipient who has left or
was erased (their sealed tokens still open to the erased row's id).
:meth:`SealedNotices.run_forever` polls beside the outbox, and sends only in the instance that
holds the scheduler lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.port import Address, PermanentFailure, RateLimited, SendError, UnknownOutcome
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import ChannelIdentity, Person
from bot.db.session import Database
from bot.outbox import CHANNEL_PREFERENCE, enqueue
from bot.render import Renderer
from bot.replies import Reply, ReplyButton
from bot.sender import Sender
from bot.service import SendingService
from bot.suggestions.seal import NOTICE_PURPOSE, Sealer, author_purpose
from bot.suggestions.tables import SealedNotice, Suggestion, SuggestionEvent

log = logging.getLogger(__name__)


@dataclass
class NoticeStats:
    sent: int = 0
    retried: int = 0
    dropped: int = 0


class SealedNotices(SendingService):
    def __init__(
        self, settings: Settings, db: Database, sender: Sender, renderer: Renderer, clock: Clock
    ):
        super().__init__(settings, db, sender, renderer, clock)
        self.sealer = Sealer(settings.security.secret_key.get_secret_value())

    async def run_once(self, limit: int = 50) -> NoticeStats:
        """Send every due notice (up to ``limit``)."""
        stats = NoticeStats()
        now = self.clock.now()
        async with self.db.session() as session:
            due = list(
                await session.scalars(
                    select(SealedNotice)
                    .where(SealedNotice.not_before <= now)
                    .order_by(SealedNotice.id)
                    .limit(limit)
                )
            )
            session.expunge_all()
        for notice in due:
            try:
                await self._deliver(notice, stats)
            except Exception:
                log.exception("sealed notice %s: delivery failed", notice.id)
        return stats

    async def run_forever(self, stop: asyncio.Event, active: Callable[[], bool]) -> None:
        """Poll every ``scheduler.outbox_poll_s`` until ``stop`` is set; only while
        ``active()`` (this instance holds the scheduler lock), so nothing is sent twice."""
        poll = self.settings.scheduler.outbox_poll_s
        while not stop.is_set():
            if active():
                try:
                    await self.run_once()
                except Exception:
                    log.exception("sealed notices: a round failed; retrying in %.1fs", poll)
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll)
            except TimeoutError:
                pass

    async def _deliver(self, notice: SealedNotice, stats: NoticeStats) -> None:
        person_id = self.sealer.open(notice.token, NOTICE_PURPOSE)
        if person_id is None:
            log.warning("sealed notice %s: the token does not open; dropped", notice.id)
            await self._drop(notice.id, stats)
            return
        async with self.db.session() as session:
            person = await session.get(Person, person_id)
            identities = {
                row.channel.value: row.address
                for row in await session.scalars(
                    select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
                )
                if row.address
            }
        # A token still opens to the id of a person erased by `people forget`: never sent.
        if (
            person is None
            or person.erased_at is not None
            or not person.is_active(self.clock.now().date())
        ):
            await self._drop(notice.id, stats)
            return
        address = next(
            (
                Address(c.value, identities[c.value])
                for c in CHANNEL_PREFERENCE
                if c.value in identities and c.value in self.sender.ports
            ),
            None,
        )
        if address is None:
            await self._retry(notice, "no reachable chat account", stats)
            return
        reply = Reply(
            notice.template, dict(notice.context), tuple(ReplyButton(*b) for b in notice.buttons)
        )
        message = self.renderer.render(reply, person.locale, address.channel, person.timezone)
        try:
            await self.sender.send(address, message)
        except RateLimited as exc:
            await self._later(notice.id, timedelta(seconds=exc.retry_after), str(exc))
            stats.retried += 1
            return
        except (PermanentFailure, UnknownOutcome) as exc:
            log.warning("sealed notice %s: %s; dropped", notice.id, exc)
            await self._drop(notice.id, stats)
            return
        except SendError as exc:
            await self._retry(notice, str(exc), stats)
            return
        await self._drop(notice.id, stats, sent=True)

    async def _drop(self, notice_id: int, stats: NoticeStats, *, sent: bool = False) -> None:
        async with self.db.session(queue_writes=True) as session:
            await session.execute(delete(SealedNotice).where(SealedNotice.id == notice_id))
        if sent:
            stats.sent += 1
        else:
            stats.dropped += 1

    async def _retry(self, notice: SealedNotice, error: str, stats: NoticeStats) -> None:
        attempts = notice.attempts + 1
        if attempts >= self.settings.outbox.max_attempts:
            log.warning(
                "sealed notice %s: gave up after %d attempts: %s", notice.id, attempts, error
            )
            await self._drop(notice.id, stats)
            return
        backoff = min(
            self.settings.outbox.backoff_base_s * (2 ** (attempts - 1)),
            self.settings.outbox.backoff_max_s,
        )
        await self._later(notice.id, timedelta(seconds=backoff), error, attempts)
        stats.retried += 1

    async def _later(
        self, notice_id: int, delay: timedelta, error: str, attempts: int | None = None
    ) -> None:
        values: dict[str, object] = {
            "not_before": self.clock.now() + delay,
            "last_error": error[:500],
        }
        if attempts is not None:
            values["attempts"] = attempts
        async with self.db.session(queue_writes=True) as session:
            await session.execute(
                update(SealedNotice).where(SealedNotice.id == notice_id).values(**values)
            )


def to_the_hour(when: datetime) -> datetime:
    """``when`` cut to the hour: anonymous rows carry no finer time to match against."""
    return when.replace(minute=0, second=0, microsecond=0)


async def enqueue_event_reply(
    session: AsyncSession,
    event: SuggestionEvent,
    suggestion_id: int,
    person_id: int,
    purpose: str,
    reply: Reply,
    now: datetime,
) -> bool:
    """Queue ``reply`` about ``event`` to ``person_id`` in the outbox, once per suggestion,
    event and person (True if it was new)."""
    key = f"suggestion:{suggestion_id}:event:{event.id}:{person_id}"
    return await enqueue(
        session, key=key, person_id=person_id, purpose=purpose, reply=reply, now=now
    )


async def notify_authors(
    session: AsyncSession,
    sealer: Sealer,
    now: datetime,
    suggestion: Suggestion,
    event: SuggestionEvent,
    reply: Reply,
    *,
    origin_only: bool = False,
) -> int:
    """Tell the author of ``suggestion`` and, unless ``origin_only``, the authors of the
    suggestions merged into it: a sealed notice for an anonymous author, an outbox message for
    a named one (once per person). Returns how many notices were queued."""
    targets = [suggestion]
    if not origin_only:
        targets += list(
            await session.scalars(
                select(Suggestion).where(Suggestion.merged_into_id == suggestion.id)
            )
        )
    queued = 0
    seen: set[int] = set()
    for target in targets:
        if target.anonymous:
            person_id = sealer.open(target.reply_token, author_purpose(target.id))
            if person_id is None:
                log.warning("suggestion %s: the reply token does not open", target.id)
                continue
            if person_id in seen:
                continue
            seen.add(person_id)
            session.add(
                SealedNotice(
                    token=sealer.seal(person_id, NOTICE_PURPOSE),
                    template=reply.template,
                    context=reply.context,
                    buttons=[[b.label, b.action, b.value] for b in reply.buttons],
                    attempts=0,
                    not_before=now,
                    created_at=to_the_hour(now),
                )
            )
            queued += 1
        elif target.author_id is not None and target.author_id not in seen:
            seen.add(target.author_id)
            queued += await enqueue_event_reply(
                session, event, target.id, target.author_id, "suggestion-notice", reply, now
            )
    return queued
