"""The global pace: replies before broadcast cards, and a share held back for them.

Admissions are not spaced here (``burst_s`` is large), and sends hold their slot until the test
lets them go, so what is checked is how many slots each kind of send gets and in which order,
not how long anything takes.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from bot.pacing import WindowLimiter


class Holder:
    """Sends that take a slot and keep it until released."""

    def __init__(self, limiter: WindowLimiter):
        self.limiter = limiter
        self.admitted: list[str] = []
        self._release: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, *, urgent: bool = False) -> asyncio.Task[None]:
        release = self._release[name] = asyncio.Event()

        async def send() -> None:
            async with self.limiter.slot(urgent=urgent):
                self.admitted.append(name)
                await release.wait()

        task = asyncio.create_task(send())
        self._tasks.append(task)
        return task

    def release(self, *names: str) -> None:
        for name in names:
            self._release[name].set()

    async def close(self) -> None:
        for event in self._release.values():
            event.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)


async def admitted(sends: Holder, count: int) -> None:
    """Wait (a few seconds at most) until ``count`` sends have been admitted."""
    for _ in range(200):
        if len(sends.admitted) >= count:
            return
        await asyncio.sleep(0.02)


def limiter(**kwargs: float) -> WindowLimiter:
    return WindowLimiter(8, burst_s=60.0, **kwargs)


async def test_without_replies_a_broadcast_has_the_whole_pace() -> None:
    sends = Holder(limiter())
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sends.close)
        for n in range(10):
            sends.start(f"card{n}")
        await settle()
        assert sends.admitted == [f"card{n}" for n in range(8)]


async def test_while_people_tap_broadcasts_leave_a_share_to_replies() -> None:
    pace = limiter(reserve_share=0.25)
    assert (pace.capacity, pace.bulk_capacity) == (8, 6)
    sends = Holder(pace)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sends.close)
        sends.start("reply0", urgent=True)
        await settle()
        for n in range(10):
            sends.start(f"card{n}")
        await settle()
        # The reply holds one slot; cards stop at six, two are left for replies.
        assert sends.admitted == ["reply0"] + [f"card{n}" for n in range(5)]
        sends.start("reply1", urgent=True)
        sends.start("reply2", urgent=True)
        sends.start("reply3", urgent=True)
        await settle()
        assert sends.admitted[6:] == ["reply1", "reply2"]  # the window is full now


async def test_the_share_is_returned_when_nobody_taps() -> None:
    sends = Holder(limiter(reserve_hold_s=0.1))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sends.close)
        sends.start("reply", urgent=True)
        await settle()
        sends.release("reply")  # ends now; it counts in the window for a second
        await asyncio.sleep(0.15)  # nobody has tapped for longer than the hold
        for n in range(10):
            sends.start(f"card{n}")
        await settle()
        assert sends.admitted == ["reply"] + [f"card{n}" for n in range(7)]


async def test_a_reply_goes_before_cards_that_were_waiting_longer() -> None:
    sends = Holder(limiter(reserve_share=0.0))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sends.close)
        for n in range(8):
            sends.start(f"held{n}")
        await settle()
        sends.start("card-a")
        sends.start("card-b")
        await settle()
        sends.start("reply", urgent=True)
        await settle()
        assert len(sends.admitted) == 8  # every slot is held: everybody waits
        # The held sends end; their slots come back as the window rolls over.
        sends.release(*(f"held{n}" for n in range(8)))
        await admitted(sends, 11)
        assert sends.admitted[8:] == ["reply", "card-a", "card-b"]


async def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    sends = Holder(limiter(reserve_share=0.0))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(sends.close)
        for n in range(8):
            sends.start(f"held{n}")
        await settle()
        gone = sends.start("impatient", urgent=True)
        sends.start("card")
        await settle()
        gone.cancel()
        await settle()
        sends.release(*(f"held{n}" for n in range(8)))
        await admitted(sends, 9)
        assert sends.admitted[8:] == ["card"]


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="reserve share"):
        WindowLimiter(8, reserve_share=share)
