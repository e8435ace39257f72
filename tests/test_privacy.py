"""Personal data: export everything held about a person, erase it (keeping anonymous answers
and counts), retention of the audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.briefings.content import load_briefing
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import AuditEntry, Base, ChannelIdentity, ConversationState, Delivery, Person
from bot.db.session import Database
from bot.events import ChannelUser, TextReceived
from bot.features import privacy_registry, retention_rules
from bot.privacy.parts import PersonalDataPart
from bot.privacy.retention import RetentionRule, apply_retention
from bot.privacy.service import NotHeld, export_person, forget_person
from bot.pulse.tables import Participation, Response

from .harness import REPO, ConsoleDialog, console_runtime, invite_code, load_demo, make_settings
from .test_cli import fidelio, write_config
from .test_surveys_ops import BEFORE, FIRST, answer_all, at, link, rounds_of, schedule

AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano, employee; manager Luca Moretti
AISHA_NAME = "Aisha Khan"
HR = "hr@demo.fidelio.example"
BRIEFINGS = REPO / "content" / "briefings"
READINESS_TIME = datetime(2027, 2, 28, 9, 30, tzinfo=FIRST.tzinfo)


async def dump(db: Database) -> str:
    """Every row of every table, as text: what a copy of the database would reveal."""
    parts = []
    async with db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(text(f'SELECT * FROM "{table.name}"'))).all()
            parts.append(f"{table.name}: {sorted(map(repr, rows))}")
    return "\n".join(parts)


async def counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Response, Participation, BriefingReceipt, Person)
        }


async def held_about_aisha(db: Database, clock: ManualClock, database_url: str) -> None:
    """Aisha: linked on the console, invited to Telegram, answered a pulse round, received a
    briefing and is named in her manager's readiness note, was refused a command, is
    mentioned in an audit entry, and is in the middle of a conversation."""
    await load_demo(db, clock)
    clock.set(BEFORE)
    settings = make_settings(database_url, console={"enabled": True})
    async with console_runtime(settings, clock) as runtime:
        await link(runtime, AISHA, HR)
        await invite_code(db, AISHA, clock)
        await schedule(runtime)
        await at(runtime, clock, FIRST)
        round_id = (await rounds_of(db))[0].id
        await answer_all(
            runtime, round_id, AISHA, {"sat_overall": 2, "enps": 3, "comment": "More staff."}
        )
        refused = await ConsoleDialog(runtime, AISHA).say("status")
        assert "not available" in refused
        clock.set(BEFORE)
        await runtime.service("briefings").schedule(
            load_briefing(BRIEFINGS, "spring-trade-in"), actor=HR
        )
        clock.set(READINESS_TIME)
        await runtime.service("briefings").run_due()
    async with db.session() as session:
        aisha = await session.scalar(select(Person).where(Person.email == AISHA))
        assert aisha is not None
        session.add(
            ConversationState(
                person_id=aisha.id, flow="pulse", data={"round": round_id}, updated_at=clock.now()
            )
        )
        text = f"{AISHA_NAME} asked for a transfer"
        session.add(AuditEntry.by(HR, clock.now(), "people.note", about=AISHA, text=text))


async def test_export_holds_everything_about_the_person_but_no_survey_answer(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await held_about_aisha(db, clock, database_url)
    data = await export_person(db, AISHA.upper(), clock, registry=privacy_registry())
    assert data["directory"]["email"] == AISHA and data["directory"]["name"] == AISHA_NAME
    assert data["directory"]["team"] == "Sales Milano"
    assert [i["channel"] for i in data["identities"]] == ["console"]
    assert len(data["invites"]) == 1 and "code" not in json.dumps(data["invites"])
    [participation] = data["survey_participation"]
    assert participation["finished"] is True and participation["questions_answered"] >= 3
    [receipt] = data["briefing_receipts"]
    assert receipt["briefing"] == "spring-trade-in" and receipt["acknowledged_at"] is None
    assert {d["purpose"] for d in data["deliveries"]} == {"pulse-invitation", "briefing"}
    actions = {(a["action"], a["by_this_person"]) for a in data["audit_entries"]}
    assert ("denied", True) in actions and ("people.note", False) in actions
    assert data["conversation_state"]["flow"] == "pulse"
    assert "cannot be linked to you" in data["survey_answers"]
    text_of_export = json.dumps(data)
    assert "More staff." not in text_of_export  # her anonymous comment is not linkable
    async with db.session() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "people.export"))
    assert entry is not None and entry.detail == {"person_id": data["person_id"]}
    with pytest.raises(NotHeld):
        await export_person(db, "nobody@demo.fidelio.example", clock, registry=privacy_registry())


async def test_forget_erases_identity_keeps_anonymous_answers_and_counts(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await held_about_aisha(db, clock, database_url)
    before = await counts(db)
    async with db.session() as session:
        answers_before = sorted(
            (r.item_id, r.value_num, r.value_text) for r in await session.scalars(select(Response))
        )
    everything = await dump(db)
    assert AISHA in everything and AISHA_NAME in everything  # readiness note, audit, directory

    summary = await forget_person(db, AISHA, clock, registry=privacy_registry())

    after = await dump(db)
    assert AISHA not in after.lower() and AISHA_NAME not in after
    assert await counts(db) == before
    async with db.session() as session:
        answers_after = sorted(
            (r.item_id, r.value_num, r.value_text) for r in await session.scalars(select(Response))
        )
        erased = await session.get(Person, summary.person_id)
        assert erased is not None
        assert erased.erased_at == clock.now() and erased.leave_date == clock.now().date()
        assert erased.email == f"erased-{erased.id}@erased.invalid"
        assert (erased.location, erased.hire_date) == (None, None)
        for model in (ChannelIdentity, ConversationState, Delivery):
            owned = await session.scalar(
                select(func.count()).select_from(model).where(model.person_id == erased.id)
            )
            assert owned == 0, model
        forget_entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "people.forget")
        )
        # Luca's readiness note is kept, without her name.
        notes = [d.context for d in await session.scalars(select(Delivery))]
    assert answers_after == answers_before
    assert any("[erased]" in json.dumps(c) for c in notes)
    assert forget_entry is not None and forget_entry.detail["person_id"] == summary.person_id
    assert summary.changed["identities"] == 1 and summary.changed["invites"] == 1

    # Idempotent: nobody left to erase, nothing changes.
    with pytest.raises(NotHeld):
        await forget_person(db, AISHA, clock, registry=privacy_registry())
    assert await dump(db) == after

    # She is a stranger to the bot now.
    settings = make_settings(database_url, console={"enabled": True})
    async with console_runtime(settings, clock) as runtime:
        user = ChannelUser("console", AISHA, AISHA)
        result = await runtime.dispatcher.process(TextReceived(user, "e-after", "whoami"))
        assert "I do not know you yet" in result.replies[0].message.text


async def test_forget_is_one_transaction(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await held_about_aisha(db, clock, database_url)
    before = await dump(db)
    registry = privacy_registry()

    async def explode(_session: Any, _erasure: Any) -> int:
        raise RuntimeError("disk full")

    registry.register(PersonalDataPart("late_feature", lambda s, p: _none(), explode))
    # Registered parts run before the directory; the identities were already deleted.
    assert [p.name for p in registry.parts][-2:] == ["late_feature", "directory"]
    with pytest.raises(RuntimeError, match="disk full"):
        await forget_person(db, AISHA, clock, registry=registry)
    assert await dump(db) == before


async def _none() -> None:
    return None


async def test_retention_deletes_old_audit_entries_and_calls_feature_rules(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    old, recent = clock.now() - timedelta(days=40), clock.now() - timedelta(days=5)
    async with db.session() as session:
        for when, action in ((old, "old"), (recent, "recent")):
            session.add(AuditEntry(at=when, actor_label="x", action=action, detail={}))
    seen: list[datetime] = []

    async def purge_suggestions(_session: Any, cutoff: datetime, _days: int) -> int:
        seen.append(cutoff)
        return 3

    rule = RetentionRule(
        "late_feature", lambda s: s.privacy.suggestion_retention_days, purge_suggestions
    )
    keep_all = make_settings(database_url, privacy={"audit_retention_days": None})

    # Ended web sign-ins have a lifetime of their own (web.retention_days), always set.
    assert await apply_retention(keep_all, db, clock, [*retention_rules(), rule]) == {
        "web_sign_ins": 0
    }
    settings = make_settings(
        database_url, privacy={"audit_retention_days": 30, "suggestion_retention_days": 90}
    )
    deleted = await apply_retention(settings, db, clock, [*retention_rules(), rule])
    assert deleted == {
        "audit_log": 1,
        "suggestion_texts": 0,
        "web_sign_ins": 0,
        "late_feature": 3,
    }
    assert seen == [clock.now() - timedelta(days=90)]
    async with db.session() as session:
        assert list(await session.scalars(select(AuditEntry.action))) == ["recent"]


async def test_the_retention_job_is_scheduled_daily(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    from .harness import running

    settings = make_settings(database_url, console={"enabled": True})
    async with running(settings, clock) as runtime:
        job = runtime.scheduler.scheduler.get_job("privacy:retention")
        assert job is not None and job.trigger.interval == timedelta(hours=24)


async def test_people_export_and_forget_commands(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url, console={"enabled": True})
    code, out, err = await fidelio(config, "people", "export", AISHA)
    assert code == 0, err
    assert json.loads(out)["directory"]["name"] == AISHA_NAME
    target = tmp_path / "aisha.json"
    code, out, err = await fidelio(config, "people", "export", AISHA, "-o", str(target))
    assert code == 0 and json.loads(target.read_text())["directory"]["email"] == AISHA
    code, out, err = await fidelio(config, "people", "forget", AISHA, stdin="n\n")
    # Not confirmed: nothing erased, and that is a normal ending (docs/administration.md: exit 0 or 2).
    assert code == 0 and "Nothing was erased" in " ".join(out.split()), (out, err)
    code, out, err = await fidelio(config, "people", "forget", AISHA, "--yes")
    assert code == 0 and "Erased person #" in out, err
    code, out, err = await fidelio(config, "people", "forget", AISHA, "--yes")
    assert code == 0 and "nothing to do" in " ".join(out.split())
    code, out, err = await fidelio(config, "people", "export", AISHA)
    assert code == 2 and "nobody with email" in " ".join(err.split())
