"""APScheduler's asyncio executor, finishing running jobs on stop instead of cancelling them.

This is the one place Fidelio reads a private part of APScheduler: ``AsyncIOExecutor``'s
``_pending_futures``, the set of futures of the jobs it is running (filled by
``_do_submit_job``, emptied by their done callbacks and by ``shutdown``). APScheduler 3 has no
public way to wait for running jobs: ``shutdown(wait=True)`` cannot wait on asyncio (it is not
a coroutine; the executor just cancels), and the job events (``EVENT_JOB_SUBMITTED`` ...) carry
no future or task to wait on. APScheduler is pinned in pyproject.toml;
``tests/test_library_internals`` fails with a clear message when the pinned version no longer
keeps ``_pending_futures`` this way.
"""

from __future__ import annotations

import asyncio
import logging

from apscheduler.executors.asyncio import AsyncIOExecutor

log = logging.getLogger(__name__)


class FinishingExecutor(AsyncIOExecutor):
    """APScheduler's asyncio executor, except that shutting down does not cancel running
    jobs: :meth:`scheduler.Scheduler.stop` lets them finish (a sweep cut off mid-query would
    log a traceback for nothing, and its work would be redone at the next start anyway)."""

    def shutdown(self, wait: bool = True) -> None:
        pass

    def running(self) -> set[asyncio.Future[object]]:
        """The futures of the jobs started and not yet done."""
        return {f for f in self._pending_futures if not f.done()}

    async def finish(self, grace_s: float) -> None:
        """Wait for the running jobs, cancelling those still running after ``grace_s``."""
        running = self.running()
        if not running:
            return
        _done, late = await asyncio.wait(running, timeout=grace_s)
        for future in late:
            log.warning("a scheduled job did not finish within %.0f s of stopping", grace_s)
            future.cancel()
        if late:
            await asyncio.wait(late)
