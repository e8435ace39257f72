"""The Slack Home tab end to end: the real slack-bolt app against the fake Slack, which
delivers ``app_home_opened`` and presses on the tab as Slack does and refuses a home view
Slack would refuse (tests/fakes/slack/home.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import Runtime
from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import AuditEntry, Campaign, Person
from bot.db.session import Database
from bot.people import person_by_email
from bot.pulse.content import load_survey
from bot.suggestions.service import SuggestionService

from . import harness
from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.slack.home import home_text
from .fakes.slack.records import button_label, iter_buttons
from .loyalty_seed import closed_round, schedule_survey

ROME = ZoneInfo("Europe/Rome")
#: The demo briefing (spring-trade-in) went out at 09:00; it launches on 1 March.
BRIEFED = datetime(2027, 2, 26, 12, 0, tzinfo=ROME)
#: A round of the fortnightly pulse opens.
ROUND_OPENS = datetime(2027, 3, 1, 10, 0, tzinfo=ROME)
FAST = harness.fast_rates(50.0)
AISHA = "aisha.khan@demo.fidelio.example"  # employee, Sales Milano, English
JAMES = "james.whitaker@demo.fidelio.example"  # employee, Headquarters, English
LUCA = "luca.moretti@demo.fidelio.example"  # manager of Sales Milano, Italian
SILVIA = "silvia.rossi@demo.fidelio.example"  # manager of HR & People (4 people), Italian
MARTA = "hr@demo.fidelio.example"  # HR, Italian


@asynccontextmanager
async def on_slack(
    db: Database, clock: ManualClock, database_url: str, **users: str
) -> AsyncIterator[tuple[Runtime, FakeSlackServer]]:
    """Fidelio on the fake Slack (scheduler and outbox driven by the test), ``users`` (Slack
    id -> email) linked; Home tabs may be published every 50 ms."""
    async with FakeSlackServer(rate_scale=50.0) as fake:
        for user_id, email in users.items():
            fake.add_user(SlackUser(user_id, email, user_id.lower()))
        async with harness.running_on_slack(
            fake, clock, database_url, background=False, rates=FAST, home={"refresh_s": 0.05}
        ) as runtime:
            await runtime.channels["slack"].sync_directory(db, clock)
            yield runtime, fake


async def schedule_pulse(runtime: Runtime) -> None:
    survey, items = load_survey(harness.REPO / "content" / "surveys", "pulse-fortnightly")
    async with runtime.db.session() as session:
        await runtime.service("surveys").schedule_in(session, survey, items, MARTA)


async def tick(runtime: Runtime) -> None:
    """A scheduler wake-up: due rounds and briefings, then the outbox."""
    await runtime.service("surveys").run_due()
    await runtime.service("briefings").run_due()
    await runtime.outbox.drain()


def headers(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]


def labels(view: dict[str, Any]) -> list[str]:
    return [button_label(el) for _, el in iter_buttons(view["blocks"])]


def assert_every_publish_accepted(fake: FakeSlackServer) -> None:
    """The fake answers a view Slack would refuse with ok: false; none was."""
    calls = fake.calls_to("views.publish")
    assert calls and len(calls) == len(fake.home_publishes), [c.status for c in calls]


async def test_employee_tab_follows_a_new_round_and_answer_starts_the_pulse_in_the_dm(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await harness.load_demo(db, clock)
    clock.set(BRIEFED)
    async with on_slack(
        db, clock, database_url, U0AISHA=AISHA, U0GUEST="guest@elsewhere.example"
    ) as (runtime, fake):
        await schedule_pulse(runtime)
        await harness.schedule_demo_briefing(runtime)
        await tick(runtime)
        assert await fake.open_home("U0AISHA") == 200
        first = await fake.wait_for_home("U0AISHA")
        assert headers(first) == [
            "Fidelio",
            "Surveys to answer",
            "Briefings to read",
            "Your suggestions",
            "Ideas from colleagues",
        ]
        text = home_text(first)
        assert "Hi Aisha Khan" in text and "No survey is waiting for you." in text
        assert "*Spring trade-in: up to 300 euro for an old TV*" in text
        assert "*not read yet*, quiz 0/2" in text
        assert "You have not sent any suggestion yet." in text
        assert labels(first) == ["Read more", "Got it", "New suggestion"]

        # A round opens: the tab she has open follows.
        clock.set(ROUND_OPENS)
        await tick(runtime)
        second = await fake.wait_for_home("U0AISHA", 2)
        assert "*Fortnightly pulse*: 8 questions, open until" in home_text(second)
        assert labels(second)[0] == "Answer"

        # Answer on the tab: the survey starts in her direct message, as Start does there.
        dm = fake.dm_channel_of("U0AISHA")
        before = len(fake.messages_in(dm))
        assert await fake.press_home("U0AISHA", "Answer") == 200
        question = (await fake.wait_for_messages(dm, before + 1))[before]
        assert "1/8" in (question.text or "") and "satisfied with working here" in (
            question.text or ""
        )
        assert await fake.press("U0AISHA", "4") == 200
        third = await fake.wait_for_home("U0AISHA", 3)
        assert "*Fortnightly pulse*: 1/8 done" in home_text(third)

        # Got it on the tab: acknowledged in the DM, the quiz follows there and on the tab.
        before = len(fake.messages_in(dm))
        assert await fake.press_home("U0AISHA", "Got it") == 200
        got = await fake.wait_for_messages(dm, before + 2)
        assert "Thanks" in (got[before].text or "")
        assert "question 1 of 2" in (got[before + 1].text or "")
        fourth = await fake.wait_for_home("U0AISHA", 4)
        assert "read, quiz 0/2" in home_text(fourth) and "Take the quiz" in labels(fourth)

        # The Messages tab, and a stranger's Home tab: nothing published, nothing written.
        assert await fake.open_home("U0AISHA", tab="messages") == 200
        assert await fake.open_home("U0GUEST") == 200
        await runtime.service("home_refresher").settle()
        assert len(fake.home_publishes_for("U0AISHA")) == 4
        assert fake.home_publishes_for("U0GUEST") == []
        assert fake.messages_in(fake.dm_channel_of("U0GUEST")) == []
        assert_every_publish_accepted(fake)


def answers(person: Person, number: int) -> dict[str, int | str | None]:
    """Everyone answers the core items, a little differently by person and round."""
    base = 2 + (person.id + number) % 4
    return {"sat_overall": base, "intent_stay": min(5, base + 1), "enps": 4 + base}


async def seed_closed_rounds(db: Database, clock: ManualClock, database_url: str) -> None:
    """The demo and three closed rounds of the fortnightly pulse."""
    await harness.load_demo(db, clock)
    campaign = await schedule_survey(harness.make_settings(database_url), db, clock)
    for number in (1, 2, 3):
        await closed_round(db, campaign, number, ["sat_overall", "intent_stay", "enps"], answers)


async def test_managers_see_readiness_and_their_summary_or_the_refusal_in_italian(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_closed_rounds(db, clock, database_url)
    clock.set(BRIEFED)
    async with on_slack(db, clock, database_url, U0LUCA=LUCA, U0SILVIA=SILVIA) as (runtime, fake):
        await harness.schedule_demo_briefing(runtime)
        await tick(runtime)
        for user in ("U0LUCA", "U0SILVIA"):
            assert await fake.open_home(user) == 200
        luca = await fake.wait_for_home("U0LUCA")
        assert headers(luca) == [
            "Fidelio",
            "Sondaggi a cui rispondere",
            "Briefing da leggere",
            "Prontezza al lancio dei tuoi team",
            "Riepilogo fedeltà",
            "I tuoi suggerimenti",
            "Idee dei colleghi",
        ]
        text = home_text(luca)
        assert "Ciao Luca Moretti" in text
        assert "*B-1 Permuta di primavera: fino a 300 euro per il vecchio TV*, lancio" in text
        assert "• Sales Milano (" in text and "`readiness B-1`" in text
        assert "*Riepilogo fedeltà: Sales Milano*" in text and "eNPS" in text
        assert "Scrivi `riepilogo` per il grafico" in text

        # Silvia's team is too small to report: the chat's refusal, then the organisation.
        silvia = home_text(await fake.wait_for_home("U0SILVIA"))
        assert (
            "Non ci sono abbastanza risposte da *HR &amp; People* per un riepilogo che non "
            "identifichi le persone." in silvia
        )
        assert "*Riepilogo fedeltà: l'organizzazione*" in silvia
        assert "Nessun briefing in corso per i tuoi team." in silvia
        assert_every_publish_accepted(fake)
    async with db.session() as session:
        views = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.view"))
        )
    assert sorted((v.actor_label, v.detail["shown"], v.detail["route"]) for v in views) == [
        (LUCA, "Sales Milano", "home"),
        (SILVIA, "the organisation", "home"),
    ]


async def test_hr_sees_what_is_coming_live_rates_and_triage_and_opens_a_suggestion(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await harness.load_demo(db, clock)
    clock.set(BRIEFED)
    async with on_slack(db, clock, database_url, U0MARTA=MARTA) as (runtime, fake):
        await schedule_pulse(runtime)
        await harness.schedule_demo_briefing(runtime)
        async with runtime.db.session() as session:
            aisha = await person_by_email(session, AISHA)
            assert aisha is not None
            await SuggestionService(runtime.settings, clock).create(
                session, aisha, "A quiet room for customer calls, please.", "workplace", False
            )
        await tick(runtime)
        assert await fake.open_home("U0MARTA") == 200
        view = await fake.wait_for_home("U0MARTA")
        assert headers(view)[3:8] == [
            "Prontezza al lancio dei tuoi team",
            "Riepilogo fedeltà",
            "Suggerimenti da valutare",
            "Tassi di risposta",
            "In arrivo",
        ]
        text = home_text(view)
        assert "*S-0001* · " in text and "A quiet room for customer calls, please." in text
        assert "Nessun turno di sondaggio è aperto." in text
        assert (
            "*B-1 Permuta di primavera" in text
            and "*P-1 Pulse quindicinale*: prossimo turno" in text
        )
        assert "Nessun turno di sondaggio si è ancora chiuso" in text  # the chat's own answer
        assert "Apri" in labels(view)

        # The round opens: live rates, coarse as in chat.
        clock.set(ROUND_OPENS)
        await tick(runtime)
        text = home_text(await fake.wait_for_home("U0MARTA", 2))
        assert "*Pulse quindicinale*, turno 1 (chiude il" in text
        assert "0 su " in text and "completati, 0 iniziati" in text
        assert "arrotondati per difetto a un multiplo di 5" in text

        # Open, on the tab: the suggestion in her direct message, as in `suggestions`.
        dm = fake.dm_channel_of("U0MARTA")
        before = len(fake.messages_in(dm))
        assert await fake.press_home("U0MARTA", "Apri") == 200
        detail = (await fake.wait_for_messages(dm, before + 1))[before]
        assert "S-0001" in (detail.text or "") and "quiet room" in (detail.text or "")
        assert_every_publish_accepted(fake)


async def give_open_items(db: Database, clock: ManualClock, email: str, runtime: Runtime) -> None:
    """40 running briefings to read (copies of the demo one) and 12 suggestions."""
    campaign = await harness.schedule_demo_briefing(runtime)
    async with db.session() as session:
        person = await session.scalar(select(Person).where(Person.email == email))
        assert person is not None
        for n in range(40):
            copy = Campaign(
                kind=campaign.kind,
                content_id=f"copy-{n}",
                title=campaign.title,
                status=campaign.status,
                snapshot=campaign.snapshot,
                starts_at=campaign.starts_at,
                launch_at=campaign.launch_at,
                ends_at=campaign.ends_at,
                created_by="test",
                created_at=clock.now(),
            )
            session.add(copy)
            await session.flush()
            session.add(
                BriefingReceipt(
                    campaign_id=copy.id,
                    person_id=person.id,
                    team_id=person.team_id,
                    queued_at=clock.now(),
                    quiz_answers={},
                )
            )
        service = SuggestionService(runtime.settings, clock)
        for n in range(12):
            await service.create(session, person, f"Idea number {n} " + "x" * 900, "other", False)


async def test_forty_open_items_are_summarised_within_slack_limits(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await harness.load_demo(db, clock)
    clock.set(BRIEFED + timedelta(hours=1))
    async with on_slack(db, clock, database_url, U0JAMES=JAMES) as (runtime, fake):
        await give_open_items(db, clock, JAMES, runtime)
        assert await fake.open_home("U0JAMES") == 200
        view = await fake.wait_for_home("U0JAMES")
        assert len(view["blocks"]) <= 100
        text = home_text(view)
        assert "…and 35 more: type `briefings`." in text
        assert "…and 7 more: type `mysuggestions`." in text
        assert labels(view).count("Got it") == 5
        assert_every_publish_accepted(fake)

        # New suggestion on the tab opens the chat's form, as in the direct message.
        assert await fake.press_home("U0JAMES", "New suggestion") == 200
        await harness.until(lambda: any(v["method"] == "views.open" for v in fake.views))
        opened = [v for v in fake.views if v["method"] == "views.open"]
        assert opened[-1]["view"]["callback_id"] == "sugg_form"
