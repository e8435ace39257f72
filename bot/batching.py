"""Group commit for inbound events that many people send at once (survey answers).

When a burst arrives, handling each button press in its own transaction spends most of the
time on the transaction itself: the statements, the commit and, on SQLite, waiting for the
single writer. A :class:`GroupQueue` lets concurrent callers share one run: whoever arrives
while a run is in progress waits for the next one, which takes everybody queued by then
(at most ``max_size``, and at most one event per person so that a person's presses stay in
order). Nothing waits on a timer: with a single caller, a run holds exactly one event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R")


class GroupQueue(Generic[E, R]):
    """Run ``handle_many`` over whatever has been submitted, one run at a time."""

    def __init__(
        self,
        handle_many: Callable[[list[E]], Awaitable[list[R]]],
        key: Callable[[E], Hashable],
        *,
        max_size: int = 200,
    ):
        self._handle_many = handle_many
        self._key = key
        self._max_size = max_size
        self._pending: list[tuple[E, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: E) -> R:
        """Queue ``item`` and wait for its result from the run that takes it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[E, asyncio.Future[R]]]:
        taken: list[tuple[E, asyncio.Future[R]]] = []
        left: list[tuple[E, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        for entry in self._pending:
            if entry[1].done():  # its caller went away (cancelled)
                continue
            key = self._key(entry[0])
            if key in keys or len(taken) >= self._max_size:
                left.append(entry)
            else:
                keys.add(key)
                taken.append(entry)
        self._pending = left
        return taken

    async def _drain(self) -> None:
        # One turn of the loop lets callers woken by the same poll join the first run.
        await asyncio.sleep(0)
        while self._pending:
            taken = self._take()
            if not taken:
                continue
            try:
                results = await self._handle_many([item for item, _ in taken])
            except BaseException as exc:
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for _, future in self._pending:
                        future.cancel()
                    self._pending = []
                    raise
                continue
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)
