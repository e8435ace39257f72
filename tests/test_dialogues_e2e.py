"""Dialogues end to end: one person in several dialogues over time (a suggestion draft, a
survey comment, an answer to HR's question), ``cancel``, and the ways back to what is
pending (the quiz from ``briefings``, HR's questions from ``mysuggestions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import Runtime
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import ConversationState
from bot.db.session import Database
from bot.pulse.content import load_survey
from bot.pulse.tables import Response
from bot.suggestions.tables import Suggestion, SuggestionEvent

from . import harness
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, ConsoleDialog, TelegramDialog, load_demo, running
from .test_suggestions_e2e import deliver, rows_naming

ROME = ZoneInfo("Europe/Rome")
PULSE_OPENS = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # pulse-fortnightly's first round
BRIEF_AT = datetime(2027, 2, 26, 9, 0, tzinfo=ROME)  # spring-trade-in goes out
NEW_YEAR = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
BEFORE_BRIEF = datetime(2027, 2, 20, 12, 0, tzinfo=ROME)
FAST_RATES = harness.fast_rates(50.0)
HR = "hr@demo.fidelio.example"
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano, English
MARCO = "marco.bianchi@demo.fidelio.example"  # Headquarters, Italian
JAMES = "james.whitaker@demo.fidelio.example"  # English
KEVIN = "kevin.liu@demo.fidelio.example"  # Sales Milano, English
FRANCESCA = "francesca.conti@demo.fidelio.example"  # Sales Milano, Italian


def uid(person_id: int) -> int:
    return 40_000 + person_id


fake = harness.fake_telegram("fake", 50.0)


def settings_for(database_url: str, **extra: Any) -> Any:
    return harness.make_settings(database_url, rates=FAST_RATES, **extra)


async def open_pulse_round(runtime: Runtime, clock: ManualClock) -> None:
    """Schedule the fortnightly pulse and open its first round (invitations queued)."""
    survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
    async with runtime.db.session() as session:
        await runtime.service("surveys").schedule_in(session, survey, items, HR)
    clock.set(PULSE_OPENS)
    await runtime.service("surveys").run_due()


async def states(db: Database) -> list[tuple[int, str]]:
    async with db.session() as session:
        rows = await session.scalars(
            select(ConversationState).order_by(ConversationState.person_id)
        )
        return [(s.person_id, s.flow) for s in rows]


async def test_a_suggestion_left_at_the_category_step_waits_for_the_survey_comment(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """Defect: the comment question failed with a UNIQUE violation on conversation_states
    for anyone with an unfinished suggestion."""
    await load_demo(db, clock)
    people = await harness.link_everyone_on_telegram(db, fake, clock, uid)
    clock.set(NEW_YEAR)
    settings = settings_for(database_url, telegram=harness.telegram_section(fake))
    aisha = people[AISHA]
    async with running(settings, clock, background=False) as runtime:
        await open_pulse_round(runtime, clock)
        await runtime.outbox.drain()
        a = TelegramDialog(fake, uid(aisha.id))
        await a.say("/suggest")
        categories = (await a.say("Spare chargers at every till"))[0]
        assert "Which category fits best?" in categories

        # She turns to the survey invitation instead.
        invitation = next(
            m for m in reversed(fake.messages_to(uid(aisha.id))) if "Fortnightly pulse" in m.text
        )
        await a.press("Start", message_id=invitation.message_id)
        for _ in range(6):
            await a.press("4")
        paused, comment = await a.press("4", replies=2)
        assert "put your unfinished suggestion aside" in paused
        assert "8/8" in comment and "Type your answer as a message" in comment
        assert "something went wrong" not in paused + comment

        thanks, back, again = await a.say("More demo units, please.", replies=3)
        assert "Thank you!" in thanks
        assert "Back to your unfinished suggestion" in back
        assert "Which category fits best?" in again and "Spare chargers" in again
        await a.press("Product")
        sent = (await a.press("With my name"))[0]
        assert "S-0001" in sent

    async with db.session() as session:
        comments = list(
            await session.scalars(select(Response.value_text).where(Response.item_id == "comment"))
        )
        suggestion = await session.get(Suggestion, 1)
    assert comments == ["More demo units, please."]
    assert suggestion is not None and suggestion.text == "Spare chargers at every till"
    assert suggestion.author_id == aisha.id and suggestion.category == "product"
    assert await states(db) == []


async def test_cancel_annulla_and_stop_leave_any_dialogue_and_say_which(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with harness.demo_console(
        db, clock, database_url, JAMES, MARCO, at=NEW_YEAR, rates=FAST_RATES
    ) as runtime:
        james = ConsoleDialog(runtime, JAMES)
        assert "nothing to cancel" in await james.say("cancel")
        await james.say("suggest")
        # Words that begin like the command are what he wanted to write.
        assert "Which category fits best?" in await james.say("Stop printing the weekly report")
        cancelled = await james.say("cancel")
        assert "Cancelled: your unfinished suggestion" in cancelled
        assert await states(db) == []
        await james.say("suggest Quieter music in the shop")
        assert "Cancelled: your unfinished suggestion" in await james.say("stop")

        marco = ConsoleDialog(runtime, MARCO)
        await marco.say("suggerisci")
        assert "categoria" in await marco.say("Più cestini nel magazzino")
        annullato = await marco.say("annulla")
        assert "Annullato: il tuo suggerimento non finito" in annullato
        assert "Non c'è niente da annullare" in await marco.say("annulla")

        # Italian, the survey: the draft waits, the comment is cancelled, the draft returns.
        await open_pulse_round(runtime, clock)
        await marco.say("suggerisci Più cestini nel magazzino")
        await marco.say("sondaggio")
        await marco.press(1)  # Inizia
        for _ in range(6):
            await marco.press(4)
        paused = await marco.press(4)
        assert "Ho messo da parte il tuo suggerimento non finito" in paused and "8/8" in paused
        annullato = await marco.say("annulla")
        assert "Annullato: la tua risposta scritta al sondaggio" in annullato
        assert "Torniamo al tuo suggerimento non finito" in annullato
        assert "[1] Prodotto" in annullato
        await marco.press(1)
        sent = await marco.press(1)  # Con il mio nome
        assert "S-0001" in sent
    assert await states(db) == []
    async with db.session() as session:
        stored = await session.get(Suggestion, 1)
    assert stored is not None and stored.text == "Più cestini nel magazzino"


async def test_briefings_offers_to_continue_an_unfinished_quiz(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    """Defect: after Got it, ``briefings`` said "quiz not finished" with no way to go on."""
    async with harness.demo_console(
        db, clock, database_url, KEVIN, FRANCESCA, at=BEFORE_BRIEF, rates=FAST_RATES
    ) as runtime:
        campaign = await harness.schedule_demo_briefing(runtime)
        clock.set(BRIEF_AT)
        await runtime.service("briefings").run_due()
        for email, words in (
            (KEVIN, ("quiz not finished", "[2] Continue quiz", "question 1 of 2", "question 2")),
            (FRANCESCA, ("quiz non finito", "[2] Continua il quiz", "domanda 1 di 2", "domanda 2")),
        ):
            unfinished, button, first_question, second_question = words
            dialog = ConsoleDialog(runtime, email)
            await dialog.say("briefings")
            await dialog.press(1)  # Read more
            first = await dialog.press(1)  # Got it: the first question; they stop there
            assert first_question in first.lower()
            listing = await dialog.say("briefings")
            assert unfinished in listing and button in listing
            assert first_question in (await dialog.press(2)).lower()
            await dialog.press(2)  # answers the first question
            # Left again after one answer: the button goes on from the second question.
            assert button in await dialog.say("briefings")
            assert second_question in (await dialog.press(2)).lower()
            result = await dialog.press(2)
            assert "2" in result and unfinished not in result
            done = await dialog.say("briefings")
            assert "/2" in done and unfinished not in done and button not in done
    async with db.session() as session:
        receipts = list(
            await session.scalars(
                select(BriefingReceipt).where(
                    BriefingReceipt.campaign_id == campaign.id,
                    BriefingReceipt.quiz_completed_at.is_not(None),
                )
            )
        )
    assert len(receipts) == 2 and all(len(r.quiz_answers) == 2 for r in receipts)


async def test_mysuggestions_shows_questions_and_replies_and_answers_them(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """Defect: a question could only be answered from the pushed message, and
    ``mysuggestions`` showed neither questions nor replies."""
    await load_demo(db, clock)
    people = await harness.link_everyone_on_telegram(db, fake, clock, uid)
    clock.set(datetime(2027, 3, 1, 11, 0, tzinfo=ROME))
    settings = settings_for(database_url, telegram=harness.telegram_section(fake))
    aisha, marco = people[AISHA], people[MARCO]
    async with running(settings, clock, background=False) as runtime:
        a = TelegramDialog(fake, uid(aisha.id))
        await a.say("/suggest A demo OLED at every till")
        await a.press("Product")
        assert "S-0001" in (await a.press("Anonymously"))[0]
        m = TelegramDialog(fake, uid(marco.id))
        await m.say("/suggerisci Più parcheggi il sabato")
        await m.press("Servizio clienti")
        assert "S-0002" in (await m.press("Con il mio nome"))[0]

        hr = TelegramDialog(fake, uid(people[HR].id))
        await hr.say("/suggestion S-0001 reply Thanks, we are pricing it.")
        await hr.say("/suggestion S-0001 ask Which models should the demo show?")
        await hr.say("/suggerimento S-0002 chiedi Quanti posti servono?")
        await deliver(runtime)

        # Aisha ignores the pushed question; her list has it, with an Answer button.
        mine = (await a.say("/mysuggestions"))[0]
        assert "Reply: Thanks, we are pricing it." in mine
        assert "Question: Which models should the demo show?" in mine
        assert "Waiting for your answer" in mine and "stays anonymous" in mine
        assert [label for label, _ in a.last_message().buttons()] == ["Answer"]
        list_id = a.last_message().message_id

        # A draft in progress waits while she answers, then comes back.
        await a.say("/suggest")
        await a.say("Price tags in larger print")
        paused, prompt = await a.press("Answer", replies=2, message_id=list_id)
        assert "put your unfinished suggestion aside" in paused
        assert "Write your answer about S-0001" in prompt
        thanks, back, categories = await a.say("The 55 and 65 inch models.", replies=3)
        assert "passed on, without your name" in thanks
        assert "Back to your unfinished suggestion" in back
        assert "Which category fits best?" in categories and "Price tags" in categories
        await a.press("Product")
        assert "S-0003" in (await a.press("Anonymously"))[0]

        mine = (await a.say("/mysuggestions"))[0]
        assert "Your answer: The 55 and 65 inch models." in mine
        assert "Waiting for your answer" not in mine and a.last_message().buttons() == []
        await deliver(runtime)
        relayed = fake.last_message(uid(people[HR].id)).text or ""
        assert "The 55 and 65 inch models." in relayed
        # Nothing stored ties her to her anonymous suggestions or her answer.
        assert await rows_naming(db, aisha.id) == []

        # Marco, named, in Italian.
        miei = (await m.say("/miei"))[0]
        assert "Domanda: Quanti posti servono?" in miei and "Aspetta la tua risposta" in miei
        assert [label for label, _ in m.last_message().buttons()] == ["Rispondi"]
        assert "S-0002" in (await m.press("Rispondi"))[0]
        assert "inoltrata" in (await m.say("Una decina."))[0]
        assert "La tua risposta: Una decina." in (await m.say("/miei"))[0]

    async with db.session() as session:
        answers = list(
            await session.scalars(
                select(SuggestionEvent)
                .where(SuggestionEvent.kind == "answer")
                .order_by(SuggestionEvent.suggestion_id)
            )
        )
    assert [(e.suggestion_id, e.actor_id) for e in answers] == [(1, None), (2, None)]
    assert await states(db) == []
