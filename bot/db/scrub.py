"""Removing dead row versions for good, where they could link an answer to a person.

PostgreSQL keeps a deleted or updated row's old version in the table's pages until a vacuum
reclaims it, and even then plain VACUUM only marks the space free; its system columns
(``xmin``/``xmax``) tie every version to the transaction that wrote it. A reader with
pageinspect could match the dead version of a person's row to an answer written in the same
transaction. ``VACUUM FULL`` writes the live rows into a new file and drops the old one, so
no dead version survives. It locks the table for the moment it takes, which is why Fidelio
keeps person-linked rows (open rounds' answers and progress, dialogue drafts) in small tables
of their own and scrubs only those.

SQLite overwrites deleted content with zeros (``PRAGMA secure_delete``, set on every
connection); what remains is the write-ahead log, which a truncating checkpoint empties.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.db.session import Database

log = logging.getLogger(__name__)


async def scrub(db: Database, tables: Sequence[str]) -> bool:
    """Rewrite ``tables`` without their dead row versions (PostgreSQL) or checkpoint and
    truncate the write-ahead log (SQLite). Returns False when it could not be done now
    (another connection holds a lock); callers keep a flag and try again later."""
    names = sorted(set(tables))
    try:
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = result.first()
                # (busy, log frames, checkpointed frames): busy 1 = readers held it back.
                return not (busy and busy[0])
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # A scrub waits at most a few seconds for its lock instead of queueing every
            # answer behind it; a later run retries.
            await auto.exec_driver_sql("SET lock_timeout = '5s'")
            await auto.exec_driver_sql("VACUUM FULL " + ", ".join(f'"{name}"' for name in names))
            await auto.exec_driver_sql("RESET lock_timeout")
            return True
    except Exception as exc:  # a lock timeout or a busy database: retried later
        log.warning("scrubbing %s failed, will retry: %s", ", ".join(names), exc)
        return False
