"""The one sender: paces messages per chat and per channel, then hands them to a port.

The dispatcher (interactive replies) and the outbox (broadcasts) both send through here, so
rate limits are respected whoever is talking.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from aiolimiter import AsyncLimiter

from bot.channels.port import (
    Address,
    ChatPort,
    Message,
    MessageRef,
    PermanentFailure,
    RateLimited,
    SendError,
    TransientFailure,
)
from bot.config import RateSettings

log = logging.getLogger(__name__)

_MAX_TRACKED_CHATS = 20_000


class UnknownChannel(SendError):
    """No adapter is running for that channel (disabled in config)."""


class Sender:
    def __init__(self, ports: dict[str, ChatPort], rates: RateSettings):
        self.ports = ports
        self.rates = rates
        self._global = {
            "telegram": AsyncLimiter(rates.telegram_global_per_s, 1.0),
            "slack": AsyncLimiter(rates.slack_global_per_s, 1.0),
        }
        self._per_chat: OrderedDict[tuple[str, str], AsyncLimiter] = OrderedDict()

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

    async def send(self, to: Address, message: Message, edit: MessageRef | None = None) -> MessageRef:
        """Send once, after waiting for a free slot; platform failures are raised as SendError."""
        port = self.port(to.channel)
        chat_limiter = self._chat_limiter(to)
        if chat_limiter is not None:
            await chat_limiter.acquire()
        global_limiter = self._global.get(to.channel)
        if global_limiter is not None:
            await global_limiter.acquire()
        if edit is not None:
            await port.edit(edit, message)
            return edit
        if message.image is not None:
            return await port.send_image(to, message.image, message.text)
        return await port.send(to, message)

    async def reply(self, to: Address, message: Message, edit: MessageRef | None = None) -> MessageRef | None:
        """Interactive send: a person is waiting, so retry briefly, then log and give up."""
        for attempt in range(4):
            try:
                return await self.send(to, message, edit)
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
