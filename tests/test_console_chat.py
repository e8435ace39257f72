"""The console and chat for a newcomer: scale answers typed as their value, a number off the
scale asked again, "did you mean" for a mistyped command, and help grouped by task."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.session import Database
from bot.pulse.content import load_survey
from bot.pulse.tables import Response, SurveyRound

from .harness import REPO, ConsoleDialog, demo_console

ROME = ZoneInfo("Europe/Rome")
FIRST = datetime(2027, 1, 4, 10, 0, tzinfo=ROME)  # the first round of pulse-fortnightly
HR = "hr@demo.fidelio.example"  # Marta Galli, writes in Italian
EMPLOYEE = "james.whitaker@demo.fidelio.example"
HEADINGS = {
    "Product news and briefings",
    "Pulse surveys and results",
    "Suggestions and ideas",
    "The directory",
    "The web console",
    "You and this chat",
    "Novità su prodotti e briefing",
    "Sondaggi pulse e risultati",
    "Suggerimenti e idee",
    "L'anagrafica",
    "La console web",
    "Tu e questa chat",
}


async def test_a_scale_answer_is_typed_as_its_value_and_off_scale_is_asked_again(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, EMPLOYEE, at=datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
    ) as runtime:
        survey, items = load_survey(REPO / "content" / "surveys", "pulse-fortnightly")
        async with runtime.db.session() as session:
            await runtime.service("surveys").schedule_in(session, survey, items, HR)
        clock.set(FIRST)
        await runtime.service("surveys").run_due()
        async with db.session() as session:
            round_ = (await session.scalars(select(SurveyRound))).one()
        kinds = [items[key].kind for key in round_.items]
        scale = kinds.index("scale0_10")
        likert = kinds.index("likert5")

        james = ConsoleDialog(runtime, EMPLOYEE)
        await james.say("pulse")
        shown = await james.press(1)  # Start
        for index in range(scale):
            if index == likert:
                assert "[1]  [2]  [3]  [4]  [5]  [s] Skip" in shown
            shown = await james.say("4")
        # The 0-10 scale: every value shows as itself, Skip by its letter.
        assert f"{scale + 1}/8" in shown
        assert "[0]  [1]  [2]" in shown and "[10]  [s] Skip" in shown
        for off_scale in ("11", "-1", "7.5"):
            again = await james.say(off_scale)
            assert "That is not one of the answers. Type one of these:" in again
            assert "[0]  [1]" in again and "did not understand" not in again
            assert f"{scale + 1}/8" not in again  # nothing was recorded: no next question
        after = await james.say("7")
        assert f"{scale + 2}/8" in after
        skipped = await james.say("s")
        assert f"{scale + 3}/8" in skipped
    async with db.session() as session:
        recorded = await session.scalar(
            select(Response.value_num).where(
                Response.round_id == round_.id, Response.item_id == round_.items[scale]
            )
        )
    assert recorded == 7


async def test_a_mistyped_command_gets_did_you_mean(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, EMPLOYEE, HR) as runtime:
        james = ConsoleDialog(runtime, EMPLOYEE)
        assert "Did you mean help?" in await james.say("hlep")
        assert "Did you mean briefings?" in await james.say("briefing")
        slashed = await james.say("/hlep")
        assert 'I do not know the command "hlep". Did you mean help?' in slashed
        # Only commands the person may use are suggested; plain chatter gets none.
        assert "campaign" not in await james.say("campaing")
        hello = await james.say("thanks a lot")
        assert "did not understand" in hello and "Did you mean" not in hello
        marta = ConsoleDialog(runtime, HR)
        assert "Forse intendevi aiuto?" in await marta.say("aiuot")
        assert "Forse intendevi campaign?" in await marta.say("campaing list")


async def test_hr_help_is_grouped_by_task_in_both_languages(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, EMPLOYEE) as runtime:
        marta = ConsoleDialog(runtime, HR)
        italian = await marta.say("aiuto")
        await marta.say("language en")
        english = await marta.say("help")
        employee = await ConsoleDialog(runtime, EMPLOYEE).say("help")

    def sections(text: str) -> list[tuple[str, list[str]]]:
        found: list[tuple[str, list[str]]] = []
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("• "):
                found[-1][1].append(line[2:].split(" — ")[0])
            elif found or line in HEADINGS:
                if line in HEADINGS:
                    found.append((line, []))
        return found

    expected = [
        ("Product news and briefings", ["briefings", "ask", "readiness", "campaign"]),
        ("Pulse surveys and results", ["pulse", "summary", "survey"]),
        (
            "Suggestions and ideas",
            ["suggest", "ideas", "mysuggestions", "suggestions", "suggestion"],
        ),
        ("The directory", ["status"]),
        ("The web console", ["web"]),
        ("You and this chat", ["help", "language", "whoami", "start", "cancel"]),
    ]
    assert sections(english) == expected
    assert [commands for _, commands in sections(italian)] == [c for _, c in expected]
    assert [heading for heading, _ in sections(italian)] == [
        "Novità su prodotti e briefing",
        "Sondaggi pulse e risultati",
        "Suggerimenti e idee",
        "L'anagrafica",
        "La console web",
        "Tu e questa chat",
    ]
    assert sum(len(c) for _, c in expected) == 19
    # An employee sees the same groups, without what is not theirs.
    assert sections(employee) == [
        ("Product news and briefings", ["briefings", "ask"]),
        ("Pulse surveys and results", ["pulse", "summary"]),
        ("Suggestions and ideas", ["suggest", "ideas", "mysuggestions"]),
        ("You and this chat", ["help", "language", "whoami", "start", "cancel"]),
    ]
