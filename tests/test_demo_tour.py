"""`fidelio demo tour`: a briefing and a pulse round now, on the demo organisation only, and
`:as WHO` in the console to see what another demo person received."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.briefings.tables import BriefingReceipt
from bot.clock import ManualClock
from bot.db.models import Campaign, Delivery, DeliveryStatus, Person
from bot.db.session import Database
from bot.demo import run_tour
from bot.errors import InputError
from bot.pulse.tables import SurveyRound

from .harness import REPO, console_runtime, make_settings
from .test_cli import HR, fidelio, write_config

AISHA = "aisha.khan@demo.fidelio.example"  # Sales Milano, English
BEATRICE = "beatrice.rizzo@demo.fidelio.example"  # Sales Roma, Italian
JAMES = "james.whitaker@demo.fidelio.example"  # Headquarters: not in the briefing's audience


async def converse(runtime: object, email: str, lines: str) -> str:
    """Type ``lines`` into the console as ``email`` (as `fidelio chat` does) and return what
    the console printed."""
    from bot.console_session import console_person, enable_switching

    console = runtime.channels["console"]  # type: ignore[attr-defined]
    console.out = io.StringIO()
    who = await console_person(runtime, email)
    enable_switching(runtime)
    await console.converse(who, io.StringIO(lines))
    return str(console.out.getvalue())


async def test_tour_reaches_demo_people_and_switching_shows_what_each_received(
    database_url: str, db: Database, clock: ManualClock
) -> None:
    settings = make_settings(database_url)
    async with console_runtime(settings, clock) as runtime:
        runtime.channels["console"].out = io.StringIO()
        result = await run_tour(runtime)  # an empty directory: the demo is loaded first

        assert result.loaded and result.people == 46  # 48 in the file, two have left
        assert result.campaign_id == 1 and not result.campaign_reused
        assert result.briefing.brief_at <= clock.now() < result.briefing.launch_at
        # spring-trade-in: Sales Milano (11), Sales Roma (8 still there), Customer Care (10).
        assert result.briefing_audience == 29
        assert result.invited == 46 and result.round_closes_at > clock.now()
        assert (result.sent, result.failed) == (29 + 46, 0)
        async with db.session() as session:
            unsent = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status != DeliveryStatus.sent)
            )
            assert unsent == 0
            aisha = await session.scalar(select(Person).where(Person.email == AISHA))
            assert aisha is not None
            purposes = list(
                await session.scalars(
                    select(Delivery.purpose)
                    .where(Delivery.person_id == aisha.id)
                    .order_by(Delivery.id)
                )
            )
            assert purposes == ["pulse-invitation", "briefing"]

        # Marta (HR) is not in the briefing's audience: she has the pulse only.
        text = await converse(runtime, HR, "pulse\n1\n")
        assert "Pulse quindicinale: 0/8" in text and "Before launch" not in text
        assert "Pulse quindicinale, 1/8" in text  # Inizia -> the first question

        # Switching to Aisha shows what she received, oldest first; the card's buttons are live.
        text = await converse(runtime, HR, ":as aisha.khan\n2\n2\n2\nwhoami\n")
        switched = text.index("-- now chatting as Aisha Khan (aisha.khan@demo.fidelio.example)")
        invitation = text.index("Fortnightly pulse: 8 quick questions", switched)
        card = text.index("Before launch: Spring trade-in: up to 300 euro for an old TV", switched)
        assert invitation < card
        assert "[1] Read more  [2] Got it" in text[card:]
        assert "Thanks, noted" in text and "question 1 of 2" in text
        assert "question 2 of 2" in text and "2 of 2 right" in text
        assert text.rstrip().endswith("channel: console")  # whoami answers as Aisha
        assert "Aisha Khan (aisha.khan@demo.fidelio.example)" in text.split("-- now")[-1]

        # An Italian salesperson sees the card in Italian; someone outside the audience only
        # the pulse; an unknown or ambiguous name switches nobody.
        text = await converse(
            runtime, AISHA, ":as beatrice.rizzo\n:as whitaker\n:as nobody.here\n:as giulia\n"
        )
        assert "Prima del lancio: Permuta di primavera" in text
        james = text.split("now chatting as James Whitaker")[1]
        assert "Fortnightly pulse: 8 quick questions" in james and "Before launch" not in james
        assert "nobody in the directory matches 'nobody.here'" in text
        assert "2 people match 'giulia'" in text
        async with db.session() as session:
            receipt = await session.scalar(
                select(BriefingReceipt).where(BriefingReceipt.person_id == aisha.id)
            )
            assert receipt is not None and receipt.acknowledged_at is not None
            assert receipt.quiz_score == 2

        # Running the tour again sends nothing twice.
        again = await run_tour(runtime)
        assert again.campaign_reused and again.round_reused and again.sent == 0


async def test_tour_refuses_a_directory_with_people_outside_the_demo(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    (tmp_path / "people.csv").write_text(
        "email,name,team\nreal.person@example.com,Real Person,Shop Torino\n", encoding="utf-8"
    )
    config = write_config(tmp_path, database_url)
    code, _, err = await fidelio(config, "people", "import", str(tmp_path / "people.csv"))
    assert code == 0, err
    code, out, err = await fidelio(config, "demo", "tour")
    assert code == 2, out
    assert "not in the demo organisation" in err and "real.person@example.com" in err
    assert "Traceback" not in err
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0
    # The same guard in process, after the demo is loaded next to the real person.
    settings = make_settings(database_url)
    async with console_runtime(settings, clock) as runtime:
        with pytest.raises(InputError, match="not in the demo organisation"):
            await run_tour(runtime)


async def test_demo_tour_as_a_process_then_chat_and_switch(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "demo", "tour")
    assert code == 0, err
    assert "Directory was empty: demo organisation loaded." in out
    assert (
        "Briefing: campaign B-1, Spring trade-in" in out
        and "survey schedule P-1" in out
        and "sent to 29 people" in out
    )
    assert "46 people invited" in out and "Delivered through the console: 75 messages" in out
    async with db.session() as session:
        round_ = await session.scalar(select(SurveyRound))
        assert round_ is not None and round_.invited == 46
    code, out, err = await fidelio(
        config, "chat", "--as", HR, stdin=f":as {AISHA}\n2\n1\n:as {BEATRICE}\n"
    )
    assert code == 0, err
    assert "-- now chatting as Aisha Khan" in out
    assert "Before launch: Spring trade-in" in out and "question 1 of 2" in out
    assert "Prima del lancio: Permuta di primavera" in out
    assert (REPO / "content" / "demo" / "people.csv").is_file()
