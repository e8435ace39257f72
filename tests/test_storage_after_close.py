"""Someone holding the database after a round closes (MEASUREMENT.md rule 6).

People answer through the service in transactions of their own, as taps in chat do; the round
closes on schedule. Then, as a reader of the database: every join of answers, participation,
people, teams and the audit log; on PostgreSQL the system columns (xmin, xmax, ctid) and every
tuple, live or dead, that pageinspect's heap_page_items can read; on SQLite the raw bytes of
the database file and its write-ahead log. Nothing links an answer to a person or to fewer
than k people. Also: rounds closed before release plans existed are rewritten by
``db upgrade`` one transaction per round, safely interrupted and re-run.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Person, Team
from bot.db.session import Database
from bot.loyalty import release
from bot.loyalty.plan import ORG
from bot.loyalty.tables import ClosedResponse, PlanAtom, ReleaseGroup
from bot.pulse.content import load_survey
from bot.pulse.schedule import respondent_key
from bot.pulse.service import SurveyService
from bot.pulse.tables import Participation, Response, SurveyRound

from .harness import REPO, load_demo, make_settings
from .loyalty_seed import FIRST

ITEMS_TAKEN = 0.9


async def run_a_round(
    db: Database, clock: ManualClock, database_url: str
) -> tuple[SurveyService, int, dict[int, dict[str, Any]], set[str], set[int]]:
    """Open a round, let most people answer it one transaction each (remembering, as only a
    test can, their keys and the transaction ids that wrote their answers), close it."""
    settings = make_settings(database_url)
    await load_demo(db, clock)
    survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    service = SurveyService(settings, db, clock)
    async with db.session() as session:
        await service.schedule_in(session, survey, items, "test")
    clock.set(FIRST)
    assert (await service.run_due()).opened == 1
    async with db.session() as session:
        round_ = await session.scalar(select(SurveyRound))
        assert round_ is not None and round_.secret is not None
        round_id, secret, asked = round_.id, round_.secret, list(round_.items)
        people = list(await session.scalars(select(Person).order_by(Person.id)))
    rng = random.Random(7)
    given: dict[int, dict[str, Any]] = {}
    keys: set[str] = set()
    xids: set[int] = set()
    for person in people:
        if rng.random() < 0.2:
            continue
        async with db.session() as session:
            try:
                round_, _schedule, participation = await service.open_round_for(
                    session, round_id, person
                )
            except Exception:
                continue  # not invited (left, or outside the audience)
            answers: dict[str, Any] = {}
            for item_id in asked:
                kind = items[item_id].kind
                if rng.random() > ITEMS_TAKEN:
                    await service.record(
                        session, round_, participation, person, item_id, skipped=True
                    )
                    continue
                if kind == "text":
                    value: Any = f"comment from the desk of person {person.id}"
                    await service.record(
                        session, round_, participation, person, item_id, text=value
                    )
                else:
                    value = rng.randint(0, 10) if kind == "scale0_10" else rng.randint(1, 5)
                    await service.record(
                        session, round_, participation, person, item_id, value=value
                    )
                answers[item_id] = value
            if not db.is_sqlite:
                xids.add(int(await session.scalar(text("SELECT txid_current()")) or 0))
        if answers:
            given[person.id] = answers
            keys.add(respondent_key(secret, person.id))
    clock.set(FIRST + timedelta(days=5))
    assert (await service.run_due()).closed == 1
    return service, round_id, given, keys, xids


async def test_after_close_no_join_links_an_answer_to_a_person(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url)
    k = settings.anonymity.min_group
    _service, round_id, given, keys, _xids = await run_a_round(db, clock, database_url)
    assert len(given) >= 20
    async with db.session() as session:
        round_ = await session.get(SurveyRound, round_id)
        assert round_ is not None
        assert round_.secret is None and round_.planned_at is not None
        assert round_.scrubbed_at is not None
        # Open-round answers are gone; what is kept has no team and no pseudonym.
        assert await session.scalar(select(func.count()).select_from(Response)) == 0
        assert "team_id" not in ClosedResponse.__table__.c
        assert "respondent_key" not in ClosedResponse.__table__.c
        kept = list(await session.scalars(select(ClosedResponse)))
        atoms = {a.id: a for a in await session.scalars(select(PlanAtom))}
        groups = {g.group_key: g for g in await session.scalars(select(ReleaseGroup))}
        participation = list(
            await session.scalars(select(Participation).where(Participation.round_id == round_id))
        )
        teams = {t.id: t for t in await session.scalars(select(Team))}
        people = {p.id: p for p in await session.scalars(select(Person))}
        audit = list(await session.scalars(select(AuditEntry)))
    # Every answer of a numeric item is kept, under an atom of at least k response sets.
    numeric = sum(1 for a in given.values() for key, v in a.items() if not isinstance(v, str))
    assert sum(1 for r in kept if r.value_text is None) == numeric
    sets: dict[int, set[int]] = defaultdict(set)
    for row in kept:
        sets[row.atom_id].add(row.set_no)
    for atom_id, numbers in sets.items():
        assert len(numbers) >= k, (atoms[atom_id].owner, len(numbers))
        assert atoms[atom_id].respondents == len(numbers)
    # Joining participation, people and teams to an atom's group narrows it to no fewer
    # than k people who answered: who answered (participation) is known by team, the atom
    # says only "someone among these >= k".
    responded = {p.person_id for p in participation if p.finished}
    assert responded == set(given)
    assert all(p.answered == 0 for p in participation)  # how far someone got is gone
    for atom in atoms.values():
        if atom.kind != "answers":
            continue
        group = groups[atom.owner]
        inner = {g for g in groups if g != atom.owner and g in group.teams}
        covered = (
            set(group.teams) - {t for g in inner for t in groups[g].teams}
            if atom.owner != ORG
            else set(teams) - {t for g in inner for t in groups[g].teams}
        )
        candidates = {p for p in responded if people[p].team_id in covered}
        assert len(candidates) == atom.respondents >= k
    # The comments atom: no link to a numeric set (numbers of its own, its own atom).
    comment_atoms = [a for a in atoms.values() if a.kind == "comments"]
    assert len(comment_atoms) <= 1
    # The audit log holds no answer and no pseudonym.
    flat = " ".join(str(a.detail) for a in audit)
    assert not any(key in flat for key in keys)
    assert "comment from the desk" not in flat


async def test_sqlite_files_hold_no_trace_of_the_open_round(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """secure_delete zeroes deleted rows and the truncating checkpoint empties the WAL: the
    pseudonymous keys written while the round was open are nowhere in the files."""
    if not db.is_sqlite:
        pytest.skip("SQLite files")
    _service, _round_id, _given, keys, _xids = await run_a_round(db, clock, database_url)
    path = Path(database_url.removeprefix("sqlite+aiosqlite:///"))
    blob = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        blob += wal.read_bytes()
    assert keys
    found = [key for key in keys if key.encode() in blob]
    assert found == []


async def _heap_tuples_carry_no_trace(
    conn: AsyncConnection, table: str, xids: set[int], keys: set[str]
) -> Counter[str]:
    """Read every heap page of ``table`` (pageinspect): no tuple, live or dead, was written or
    deleted by a transaction in ``xids`` or holds one of ``keys``.  Counts tuples and dead
    ones."""
    pages = int(
        await conn.scalar(
            text(f"SELECT pg_relation_size('{table}') / current_setting('block_size')::int")
        )
        or 0
    )
    counts: Counter[str] = Counter()
    for page in range(pages):
        rows = (
            await conn.execute(
                text(
                    "SELECT lp_flags, t_xmin, t_xmax, t_data FROM "
                    f"heap_page_items(get_raw_page('{table}', {page}))"
                )
            )
        ).all()
        for lp_flags, xmin, xmax, data in rows:
            if lp_flags != 1:  # only normal pointers carry a tuple
                continue
            counts["tuples"] += 1
            assert int(xmin) not in xids, (table, "xmin of an answer")
            assert int(xmax or 0) not in xids, (table, "xmax of an answer")
            if int(xmax or 0):
                counts["dead"] += 1
            raw = bytes(data or b"")
            assert not any(key.encode() in raw for key in keys), (table, "a key")
    return counts


async def _distinct_xmins(conn: AsyncConnection, rows_of: str) -> set[int]:
    """The distinct ids of the transactions that wrote the rows of ``rows_of`` (a table,
    optionally with a WHERE clause)."""
    return {
        int(x)
        for (x,) in (
            await conn.execute(text(f"SELECT DISTINCT xmin::text::bigint FROM {rows_of}"))
        ).all()
    }


async def test_postgresql_system_columns_and_dead_rows_link_nothing(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """No tuple, live or dead, of answers, participation or dialogue state carries the
    transaction id that wrote a person's answers; the rows kept after close all share the
    closing transaction's id and their physical order follows atom and a random number."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL system columns")
    _service, round_id, given, keys, xids = await run_a_round(db, clock, database_url)
    assert xids
    async with db.engine.connect() as conn:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        await conn.commit()
        seen: dict[str, Counter[str]] = {}
        for table in (
            "responses",
            "participation",
            "conversation_states",
            "closed_responses",
            "plan_atoms",
            "release_groups",
        ):
            seen[table] = await _heap_tuples_carry_no_trace(conn, table, xids, keys)
        assert seen["responses"]["tuples"] == 0  # only open rounds live there
        assert seen["participation"]["dead"] == 0
        # Rows kept after close share one transaction id: the close.
        kept_xmins = await _distinct_xmins(conn, "closed_responses")
        part_xmins = await _distinct_xmins(conn, f"participation WHERE round_id = {round_id}")
        assert len(kept_xmins) == 1 and part_xmins == kept_xmins
        # Physical order: by atom, then the random set number (not by arrival).
        order = (
            await conn.execute(
                text("SELECT atom_id, set_no, item_id FROM closed_responses ORDER BY ctid")
            )
        ).all()
        assert [tuple(r) for r in order] == sorted(tuple(r) for r in order)
        # Participation is in person order, whatever the order of answering was.
        people = (
            (
                await conn.execute(
                    text(
                        f"SELECT person_id FROM participation WHERE round_id = {round_id} ORDER BY ctid"
                    )
                )
            )
            .scalars()
            .all()
        )
        assert list(people) == sorted(people)
    assert len(given) >= 20


# Rounds closed before release plans


async def _old_format_rounds(db: Database, clock: ManualClock, database_url: str) -> list[int]:
    """Two rounds closed the old way: answers still in ``responses`` with their team."""
    from .loyalty_seed import schedule_survey

    settings = make_settings(database_url)
    await load_demo(db, clock)
    campaign = await schedule_survey(settings, db, clock)
    ids = []
    for number in (1, 2):
        async with db.session() as session:
            people = list(await session.scalars(select(Person).where(Person.leave_date.is_(None))))
            round_ = SurveyRound(
                campaign_id=campaign,
                number=number,
                opens_at=FIRST + timedelta(weeks=2 * number),
                closes_at=FIRST + timedelta(weeks=2 * number, days=4),
                status="closed",
                secret=None,
                items=["sat_overall", "intent_stay", "enps"],
                invited=len(people),
                closed_at=FIRST + timedelta(weeks=2 * number, days=4),
            )
            session.add(round_)
            await session.flush()
            for person in people:
                answered = person.id % 4 != 0
                session.add(
                    Participation(
                        round_id=round_.id,
                        person_id=person.id,
                        team_id=person.team_id,
                        answered=3 if answered else 0,
                        finished=answered,
                    )
                )
                if answered:
                    for item, value in (("sat_overall", 4), ("intent_stay", 3), ("enps", 8)):
                        session.add(
                            Response(
                                round_id=round_.id,
                                respondent_key=f"old-{round_.id}-{person.id}",
                                item_id=item,
                                team_id=person.team_id,
                                value_num=value,
                            )
                        )
            ids.append(round_.id)
    return ids


async def _storage(db: Database) -> tuple[Any, ...]:
    async with db.session() as session:
        return (
            await session.scalar(select(func.count()).select_from(Response)),
            await session.scalar(select(func.count()).select_from(ClosedResponse)),
            await session.scalar(select(func.count()).select_from(ReleaseGroup)),
            await session.scalar(select(func.count()).select_from(PlanAtom)),
            sorted(
                (r.id, r.planned_at is not None) for r in await session.scalars(select(SurveyRound))
            ),
        )


async def test_db_upgrade_rewrites_old_closed_rounds_once_even_if_interrupted(
    db: Database, clock: ManualClock, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(database_url)
    first, second = await _old_format_rounds(db, clock, database_url)
    before = await _storage(db)
    assert before[0] > 0 and before[1] == 0

    real = release.close_round_storage

    async def dies_on_the_second(
        session: Any, settings_: Any, round_: Any, now: Any, **kw: Any
    ) -> Any:
        if round_.id == second:
            await real(session, settings_, round_, now, **kw)  # half of the work is done...
            raise KeyboardInterrupt("power cut")  # ...and then the process stops
        return await real(session, settings_, round_, now, **kw)

    monkeypatch.setattr(release, "close_round_storage", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        await release.rewrite_closed_rounds(db, settings, clock.now())
    middle = await _storage(db)
    # The first round is fully rewritten, the second untouched (its transaction rolled back).
    assert middle[4] == [(first, True), (second, False)]
    async with db.session() as session:
        left = await session.scalar(
            select(func.count()).select_from(Response).where(Response.round_id == second)
        )
        moved = await session.scalar(
            select(func.count())
            .select_from(ClosedResponse)
            .where(ClosedResponse.round_id == second)
        )
    assert left == before[0] // 2 and moved == 0

    monkeypatch.setattr(release, "close_round_storage", real)
    assert await release.rewrite_closed_rounds(db, settings, clock.now()) == 1
    after = await _storage(db)
    assert after[0] == 0 and after[1] == before[0]  # every answer kept, by plan atom
    assert after[4] == [(first, True), (second, True)]
    # Running it again changes nothing.
    assert await release.rewrite_closed_rounds(db, settings, clock.now()) == 0
    assert await _storage(db) == after
    async with db.session() as session:
        participation = list(await session.scalars(select(Participation)))
    assert all(p.answered == 0 for p in participation)
