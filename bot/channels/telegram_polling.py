"""Long polling for the Telegram adapter: updates are confirmed only once they are handled,
and one slow update never holds up the others.

Why not PTB's ``Updater``: it confirms a batch (the next ``getUpdates`` carries its offset) as
soon as the batch has been fetched, so a crash while a burst is being handled would lose every
update fetched but not yet handled.

Here each update is handled in its own task as soon as it is fetched, and the offset sent to
Telegram is the oldest update still being handled: everything below it is done, so after a
crash Telegram delivers again only what may not have been (de-duplication on ``update_id``
drops what had been handled after all). While updates are in hand, Telegram answers every
``getUpdates`` at once with them, so the poller asks with ``timeout=0``, at most once a tick
(sooner when everything in hand is done). New taps are thus fetched within a tick even while
another person's reply waits for its chat's pace; with nothing in hand it long-polls as
usual.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from telegram import Bot, Update
from telegram.error import RetryAfter, TelegramError, TimedOut

from bot.channels.telegram_internals import post_json

log = logging.getLogger(__name__)

#: How long to wait for news while updates are in hand and nothing new came; polls in that
#: state are at most this often (each is one short request).
TICK_S = 0.05
#: With more updates waiting at Telegram, how long those in hand may take to finish
#: together before the poller asks again anyway (a slow one holds up the rest that long).
BACKLOG_WAIT_S = 1.0
#: The most updates one ``getUpdates`` returns (Telegram's own cap, its default ``limit``).
BATCH_LIMIT = 100


class UpdatePoller:
    """Fetches updates by long polling and hands each to ``handle`` in its own task."""

    def __init__(
        self,
        bot: Bot,
        handle: Callable[[Update], Awaitable[object]],
        *,
        poll_timeout_s: float,
        allowed_updates: list[str],
        tick_s: float = TICK_S,
    ):
        self.bot = bot
        self.handle = handle
        self.poll_timeout_s = poll_timeout_s
        self.allowed_updates = allowed_updates
        self.tick_s = tick_s
        self._in_hand: dict[int, asyncio.Task[None]] = {}
        #: The highest update id handed to a task so far (-1: none yet).
        self._seen = -1
        #: Ids handed to a task, in order, from the offset on (what a poll brings back).
        self._started: deque[int] = deque()

    @property
    def offset(self) -> int | None:
        """The ``getUpdates`` offset that confirms exactly the updates handled so far: the
        oldest one still in hand, or one past the newest seen."""
        if self._in_hand:
            return min(self._in_hand)
        return self._seen + 1 if self._seen >= 0 else None

    async def run(self) -> None:
        """Poll until cancelled; handlers in progress are left to :meth:`drain`."""
        backoff = 1.0
        while True:
            busy = bool(self._in_hand)
            try:
                # Raw JSON: what is in hand comes back with every poll, and only what is new
                # is worth turning into PTB objects (a large share of a burst's cost).
                updates = await post_json(
                    self.bot,
                    "getUpdates",
                    {
                        "offset": self.offset,
                        "timeout": 0 if busy else self.poll_timeout_s,
                        "allowed_updates": self.allowed_updates,
                    },
                )
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                delay = exc.retry_after
                await asyncio.sleep(
                    delay.total_seconds() if isinstance(delay, dtm.timedelta) else float(delay)
                )
                continue
            except TimedOut:
                continue  # a long poll that outlived the read timeout: just ask again
            except TelegramError as exc:
                log.warning("telegram polling error (retrying in %.0f s): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            for data in updates:
                if data["update_id"] > self._seen:
                    self._start(Update.de_json(data, self.bot))
            if self._in_hand:
                await self._wait_for_news(backlog=len(updates) >= BATCH_LIMIT)

    async def _wait_for_news(self, *, backlog: bool) -> None:
        """Wait before asking again while updates are in hand: asking at once would only
        bring back what is in hand (and, in a burst, split it into many small groups).

        ``backlog``: the last answer was full, so more are waiting at Telegram. Then the
        updates in hand are let finish together (up to ``BACKLOG_WAIT_S``) and the next
        hundred fetched at once: answers that arrive together are stored in shared
        transactions (:mod:`bot.batching`), and feeding them in as single places free up
        split a burst into many small ones (its throughput fell by a fifth)."""
        if backlog:
            await asyncio.wait(list(self._in_hand.values()), timeout=BACKLOG_WAIT_S)
            return
        offset = self.offset or 0
        while self._started and self._started[0] < offset:
            self._started.popleft()
        if len(self._started) >= BATCH_LIMIT:
            # Telegram would answer with updates already started, nothing new: wait for
            # the oldest, which holds the offset back.
            await asyncio.wait([self._in_hand[min(self._in_hand)]])
        else:
            # Room for new ones: ask again in a tick, sooner when all is done.
            await asyncio.wait(list(self._in_hand.values()), timeout=self.tick_s)

    async def drain(self) -> None:
        """Wait for every update in hand (stopping lets handlers finish rather than cutting
        them off half-way)."""
        while self._in_hand:
            await asyncio.wait(list(self._in_hand.values()))

    def _start(self, update: Update) -> None:
        update_id = update.update_id
        self._seen = update_id
        self._started.append(update_id)
        task = asyncio.create_task(self._handle(update), name=f"telegram-update-{update_id}")
        self._in_hand[update_id] = task
        task.add_done_callback(lambda _: self._in_hand.pop(update_id, None))

    async def _handle(self, update: Update) -> None:
        try:
            await self.handle(update)
        except Exception:
            log.exception("telegram update %s could not be handled", update.update_id)
