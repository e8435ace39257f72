"""Storing anonymous suggestions so that the database cannot say who wrote them.

An anonymous suggestion has no author column, but a database keeps more than its columns.
On PostgreSQL every row version carries the id of the transaction that wrote it (``xmin``)
and of the one that deleted or replaced it (``xmax``), and deleted versions stay readable in
the table's pages (pageinspect) until the table is rewritten. The author's draft lives in
``conversation_states``, keyed by their person id and holding the text; had it been deleted
by the transaction that inserts the suggestion, its dead version would carry the person id
with ``xmax`` equal to the suggestion's ``xmin``. So, for an anonymous suggestion or an
anonymous author's answer to a follow-up question:

1. The draft is deleted by a transaction of its own (:func:`forget_draft`), committed before
   the suggestion's. The suggestion's transaction writes nothing that names a person: the
   suggestion, the de-duplication id of the chat event, a :class:`SuggestionScrub` marker
   and, for an answer, a sealed notice to the asker. Both transactions owe a scrub by
   inserting a marker, so a crash between them, or before the scrub, loses nothing.
2. :class:`SuggestionScrubber`, a periodic job beside the digest, pays what is owed. It
   rewrites every anonymous suggestion and every anonymous answer in one transaction, so
   they all share that transaction's ``xmin``: the first ``xmin`` of a suggestion was taken
   while its author was chatting, and the transaction ids next to it (their own earlier
   steps, anything else they wrote at that moment) would point at them; the job's ``xmin``
   points at nothing but the job. It then rewrites the tables with ``VACUUM FULL``
   (:func:`bot.db.scrub.scrub`), which drops the dead versions: the draft's, with the person
   id and the text, and the suggestions' first ones. Only then are the markers deleted. A
   scrub that cannot run now (a lock timeout, a snapshot older than the rewrite that would
   keep the dead versions alive) is simply tried again by the next run.

Times: an anonymous suggestion's ``created_at``/``updated_at`` and an anonymous answer's
``at`` are kept to the hour (bot/suggestions/service.py), and the marker has no time at all,
so no stored second matches a second at which the author did something else.

On SQLite no row records the transaction that wrote it, and deleted content is overwritten
with zeros (``PRAGMA secure_delete``); what remains is the write-ahead log, which holds the
pages of recent transactions until a truncating checkpoint. There the draft is deleted in the
suggestion's own transaction (a second writer would wait for the first: SQLite has one) and
the job only truncates the log.

Known limits: the sequential suggestion id places an anonymous suggestion between named ones
(which their authors' ``created_at`` dates to the second); its hour does the same. Write-ahead
logs archived and backups taken before a scrub still hold the draft.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.models import ConversationState
from bot.db.scrub import scrub as vacuum_full
from bot.db.session import Database
from bot.suggestions.tables import Suggestion, SuggestionEvent, SuggestionScrub

log = logging.getLogger(__name__)

#: Tables whose dead row versions could tie an anonymous suggestion to its author: drafts,
#: the suggestions' and answers' first versions, notices (they quote answers), the markers.
SCRUB_TABLES: tuple[str, ...] = (
    "conversation_states",
    "sealed_notices",
    "suggestion_events",
    "suggestion_scrubs",
    "suggestions",
)

ScrubFunction = Callable[[Database, Sequence[str]], Awaitable[bool]]

_XID_SPACE = 2**32


def owe_scrub(session: AsyncSession) -> None:
    """Record, in ``session``'s transaction, that a scrub is owed."""
    session.add(SuggestionScrub())


async def forget_draft(
    session: AsyncSession,
    person_id: int,
    flow: str,
    successor: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """Delete ``person_id``'s conversation state in ``flow`` (their draft) when an anonymous
    suggestion or answer is written in ``session``, and owe a scrub. With ``successor``
    (flow, data) the row is rewritten to it instead of deleted: the dialogue the draft had
    paused comes back, or a draft waiting behind another dialogue leaves it (bot/dialogues.py).

    PostgreSQL: the delete (or rewrite) commits in a transaction of its own, on another
    connection, so that the dead version of the draft (person id, text) is not stamped with
    the id of the transaction that writes the anonymous row. ``session`` must not have
    changed the state row (it would hold its lock); the handlers only read it in the final
    step. Should ``session`` then fail, the draft is gone and nothing is filed: the person is
    told that something went wrong and writes it again.

    SQLite: the change stays in ``session`` (see the module docstring).
    """
    state = await session.get(ConversationState, person_id)
    if state is not None and state.flow != flow:
        state = None  # another dialogue: not this draft, left alone
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or bind.dialect.name == "sqlite":
        if state is not None and successor is None:
            await session.delete(state)
        elif state is not None and successor is not None:
            state.flow, state.data = successor[0], dict(successor[1])
        owe_scrub(session)
        await session.flush()
        return
    if state is not None:
        # The row is changed elsewhere: this session must not try to write it back.
        session.expunge(state)
    async with AsyncSession(bind) as apart, apart.begin():
        # Were the row locked by ``session`` after all, this would wait for it for ever:
        # fail instead (the person is asked to try again).
        await apart.execute(text("SET LOCAL lock_timeout = '5s'"))
        mine = (ConversationState.person_id == person_id, ConversationState.flow == flow)
        if successor is None:
            await apart.execute(delete(ConversationState).where(*mine))
        else:
            # The row keeps its updated_at: a new time would be the second of this filing.
            await apart.execute(
                update(ConversationState)
                .where(*mine)
                .values(flow=successor[0], data=dict(successor[1]))
            )
        owe_scrub(apart)
    # And once more with the anonymous row: the scrub's rewrite must also see the row that
    # this session is about to commit.
    owe_scrub(session)
    await session.flush()


class SuggestionScrubber:
    """The periodic job that pays the scrubs owed (see the module docstring).

    ``scrub`` is the table rewrite (``bot.db.scrub.scrub``); it returns False when it could
    not be done now.
    """

    def __init__(self, db: Database, *, scrub: ScrubFunction = vacuum_full):
        self.db = db
        self.scrub = scrub

    async def owed(self) -> int:
        """How many markers wait (several filings may share one scrub)."""
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(SuggestionScrub)) or 0)

    async def run_due(self) -> bool:
        """Scrub if a scrub is owed. True when nothing is owed any more; False when it could
        not be done now (a marker stays, the next run tries again)."""
        async with self.db.session() as session:
            owed = list(await session.scalars(select(SuggestionScrub.id)))
        if not owed:
            return True
        if not self.db.is_sqlite:
            xid, own = await self._rewrite()
            # The markers seen by the rewrite are gone; its own one stands for them.
            owed = [own]
            if await self._held_back(xid):
                log.info("suggestions: a transaction older than the rewrite is open; later")
                return False
        if not await self.scrub(self.db, SCRUB_TABLES):
            return False
        # Only the markers this run has paid: one left by a filing that committed meanwhile
        # waits for the next run.
        async with self.db.session() as session:
            await session.execute(delete(SuggestionScrub).where(SuggestionScrub.id.in_(owed)))
        log.info("suggestions: dead row versions of anonymous drafts scrubbed")
        return True

    async def _rewrite(self) -> tuple[int, int]:
        """One transaction that writes a new version of every anonymous suggestion and
        anonymous answer (they now share its ``xmin``) and replaces the markers it sees by one
        of its own (the scrub then removes their old versions). Returns its transaction id
        and its marker's id."""
        async with self.db.session() as session:
            xid = int(await session.scalar(text("SELECT txid_current()")) or 0)
            await session.execute(
                update(Suggestion)
                .where(Suggestion.anonymous.is_(True))
                .values(anonymous=Suggestion.anonymous)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(SuggestionEvent)
                .where(
                    SuggestionEvent.kind == "answer",
                    SuggestionEvent.actor_id.is_(None),
                    SuggestionEvent.suggestion_id.in_(
                        select(Suggestion.id).where(Suggestion.anonymous.is_(True))
                    ),
                )
                .values(kind=SuggestionEvent.kind)
                .execution_options(synchronize_session=False)
            )
            await session.execute(delete(SuggestionScrub))
            marker = SuggestionScrub()
            session.add(marker)
            await session.flush()
            return xid, marker.id

    async def _held_back(self, xid: int) -> bool:
        """True when a snapshot taken before transaction ``xid`` committed is still in use
        (an open transaction, a replication slot, a prepared transaction): ``VACUUM FULL``
        keeps the dead versions such a snapshot may still see. Sessions on other databases
        of the server do not count: they hold back no vacuum of this one's tables."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT CAST(CAST(backend_xmin AS text) AS bigint) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    " AND datname = current_database() AND backend_xmin IS NOT NULL"
                    " UNION ALL SELECT CAST(CAST(backend_xid AS text) AS bigint)"
                    " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND datname = current_database()"
                    " AND backend_xid IS NOT NULL"
                    " UNION ALL SELECT CAST(CAST(xmin AS text) AS bigint)"
                    " FROM pg_replication_slots WHERE xmin IS NOT NULL"
                    " UNION ALL SELECT CAST(CAST(transaction AS text) AS bigint)"
                    " FROM pg_prepared_xacts"
                )
            )
            horizons = [int(v) for v in rows.scalars()]
        ours = xid % _XID_SPACE
        # 32-bit transaction ids wrap around: "at or before ours" in modular order.
        return any((ours - other) % _XID_SPACE < _XID_SPACE // 2 for other in horizons)
