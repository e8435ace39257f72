"""Anonymous suggestions, read as someone who holds the database would read it.

The author of an anonymous suggestion (and of an anonymous follow-up answer) must not be
linkable to it by any value (person ids, identical timestamps, references in messages) nor by
the engine's own bookkeeping: on PostgreSQL the system columns ``xmin``/``xmax`` of live and
dead row versions as pageinspect shows them (toast tables included), on SQLite free pages and
the write-ahead log. Every flow goes through the real chat path (the Telegram fake).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from bot.app import Runtime
from bot.clock import ManualClock
from bot.db.models import AuditEntry, ConversationState, Delivery, Person
from bot.db.scrub import scrub
from bot.db.session import Database
from bot.suggestions.digest import DigestService
from bot.suggestions.scrubbing import SCRUB_TABLES, SuggestionScrubber
from bot.suggestions.tables import SealedNotice, Suggestion, SuggestionEvent, SuggestionScrub
from scheduler.suggestions import suggestion_jobs

from .fakes.telegram import FakeTelegramServer
from .harness import TelegramDialog, fake_telegram, running
from .test_suggestions_e2e import deliver, demo_on_telegram, uid

ROME = ZoneInfo("Europe/Rome")


fake = fake_telegram("fake", 50.0)


# Not on the hour: an anonymous suggestion's times are kept to the hour, so a request made
# exactly on the hour would share its second with them whatever the code does.
START = datetime(2027, 3, 1, 11, 7, 23, tzinfo=ROME)
HR = "hr@demo.fidelio.example"
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano (11 people)
MARCO = "marco.bianchi@demo.fidelio.example"  # Headquarters, Italian
#: Where a person id sits, per inspected table.
PERSON_COLUMNS = {
    "suggestions": ("author_id",),
    "conversation_states": ("person_id",),
    "suggestion_events": ("actor_id",),
    "audit_log": ("actor_person_id",),
    "outbox": ("person_id",),
}
INSPECTED = tuple(PERSON_COLUMNS)


def long_text(seed: int, length: int) -> str:
    """Letters and spaces only (no personal-data prompt), poorly compressible: long enough
    that a draft holding it is moved to the toast table, in chunks."""
    rng = random.Random(seed)
    words = []
    while sum(len(w) + 1 for w in words) < length:
        words.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)))
    return " ".join(words)[:length].strip()


def fragments(value: str, size: int = 24, step: int = 150) -> list[bytes]:
    """Pieces of ``value`` small enough to lie whole inside one toast chunk."""
    raw = value.encode()
    return [raw[i : i + size] for i in range(0, max(1, len(raw) - size), step)]


# Reading the database as its holder


@dataclass(frozen=True)
class HeapTuple:
    table: str
    page: int
    lp: int
    xmin: int
    xmax: int
    data: bytes
    attrs: list[bytes | None]
    dead: bool


async def heap_tuples(db: Database, relation: str) -> list[HeapTuple]:
    """Every tuple pageinspect finds in ``relation``'s pages, live or dead."""
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        pages = int(
            await auto.scalar(
                text(
                    "SELECT pg_relation_size(CAST(:r AS regclass))"
                    " / current_setting('block_size')::int"
                ),
                {"r": relation},
            )
            or 0
        )
        live = set(
            (await auto.execute(text(f"SELECT CAST(ctid AS text) FROM {relation}"))).scalars()
        )
        found = []
        for page in range(pages):
            rows = await auto.execute(
                text(
                    "SELECT lp, t_xmin, t_xmax, t_data,"
                    " tuple_data_split(CAST(:r AS regclass), t_data, t_infomask, t_infomask2,"
                    " t_bits)"
                    " FROM heap_page_items(get_raw_page(:r, :n)) WHERE t_data IS NOT NULL"
                ),
                {"r": relation, "n": page},
            )
            for lp, xmin, xmax, data, attrs in rows.all():
                found.append(
                    HeapTuple(
                        relation,
                        page,
                        int(lp),
                        int(xmin),
                        int(xmax),
                        bytes(data),
                        [bytes(a) if a is not None else None for a in attrs],
                        f"({page},{lp})" not in live,
                    )
                )
    return found


async def attnums(db: Database, table: str, columns: tuple[str, ...]) -> list[int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT attnum FROM pg_attribute WHERE attrelid = CAST(:t AS regclass)"
                " AND attname = ANY(:c)"
            ),
            {"t": table, "c": list(columns)},
        )
        return [int(n) for n in rows.scalars()]


async def toast_of(db: Database, table: str) -> str | None:
    async with db.engine.connect() as conn:
        name = await conn.scalar(
            text(
                "SELECT CAST(reltoastrelid AS regclass)::text FROM pg_class"
                " WHERE oid = CAST(:t AS regclass) AND reltoastrelid <> 0"
            ),
            {"t": table},
        )
    return str(name) if name else None


async def xmin_of(db: Database, table: str, row_id: int) -> int:
    async with db.engine.connect() as conn:
        value = await conn.scalar(
            text(f"SELECT CAST(CAST(xmin AS text) AS bigint) FROM {table} WHERE id = :i"),
            {"i": row_id},
        )
    assert value is not None
    return int(value)


def int4(value: int) -> bytes:
    return struct.pack("<i", value)


async def bookkeeping_links(
    db: Database, person_id: int, xid: int, own: tuple[str, int], secret_texts: list[str]
) -> list[str]:
    """What pageinspect tells about ``person_id`` and the transaction ``xid`` that wrote the
    row ``own`` (table, id): person-carrying tuples written or deleted by ``xid``, and dead
    tuples (toast included) holding the person id or pieces of ``secret_texts``."""
    problems = []
    pieces = [p for t in secret_texts for p in fragments(t)]
    for table in INSPECTED:
        numbers = await attnums(db, table, PERSON_COLUMNS[table])
        own_id = int4(own[1]) if own[0] == table else None
        for tup in await heap_tuples(db, table):
            people = [tup.attrs[n - 1] for n in numbers if n - 1 < len(tup.attrs)]
            carries_person = any(v is not None for v in people)
            if xid in (tup.xmin, tup.xmax) and carries_person:
                problems.append(f"{table} ({tup.page},{tup.lp}) carries a person, xid {xid}")
            if tup.dead and int4(person_id) in people:
                problems.append(f"{table} ({tup.page},{tup.lp}) dead, holds the author's id")
            if tup.dead and any(p in tup.data for p in pieces):
                problems.append(f"{table} ({tup.page},{tup.lp}) dead, holds the text")
            if tup.dead and own_id is not None and tup.attrs[0] == own_id:
                problems.append(f"{table} ({tup.page},{tup.lp}) dead version of {own}")
        toast = await toast_of(db, table)
        if toast and table in ("conversation_states", "suggestions", "suggestion_events"):
            for tup in await heap_tuples(db, toast):
                if tup.dead:
                    problems.append(f"{toast} of {table} ({tup.page},{tup.lp}) dead")
                if tup.dead and any(p in tup.data for p in pieces):
                    problems.append(f"{toast} of {table} ({tup.page},{tup.lp}) holds the text")
    return problems


async def value_links(db: Database, person_id: int, suggestion_id: int) -> list[str]:
    """Joins of the suggestion with everything person-stamped: ids, references, seconds."""
    problems: list[str] = []
    ref = f"S-{suggestion_id:04d}"
    async with db.session() as session:
        suggestion = await session.get(Suggestion, suggestion_id)
        assert suggestion is not None
        if suggestion.author_id is not None:
            problems.append("author column")
        times = {suggestion.created_at, suggestion.updated_at}
        events = list(
            await session.scalars(
                select(SuggestionEvent).where(SuggestionEvent.suggestion_id == suggestion_id)
            )
        )
        times |= {e.at for e in events if e.kind == "answer"}
        seconds = {t.replace(microsecond=0) for t in times}
        if any(e.actor_id == person_id for e in events):
            problems.append("suggestion_events actor")
        for state in await session.scalars(select(ConversationState)):
            if state.person_id == person_id:
                problems.append(f"conversation_states {state.flow}")
            if state.updated_at.replace(microsecond=0) in seconds:
                problems.append("conversation_states same second")
        for entry in await session.scalars(select(AuditEntry)):
            linked = entry.actor_person_id == person_id
            names_it = ref in repr(entry.detail) or suggestion_id in (entry.detail or {}).values()
            if linked and names_it:
                problems.append(f"audit {entry.action}")
            if linked and entry.at.replace(microsecond=0) in seconds:
                problems.append(f"audit {entry.action} same second")
        for delivery in await session.scalars(
            select(Delivery).where(Delivery.person_id == person_id)
        ):
            if ref in repr(delivery.context) or delivery.purpose.startswith("suggestion"):
                problems.append(f"outbox {delivery.template}")
            if delivery.created_at.replace(microsecond=0) in seconds:
                problems.append(f"outbox {delivery.template} same second")
        for notice in await session.scalars(select(SealedNotice)):
            if str(person_id) in repr(notice.context):
                problems.append("sealed_notices names the author")
    return problems


def sqlite_files(database_url: str) -> tuple[bytes, bytes]:
    path = Path(make_url(database_url).database or "")
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes(), wal.read_bytes() if wal.exists() else b""


async def markers(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(SuggestionScrub)) or 0)


# Tests


async def _aisha_files_anonymously_and_a_scrub_is_owed(
    db: Database, clock: ManualClock, a: TelegramDialog, idea: str, postgres: bool
) -> None:
    """Aisha files ``idea`` anonymously, taking her time; the draft is gone, the suggestion
    holds no author, and a scrub of the draft's dead versions is owed."""
    assert "Write your idea" in (await a.say("/suggest"))[0]
    clock.advance(timedelta(seconds=41))
    assert "Which category" in (await a.say(idea))[0]
    clock.advance(timedelta(seconds=13))
    await a.press("Product")
    clock.advance(timedelta(seconds=9))
    sent = (await a.press("Anonymously"))[0]
    assert "S-0001" in sent and "anonymous" in sent

    async with db.session() as session:
        filed = await session.get(Suggestion, 1)
    assert filed is not None and filed.anonymous and filed.text == idea
    # The draft is gone, and a scrub is owed (durably: a crash now loses nothing).
    assert await markers(db) >= 1
    if postgres:
        # The bug: the draft's dead version (her person id, the text) was deleted by the
        # very transaction that inserted the suggestion.
        xid = await xmin_of(db, "suggestions", 1)
        for tup in await heap_tuples(db, "conversation_states"):
            assert xid not in (tup.xmin, tup.xmax), "draft deleted with the suggestion"
        # Not yet scrubbed: the draft's dead versions, toasted, still hold the text (so
        # the checks below can see what they look for).
        toast = await toast_of(db, "conversation_states")
        assert toast is not None
        assert any(
            t.dead and any(p in t.data for p in fragments(idea))
            for t in await heap_tuples(db, toast)
        )


async def _marco_files_a_named_suggestion(
    db: Database, clock: ManualClock, fake: FakeTelegramServer, marco: Person
) -> None:
    """(c) A named suggestion is filed as before: author column, no scrub owed."""
    clock.advance(timedelta(minutes=3))
    m = TelegramDialog(fake, uid(marco.id))
    await m.say("/suggerisci Piu parcheggi per i clienti il sabato")
    await m.press("Servizio clienti")
    assert "S-0002" in (await m.press("Con il mio nome"))[0]
    async with db.session() as session:
        named = await session.get(Suggestion, 2)
    assert named is not None and named.author_id == marco.id and not named.anonymous
    assert named.created_at == clock.now() and named.reply_token is None
    assert await markers(db) == 0


async def _aisha_answers_a_question_anonymously(
    runtime: Runtime,
    db: Database,
    clock: ManualClock,
    a: TelegramDialog,
    hr: TelegramDialog,
    answer_text: str,
    postgres: bool,
) -> SuggestionEvent:
    """HR asks about S-0001; Aisha answers without her name; a scrub is owed.  Returns the
    stored answer."""
    clock.advance(timedelta(minutes=5))
    await hr.say("/suggestion S-0001 ask Which stores first?")
    await deliver(runtime)
    assert "Which stores first?" in (a.last_message().text or "")
    clock.advance(timedelta(seconds=17))
    assert "S-0001" in (await a.press("Answer"))[0]
    clock.advance(timedelta(seconds=29))
    assert "without your name" in (await a.say(answer_text))[0]
    await deliver(runtime)
    relayed = hr.last_message().text or ""
    assert answer_text[:30] in relayed and "Aisha" not in relayed
    async with db.session() as session:
        answer = await session.scalar(
            select(SuggestionEvent).where(SuggestionEvent.kind == "answer")
        )
    assert answer is not None and answer.actor_id is None
    assert await markers(db) >= 1
    if postgres:
        xid = await xmin_of(db, "suggestion_events", answer.id)
        for tup in await heap_tuples(db, "conversation_states"):
            assert xid not in (tup.xmin, tup.xmax), "answer state deleted with the answer"
    return answer


async def test_anonymous_suggestion_and_answer_leave_no_link_to_the_author(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people, settings = await demo_on_telegram(db, clock, fake, database_url, START)
    aisha, marco, hr_person = people[AISHA], people[MARCO], people[HR]
    postgres = not db.is_sqlite
    idea = long_text(1, 1990)
    answer_text = long_text(2, 600)
    async with running(settings, clock, background=False) as runtime:
        a = TelegramDialog(fake, uid(aisha.id))
        await _aisha_files_anonymously_and_a_scrub_is_owed(db, clock, a, idea, postgres)

        # The periodic job scrubs.
        assert await SuggestionScrubber(runtime.db).run_due()
        assert await markers(db) == 0
        assert await value_links(db, aisha.id, 1) == []
        if postgres:
            xid = await xmin_of(db, "suggestions", 1)
            assert await bookkeeping_links(db, aisha.id, xid, ("suggestions", 1), [idea]) == []
        else:
            main, wal = sqlite_files(database_url)
            assert main.count(idea.encode()) == 1  # the live suggestion, nothing deleted
            assert idea.encode()[:40] not in wal

        await _marco_files_a_named_suggestion(db, clock, fake, marco)
        # A follow-up question, answered anonymously.
        hr = TelegramDialog(fake, uid(hr_person.id))
        answer = await _aisha_answers_a_question_anonymously(
            runtime, db, clock, a, hr, answer_text, postgres
        )

        assert await SuggestionScrubber(runtime.db).run_due()
        assert await markers(db) == 0
        assert await value_links(db, aisha.id, 1) == []
        if postgres:
            for table, row in (("suggestions", 1), ("suggestion_events", answer.id)):
                xid = await xmin_of(db, table, row)
                found = await bookkeeping_links(
                    db, aisha.id, xid, (table, row), [idea, answer_text]
                )
                assert found == []
        else:
            main, wal = sqlite_files(database_url)
            assert main.count(answer_text.encode()) == 1
            assert answer_text.encode()[:40] not in wal and idea.encode()[:40] not in wal

        # She still reaches her own suggestion; nobody else does.
        mine = (await a.say("/mysuggestions"))[0]
        assert "S-0001" in mine and "S-0002" not in mine


class FailingOnce:
    """``scrub`` that fails (as on a lock timeout) the first time it is called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, db: Database, tables: Any) -> bool:
        self.calls += 1
        if self.calls == 1:
            return False
        return await scrub(db, tables)


async def test_an_interrupted_scrub_is_retried_by_the_periodic_job(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people, settings = await demo_on_telegram(db, clock, fake, database_url, START)
    aisha = people[AISHA]
    idea = "Swap the demo units between the stores every quarter"
    async with running(settings, clock, background=False):
        a = TelegramDialog(fake, uid(aisha.id))
        await a.say(f"/suggest {idea}")
        await a.press("Product")
        assert "S-0001" in (await a.press("Anonymously"))[0]

    # The job the scheduler runs, with a scrub that fails once.
    flaky = FailingOnce()
    job = SuggestionScrubber(db, scrub=flaky)
    scheduler = AsyncIOScheduler(timezone="UTC")
    await suggestion_jobs(DigestService(settings, db, clock), 30.0, job)(scheduler)
    wired = scheduler.get_job("suggestions:scrub")
    assert wired is not None and wired.func == job.run_due

    assert await job.run_due() is False
    assert flaky.calls == 1 and await markers(db) >= 1
    if not db.is_sqlite:
        # Nothing was scrubbed: her draft's dead versions are still readable.
        dead = [t for t in await heap_tuples(db, "conversation_states") if t.dead]
        assert any(t.attrs[0] == int4(aisha.id) for t in dead)

    # After a restart (a new job object) the marker is still there and the scrub happens.
    again = SuggestionScrubber(db, scrub=flaky)
    assert await again.run_due() is True
    assert flaky.calls == 2 and await markers(db) == 0
    assert await again.run_due() is True and flaky.calls == 2  # nothing owed: no scrub
    assert await value_links(db, aisha.id, 1) == []
    if not db.is_sqlite:
        xid = await xmin_of(db, "suggestions", 1)
        assert await bookkeeping_links(db, aisha.id, xid, ("suggestions", 1), [idea]) == []
    assert set(SCRUB_TABLES) >= {"conversation_states", "suggestions", "suggestion_events"}
