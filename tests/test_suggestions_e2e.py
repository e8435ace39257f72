"""Suggestions end to end: real Telegram and Slack clients against the fakes, the console, a
real database and an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import Runtime
from bot.channels.callbacks import CallbackCodec
from bot.clock import ManualClock
from bot.db.models import (
    AuditEntry,
    ChannelName,
    ConversationState,
    Delivery,
    Person,
    SealedNotice,
    Suggestion,
    SuggestionEvent,
    SuggestionStatus,
    Team,
)
from bot.db.session import Database
from bot.identities import link
from bot.suggestions.seal import Sealer, author_purpose

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import (
    ConsoleDialog,
    TelegramDialog,
    free_port,
    load_demo,
    make_settings,
    running,
    telegram_section,
)

ROME = ZoneInfo("Europe/Rome")
START = datetime(2027, 3, 1, 11, 0, tzinfo=ROME)  # a Monday
FAST_RATES = {
    "telegram_per_chat_per_s": 50.0,
    "telegram_global_per_s": 1000.0,
    "slack_per_channel_per_s": 50.0,
    "slack_global_per_s": 1000.0,
}
HR = "hr@demo.fidelio.example"
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano (11 people), English
HANNAH = "hannah.weber@demo.fidelio.example"  # HR & People (4 people), English
MARCO = "marco.bianchi@demo.fidelio.example"  # Headquarters, Italian
LUCA = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano
SECRET = "test-secret-key"


def uid(person_id: int) -> int:
    return 30_000 + person_id


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(rate_scale=50.0) as server:
        yield server


async def link_all(db: Database, fake: FakeTelegramServer, clock: ManualClock) -> dict[str, Person]:
    async with db.session() as session:
        people = list(await session.scalars(select(Person).order_by(Person.id)))
        for person in people:
            fake.add_user(uid(person.id), person.name.split()[0])
            chat = str(uid(person.id))
            await link(session, person, ChannelName.telegram, chat, chat, clock)
    return {p.email: p for p in people}


async def deliver(runtime: Runtime) -> None:
    """What the scheduler does every few seconds: sealed notices, then the outbox."""
    await runtime.sealed_notices.run_once()
    await runtime.outbox.drain()


def settings_for(database_url: str, **extra: Any) -> Any:
    return make_settings(database_url, rates=FAST_RATES, **extra)


async def rows_naming(db: Database, person_id: int) -> list[str]:
    """Every stored trace of ``person_id`` in suggestion-related places."""
    found = []
    async with db.session() as session:
        for state in await session.scalars(
            select(ConversationState).where(ConversationState.person_id == person_id)
        ):
            found.append(f"conversation_states {state.flow}")
        for delivery in await session.scalars(
            select(Delivery).where(
                Delivery.person_id == person_id, Delivery.purpose.like("suggestion%")
            )
        ):
            found.append(f"outbox {delivery.template}")
        for entry in await session.scalars(
            select(AuditEntry).where(AuditEntry.actor_person_id == person_id)
        ):
            found.append(f"audit {entry.action}")
        for event in await session.scalars(
            select(SuggestionEvent).where(SuggestionEvent.actor_id == person_id)
        ):
            found.append(f"suggestion_events {event.kind}")
        for suggestion in await session.scalars(
            select(Suggestion).where(Suggestion.author_id == person_id)
        ):
            found.append(f"suggestions {suggestion.id}")
        if await session.scalar(select(SealedNotice.id).limit(1)) is not None:
            found.append("sealed_notices (pending)")
    return found


async def test_telegram_named_and_anonymous_triage_follow_up_and_scope(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    people = await link_all(db, fake, clock)
    clock.set(START)
    settings = settings_for(database_url, telegram=telegram_section(fake))
    aisha, hannah, marco = people[AISHA], people[HANNAH], people[MARCO]
    async with running(settings, clock, background=False) as runtime:
        # Anonymous, guided, with an email address flagged and removed on request.
        a = TelegramDialog(fake, uid(aisha.id))
        prompt = (await a.say("/suggest"))[0]
        assert "Write your idea in one message" in prompt
        flagged = (await a.say("A demo OLED at every till; ask me at aisha.k@gmail.com"))[0]
        assert "personal data" in flagged and "aisha.k@gmail.com" in flagged
        assert [label for label, _ in a.last_message().buttons()] == [
            "Edit",
            "Remove them",
            "Send as it is",
        ]
        category = (await a.press("Remove them"))[0]
        assert "Which category fits best?" in category and "aisha.k" not in category
        await a.press("Product")
        sent = (await a.press("Anonymously"))[0]
        assert "reference <b>S-0001</b>" in sent and "anonymous" in sent

        # Anonymous from a team of four: filed under the team above.
        h = TelegramDialog(fake, uid(hannah.id))
        await h.say("/suggest Clearer rules for remote days")
        await h.press("Processes")
        sent = (await h.press("Anonymously"))[0]
        assert "S-0002" in sent and "filed under <b>Headquarters</b>" in sent

        # Named, in one line, in Italian.
        m = TelegramDialog(fake, uid(marco.id))
        await m.say("/suggerisci Più parcheggi per i clienti il sabato")
        await m.press("Servizio clienti")
        sent = (await m.press("Con il mio nome"))[0]
        assert "riferimento <b>S-0003</b>" in sent

        async with db.session() as session:
            rows = {s.id: s for s in await session.scalars(select(Suggestion))}
            teams = {t.id: t.name for t in await session.scalars(select(Team))}
        assert rows[1].anonymous and rows[1].author_id is None and rows[1].reply_token
        assert rows[1].text == "A demo OLED at every till; ask me at […]"
        assert teams[rows[1].team_id or 0] == "Sales Milano"
        assert teams[rows[2].team_id or 0] == "Headquarters" and rows[2].author_id is None
        assert rows[3].author_id == marco.id and not rows[3].anonymous
        # Only the bot's key opens the token; it is bound to its suggestion.
        assert Sealer(SECRET).open(rows[1].reply_token, author_purpose(1)) == aisha.id
        assert Sealer("another-key").open(rows[1].reply_token, author_purpose(1)) is None
        assert Sealer(SECRET).open(rows[1].reply_token, author_purpose(2)) is None

        # HR triages in chat: list, open, set a status with a button.
        hr = TelegramDialog(fake, uid(people[HR].id))
        listing = (await hr.say("/suggestions"))[0]
        assert all(ref in listing for ref in ("S-0001", "S-0002", "S-0003"))
        detail = (await hr.press("S-0001"))[0]
        assert "Anonimo" in detail and "A demo OLED" in detail
        assert "Aisha" not in detail
        done = (await hr.press("Pianificato"))[0]
        assert "S-0001 ora è <b>pianificato</b>" in done
        await deliver(runtime)
        notice = fake.last_message(uid(aisha.id)).text or ""
        assert "Your suggestion S-0001</b> is now <b>planned</b>" in notice
        # The status change reached her, and nothing stored says she wrote S-0001.
        assert await rows_naming(db, aisha.id) == []

        # Declined with a reason, asked for by a button, for the named author.
        await hr.say("/suggerimento S-0003")
        ask_reason = (await hr.press("Non accogliere"))[0]
        assert "Perché S-0003 non è accolto?" in ask_reason
        await hr.say("Il parcheggio è del centro commerciale, non nostro.")
        await deliver(runtime)
        declined = fake.last_message(uid(marco.id)).text or ""
        assert "ora è <b>non accolto</b>" in declined and "Motivo: Il parcheggio" in declined

        # Follow-up question and answer, the author still anonymous.
        asked = (await hr.say("/suggestion S-0001 ask Which models should the demo show?"))[0]
        assert "Domanda su S-0001 inviata" in asked
        await deliver(runtime)
        question = fake.last_message(uid(aisha.id))
        assert "Which models should the demo show?" in (question.text or "")
        assert "you stay anonymous" in (question.text or "")
        answer_data = dict(question.buttons())["Answer"]

        # Someone else's button: refused, whether the data was signed for Aisha's chat...
        before = len(fake.messages_to(uid(marco.id)))
        await fake.press_data(uid(marco.id), 1, answer_data)
        refused = (await fake.wait_for_messages(uid(marco.id), before + 1))[before].text or ""
        assert "non è più valido" in refused
        # ...or validly signed for Marco's own chat but for a suggestion that is not his.
        forged = CallbackCodec(SECRET).encode("sugg_answer", "1", str(uid(marco.id)))
        await fake.press_data(uid(marco.id), 1, forged)
        refused = (await fake.wait_for_messages(uid(marco.id), before + 2))[before + 1].text or ""
        assert "non è più valido" in refused

        prompt = (await a.press("Answer"))[0]
        assert "Write your answer about S-0001" in prompt
        thanks = (await a.say("The 55 and 65 inch models."))[0]
        assert "passed on, without your name" in thanks
        await deliver(runtime)
        relayed = fake.last_message(uid(people[HR].id)).text or ""
        assert "ha risposto</b> (in forma anonima)" in relayed
        assert "The 55 and 65 inch models." in relayed
        assert await rows_naming(db, aisha.id) == []
        async with db.session() as session:
            answer = await session.scalar(
                select(SuggestionEvent).where(SuggestionEvent.kind == "answer")
            )
        assert answer is not None and answer.actor_id is None

        # A manager sees their subtree only.
        luca = TelegramDialog(fake, uid(people[LUCA].id))
        mine = (await luca.say("/suggestions"))[0]
        assert "S-0001" in mine and "S-0002" not in mine and "S-0003" not in mine
        outside = (await luca.say("/suggestion S-0003 reply Ciao"))[0]
        assert "Non c'è un suggerimento S-0003" in outside
        # A validly signed button for a suggestion outside the subtree is refused too.
        show = CallbackCodec(SECRET).encode("sugg_st", "3.done", str(uid(people[LUCA].id)))
        before = len(fake.messages_to(uid(people[LUCA].id)))
        await fake.press_data(uid(people[LUCA].id), 1, show)
        refused = (await fake.wait_for_messages(uid(people[LUCA].id), before + 1))[before].text
        assert "Non c'è un suggerimento S-0003" in (refused or "")
        # An employee cannot triage at all.
        denied = (await a.say("/suggestions"))[0]
        assert "is not available to you" in denied

    async with db.session() as session:
        status = await session.scalar(select(Suggestion.status).where(Suggestion.id == 3))
        audit = [e.action for e in await session.scalars(select(AuditEntry))]
    assert status == SuggestionStatus.declined
    assert audit.count("suggestion.status") == 2 and "suggestion.question" in audit
