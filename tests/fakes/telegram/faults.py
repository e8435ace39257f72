"""Injected failures of the fake Telegram server: 429s, 5xx answers, "bot was blocked",
answers that time out although the call was carried out, and dropped connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from .limits import RATE_LIMITED_METHODS
from .records import ApiError

#: Fault kinds accepted by :meth:`FakeTelegramServer.inject`.
FAULTS: Final = frozenset({"429", "500", "502", "timeout", "403", "reset"})

# Methods that fail with 403 once the target user has blocked the bot.
BLOCKABLE_METHODS: Final = RATE_LIMITED_METHODS | {"sendChatAction"}

# Default sleep of the "timeout" fault: far longer than any sane client read timeout.
_DEFAULT_TIMEOUT_FAULT_DELAY: Final = 30.0


@dataclass
class FaultRule:
    kind: str
    method: str | None  # lower-case method name or None for "any but getUpdates"
    chat_id: int | None
    remaining: int
    retry_after: int
    delay: float

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.method is None:
            if method == "getUpdates":
                return False
        elif self.method != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


class FaultsMixin:
    """Fault injection of :class:`FakeTelegramServer`."""

    def inject(
        self,
        fault: str,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` matching calls fail with ``fault``.

        ``method=None`` matches every method except getUpdates; ``chat_id`` additionally
        restricts to calls targeting that chat.  Kinds:

        * ``"429"``: flood error with ``parameters.retry_after = retry_after`` (counted in
          :attr:`rate_limited`).
        * ``"500"``/``"502"``: server error answer.
        * ``"403"``: "Forbidden: bot was blocked by the user".
        * ``"timeout"``: the call IS carried out, then the answer (normally 200) is held for
          ``delay`` seconds (30 if ``delay`` is 0) — an "unknown outcome" for a client that
          gives up earlier.
        * ``"reset"``: the connection is closed without any response; the call is NOT carried
          out and is recorded with status 0.

        For the other kinds a non-zero ``delay`` postpones the failure answer.  Faults are
        checked before blocking and rate limits, in the order they were injected.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if fault == "timeout" and delay == 0.0:
            delay = _DEFAULT_TIMEOUT_FAULT_DELAY
        self._faults.append(
            FaultRule(
                kind=fault,
                method=method.lower() if method else None,
                chat_id=chat_id,
                remaining=times,
                retry_after=retry_after,
                delay=delay,
            )
        )

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        # Abort the socket so the client sees the connection drop with no response at all;
        # aiohttp then silently discards the response we must still return.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _take_fault(self, method: str, chat_id: int | None) -> FaultRule | None:
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_error(self, fault: FaultRule) -> ApiError:
        if fault.kind == "429":
            self.rate_limited += 1
            return ApiError(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
        if fault.kind == "403":
            return ApiError(403, "Forbidden: bot was blocked by the user")
        if fault.kind == "502":
            return ApiError(502, "Bad Gateway")
        return ApiError(500, "Internal Server Error")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but return early when the server stops (so teardown never hangs)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
