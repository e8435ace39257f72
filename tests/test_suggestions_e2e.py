"""Suggestions end to end: real Telegram and Slack clients against the fakes, the console, a
real database and an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import Runtime
from bot.channels.callbacks import CallbackCodec
from bot.clock import ManualClock
from bot.db.models import AuditEntry, ConversationState, Delivery, Person, Team
from bot.db.session import Database
from bot.suggestions.seal import Sealer, author_purpose
from bot.suggestions.tables import SealedNotice, Suggestion, SuggestionEvent, SuggestionStatus

from . import harness
from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import ConsoleDialog, SlackDialog, TelegramDialog, load_demo, running, until

ROME = ZoneInfo("Europe/Rome")
START = datetime(2027, 3, 1, 11, 0, tzinfo=ROME)  # a Monday
FAST_RATES = harness.fast_rates(50.0)
HR = "hr@demo.fidelio.example"
AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano (11 people), English
HANNAH = "hannah.weber@demo.fidelio.example"  # HR & People (4 people), English
MARCO = "marco.bianchi@demo.fidelio.example"  # Headquarters, Italian
LUCA = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano
SECRET = "test-secret-key"


def uid(person_id: int) -> int:
    return 30_000 + person_id


fake = harness.fake_telegram("fake", 50.0)


async def link_all(db: Database, fake: FakeTelegramServer, clock: ManualClock) -> dict[str, Person]:
    return await harness.link_everyone_on_telegram(db, fake, clock, uid, language_code="en")


async def deliver(runtime: Runtime) -> None:
    """What the scheduler does every few seconds: sealed notices, then the outbox."""
    await runtime.service("sealed_notices").run_once()
    await runtime.outbox.drain()


def settings_for(database_url: str, **extra: Any) -> Any:
    return harness.make_settings(database_url, rates=FAST_RATES, **extra)


async def demo_on_telegram(
    db: Database,
    clock: ManualClock,
    fake: FakeTelegramServer,
    database_url: str,
    start: datetime = START,
    **extra: Any,
) -> tuple[dict[str, Person], Any]:
    """The demo directory with everyone linked on the fake Telegram, the clock set to
    ``start``, and settings (``extra`` sections added) to run against that fake."""
    await load_demo(db, clock)
    people = await link_all(db, fake, clock)
    clock.set(start)
    return people, settings_for(database_url, telegram=harness.telegram_section(fake), **extra)


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


async def _file_three_suggestions(
    fake: FakeTelegramServer, aisha: Person, hannah: Person, marco: Person
) -> tuple[TelegramDialog, TelegramDialog]:
    """Aisha (anonymous, guided, e-mail removed), Hannah (anonymous from a team of four) and
    Marco (named, Italian) file S-0001..S-0003; returns Aisha's and Marco's dialogs."""
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
    return a, m


async def _assert_three_suggestions_stored(db: Database, aisha: Person, marco: Person) -> None:
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


async def _hr_plans_s1_and_declines_s3(
    runtime: Runtime,
    db: Database,
    fake: FakeTelegramServer,
    hr: TelegramDialog,
    aisha: Person,
    marco: Person,
) -> None:
    """HR triages in chat: list, open, set a status with a button; decline with a reason."""
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


async def _hr_asks_and_aisha_answers_anonymously(
    runtime: Runtime,
    db: Database,
    fake: FakeTelegramServer,
    hr: TelegramDialog,
    a: TelegramDialog,
    m: TelegramDialog,
    aisha: Person,
) -> None:
    """A follow-up question and its answer, the author still anonymous; nobody else can use
    her Answer button."""
    asked = (await hr.say("/suggestion S-0001 ask Which models should the demo show?"))[0]
    assert "Domanda su S-0001 inviata" in asked
    await deliver(runtime)
    question = a.last_message()
    assert "Which models should the demo show?" in (question.text or "")
    assert "you stay anonymous" in (question.text or "")
    answer_data = dict(question.buttons())["Answer"]

    # Someone else's button: refused, whether the data was signed for Aisha's chat...
    refused = (await m.press_data(answer_data))[0]
    assert "non è più valido" in refused
    # ...or validly signed for Marco's own chat but for a suggestion that is not his.
    forged = CallbackCodec(SECRET).encode("sugg_answer", "1", str(m.user_id))
    refused = (await m.press_data(forged))[0]
    assert "non è più valido" in refused

    prompt = (await a.press("Answer"))[0]
    assert "Write your answer about S-0001" in prompt
    thanks = (await a.say("The 55 and 65 inch models."))[0]
    assert "passed on, without your name" in thanks
    await deliver(runtime)
    relayed = hr.last_message().text or ""
    assert "ha risposto</b> (in forma anonima)" in relayed
    assert "The 55 and 65 inch models." in relayed
    assert await rows_naming(db, aisha.id) == []
    async with db.session() as session:
        answer = await session.scalar(
            select(SuggestionEvent).where(SuggestionEvent.kind == "answer")
        )
    assert answer is not None and answer.actor_id is None


async def _lists_follow_who_asks(
    fake: FakeTelegramServer, a: TelegramDialog, m: TelegramDialog, luca: Person
) -> None:
    """Authors see their own suggestions, a manager their subtree, an employee no triage."""
    # Her own list shows the anonymous one to her (and to nobody else).
    mine = (await a.say("/mysuggestions"))[0]
    assert "S-0001</b> planned" in mine and "anonymous (only you see this)" in mine
    assert "S-0002" not in mine
    assert "S-0003</b> non accolto" in (await m.say("/miei"))[0]

    # A manager sees their subtree only.
    manager = TelegramDialog(fake, uid(luca.id))
    mine = (await manager.say("/suggestions"))[0]
    assert "S-0001" in mine and "S-0002" not in mine and "S-0003" not in mine
    outside = (await manager.say("/suggestion S-0003 reply Ciao"))[0]
    assert "Non c'è un suggerimento S-0003" in outside
    # A validly signed button for a suggestion outside the subtree is refused too.
    show = CallbackCodec(SECRET).encode("sugg_st", "3.done", str(uid(luca.id)))
    refused = (await manager.press_data(show))[0]
    assert "Non c'è un suggerimento S-0003" in (refused or "")
    # An employee cannot triage at all.
    denied = (await a.say("/suggestions"))[0]
    assert "is not available to you" in denied


async def test_telegram_named_and_anonymous_triage_follow_up_and_scope(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    people, settings = await demo_on_telegram(db, clock, fake, database_url)
    aisha, hannah, marco = people[AISHA], people[HANNAH], people[MARCO]
    async with running(settings, clock, background=False) as runtime:
        a, m = await _file_three_suggestions(fake, aisha, hannah, marco)
        await _assert_three_suggestions_stored(db, aisha, marco)
        hr = TelegramDialog(fake, uid(people[HR].id))
        await _hr_plans_s1_and_declines_s3(runtime, db, fake, hr, aisha, marco)
        await _hr_asks_and_aisha_answers_anonymously(runtime, db, fake, hr, a, m, aisha)
        await _lists_follow_who_asks(fake, a, m, people[LUCA])

    async with db.session() as session:
        status = await session.scalar(select(Suggestion.status).where(Suggestion.id == 3))
        audit = [e.action for e in await session.scalars(select(AuditEntry))]
    assert status == SuggestionStatus.declined
    assert audit.count("suggestion.status") == 2 and "suggestion.question" in audit


def form_values(text: str, category: str, anonymous: bool) -> dict[str, Any]:
    return {
        "block_text": {"text": text},
        "block_category": {
            "category": {"type": "static_select", "selected_option": {"value": category}}
        },
        "block_anonymous": {
            "anonymous": {
                "type": "checkboxes",
                "selected_options": [{"value": "anonymous"}] if anonymous else [],
            }
        },
    }


async def _james_files_by_modal_and_from_the_dm(slack: FakeSlackServer) -> None:
    """James files S-0001 through the slash command's modal and S-0002 from a guided DM chat
    that switches to the form on request."""
    # Named, through the modal opened by the slash command.
    assert await slack.slash_command("U0JAMES", "suggest") == 200
    await until(lambda: len(slack.views) == 1)
    view = slack.views[-1]["view"]
    assert view["callback_id"] == "sugg_form"
    elements = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert elements["block_text"]["type"] == "plain_text_input"
    assert [o["value"] for o in elements["block_category"]["options"]] == [
        "product",
        "customer_service",
        "processes",
        "workplace",
        "other",
    ]
    assert elements["block_anonymous"]["type"] == "checkboxes"
    status = await slack.submit_view(
        "U0JAMES", "sugg_form", form_values("Longer opening hours", "other", False)
    )
    assert status == 200
    james = SlackDialog(slack, "U0JAMES")
    sent = (await slack.wait_for_messages(james.dm, 1))[0].text or ""
    assert "reference S-0001 (Other)" in sent and "anonymous" not in sent

    # Typed in the DM (no trigger to open a form): a guided chat, or a form on request.
    prompt = (await james.say("suggest"))[0]
    assert "Write your idea" in prompt
    assert await slack.press("U0JAMES", "Use a form") == 200
    await until(lambda: len(slack.views) == 2)
    assert slack.views[-1]["view"]["callback_id"] == "sugg_form"
    await slack.submit_view(
        "U0JAMES", "sugg_form", form_values("Price tags in two languages", "product", False)
    )
    sent = (await slack.wait_for_messages(james.dm, 3))[2].text or ""
    assert "reference S-0002 (Product)" in sent


async def _grace_files_anonymously_after_an_edit(slack: FakeSlackServer, grace_dm: str) -> None:
    """Anonymous, with a phone number flagged; Edit reopens the form with the text."""
    assert await slack.slash_command("U0GRACE", "suggest") == 200
    await until(lambda: len(slack.views) == 3)
    await slack.submit_view(
        "U0GRACE",
        "sugg_form",
        form_values("Call-back list for busy days: 02 1234 5678", "customer_service", True),
    )
    flagged = (await slack.wait_for_messages(grace_dm, 1))[0]
    assert "a phone number" in (flagged.text or "")
    assert await slack.press("U0GRACE", "Edit") == 200
    await until(lambda: len(slack.views) == 4)
    reopened = {b["block_id"]: b["element"] for b in slack.views[-1]["view"]["blocks"]}
    assert "02 1234 5678" in reopened["block_text"]["initial_value"]
    assert reopened["block_anonymous"]["initial_options"][0]["value"] == "anonymous"
    await slack.submit_view(
        "U0GRACE",
        "sugg_form",
        form_values("Call-back list for busy days", "customer_service", True),
    )
    sent = (await slack.wait_for_messages(grace_dm, 2))[1].text or ""
    assert "reference S-0003 (Customer service, anonymous)" in sent


async def _hr_console_triage_reaches_grace_on_slack(
    runtime: Runtime, db: Database, slack: FakeSlackServer, grace_dm: str
) -> None:
    """HR in the console changes the status and asks a question; Grace answers in a modal and
    HR reads it in the console, without her name."""
    hr = ConsoleDialog(runtime, HR)
    listing = await hr.say("suggestions anonime")
    assert "S-0003" in listing and "S-0001" not in listing and "S-0002" not in listing
    assert "S-0003 ora è in valutazione" in await hr.say("suggerimento S-0003 status under_review")
    await hr.say("suggerimento S-0003 ask Which days are the busiest?")
    await deliver(runtime)
    texts = [m.text or "" for m in slack.messages_in(grace_dm)]
    assert any("is now under review" in t for t in texts)
    assert "Which days are the busiest?" in texts[-1]

    # She answers in a modal; HR reads it in the console, without her name.
    assert await slack.press("U0GRACE", "Answer") == 200
    await until(lambda: len(slack.views) == 5)
    answer_view = slack.views[-1]["view"]
    assert answer_view["callback_id"] == "sugg_answer_form"
    # A blank answer is refused in the modal, which stays open; then she writes it.
    await slack.submit_view("U0GRACE", "sugg_answer_form", {"block_answer": {"answer": " "}})
    assert slack.view_submissions[-1]["outcome"] == "errors"
    await slack.submit_view(
        "U0GRACE",
        "sugg_answer_form",
        {"block_answer": {"answer": "Saturdays before holidays."}},
    )
    thanks = (await slack.wait_for_messages(grace_dm, 5))[4].text or ""
    assert "without your name" in thanks
    hr.console.out.seek(0, 2)
    start = hr.console.out.tell()
    await deliver(runtime)
    hr.console.out.seek(start)
    relayed = hr.console.out.read()
    assert "(in forma anonima)" in relayed and "Saturdays before holidays." in relayed
    grace = await _person(db, "grace.adeyemi@demo.fidelio.example")
    assert await rows_naming(db, grace.id) == []


async def test_slack_modal_named_and_anonymous_with_console_triage(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    clock.set(START)
    async with FakeSlackServer(rate_scale=50.0) as slack:
        slack.add_user(SlackUser("U0JAMES", "james.whitaker@demo.fidelio.example", "james"))
        slack.add_user(SlackUser("U0GRACE", "grace.adeyemi@demo.fidelio.example", "grace"))
        async with harness.running_on_slack(
            slack,
            clock,
            database_url,
            background=False,
            rates=FAST_RATES,
            console={"enabled": True},
        ) as runtime:
            await runtime.channels["slack"].sync_directory(db, clock)
            from bot.console_session import console_person

            await console_person(runtime, HR)

            await _james_files_by_modal_and_from_the_dm(slack)
            grace_dm = slack.dm_channel_of("U0GRACE")
            await _grace_files_anonymously_after_an_edit(slack, grace_dm)
            await _hr_console_triage_reaches_grace_on_slack(runtime, db, slack, grace_dm)


async def _person(db: Database, email: str) -> Person:
    async with db.session() as session:
        found = await session.scalar(select(Person).where(Person.email == email))
        assert found is not None
        return found


SUGGESTIONS = {
    1: (AISHA, "Demo units of the OLED TVs at every till", True),
    2: (MARCO, "Un televisore OLED acceso in vetrina", False),
    3: (HANNAH, "A shared calendar for holidays", False),
    4: (LUCA, "Fewer reports on Fridays", False),
    5: ("emma.schmidt@demo.fidelio.example", "Water dispenser on floor 2", False),
}


async def _publish_two_and_vote(
    runtime: Runtime, fake: FakeTelegramServer, hr: TelegramDialog, people: dict[str, Person]
) -> tuple[TelegramDialog, int]:
    """HR publishes S-0001 and S-0002; Marco, Luca and Aisha vote on the board, one vote per
    person however often they press.  Returns Marco's dialog and the id of his board."""
    for ref in ("S-0001", "S-0002"):
        assert "pubblicato" in (await hr.say(f"/suggestion {ref} publish"))[0]
    await deliver(runtime)
    assert "is published" in (fake.last_message(uid(people[AISHA].id)).text or "")

    # One vote per person, however often they press.
    marco = TelegramDialog(fake, uid(people[MARCO].id))
    board = (await marco.say("/idee"))[0]
    board_id = marco.last_message().message_id
    assert "S-0001" in board and "S-0002" in board and "S-0003" not in board
    assert "Aisha" not in board
    assert "Sostenitori: <b>1</b>" in (await marco.press("👍 S-0001"))[0]
    again = (await marco.press("👍 S-0001"))[0]
    assert "un voto a persona" in again and "Sostenitori: <b>1</b>" in again
    luca = TelegramDialog(fake, uid(people[LUCA].id))
    await luca.say("/ideas")
    assert "Sostenitori: <b>2</b>" in (await luca.press("👍 S-0001"))[0]
    aisha = TelegramDialog(fake, uid(people[AISHA].id))
    await aisha.say("/ideas")
    assert "Supporters: <b>1</b>" in (await aisha.press("👍 S-0002"))[0]
    return marco, board_id


async def _merge_and_change_this_week(
    runtime: Runtime,
    fake: FakeTelegramServer,
    hr: TelegramDialog,
    marco: TelegramDialog,
    board_id: int,
    people: dict[str, Person],
) -> None:
    """S-0002 merged into S-0001 (votes summed, both authors told), then this week's changes."""
    merged = (await hr.say("/suggestion S-0002 merge S-0001"))[0]
    assert "S-0002 unito a S-0001: 3 sostenitori" in merged
    await deliver(runtime)
    assert "è stato unito a S-0001" in (fake.last_message(uid(people[MARCO].id)).text or "")
    assert "was merged into S-0001" in (fake.last_message(uid(people[AISHA].id)).text or "")
    # A vote on the merged suggestion counts for the one it joined, still once per person.
    await marco.press("👍 S-0002", message_id=board_id)
    assert "Sostenitori: <b>3</b>" in (fake.last_message(uid(people[MARCO].id)).text or "")

    # Changes this week: S-0001 planned, S-0003 done with a reply, S-0004 under review;
    # S-0005 only gets a reply (no status change).
    await hr.say("/suggestion S-0001 status planned In all shops from April.")
    await hr.say("/suggestion S-0003 done")
    await hr.say("/suggestion S-0003 reply The calendar is on the intranet.")
    await hr.say("/suggestion S-0004 under_review")
    await hr.say("/suggestion S-0005 reply Thanks, we are looking into it.")
    await deliver(runtime)
    # After the merge, S-0002's author hears about S-0001 too.
    assert "S-0001</b> ora è <b>pianificato</b>" in (
        fake.last_message(uid(people[MARCO].id)).text or ""
    )


async def _weekly_digest_says_what_changed(
    runtime: Runtime,
    db: Database,
    clock: ManualClock,
    fake: FakeTelegramServer,
    people: dict[str, Person],
) -> None:
    """Next Monday's digest: the three changed suggestions, to every active person, once."""
    clock.set(datetime(2027, 3, 8, 9, 0, tzinfo=ROME))
    stats = await runtime.service("suggestion_digests").run_due()
    active = [p for p in people.values() if p.is_active(clock.now().date())]
    assert stats.items == 3 and stats.queued == len(active) < len(people)
    assert (await runtime.service("suggestion_digests").run_due()).digests == 0  # once only
    async with db.session() as session:
        digests = list(
            await session.scalars(select(Delivery).where(Delivery.purpose == "suggestion-digest"))
        )
    refs = [item["reference"] for item in digests[0].context["items"]]
    assert refs == ["S-0001", "S-0003", "S-0004"]
    responses = {i["reference"]: i["response"] for i in digests[0].context["items"]}
    assert responses["S-0003"] == "The calendar is on the intranet."
    await runtime.outbox.drain()
    digest = fake.last_message(uid(people["emma.schmidt@demo.fidelio.example"].id)).text or ""
    assert "You said, we did" in digest
    assert "S-0001</b> is now <b>planned</b>" in digest
    assert "S-0002" not in digest and "S-0005" not in digest
    # Published: its text; not published: only its category, for everyone to read.
    assert "Demo units of the OLED TVs" in digest
    assert "a suggestion about product" in digest and "shared calendar" not in digest
    assert "The calendar is on the intranet." in digest


async def _next_digest_holds_only_later_changes(
    runtime: Runtime, db: Database, clock: ManualClock, hr: TelegramDialog
) -> None:
    clock.set(datetime(2027, 3, 10, 12, 0, tzinfo=ROME))
    assert "pianificato" in (await hr.say("/suggestion S-0004 planned"))[0]
    clock.set(datetime(2027, 3, 15, 9, 30, tzinfo=ROME))
    stats = await runtime.service("suggestion_digests").run_due()
    assert stats.items == 1
    async with db.session() as session:
        latest = await session.scalar(
            select(Delivery)
            .where(Delivery.purpose == "suggestion-digest")
            .order_by(Delivery.id.desc())
            .limit(1)
        )
    assert latest is not None
    assert [i["reference"] for i in latest.context["items"]] == ["S-0004"]


async def test_publish_votes_merge_and_digest(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    from bot.suggestions.service import SuggestionService

    people, settings = await demo_on_telegram(db, clock, fake, database_url)
    service = SuggestionService(settings, clock)
    async with db.session() as session:
        for number, (email, text, anonymous) in SUGGESTIONS.items():
            author = await session.get(Person, people[email].id)
            assert author is not None
            created = await service.create(session, author, text, "product", anonymous)
            assert created.id == number
    async with running(settings, clock, background=False) as runtime:
        # This Monday's digest is due already, but nothing changed: nothing is sent.
        stats = await runtime.service("suggestion_digests").run_due()
        assert (stats.digests, stats.items, stats.queued) == (1, 0, 0)

        hr = TelegramDialog(fake, uid(people[HR].id))
        marco, board_id = await _publish_two_and_vote(runtime, fake, hr, people)
        await _merge_and_change_this_week(runtime, fake, hr, marco, board_id, people)
        await _weekly_digest_says_what_changed(runtime, db, clock, fake, people)
        # The next digest holds only what changed after this one.
        await _next_digest_holds_only_later_changes(runtime, db, clock, hr)


async def test_console_prompts_send_a_suggestion(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    from bot.console_session import console_person

    async with harness.demo_console(db, clock, database_url, at=START) as runtime:
        await console_person(runtime, "james.whitaker@demo.fidelio.example")
        james = ConsoleDialog(runtime, "james.whitaker@demo.fidelio.example")
        assert "suggest — send a suggestion" in await james.say("help")
        assert "Write your idea" in await james.say("suggest")
        flagged = await james.say("Ring me on 333 123 4567 about the stock room")
        assert "a phone number: 333 123 4567" in flagged
        assert "[1] Edit  [2] Remove them  [3] Send as it is" in flagged
        assert "Your text so far: Ring me on 333 123 4567" in await james.press(1)
        categories = await james.say("A tidier stock room")
        assert "[1] Product" in categories and "[4] Workplace" in categories
        assert "[1] With my name  [2] Anonymously" in await james.press(4)
        sent = await james.press(1)
        assert "reference S-0001 (Workplace)" in sent
        # Typing instead of pressing a button asks again; a stray number is just text.
        await james.say("suggest Name badges for new colleagues")
        again = await james.say("hello?")
        assert "Which category fits best?" in again
    async with db.session() as session:
        stored = await session.get(Suggestion, 1)
    assert stored is not None and stored.text == "A tidier stock room"
    assert stored.category == "workplace" and not stored.anonymous


async def test_sealed_notices_retry_drop_and_never_name_the_author(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """The delivery policy of messages for anonymous authors, through the fake Telegram."""
    from bot.suggestions.service import SuggestionService

    people, settings = await demo_on_telegram(db, clock, fake, database_url)
    service = SuggestionService(settings, clock)
    authors = [AISHA, HANNAH, "kevin.liu@demo.fidelio.example"]
    async with db.session() as session:
        hr = await session.get(Person, people[HR].id)
        assert hr is not None
        for email in authors:
            author = await session.get(Person, people[email].id)
            assert author is not None
            made = await service.create(session, author, f"idea {email}", "other", True)
            await service.set_status(session, hr, made, SuggestionStatus.under_review)
        # A token that no longer opens (e.g. written under another secret key) is dropped.
        session.add(
            SealedNotice(
                token=Sealer("old-key").seal(people[AISHA].id, "suggestion-notice"),
                template="suggestions/replied",
                context={},
                buttons=[],
                attempts=0,
                not_before=clock.now(),
                created_at=clock.now(),
            )
        )
    async with db.session() as session:
        tokens = [n.token for n in await session.scalars(select(SealedNotice))]
    assert len(tokens) == 4 and len(set(tokens)) == 4
    # Sealed, not written down: without Fidelio's key no token opens (the AES-GCM tag fails).
    # (Looking for the id's digits in the random bytes would fail by chance: a one-digit id
    # is one byte among ~40 random ones.)
    outsider = Sealer("a key that is not Fidelio's")
    assert all(outsider.open(t, "suggestion-notice") is None for t in tokens)

    aisha, hannah, kevin = (uid(people[e].id) for e in authors)
    fake.inject("500", method="sendMessage", chat_id=aisha)
    fake.block(hannah)
    async with running(settings, clock, background=False) as runtime:
        stats = await runtime.service("sealed_notices").run_once()
        assert (stats.sent, stats.retried, stats.dropped) == (1, 1, 2)
        assert "under review" in (fake.last_message(kevin).text or "")
        assert fake.messages_to(hannah) == []
        async with db.session() as session:
            left = list(await session.scalars(select(SealedNotice)))
        assert (
            len(left) == 1
            and left[0].attempts == 1
            and "Server Error" in (left[0].last_error or "")
        )
        # Not due before its backoff; sent once it is.
        assert (await runtime.service("sealed_notices").run_once()).sent == 0
        clock.advance(timedelta(seconds=settings.outbox.backoff_base_s))
        assert (await runtime.service("sealed_notices").run_once()).sent == 1
        assert "under review" in (fake.last_message(aisha).text or "")
    async with db.session() as session:
        assert await session.scalar(select(SealedNotice.id)) is None


async def test_running_fidelio_delivers_sealed_notices_in_the_background(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """With the scheduler and the outbox running (as `fidelio run`), nobody drives delivery."""
    from bot.suggestions.service import SuggestionService

    people, settings = await demo_on_telegram(
        db, clock, fake, database_url, suggestions={"digest_enabled": False}
    )
    async with running(settings, clock) as runtime:
        assert runtime.scheduler.active
        service = SuggestionService(settings, clock)
        async with db.session() as session:
            author = await session.get(Person, people[AISHA].id)
            hr = await session.get(Person, people[HR].id)
            assert author is not None and hr is not None
            made = await service.create(session, author, "Idea", "other", True)
            await service.reply(session, hr, made, "We like it.")
        received = await fake.wait_for_messages(uid(people[AISHA].id), 1, timeout=10)
        assert "We like it." in (received[0].text or "")
