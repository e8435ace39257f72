"""Telegram's limits as the fake enforces them.

* Flood control: sends are counted per chat and across all chats in token buckets
  (:class:`TokenBucket`); over the limit the answer is HTTP 429 with ``retry_after``.
* Payload limits: message text (4096), captions (1024), inline keyboards and their
  ``callback_data`` (1..64 bytes), bot command names and descriptions.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Final

from .records import ApiError, clone

#: Methods that count against the per-chat and the global flood limits.
RATE_LIMITED_METHODS: Final = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
)

# Flood-control tolerance (fraction of one send); see TokenBucket.
_SLACK_TOKENS: Final = 0.1

_BOT_COMMAND_NAME_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
_MAX_BOT_COMMANDS: Final = 100


@dataclass
class TokenBucket:
    """Flood control: ``rate`` sends per second with a burst of one second's worth.

    The bucket holds at most ``max(1, rate)`` tokens and refills continuously at ``rate`` per
    second; each send takes one token.  This is at least as lenient as a one-second sliding
    window with ``rate`` slots, so clients throttled by either a sliding window or a leaky
    bucket such as ``aiolimiter.AsyncLimiter(rate, 1)`` never hit it.  A send is admitted when
    ``_SLACK_TOKENS`` short of a full token, absorbing event-loop jitter between the client's
    throttle and the server's clock.
    """

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def for_rate(cls, per_second: float) -> TokenBucket | None:
        """A full bucket for ``per_second``; ``None`` (unlimited) for an infinite rate."""
        if math.isinf(per_second):
            return None
        capacity = max(1.0, per_second)
        return cls(rate=per_second, capacity=capacity, tokens=capacity, updated=time.monotonic())

    def wait_time(self, now: float) -> float:
        """Seconds until one more send is admitted (0 if it is admitted now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        missing = 1.0 - _SLACK_TOKENS - self.tokens
        return missing / self.rate if missing > 0 else 0.0

    def take(self, now: float) -> None:
        self.wait_time(now)  # refill up to `now` first
        self.tokens -= 1.0


class LimitsMixin:
    """Flood control and payload checks of :class:`FakeTelegramServer`."""

    def _chat_bucket(self, chat_id: int) -> TokenBucket | None:
        if chat_id not in self._chat_buckets:
            rate = self.per_chat_per_s * self.rate_scale
            self._chat_buckets[chat_id] = TokenBucket.for_rate(rate)
        return self._chat_buckets[chat_id]

    def _flood_error(self, chat_id: int, now: float) -> ApiError | None:
        buckets = [self._chat_bucket(chat_id), self._global_bucket]
        wait = max((b.wait_time(now) for b in buckets if b is not None), default=0.0)
        if wait <= 0:
            return None
        self.rate_limited += 1
        retry_after: float | int
        if self.fractional_retry_after:
            retry_after = max(0.001, math.ceil(wait * 1000) / 1000)
        else:
            retry_after = max(1, math.ceil(wait))
        return ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    @staticmethod
    def _parse_markup(value: Any) -> dict[str, Any] | None:
        """Validate ``reply_markup``; return it if it is an inline keyboard, else ``None``."""
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        keyboard = value.get("inline_keyboard")
        if keyboard is None:
            return None  # reply keyboards etc. are not part of the returned Message
        if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
            raise ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array')
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                # Telegram rejects callback_data outside 1..64 bytes.
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return clone(value)

    @staticmethod
    def _check_text_length(text: str) -> None:
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")

    @staticmethod
    def _caption(params: dict[str, Any]) -> str | None:
        caption = params.get("caption")
        if caption is None:
            return None
        caption = str(caption)
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        return caption

    @staticmethod
    def _check_commands(commands: Any) -> None:
        """Reject a setMyCommands list Telegram would refuse, with Telegram's error texts: a
        command of 1-32 characters of ``a-z 0-9 _``, a description of 1-256 characters (not
        blank), at most 100 commands."""
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > _MAX_BOT_COMMANDS:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_NAME_RE.match(
                str(command.get("command", ""))
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
