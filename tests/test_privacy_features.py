"""Personal data of suggestions and loyalty measurement: export, erasure, and the retention of
suggestion texts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import load_settings
from bot.console_session import console_person
from bot.db.models import AuditEntry, Delivery, Person
from bot.db.session import Database
from bot.features import privacy_registry, retention_rules
from bot.loyalty.tables import LoyaltyView
from bot.privacy.retention import apply_retention
from bot.privacy.service import export_person, forget_person
from bot.suggestions.content import reference
from bot.suggestions.measurement import suggestion_counts
from bot.suggestions.seal import author_purpose
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import (
    SealedNotice,
    Suggestion,
    SuggestionEvent,
    SuggestionStatus,
    SuggestionVote,
)

from .harness import REPO, ConsoleDialog, console_runtime, load_demo, make_settings
from .test_privacy import AISHA, AISHA_NAME, HR, dump
from .test_summaries_e2e import seed

MARCO = "marco.bianchi@demo.fidelio.example"
NOW = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
NAMED_TEXT = "Demo units of the OLED TVs at every till"
ANONYMOUS_TEXT = "Fewer meetings on Monday mornings"
MARCO_TEXT = f"Use {AISHA_NAME}'s weekend rota in every shop"


@dataclass
class Held:
    aisha: int
    named: int
    anonymous: int
    marcos: int


async def person(db: Database, email: str) -> Person:
    async with db.session() as session:
        found = await session.scalar(select(Person).where(Person.email == email))
        assert found is not None
        return found


async def held_in_features(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> Held:
    """Aisha looked at the loyalty summary in chat; sent a named suggestion (triaged, replied,
    asked about, answered by her, published, supported by Marco) and an anonymous one (whose
    status change reached her as a sealed notice); supported Marco's suggestion, which names
    her."""
    await seed(db, clock, database_url, rounds=2)
    clock.set(NOW)
    settings = make_settings(database_url, console={"enabled": True})
    service = SuggestionService(settings, clock)
    async with console_runtime(settings, clock) as runtime:
        await console_person(runtime, AISHA)
        runtime.channels["console"].image_dir = tmp_path
        assert "Loyalty summary" in await ConsoleDialog(runtime, AISHA).say("summary")
        async with db.session() as session:
            aisha, hr, marco = [
                await session.scalar(select(Person).where(Person.email == e))
                for e in (AISHA, HR, MARCO)
            ]
            assert aisha is not None and hr is not None and marco is not None
            named = await service.create(session, aisha, NAMED_TEXT, "product", False)
            anonymous = await service.create(session, aisha, ANONYMOUS_TEXT, "workplace", True)
            marcos = await service.create(session, marco, MARCO_TEXT, "processes", False)
            await service.set_status(session, hr, named, SuggestionStatus.under_review)
            await service.reply(session, hr, named, f"Thanks; we will write to {AISHA}.")
            await service.ask(session, hr, named, "Which models should the demo show?")
            await service.answer(session, aisha, named, "The 55 and 65 inch ones.")
            for published in (named, marcos):
                await service.publish(session, hr, published)
            await service.vote(session, marco, named)
            await service.vote(session, aisha, marcos)
            await service.set_status(session, hr, anonymous, SuggestionStatus.planned)
            held = Held(aisha.id, named.id, anonymous.id, marcos.id)
        # The sealed notice reaches her while she is in the directory.
        stats = await runtime.service("sealed_notices").run_once()
        assert (stats.sent, stats.dropped) == (1, 0)
    return held


async def test_export_holds_named_suggestions_and_views_but_no_anonymous_one_nor_votes(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    held = await held_in_features(db, clock, database_url, tmp_path)
    data = await export_person(db, AISHA, clock, registry=privacy_registry())

    [named] = data["suggestions"]["named"]
    assert named["reference"] == f"S-{held.named:04d}" and named["text"] == NAMED_TEXT
    assert (named["category"], named["status"], named["team"]) == (
        "product",
        "under_review",
        "Sales Milano",
    )
    assert named["supporters"] == 1 and named["published_at"] is not None
    history = [(e["kind"], e["text"], e["yours"]) for e in named["history"]]
    assert history == [
        ("status", None, False),
        ("reply", f"Thanks; we will write to {AISHA}.", False),
        ("question", "Which models should the demo show?", False),
        ("answer", "The 55 and 65 inch ones.", True),
        ("publish", None, False),
    ]
    # Anonymous suggestions and supported suggestions cannot be listed: said, not shown.
    assert "only Fidelio" in data["suggestions"]["anonymous"]
    assert "keyed hash" in data["suggestions"]["support_votes"]
    text = json.dumps(data)
    assert ANONYMOUS_TEXT not in text and f"S-{held.anonymous:04d}" not in text
    assert MARCO_TEXT not in text and f"S-{held.marcos:04d}" not in text
    assert data["suggestion_triage"] == []
    # Notices reached her through the outbox (named) and are exported with the outbox.
    assert {d["purpose"] for d in data["deliveries"]} >= {"suggestion-notice"}
    # What the loyalty summary showed her, round by round.
    views = data["loyalty_views"]
    assert {v["round_number"] for v in views} == {1, 2}
    assert all(v["teams"] and v["survey"] == "pulse-fortnightly" for v in views)

    # HR's export lists what HR did to suggestions, anonymous ones included (not who wrote).
    hr = await export_person(db, HR, clock, registry=privacy_registry())
    done = [(a["suggestion"], a["kind"]) for a in hr["suggestion_triage"]]
    assert (f"S-{held.anonymous:04d}", "status") in done
    assert (f"S-{held.named:04d}", "question") in done
    assert hr["suggestions"]["named"] == [] and hr["loyalty_views"] == []


async def test_forget_detaches_suggestions_keeps_votes_and_views_and_drops_sealed_notices(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    held = await held_in_features(db, clock, database_url, tmp_path)
    async with db.session() as session:
        votes_before = int(await session.scalar(select(func.count(SuggestionVote.voter_key))) or 0)
        views_before = int(
            await session.scalar(
                select(func.count(LoyaltyView.id)).where(
                    LoyaltyView.viewer == f"person:{held.aisha}"
                )
            )
            or 0
        )
    assert votes_before == 2 and views_before >= 2

    summary = await forget_person(db, AISHA, clock, registry=privacy_registry())

    assert summary.changed["suggestions"] == 1  # one named suggestion detached
    after = await dump(db)
    assert AISHA not in after.lower() and AISHA_NAME not in after
    async with db.session() as session:
        named = await session.get(Suggestion, held.named)
        anonymous = await session.get(Suggestion, held.anonymous)
        marcos = await session.get(Suggestion, held.marcos)
        assert named is not None and anonymous is not None and marcos is not None
        # Authorless, text and status kept; Marco's text loses her name only.
        assert named.author_id is None and named.text == NAMED_TEXT
        assert named.status == SuggestionStatus.under_review and not named.anonymous
        assert anonymous.text == ANONYMOUS_TEXT
        assert marcos.text == "Use [erased]'s weekend rota in every shop"
        votes_after = int(await session.scalar(select(func.count(SuggestionVote.voter_key))) or 0)
        views_after = list(
            await session.scalars(
                select(LoyaltyView).where(LoyaltyView.viewer == f"person:{held.aisha}")
            )
        )
        answer = await session.scalar(
            select(SuggestionEvent).where(SuggestionEvent.kind == "answer")
        )
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "people.forget"))
    assert votes_after == votes_before and len(views_after) == views_before
    assert answer is not None and answer.text == "The 55 and 65 inch ones."
    assert entry is not None and entry.detail["changed"]["suggestions"] == 1
    assert entry.detail["changed"]["loyalty_views"] == 0

    # Triage goes on: the detached suggestion notifies nobody, and the anonymous one's sealed
    # token still opens to the erased row, whose notice is dropped unsent.
    settings = make_settings(database_url, console={"enabled": True})
    service = SuggestionService(settings, clock)
    assert service.sealer.open(anonymous.reply_token, author_purpose(held.anonymous)) == (
        held.aisha
    )
    async with console_runtime(settings, clock) as runtime:
        async with db.session() as session:
            hr = await session.scalar(select(Person).where(Person.email == HR))
            assert hr is not None
            for sid in (held.named, held.anonymous):
                found = await session.get(Suggestion, sid)
                assert found is not None
                await service.set_status(session, hr, found, SuggestionStatus.done)
            queued = await session.scalar(
                select(func.count(Delivery.id)).where(
                    Delivery.key.like(f"suggestion:{held.named}:%"),
                    Delivery.purpose == "suggestion-notice",
                )
            )
            sealed = await session.scalar(select(func.count(SealedNotice.id)))
        assert (queued, sealed) == (0, 1)
        stats = await runtime.service("sealed_notices").run_once()
        assert (stats.sent, stats.retried, stats.dropped) == (0, 0, 1)
    async with db.session() as session:
        assert await session.scalar(select(SealedNotice.id)) is None


# Retention of suggestion texts


RETENTION_START = NOW - timedelta(days=200)


async def _suggestions_closed_long_ago_and_lately(
    db: Database, clock: ManualClock, service: SuggestionService
) -> tuple[Person, dict[str, int]]:
    """Aisha's five suggestions, filed 200 days ago: "done" (with a reply, a question, her
    answer, and "merged" joined to it) and "declined" closed 100 days ago, "recent" closed 10
    days ago, "open" (anonymous) only planned.  Returns Aisha and the ids by key."""
    clock.set(RETENTION_START)
    async with db.session() as session:
        aisha = await session.scalar(select(Person).where(Person.email == AISHA))
        hr = await session.scalar(select(Person).where(Person.email == HR))
        assert aisha is not None and hr is not None
        made = {
            key: await service.create(session, aisha, f"idea {key}", "other", key == "open")
            for key in ("done", "declined", "recent", "open", "merged")
        }
        ids = {key: s.id for key, s in made.items()}
        await service.reply(session, hr, made["done"], "We are on it.")
        await service.ask(session, hr, made["done"], "Which shops?")
        await service.answer(session, aisha, made["done"], "Milano first.")
        await service.merge(session, hr, made["merged"], made["done"])
        await service.set_status(session, hr, made["open"], SuggestionStatus.planned)
    clock.set(NOW - timedelta(days=100))
    async with db.session() as session:
        for key, status, reason in (
            ("done", SuggestionStatus.done, None),
            ("declined", SuggestionStatus.declined, "Not our shop."),
        ):
            found = await session.get(Suggestion, ids[key])
            assert found is not None and hr is not None
            await service.set_status(session, hr, found, status, reason)
    clock.set(NOW - timedelta(days=10))
    async with db.session() as session:
        found = await session.get(Suggestion, ids["recent"])
        assert found is not None
        await service.set_status(session, hr, found, SuggestionStatus.done)
    clock.set(NOW)
    return aisha, ids


async def _suggestion_counts_of_her_team(db: Database, aisha: Person) -> object:
    async with db.session() as session:
        teams = {aisha.team_id}
        return await suggestion_counts(session, teams, RETENTION_START - timedelta(days=1), NOW)


async def _texts_by_key(
    db: Database, ids: dict[str, int]
) -> dict[str, tuple[str, list[str | None]]]:
    """Each suggestion's text and the texts of its events, in order."""
    async with db.session() as session:
        out = {}
        for key, sid in ids.items():
            found = await session.get(Suggestion, sid)
            assert found is not None
            events = await session.scalars(
                select(SuggestionEvent.text)
                .where(SuggestionEvent.suggestion_id == sid)
                .order_by(SuggestionEvent.id)
            )
            out[key] = (found.text, list(events))
        return out


async def test_retention_replaces_texts_of_long_closed_suggestions_and_keeps_counts(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = make_settings(database_url)
    service = SuggestionService(settings, clock)
    aisha, ids = await _suggestions_closed_long_ago_and_lately(db, clock, service)

    async def measured() -> object:
        return await _suggestion_counts_of_her_team(db, aisha)

    async def texts() -> dict[str, tuple[str, list[str | None]]]:
        return await _texts_by_key(db, ids)

    counts_before, texts_before = await measured(), await texts()
    expired = {reference(ids[key]) for key in ("done", "declined", "merged")}
    async with db.session() as session:
        quoting = sum(
            1
            for d in await session.scalars(select(Delivery))
            if d.context.get("reference") in expired
        )
    assert quoting >= 5  # reply, question, merge, done, declined reached her
    # Off unless configured: the default configuration keeps every text.
    defaults = load_settings(REPO / "config.yaml", env={})
    assert defaults.privacy.suggestion_retention_days is None
    assert "suggestion_texts" not in await apply_retention(settings, db, clock, retention_rules())
    assert await texts() == texts_before

    keep_90 = make_settings(
        database_url, privacy={"audit_retention_days": None, "suggestion_retention_days": 90}
    )
    changed = await apply_retention(keep_90, db, clock, retention_rules())
    marker = "[removed after 90 days]"
    after = await texts()
    assert after["done"] == (
        marker,
        [marker, marker, marker, reference(ids["merged"]), None],
    )
    assert after["merged"] == (marker, [reference(ids["done"])])  # joined a closed one
    assert after["declined"] == (marker, [marker])  # the reason too
    assert after["recent"] == texts_before["recent"] and after["open"] == texts_before["open"]
    assert changed["suggestion_texts"] == 3 + 4 + quoting
    async with db.session() as session:
        statuses = {s.id: s.status for s in await session.scalars(select(Suggestion))}
        notices = [d.context for d in await session.scalars(select(Delivery).order_by(Delivery.id))]
    assert statuses[ids["done"]] == SuggestionStatus.done
    assert statuses[ids["declined"]] == SuggestionStatus.declined
    # Quotes in the messages already sent to her go too; the recent one's stay.
    quoted = json.dumps(notices)
    assert "idea done" not in quoted and "We are on it." not in quoted
    assert "Not our shop." not in quoted and "idea recent" in quoted
    assert await measured() == counts_before  # the measurement does not change
    # Once is enough: a second run changes nothing.
    assert (await apply_retention(keep_90, db, clock, retention_rules()))["suggestion_texts"] == 0
