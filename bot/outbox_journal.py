"""Writing the outbox's send outcomes: as soon as the platform answers, several per
transaction only when they arrive together.

Between a platform's answer and the commit of its outcome, a process that dies leaves a row
``sending`` although its message went out: after the lease, that row counts as an unknown
outcome and is sent again on Telegram (on Slack it is looked up first, see bot/outbox.py).
That window is kept as short as the database allows: no outcome waits for others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db.models import Delivery
from bot.db.session import Database

log = logging.getLogger(__name__)


class Journal:
    """Records one round's send outcomes in the outbox table the moment they are known.

    The first outcome recorded while nothing is being written is written at once, in a
    transaction of its own. Outcomes that arrive while a write is in progress cannot be
    written sooner than its end anyway (SQLite has one writer; on PostgreSQL they would wait
    for a connection or a commit): they are written together as soon as it ends (group
    commit, without any linger). So an outcome is durable within at most two commits of the
    platform's answer, and a broadcast costs no more transactions than the database can do.
    """

    def __init__(self, db: Database):
        self._db = db
        self._queued: list[dict[str, Any]] = []
        self._writer: asyncio.Task[None] | None = None
        #: Outcomes whose write failed (database unreachable): the dispatcher keeps them.
        self._failed: list[dict[str, Any]] = []

    def record(self, delivery_id: int, values: dict[str, Any]) -> None:
        """Queue ``values`` (column -> new value) for row ``delivery_id``; written at once."""
        self._queued.append({"id": delivery_id, **values})
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="outbox-journal")

    async def close(self) -> list[dict[str, Any]]:
        """Wait until every recorded outcome is written; return those that could not be."""
        while self._writer is not None and not self._writer.done():
            await self._writer
        failed, self._failed = self._failed + self._queued, []
        self._queued = []
        return failed

    def abandon(self) -> None:
        """Drop what is not written yet, as a stopped process would (the round was cancelled)."""
        self._queued.clear()
        if self._writer is not None:
            self._writer.cancel()

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await write_outcomes(self._db, batch)
            except Exception:
                # Kept for the dispatcher's next transaction (its claim).
                log.warning("recording %d outbox outcomes failed", len(batch), exc_info=True)
                self._failed.extend(batch)


async def write_outcomes(db: Database, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record ``outcomes`` in a transaction of their own (none if there are none)."""
    if not outcomes:
        return
    # A bare connection: one outcome per transaction is the usual case, and an ORM session
    # would cost more than its UPDATE. queue_writes: on SQLite, take the write lock in turn
    # rather than in the busy handler's back-off, which could hold the outcome back 100 ms.
    async with db.transaction(queue_writes=True) as connection:
        await _execute_updates(connection, outcomes)


async def update_rows(session: AsyncSession, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record ``outcomes`` in ``session``'s transaction (``id`` picks the row)."""
    if outcomes:
        await _execute_updates(await session.connection(), outcomes)


async def _execute_updates(connection: AsyncConnection, outcomes: Sequence[dict[str, Any]]) -> None:
    """One UPDATE per distinct set of changed columns (an executemany if several rows)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        groups.setdefault(tuple(sorted(k for k in outcome if k != "id")), []).append(outcome)
    for columns, rows in groups.items():
        params = [{"row_id": row["id"], **{f"new_{c}": row[c] for c in columns}} for row in rows]
        await connection.execute(
            _update_statement(columns), params[0] if len(params) == 1 else params
        )


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    """``UPDATE outbox SET <columns> WHERE id = :row_id``, built once per set of columns."""
    table = cast(Table, Delivery.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({table.c[c]: bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
    )
