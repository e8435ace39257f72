"""The people directory import (bot/people/) against a real database."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Base, Person, Role, Team, TeamChange
from bot.db.session import Database
from bot.people import (
    ImportFailed,
    ImportSummary,
    import_people,
    managed_team_ids,
    person_by_email,
    team_by_name,
    team_subtree_ids,
)

from .conftest import REPO

DEMO = REPO / "content" / "demo" / "people.csv"
HEADER = (
    "email,name,team,parent_team,manager_email,role,locale,timezone,location,hire_date,leave_date"
)
DOMAIN = "demo.fidelio.example"


def write(tmp_path: Path, text: str, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    # newline="" keeps the line ends exactly as written in the test.
    with path.open("w", encoding=encoding, newline="") as handle:
        handle.write(text)
    return path


async def snapshot(db: Database) -> dict[str, Any]:
    """Row counts of every table plus the people and teams themselves."""
    async with db.session() as s:
        counts = {
            table.name: await s.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        people = [
            (p.email, p.name, p.team_id, p.role, p.locale, p.timezone, p.leave_date)
            for p in (await s.scalars(select(Person).order_by(Person.id))).all()
        ]
        teams = [
            (t.name, t.parent_id, t.manager_id)
            for t in (await s.scalars(select(Team).order_by(Team.id))).all()
        ]
    return {"counts": counts, "people": people, "teams": teams}


async def failure(db: Database, path: Path, clock: ManualClock) -> list[tuple[str, str]]:
    with pytest.raises(ImportFailed) as info:
        await import_people(db, path, clock)
    return [(p.where, p.reason) for p in info.value.problems]


# The demo organisation


async def test_demo_file_imports_as_a_two_level_tree(db: Database, clock: ManualClock) -> None:
    summary = await import_people(db, DEMO, clock)

    assert summary.lines >= 44
    assert summary == ImportSummary(
        created=summary.lines, updated=0, unchanged=0, teams_created=6, lines=summary.lines
    )
    async with db.session() as s:
        teams = (await s.scalars(select(Team))).all()
        people = {p.id: p for p in (await s.scalars(select(Person))).all()}
        changes = (await s.scalars(select(TeamChange))).all()
        audit = (await s.scalars(select(AuditEntry))).all()

    assert len(teams) == 6 and len(people) == summary.lines
    roots = [t for t in teams if t.parent_id is None]
    assert [t.name for t in roots] == ["Headquarters"]
    assert all(t.parent_id == roots[0].id for t in teams if t is not roots[0])
    for team in teams:
        assert team.manager_id is not None, team.name
        manager = people[team.manager_id]
        assert manager.role is Role.manager and manager.team_id == team.id

    by_email = {p.email: p for p in people.values()}
    assert by_email[f"hr@{DOMAIN}"].role is Role.hr
    assert by_email[f"admin@{DOMAIN}"].role is Role.admin
    assert sum(p.role is Role.hr for p in people.values()) == 1
    assert sum(p.role is Role.admin for p in people.values()) == 1
    assert all(p.email.endswith("@" + DOMAIN) for p in people.values())
    assert sum(p.locale == "en" for p in people.values()) >= 10
    assert {p.locale for p in people.values()} == {"en", "it"}
    assert {"Europe/Rome", "Europe/London"} <= {p.timezone for p in people.values()}
    today = clock.now().date()
    assert 1 <= sum(not p.is_active(today) for p in people.values()) <= 2

    # Everyone joined once, from nowhere, at the clock's time.
    assert len(changes) == len(people)
    assert all(c.from_team_id is None and c.changed_at == clock.now() for c in changes)
    assert {c.person_id for c in changes} == set(people)

    assert len(audit) == 1
    assert audit[0].actor_label == "cli" and audit[0].action == "people.import"
    assert audit[0].at == clock.now()
    assert audit[0].detail == {
        "file": "people.csv",
        "created": summary.lines,
        "updated": 0,
        "teams_created": 6,
    }


async def test_reimporting_the_demo_changes_nothing(db: Database, clock: ManualClock) -> None:
    await import_people(db, DEMO, clock)
    before = await snapshot(db)
    clock.advance(timedelta(days=1))

    summary = await import_people(db, DEMO, clock, actor="hr@demo")

    assert summary == ImportSummary(
        created=0, updated=0, unchanged=summary.lines, teams_created=0, lines=summary.lines
    )
    after = await snapshot(db)
    assert after["people"] == before["people"] and after["teams"] == before["teams"]
    expected_counts = dict(before["counts"], audit_log=before["counts"]["audit_log"] + 1)
    assert after["counts"] == expected_counts
    async with db.session() as s:
        latest = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()))).first()
    assert latest is not None and latest.actor_label == "hr@demo"
    assert latest.detail["created"] == 0 and latest.detail["updated"] == 0


# Upserts


async def test_upsert_updates_a_name_and_records_a_team_move(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    first = write(
        tmp_path,
        f"{HEADER}\n"
        "ada@x.example,Ada Lovelace,Office,,ada@x.example,manager,en,Europe/London,,,\n"
        "bob@x.example,Bob,Shop,Office,,employee,it,,,2024-01-01,\n",
    )
    await import_people(db, first, clock)
    start = clock.now()
    clock.advance(timedelta(days=30))

    # The same people, addressed in another letter case; Bob is renamed and moves to Office.
    second = write(
        tmp_path,
        f"{HEADER}\n"
        "ADA@X.example,Ada Lovelace,Office,,ada@x.example,manager,en,Europe/London,,,\n"
        "Bob@x.example,Roberto Bianchi,Office,,,employee,it,,,2024-01-01,\n",
        name="second.csv",
    )
    summary = await import_people(db, second, clock)

    assert summary == ImportSummary(created=0, updated=1, unchanged=1, teams_created=0, lines=2)
    async with db.session() as s:
        bob = await person_by_email(s, "BOB@x.example")
        office = await team_by_name(s, " Office ")
        shop = await team_by_name(s, "Shop")
        assert bob is not None and office is not None and shop is not None
        changes = (
            await s.scalars(
                select(TeamChange).where(TeamChange.person_id == bob.id).order_by(TeamChange.id)
            )
        ).all()
    assert bob.email == "bob@x.example" and bob.name == "Roberto Bianchi"
    assert bob.team_id == office.id
    assert bob.created_at == start and bob.updated_at == clock.now()
    assert bob.timezone == "Europe/Rome" and bob.hire_date == date(2024, 1, 1)
    assert [(c.from_team_id, c.to_team_id, c.changed_at) for c in changes] == [
        (None, shop.id, start),
        (shop.id, office.id, clock.now()),
    ]
    # Rows that state no parent leave the existing one alone.
    assert shop.parent_id == office.id


async def test_empty_optional_values_take_the_defaults(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    # Optional columns may also be left out of the header altogether.
    path = write(tmp_path, "name,team,email,role,locale,timezone\nZoe,Ops,zoe@x.example,,,\n")
    await import_people(db, path, clock, default_locale="it", default_timezone="Europe/London")
    async with db.session() as s:
        zoe = await person_by_email(s, "zoe@x.example")
    assert zoe is not None
    assert (zoe.role, zoe.locale, zoe.timezone) == (Role.employee, "it", "Europe/London")
    assert zoe.location is None and zoe.hire_date is None and zoe.leave_date is None


# Refusals


async def test_every_bad_row_is_reported_and_nothing_is_written(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    await import_people(db, DEMO, clock)
    before = await snapshot(db)
    long_team = "T" * 121
    path = write(
        tmp_path,
        f"{HEADER}\n"  # line 1
        f"luca.moretti@{DOMAIN},Luca Renamed,Sales Milano,,,manager,it,,,,\n"  # 2: valid update
        'new.person@x.example,"Quoted\nacross lines",New Team,Headquarters,,,,,,,\n'  # 3-4
        "not-an-email,Someone,Sales Roma,,,,,,,,\n"  # 5
        "empty.name@x.example,,Sales Roma,,,,,,,,\n"  # 6
        "bad.role@x.example,Bad Role,Sales Roma,,,boss,,,,,\n"  # 7
        "bad.locale@x.example,Bad Locale,Sales Roma,,,,fr,,,,\n"  # 8
        "bad.zone@x.example,Bad Zone,Sales Roma,,,,,Mars/Olympus,,,\n"  # 9
        "bad.date@x.example,Bad Date,Sales Roma,,,,,,,01/02/2024,\n"  # 10
        "early.leave@x.example,Early Leave,Sales Roma,,,,,,,2024-05-01,2024-04-30\n"  # 11
        f"long.team@x.example,Long Team,{long_team},,,,,,,,\n"  # 12
        "orphan@x.example,Orphan,Lost Team,Nowhere,,,,,,,\n"  # 13
        "nomgr@x.example,No Manager,Other Team,,ghost@x.example,,,,,,\n"  # 14
        "\n"  # 15: blank lines are skipped, yet still counted
        "short@x.example,Short Row\n",  # 16
    )

    problems = await failure(db, path, clock)

    assert [(where, reason.split(":")[0]) for where, reason in problems] == [
        ("people.csv:3", "name"),
        ("people.csv:5", "email"),
        ("people.csv:6", "name"),
        ("people.csv:7", "role"),
        ("people.csv:8", "locale"),
        ("people.csv:9", "timezone"),
        ("people.csv:10", "hire_date"),
        ("people.csv:11", "leave_date"),
        ("people.csv:12", "team"),
        ("people.csv:13", "parent_team"),
        ("people.csv:14", "manager_email"),
        ("people.csv:16", "2 values but the header has 11 columns"),
    ]
    reasons = dict(problems)
    assert "line break" in reasons["people.csv:3"]
    assert "'not-an-email' is not a valid email address" in reasons["people.csv:5"]
    assert "'boss' is not a role" in reasons["people.csv:7"]
    assert "'fr' is not supported" in reasons["people.csv:8"]
    assert "Mars/Olympus" in reasons["people.csv:9"]
    assert "YYYY-MM-DD" in reasons["people.csv:10"]
    assert "is before hire_date 2024-05-01" in reasons["people.csv:11"]
    assert "120 characters" in reasons["people.csv:12"]
    assert "'Nowhere' is not a team" in reasons["people.csv:13"]
    assert "ghost@x.example" in reasons["people.csv:14"]
    assert await snapshot(db) == before


async def test_duplicate_emails_name_both_lines(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f"{HEADER}\n"
        "ann@x.example,Ann,Ops,,,,,,,,\n"
        "bea@x.example,Bea,Ops,,,,,,,,\n"
        "ANN@x.example,Ann Again,Ops,,,,,,,,\n",
    )
    problems = await failure(db, path, clock)
    assert len(problems) == 1
    where, reason = problems[0]
    assert where == "people.csv:4"
    assert "ann@x.example" in reason and "lines 2 and 4" in reason
    assert (await snapshot(db))["counts"]["people"] == 0


async def test_a_file_with_a_byte_order_mark_imports(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    # Excel's "CSV UTF-8" writes a BOM and CRLF line ends.
    path = write(
        tmp_path,
        "\ufeffemail,name,team\r\nnicco@x.example,Niccolò Perché,Qualità\r\n",
    )
    summary = await import_people(db, path, clock)
    assert summary.created == 1 and summary.teams_created == 1 and summary.lines == 1
    async with db.session() as s:
        person = await person_by_email(s, "nicco@x.example")
    assert person is not None and person.name == "Niccolò Perché"


async def test_a_semicolon_separated_file_imports(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(tmp_path, "email;name;team\nanna@x.example;Anna, detta Annina;Ops\n")
    summary = await import_people(db, path, clock)
    assert summary.created == 1


async def test_a_latin1_file_is_refused(db: Database, clock: ManualClock, tmp_path: Path) -> None:
    path = write(tmp_path, "email,name,team\nnicco@x.example,Niccolò,Qualità\n", encoding="latin-1")
    problems = await failure(db, path, clock)
    assert len(problems) == 1
    where, reason = problems[0]
    assert where == "people.csv"
    assert reason.startswith("not UTF-8 text (") and reason.endswith("); save the file as UTF-8")
    assert (await snapshot(db))["counts"]["people"] == 0


@pytest.mark.parametrize(
    ("text", "expected_where", "expected"),
    [
        ("", "people.csv", "empty"),
        ("\n\n", "people.csv", "empty"),
        (f"{HEADER}\n", "people.csv", "no data lines"),
    ],
)
async def test_an_empty_file_is_refused(
    db: Database,
    clock: ManualClock,
    tmp_path: Path,
    text: str,
    expected_where: str,
    expected: str,
) -> None:
    problems = await failure(db, write(tmp_path, text), clock)
    assert len(problems) == 1
    assert problems[0][0] == expected_where and expected in problems[0][1]


async def test_missing_columns_are_one_error_naming_them(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(tmp_path, "email,role\nann@x.example,employee\n")
    problems = await failure(db, path, clock)
    assert problems == [("people.csv:1", "missing required columns: name, team")]


async def test_unknown_columns_are_refused(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(tmp_path, "email,name,team,Phone,badge\nann@x.example,Ann,Ops,123,9\n")
    problems = await failure(db, path, clock)
    assert len(problems) == 1
    assert problems[0][0] == "people.csv:1"
    assert problems[0][1].startswith("unknown columns: phone, badge")


async def test_conflicting_parent_or_manager_is_an_error_on_the_later_row(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f"{HEADER}\n"
        "a@x.example,A,Root,,,manager,,,,,\n"
        "b@x.example,B,Other,,,manager,,,,,\n"
        "c@x.example,C,Leaf,Root,a@x.example,,,,,,\n"
        "d@x.example,D,Leaf,Root,a@x.example,,,,,,\n"
        "e@x.example,E,Leaf,Other,b@x.example,,,,,,\n",
    )
    problems = await failure(db, path, clock)
    assert [where for where, _ in problems] == ["people.csv:6", "people.csv:6"]
    assert "already has parent 'Root' on line 4" in problems[0][1]
    assert "already has manager 'a@x.example' on line 4" in problems[1][1]


async def test_a_cycle_in_the_file_is_refused(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f"{HEADER}\n"
        "a@x.example,A,Alpha,Gamma,,,,,,,\n"
        "b@x.example,B,Beta,Alpha,,,,,,,\n"
        "c@x.example,C,Gamma,Beta,,,,,,,\n"
        "d@x.example,D,Delta,Delta,,,,,,,\n",
    )
    problems = await failure(db, path, clock)
    assert problems == [
        (
            "people.csv:4",
            "parent_team: makes a cycle in the team tree: Gamma → Beta → Alpha → Gamma",
        ),
        ("people.csv:5", "parent_team: team 'Delta' cannot be its own parent"),
    ]
    assert (await snapshot(db))["counts"]["teams"] == 0


async def test_a_cycle_through_the_database_tree_is_refused(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    await import_people(db, DEMO, clock)
    before = await snapshot(db)
    # Headquarters is already the parent of Sales Roma in the database.
    path = write(
        tmp_path, f"{HEADER}\ngiulia.ferretti@{DOMAIN},Giulia,Headquarters,Sales Roma,,,,,,,\n"
    )
    problems = await failure(db, path, clock)
    assert len(problems) == 1 and problems[0][0] == "people.csv:2"
    assert "Headquarters → Sales Roma → Headquarters" in problems[0][1]
    assert await snapshot(db) == before


# Directory queries


async def test_subtrees_and_managed_teams_on_the_demo_tree(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    await import_people(db, DEMO, clock)
    async with db.session() as s:
        teams = {t.name: t.id for t in (await s.scalars(select(Team))).all()}
        hq, sales_milano = teams["Headquarters"], teams["Sales Milano"]
        assert await team_subtree_ids(s, hq) == set(teams.values())
        assert await team_subtree_ids(s, sales_milano) == {sales_milano}
        assert await team_subtree_ids(s, 10_000) == set()

        ceo = await person_by_email(s, f"giulia.ferretti@{DOMAIN}")
        shop_manager = await person_by_email(s, f"luca.moretti@{DOMAIN}")
        employee = await person_by_email(s, f"aisha.khan@{DOMAIN}")
        assert ceo is not None and shop_manager is not None and employee is not None
        assert await managed_team_ids(s, ceo) == set(teams.values())
        assert await managed_team_ids(s, shop_manager) == {sales_milano}
        assert await managed_team_ids(s, employee) == set()

    # A third level: a shop under Sales Milano, run by one of its sellers.
    path = write(
        tmp_path,
        f"{HEADER}\n"
        f"sara.greco@{DOMAIN},Sara Greco,Milano Duomo,Sales Milano,sara.greco@{DOMAIN},manager,it,"
        "Europe/Rome,Milano,2021-06-21,\n",
    )
    summary = await import_people(db, path, clock)
    assert summary.updated == 1 and summary.teams_created == 1
    async with db.session() as s:
        duomo = await team_by_name(s, "Milano Duomo")
        sara = await person_by_email(s, f"sara.greco@{DOMAIN}")
        assert duomo is not None and sara is not None
        assert await team_subtree_ids(s, sales_milano) == {sales_milano, duomo.id}
        assert await team_subtree_ids(s, hq) == set(teams.values()) | {duomo.id}
        assert await managed_team_ids(s, shop_manager) == {sales_milano, duomo.id}
        assert await managed_team_ids(s, sara) == {duomo.id}
