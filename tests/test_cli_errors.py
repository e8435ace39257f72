"""Errors that name the right thing: an unreachable database, an unknown migration, missing
options, a refused confirmation, `make chat` without AS, the time zone of the digest preview,
and the B-/P- references of briefing campaigns and survey schedules."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from bot.clock import ManualClock, SystemClock
from bot.db.models import Campaign, CampaignKind, CampaignStatus, Person
from bot.db.session import Database
from bot.suggestions.digest import DigestService
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import Suggestion

from .conftest import PG_URL
from .harness import REPO, ConsoleDialog, demo_console, load_demo, make_settings
from .test_cli import fidelio, write_config

HR = "hr@demo.fidelio.example"
EMPLOYEE = "kevin.liu@demo.fidelio.example"
ROME = ZoneInfo("Europe/Rome")

#: Commands that open the database in different ways: Alembic, the CLI's sessions, the
#: console chat, the suggestion triage and the reports (each with its own entry point).
DATABASE_COMMANDS: list[tuple[str, ...]] = [
    ("db", "upgrade"),
    ("db", "current"),
    ("people", "list"),
    ("survey", "list"),
    ("chat", "--as", HR),
    ("suggestions", "list", "--as", HR),
    ("report", "loyalty", "--as", HR),
]


def _one_clear_line(code: int, out: str, err: str, *words: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# 3: tracebacks


@pytest.mark.skipif(not PG_URL, reason="needs FIDELIO_TEST_DATABASE_URL (a PostgreSQL server)")
async def test_a_postgresql_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    assert PG_URL is not None
    name = f"fidelio_never_created_{os.getpid()}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    config = write_config(tmp_path, url)
    for args in DATABASE_COMMANDS:
        code, out, err = await fidelio(config, *args, stdin="help\n")
        line = _one_clear_line(code, out, err, "database.url", name, "createdb")
        assert "fidelio db upgrade" in line, line


async def test_a_port_where_nothing_listens_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/fidelio")
    for args in DATABASE_COMMANDS:
        code, out, err = await fidelio(config, *args, stdin="help\n")
        _one_clear_line(code, out, err, "database.url", "127.0.0.1:1", "connection refused")


async def test_db_upgrade_to_an_unknown_revision_names_it(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{path}")
    for revision in ("9999", "zz", ""):
        code, out, err = await fidelio(config, "db", "upgrade", revision)
        line = _one_clear_line(code, out, err, "REVISION", "head")
        assert repr(revision) in line, line
    code, out, err = await fidelio(config, "db", "current")
    assert code == 0 and "(empty database)" in out, err  # nothing was migrated
    code, out, err = await fidelio(config, "db", "upgrade", "0001")
    assert code == 0 and "Database at revision 0001" in out, err


# 7: the digest preview in the reader's zone


async def test_digest_preview_shows_times_in_the_readers_zone_named(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    async with db.session() as session:
        await session.execute(
            update(Person).where(Person.email == HR).values(timezone="America/New_York")
        )
    config = write_config(
        tmp_path, database_url, suggestions={"digest_cron": "0 9 * * mon", "digest_enabled": True}
    )
    code, out, err = await fidelio(config, "suggestions", "digest", "--as", HR)
    assert code == 0, err
    # Monday 09:00 in the organisation's zone (Europe/Rome), on HR's clock in New York.
    settings = make_settings(database_url)
    now = SystemClock().now()
    cadence = DigestService(settings, None, SystemClock()).cadence()
    upcoming = cadence.occurrences(now, now + timedelta(weeks=2))[0]
    assert upcoming.astimezone(ROME).strftime("%H:%M") == "09:00"
    expected = upcoming.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")
    first = out.splitlines()[0]
    assert f"next digest {expected} America/New_York" in first, first
    assert "UTC" not in first and re.search(r"changes since .* America/New_York", first), first


# 8: errors that name the wrong thing


async def test_report_comments_asks_for_as_first_and_never_blames_last(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "report", "comments")
    line = _one_clear_line(code, out, err, "--as")
    assert line.startswith("--as"), line
    for command in ("comments", "loyalty"):
        code, out, err = await fidelio(config, "report", command, "--as", HR)
        line = _one_clear_line(code, out, err, "closed")
        assert "--last" not in line and "--since" not in line, line
    code, out, err = await fidelio(
        config, "report", "comments", "--as", HR, "--since", "2027-01-01"
    )
    _one_clear_line(code, out, err, "--since", "2027-01-01")


async def test_declining_from_the_command_line_asks_for_reason(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    service = SuggestionService(make_settings(database_url), clock)
    async with db.session() as session:
        author = await session.scalar(select(Person).where(Person.email == EMPLOYEE))
        assert author is not None
        await service.create(session, author, "Shorter Monday meeting", "other", False)
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "suggestions", "status", "S-1", "declined", "--as", HR)
    line = _one_clear_line(code, out, err, "--reason", "S-0001")
    assert "after the status" not in line
    code, out, err = await fidelio(
        config, "suggestions", "status", "S-1", "declined", "--as", HR, "--reason", "No budget"
    )
    assert code == 0, err
    async with db.session() as session:
        found = await session.get(Suggestion, 1)
        assert found is not None and found.status.value == "declined"


async def test_campaign_schedule_without_id_in_chat_shows_the_usage(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, HR, at=datetime(2027, 2, 1, 10, 0, tzinfo=ROME)
    ) as runtime:
        hr = ConsoleDialog(runtime, HR)
        for text in ("campaign schedule", "campaign schedule   ", "survey schedule"):
            answer = await hr.say(text)
            assert "schedule" in answer and "ID" in answer, answer
            assert str(REPO) not in answer and "content/" not in answer, answer
            assert "that did not work" not in answer.lower(), answer
        missing = await hr.say("campaign schedule no-such-briefing")
        assert "no-such-briefing" in missing and str(REPO) not in missing, missing


def _make(*args: str, cwd: Path = REPO) -> tuple[int, str, str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("AS", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "-n", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def test_make_chat_without_as_names_as() -> None:
    for args in (("chat",), ("chat", "AS=")):
        code, out, err = _make(*args)
        assert code == 2, (args, out, err)
        assert "AS:" in err and "make chat AS=" in err, err
        assert "--as as" not in out and "fidelio chat" not in out, out
    code, out, err = _make("chat", f"AS={HR}")
    assert code == 0, err
    assert f'fidelio chat --as "{HR}"' in out


async def test_people_forget_without_yes_exits_0_when_declined_and_2_without_an_answer(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    code, out, err = await fidelio(config, "people", "forget", EMPLOYEE, stdin="n\n")
    assert code == 0, err
    assert "Nothing was erased" in out
    code, out, err = await fidelio(config, "people", "forget", EMPLOYEE, stdin="")
    assert code == 2 and "--yes" in err and "Traceback" not in err, err
    assert "Aborted" not in err
    async with db.session() as session:
        still = await session.scalar(select(Person).where(Person.email == EMPLOYEE))
        assert still is not None and still.erased_at is None


# 9: B- and P- references


async def test_campaigns_and_survey_schedules_have_their_own_references(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url)
    # Two briefing campaigns first: the survey schedule is the third row of the table.
    for briefing, ref in (("spring-trade-in", "B-1"), ("aurora-oled-55", "B-2")):
        code, out, err = await fidelio(config, "campaign", "schedule", briefing)
        assert code == 0, err
        assert f"Scheduled campaign {ref}:" in out, out
    code, out, err = await fidelio(config, "survey", "schedule", "pulse-fortnightly")
    assert code == 0, err
    assert "Scheduled survey schedule P-1:" in out, out
    async with db.session() as session:
        pulse_id = await session.scalar(
            select(Campaign.id).where(Campaign.kind == CampaignKind.pulse)
        )
        assert pulse_id == 3  # the internal id stays internal

    code, out, err = await fidelio(config, "survey", "list")
    assert code == 0 and "schedule P-1: pulse-fortnightly" in out, err
    code, out, err = await fidelio(config, "campaign", "list")
    assert code == 0 and "B-1" in out and "B-2" in out and "P-1" not in out, err

    # The wrong kind is refused with a pointer; a number means the command's own kind.
    code, out, err = await fidelio(config, "campaign", "cancel", "P-1")
    _one_clear_line(code, out, err, "P-1 is a survey schedule", "survey list")
    code, out, err = await fidelio(config, "campaign", "cancel", "3")
    _one_clear_line(code, out, err, "B-3", "no briefing campaign")
    code, out, err = await fidelio(config, "survey", "pause", "B-1")
    _one_clear_line(code, out, err, "B-1 is a briefing campaign", "campaign list")
    code, out, err = await fidelio(config, "survey", "pause", "1")
    assert code == 0 and "Survey schedule P-1" in out and "now paused" in out, err
    code, out, err = await fidelio(config, "survey", "pause", "p-1")
    _one_clear_line(code, out, err, "P-1", "paused")
    code, out, err = await fidelio(config, "survey", "stop", "P-1")
    assert code == 0 and "Survey schedule P-1" in out, err
    code, out, err = await fidelio(config, "campaign", "show", "B-2")
    assert code == 0 and "Campaign B-2" in out, err
    code, out, err = await fidelio(config, "campaign", "cancel", "b2")
    assert code == 0 and "Campaign B-2 cancelled" in out, err
    code, out, err = await fidelio(config, "campaign", "cancel", "B-2")
    _one_clear_line(code, out, err, "B-2", "cancelled")
    code, out, err = await fidelio(config, "campaign", "schedule", "aurora-oled-55")
    assert code == 0 and "Scheduled campaign B-3:" in out, err
    code, out, err = await fidelio(config, "campaign", "schedule", "aurora-oled-55")
    _one_clear_line(code, out, err, "already scheduled as campaign B-3")

    async with db.session() as session:
        statuses = dict(
            (await session.execute(select(Campaign.id, Campaign.status))).tuples().all()
        )
        count = await session.scalar(select(func.count()).select_from(Campaign))
    assert count == 4
    assert statuses[1] == CampaignStatus.scheduled and statuses[2] == CampaignStatus.cancelled
    assert statuses[3] == CampaignStatus.cancelled


async def test_chat_uses_the_same_references(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(
        db, clock, database_url, HR, at=datetime(2027, 1, 2, 10, 0, tzinfo=ROME)
    ) as runtime:
        hr = ConsoleDialog(runtime, HR)
        assert "B-1" in await hr.say("campaign schedule spring-trade-in")
        assert "P-1" in await hr.say("survey schedule pulse-fortnightly")
        assert "B-1:" in await hr.say("campaign list")
        assert "P-1:" in await hr.say("survey list")
        refused = await hr.say("campaign cancel P-1")
        assert "P-1" in refused and "campaign list" in refused, refused
        assert "P-1" in await hr.say("survey pause P-1")
        assert "P-1" in await hr.say("survey resume 1")
        assert "P-2" in await hr.say("survey stop P-2")
        assert "B-1" in await hr.say("campaign show B-1") + await hr.say("campaign cancel B-1")
    async with db.session() as session:
        briefing = await session.get(Campaign, 1)
        pulse = await session.get(Campaign, 2)
    assert briefing is not None and briefing.status == CampaignStatus.cancelled
    assert pulse is not None and pulse.status == CampaignStatus.scheduled


def test_reference_parsing() -> None:
    from bot.campaign_refs import parse_ref

    assert parse_ref("B-3") == (CampaignKind.briefing, 3)
    assert parse_ref(" p1 ") == (CampaignKind.pulse, 1)
    assert parse_ref("#7") == (None, 7)
    assert parse_ref("12") == (None, 12)
    assert parse_ref("X-1") is None and parse_ref("B-") is None and parse_ref("") is None
