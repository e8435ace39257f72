"""Engine and session factory for SQLite (WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.changes import Changes

#: A pooled PostgreSQL connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE_S = 5.0


class Database:
    """Owns the async engine; hand it to services, open short sessions with :meth:`session`.

    PostgreSQL connections are checked before use only after sitting idle in the pool for
    ``ping_after_idle_s`` (a server restart or an idle timeout closes connections while nobody
    uses them). SQLAlchemy's ``pool_pre_ping`` would check every checkout, and on asyncpg its
    ping is three round trips (BEGIN, ping, ROLLBACK): a third of the database work of an
    inbound button press. A dead connection found this way is replaced before use.
    """

    def __init__(
        self, url: str, *, echo: bool = False, ping_after_idle_s: float = PING_AFTER_IDLE_S
    ):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_folder(url)
            # Writers wait instead of failing at once when another connection holds the lock.
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            pool = self.engine.sync_engine.pool
            event.listen(pool, "checkin", _note_idle)
            event.listen(pool, "checkout", _ping_if_idle(ping_after_idle_s))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer: asyncio.Lock | None = None
        #: Told what each committed session noted (bot.changes): who may see something new.
        self.changes = Changes()

    @asynccontextmanager
    async def session(self, *, queue_writes: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error.

        ``queue_writes``: on SQLite, wait in line (first come, first served) behind the other
        transactions that asked for it. SQLite lets one connection write at a time; the others
        sleep in its busy handler with a growing back-off (up to 100 ms a try), so under a burst
        of writers the database mostly sits idle between them. Waiting here hands the turn over
        at once instead. For transactions that write anyway (inbound events); nothing else
        changes, and PostgreSQL ignores it. Never nest such a session inside another one.

        Once the transaction has committed, what it noted (:mod:`bot.changes`) is announced.
        """
        queue = self._write_queue() if queue_writes and self.is_sqlite else nullcontext()
        async with queue, self.sessions() as session:
            async with session.begin():
                yield session
            self.changes.announce_noted(session)

    @asynccontextmanager
    async def transaction(self, *, queue_writes: bool = False) -> AsyncIterator[AsyncConnection]:
        """A bare connection in a transaction, without an ORM session: committed on success,
        rolled back on error. For a few core statements written often (the outbox's send
        outcomes), where a session would cost more than the statements. ``queue_writes`` as in
        :meth:`session`.
        """
        queue = self._write_queue() if queue_writes and self.is_sqlite else nullcontext()
        async with queue, self.engine.begin() as connection:
            yield connection

    def _write_queue(self) -> asyncio.Lock:
        if self._writer is None:
            self._writer = asyncio.Lock()
        return self._writer

    async def dispose(self) -> None:
        await self.engine.dispose()


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(after_s: float) -> Any:
    """Pool ``checkout`` listener: ping a connection that was idle for ``after_s`` or longer;
    if it is dead, DisconnectionError makes the pool discard it and hand out another."""

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after_s:
            return  # new, or back in the pool moments ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc

    return checkout


def _ensure_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten with zeros, not left in free pages: after a pulse round
    # closes (or an anonymous suggestion is filed) nothing deleted can be read back.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
