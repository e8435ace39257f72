"""When Home tabs are published: on opening, and again when what they show changes.

The refresher listens to the database's committed changes (:mod:`bot.changes`):

* a person who opens their Home tab gets it published (and is *watching* it for
  ``home.watch_hours``);
* a change for a watching person, or for everyone, publishes the tabs of those watching.
  Nobody else's: a tab nobody has opened is not worth Slack's budget, and it is published
  afresh when it is opened.

Per person, at most one publish every ``home.refresh_s`` seconds: a change that comes sooner
is published once that time is up (a trailing refresh), however many changes come in between,
and that publish reads the tables as they are then, so the last change is never lost. At most
:data:`PARALLEL` tabs are built at once, each just before the sender's pace for views
(``rates.slack_views_per_min``, Slack's Tier 4) lets it through, so a change for everyone
neither floods the database nor publishes views that are stale by the time Slack gets them.
A 429 from Slack publishes that tab again after ``Retry-After``.

Everything here is in memory, in this process (see :mod:`bot.changes`): no person id is
logged with a publish, so the log cannot time anybody's survey answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from bot.changes import Changed
from bot.channels.port import RateLimited
from bot.home.settings import HomeSettings

log = logging.getLogger(__name__)

#: Home tabs built and published at the same time, at most.
PARALLEL = 4


class HomeRefresher:
    """Debounces publishes per person (see the module's docstring)."""

    def __init__(self, settings: HomeSettings, publish: Callable[[int], Awaitable[None]]):
        self.refresh_s = settings.refresh_s
        self.watch_s = settings.watch_hours * 3600
        self.publish = publish
        #: person id -> loop time they last opened their tab
        self._watching: dict[int, float] = {}
        #: person id -> loop time their tab was last published (its building started)
        self._last: dict[int, float] = {}
        #: a publish is scheduled for these people and has not started reading the tables
        self._waiting: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._building = asyncio.Semaphore(PARALLEL)
        self._closed = False
        #: Home tabs published since the start (metrics, tests).
        self.published = 0

    def watching(self) -> set[int]:
        """Who has opened their tab recently enough to have it kept up to date."""
        return set(self._watching)

    def changed(self, changed: Changed) -> None:
        """A :mod:`bot.changes` listener: schedule the publishes this change calls for."""
        if self._closed:
            return
        now = asyncio.get_running_loop().time()
        for person_id in changed.opened:
            self._watching[person_id] = now
        self._forget(now)
        wanted = set(changed.opened) | (changed.people & self._watching.keys())
        if changed.everyone:
            wanted |= self._watching.keys()
        for person_id in sorted(wanted):
            self.request(person_id)

    def request(self, person_id: int, delay: float = 0.0) -> None:
        """Publish ``person_id``'s tab as soon as their pace allows (and ``delay`` has
        passed); nothing more when one is already waiting, as it will read the latest."""
        if self._closed or person_id in self._waiting:
            return
        now = asyncio.get_running_loop().time()
        wait = max(delay, self._last.get(person_id, -math.inf) + self.refresh_s - now, 0.0)
        task = asyncio.create_task(self._publish_after(person_id, wait))
        self._waiting[person_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_after(self, person_id: int, wait: float) -> None:
        try:
            if wait > 0:
                await asyncio.sleep(wait)
            async with self._building:
                # From here on the tables are read: a change from now on needs a publish of
                # its own, after this one.
                self._waiting.pop(person_id, None)
                self._last[person_id] = asyncio.get_running_loop().time()
                await self.publish(person_id)
                self.published += 1
        except RateLimited as exc:
            self.request(person_id, delay=exc.retry_after)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("publishing a Home tab failed")
        finally:
            if self._waiting.get(person_id) is asyncio.current_task():
                del self._waiting[person_id]

    def _forget(self, now: float) -> None:
        """Drop who stopped watching, and paces that no longer hold anything back."""
        for person_id, opened in list(self._watching.items()):
            if now - opened > self.watch_s:
                del self._watching[person_id]
        for person_id, last in list(self._last.items()):
            if now - last > self.refresh_s:
                del self._last[person_id]

    async def settle(self) -> None:
        """Wait until every scheduled publish is done (tests, stopping)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop: nothing new is scheduled; publishes still waiting are dropped."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._waiting.clear()
