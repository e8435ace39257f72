"""A channel's global pace, with replies to people who are waiting served first.

Kept as our own code rather than a library limiter: none we know of both counts a send as
busy until its answer came back (what a sliding-window platform sees) and serves waiters by
priority with a share held back for them; both are needed, see :class:`WindowLimiter`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: Waiter priorities (lower goes first).
URGENT, BULK = 0, 1


class WindowLimiter:
    """Never more than ``per_s`` sends in any one-second window; replies before broadcasts.

    A leaky bucket of the same rate (``AsyncLimiter(per_s, 1)``) lets a full bucket through as
    a burst on top of the steady rate, so up to twice the rate passes in the first second of a
    broadcast or after a pause, and a platform that counts sends in a sliding window (Slack)
    answers the excess with 429s. Here a send holds one of ``floor(per_s)`` slots from the
    moment it is admitted until one second after its answer came back: wherever the platform
    timestamps the request in between, it cannot see more than the rate in any window, even
    when a stall delays some requests and bunches them with later ones. (A rate below 1/s
    stretches the window: 0.5/s is one send per 2 s.) Token-bucket platforms (Telegram) are
    satisfied too. Admissions are also spaced ``1/per_s`` apart, with ``burst_s`` seconds'
    worth of slack so a short stall is caught up, rather than bunched at the start of each
    window.

    **Priority.** An urgent send (a reply to someone who just tapped) is admitted before any
    bulk send (a broadcast card) that is waiting, whatever their arrival order; within a
    priority, arrival order. And while people are interacting (an urgent send in the last
    ``reserve_hold_s`` seconds), bulk sends leave ``reserve_share`` of the slots to replies:
    otherwise a broadcast fills every window and a reply waits for one to roll over, and with
    a large audience answering as their cards arrive the replies' queue sits at the edge of
    the platform's rate, where waits grow long. The broadcast slows down by that share only
    while someone is tapping; with nobody interacting it has the whole rate.
    """

    def __init__(
        self,
        per_s: float,
        *,
        burst_s: float = 0.1,
        reserve_share: float = 0.25,
        reserve_hold_s: float = 5.0,
    ):
        if per_s <= 0:
            raise ValueError(f"rate must be positive, got {per_s}")
        if not 0 <= reserve_share < 1:
            raise ValueError(f"reserve share must be in [0, 1), got {reserve_share}")
        self.capacity = max(1, math.floor(per_s))
        #: Slots bulk sends may hold while replies are being sent.
        self.bulk_capacity = max(1, self.capacity - math.ceil(self.capacity * reserve_share))
        self.window = max(1.0, 1.0 / per_s)
        self.interval = 1.0 / per_s
        self.burst_s = burst_s
        self.reserve_hold_s = reserve_hold_s
        self._in_flight = 0
        self._finished: deque[float] = deque()  # when each send of the last window ended
        self._next = 0.0  # when the next admission is due at the steady pace
        self._last_urgent = -math.inf
        self._waiting: list[tuple[int, int]] = []  # heap of (priority, arrival)
        self._arrivals = itertools.count()
        self._changed = asyncio.Condition()

    @classmethod
    def per_window(cls, capacity: int, window_s: float, *, burst_s: float = 0.1) -> WindowLimiter:
        """At most ``capacity`` sends in any ``window_s`` seconds, admitted evenly spaced
        (a per-minute tier of Slack's, such as ``views.publish``'s Tier 4); no share held
        back (nothing urgent shares it)."""
        limiter = cls(capacity / window_s, burst_s=burst_s, reserve_share=0.0)
        limiter.capacity = limiter.bulk_capacity = max(1, capacity)
        limiter.window = window_s
        return limiter

    @asynccontextmanager
    async def slot(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold a slot around one send (however it ends)."""
        await self._admit(URGENT if urgent else BULK)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._finished.append(asyncio.get_running_loop().time())
            if self._waiting:  # somebody may be waiting for this slot
                async with self._changed:
                    self._changed.notify_all()

    def _wait(self, now: float, priority: int) -> float | None:
        """Seconds until the head of the queue may go (<= 0: now); None while every slot it
        may use is held by a send still in flight (a slot's end will wake it)."""
        while self._finished and now - self._finished[0] >= self.window:
            self._finished.popleft()
        reserved = priority == BULK and now - self._last_urgent < self.reserve_hold_s
        capacity = self.bulk_capacity if reserved else self.capacity
        wait = self._next - self.burst_s - now
        used = self._in_flight + len(self._finished)
        if used >= capacity:
            # The oldest finished sends roll out of the window one by one; enough of them
            # must for this priority to have a slot.
            excess = used - capacity
            if excess >= len(self._finished):
                return None
            wait = max(wait, self._finished[excess] + self.window - now)
        return wait

    async def _admit(self, priority: int) -> None:
        loop = asyncio.get_running_loop()
        me = (priority, next(self._arrivals))
        async with self._changed:
            heapq.heappush(self._waiting, me)
            self._changed.notify_all()  # a new head may have to go before a sleeping one
            try:
                while True:
                    now = loop.time()
                    if priority == URGENT:
                        self._last_urgent = now
                    if self._waiting[0] != me:
                        await self._changed.wait()
                        continue
                    wait = self._wait(now, priority)
                    if wait is not None and wait <= 0:
                        heapq.heappop(self._waiting)
                        self._in_flight += 1
                        self._next = max(self._next, now) + self.interval
                        self._changed.notify_all()
                        return
                    # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can lose
                    # a cancellation that arrives as the wait ends, and a send being killed
                    # must stop.
                    try:
                        async with asyncio.timeout(wait):
                            await self._changed.wait()
                    except TimeoutError:
                        pass
            except BaseException:
                if me in self._waiting:
                    self._waiting.remove(me)
                    heapq.heapify(self._waiting)
                    self._changed.notify_all()
                raise
