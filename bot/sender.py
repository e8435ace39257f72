"""The one sender: paces messages per chat and per channel, then hands them to a port.

The dispatcher (interactive replies) and the outbox (broadcasts) both send through here, so
rate limits are respected whoever is talking.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime

from aiolimiter import AsyncLimiter

from bot.channels.port import (
    Address,
    ChatPort,
    FindsDeliveries,
    HomeView,
    Message,
    MessageRef,
    PermanentFailure,
    PublishesHome,
    RateLimited,
    SendError,
    TransientFailure,
)
from bot.config import RateSettings
from bot.pacing import WindowLimiter

log = logging.getLogger(__name__)

_MAX_TRACKED_CHATS = 20_000


class UnknownChannel(SendError):
    """No adapter is running for that channel (disabled in config)."""


class Sender:
    def __init__(self, ports: dict[str, ChatPort], rates: RateSettings):
        self.ports = ports
        self.rates = rates
        self._global = {
            "telegram": WindowLimiter(
                rates.telegram_global_per_s, reserve_share=rates.reply_reserve_share
            ),
            "slack": WindowLimiter(
                rates.slack_global_per_s, reserve_share=rates.reply_reserve_share
            ),
        }
        self._per_chat: OrderedDict[tuple[str, str], AsyncLimiter] = OrderedDict()
        #: Home views (Slack's views.publish, Tier 4: about 100 a minute per workspace, short
        #: bursts tolerated) have a budget of their own: they never wait behind a broadcast,
        #: nor slow one down. A few seconds' slack lets people opening their tab together
        #: through at once; no more than the budget passes in any minute.
        self._views = {
            "slack": WindowLimiter.per_window(rates.slack_views_per_min, 60.0, burst_s=5.0)
        }
        #: Told ``(channel, outcome)`` after every send (metrics); outcome is ``sent`` or the
        #: name of the SendError subclass raised.
        self.on_outcome: Callable[[str, str], None] | None = None

    def _chat_limiter(self, to: Address) -> AsyncLimiter | None:
        per_s = {
            "telegram": self.rates.telegram_per_chat_per_s,
            "slack": self.rates.slack_per_channel_per_s,
        }.get(to.channel)
        if per_s is None:
            return None
        key = (to.channel, to.chat_id)
        limiter = self._per_chat.get(key)
        if limiter is None:
            limiter = AsyncLimiter(1, 1.0 / per_s)
            self._per_chat[key] = limiter
            if len(self._per_chat) > _MAX_TRACKED_CHATS:
                self._per_chat.popitem(last=False)
        else:
            self._per_chat.move_to_end(key)
        return limiter

    def port(self, channel: str) -> ChatPort:
        port = self.ports.get(channel)
        if port is None:
            raise UnknownChannel(f"channel {channel!r} is not running")
        return port

    async def send(
        self,
        to: Address,
        message: Message,
        edit: MessageRef | None = None,
        *,
        urgent: bool = False,
    ) -> MessageRef:
        """Send once, after waiting for a free slot; platform failures are raised as SendError.

        ``urgent``: someone is waiting for this message (a reply), so it goes before the
        broadcast cards waiting for the channel's pace (:class:`WindowLimiter`)."""
        port = self.port(to.channel)
        chat_limiter = self._chat_limiter(to)
        if chat_limiter is not None:
            await chat_limiter.acquire()
        global_limiter = self._global.get(to.channel)
        pace = global_limiter.slot(urgent=urgent) if global_limiter is not None else nullcontext()
        async with pace:
            try:
                if edit is not None:
                    await port.edit(edit, message)
                    ref = edit
                elif message.image is not None:
                    ref = await port.send_image(to, message.image, message.text)
                else:
                    ref = await port.send(to, message)
            except SendError as exc:
                self._observe(to.channel, type(exc).__name__)
                raise
            self._observe(to.channel, "sent")
            return ref

    async def find_delivery(self, to: Address, key: str, since: datetime) -> MessageRef | None:
        """The message carrying delivery ``key`` posted to ``to`` since ``since``, where the
        platform lets the bot read its chats; None if it is not there or cannot be looked for.

        Paced like a send (a history read counts against the platform's global limit too).
        """
        port = self.port(to.channel)
        if not isinstance(port, FindsDeliveries):
            return None
        global_limiter = self._global.get(to.channel)
        async with global_limiter.slot() if global_limiter is not None else nullcontext():
            return await port.find_delivery(to, key, since)

    async def publish_home(self, channel: str, external_id: str, view: HomeView) -> bool:
        """Publish a person's home view (Slack's App Home tab) where ``channel`` has one;
        False where it has none. Paced by the channel's own limit for views (Slack: Tier 4,
        ``rates.slack_views_per_min``); failures are raised as SendError."""
        port = self.ports.get(channel)
        if not isinstance(port, PublishesHome):
            return False
        limiter = self._views.get(channel)
        async with limiter.slot() if limiter is not None else nullcontext():
            await port.publish_home(external_id, view)
        return True

    def _observe(self, channel: str, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(channel, outcome)

    async def reply(
        self, to: Address, message: Message, edit: MessageRef | None = None
    ) -> MessageRef | None:
        """Interactive send: a person is waiting, so retry briefly, then log and give up."""
        for attempt in range(4):
            try:
                return await self.send(to, message, edit, urgent=True)
            except RateLimited as exc:
                await asyncio.sleep(min(exc.retry_after, 30.0))
            except TransientFailure as exc:
                log.warning("reply to %s failed (attempt %d): %s", to, attempt + 1, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
            except PermanentFailure as exc:
                log.warning("reply to %s refused by the platform: %s", to, exc)
                return None
            except SendError as exc:
                log.warning("reply to %s has an unknown outcome: %s", to, exc)
                return None
        log.error("reply to %s dropped after retries", to)
        return None
