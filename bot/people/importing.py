"""Importing the people directory from CSV: checks across rows and against the database,
then applying the file.

The import is all-or-nothing. Every row is read and checked first, and every problem is
reported at once with its file name and physical line, so an HR operator fixes the file in
one pass instead of discovering errors one at a time. Only a clean file is applied, in a
single transaction. The import never deletes anyone: people who leave get a ``leave_date``.

CSV format: UTF-8, with or without a byte-order mark; comma-separated, or semicolon-separated
as spreadsheets in Italian locales export it. The header is line 1; columns in any order:

- ``email`` (required): the person's identity; compared case-insensitively, stored lower-case.
- ``name`` (required): display name.
- ``team`` (required): team name; the team is created when it does not exist yet.
- ``parent_team``: parent of *this row's team*; must be a team of the file or the database.
- ``manager_email``: manager of *this row's team*; a person of the file or the database.
- ``role``: employee (default when empty), manager, hr, admin.
- ``locale``: en or it (default: the organisation's default locale).
- ``timezone``: an IANA name such as Europe/Rome (default: the organisation's zone).
- ``location``: free text (shop, city, "remote").
- ``hire_date``, ``leave_date``: YYYY-MM-DD; a person is active until their leave date.

A team's parent and manager are set only when some row states them; when no row does, an
existing team keeps what it has, so a partial file cannot silently flatten the tree.

Each row is checked by the pydantic model :class:`~bot.people.csv_rows.PersonRow` (module
:mod:`bot.people.csv_rows`); this module keeps the checks across rows (duplicate people, one
parent and one manager per team, letter case of team names), the checks against the database
(unknown parents and managers, cycles in the resulting tree) and the writing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import check_timezone
from bot.csv_files import LineProblems, decode_text, read_text
from bot.db.models import AuditEntry, Person, Team, TeamChange
from bot.db.session import Database
from bot.people.csv_rows import PersonRow, TeamLinks, read_rows
from bot.people.directory import people_by_email
from bot.people.preview import ImportPreview, PersonPreview, person_changes, team_previews
from bot.settings_section import SUPPORTED_LOCALES


@dataclass(frozen=True)
class ImportSummary:
    """What an import did. ``lines`` is the number of data rows (people) in the file."""

    created: int
    updated: int
    unchanged: int
    teams_created: int
    lines: int


@dataclass
class _Plan:
    """The file's team structure, as declared by its rows."""

    #: Team name -> first line naming it in the ``team`` column (file order is kept).
    teams: dict[str, int]
    #: Team name -> (parent team name, line that stated it).
    parents: dict[str, tuple[str, int]]
    #: Team name -> (manager email, line that stated it).
    managers: dict[str, tuple[str, int]]


@dataclass(frozen=True)
class CsvUpload:
    """A people file as bytes (an upload in the web console), with the name it came with."""

    name: str
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


class PlanChanged(Exception):
    """Applying the file now would not make the changes that were shown (the directory, or
    the file, changed since the dry run, or it was applied already); nothing was written."""


async def preview_import(
    db: Database,
    source: Path | CsvUpload,
    clock: Clock,
    *,
    default_locale: str = "en",
    default_timezone: str = "Europe/Rome",
) -> ImportPreview:
    """What importing ``source`` would change, with every check of the import; writes
    nothing. Raises :class:`ImportFailed` listing every problem, as the import does."""
    rows, plan, problems = _read(source, default_locale, default_timezone)
    async with db.session() as session:
        checked = await _check(session, rows, plan, problems, source_name(source), clock)
        return checked.preview


async def import_people(
    db: Database,
    source: Path | CsvUpload,
    clock: Clock,
    *,
    actor: Person | str = "cli",
    default_locale: str = "en",
    default_timezone: str = "Europe/Rome",
    expected: str | None = None,
) -> ImportSummary:
    """Create or update people and teams from the CSV file ``source`` (a path, or the bytes
    of an upload).

    People are matched by email (case-insensitive). New people, and people whose team
    changes, get a :class:`TeamChange` row at ``clock.now()``. One :class:`AuditEntry`
    (``people.import``) records the outcome.

    Raises :class:`ImportFailed` listing every problem in the file — or in how it fits the
    database (unknown parent team or manager, a cycle in the team tree) — without writing
    anything; otherwise applies the whole file in one transaction. ``expected``: the
    :attr:`ImportPreview.digest` of the dry run that was confirmed; when the changes would
    now be different, :class:`PlanChanged` is raised and nothing is written.
    """
    rows, plan, problems = _read(source, default_locale, default_timezone)
    name = source_name(source)
    async with db.session() as session:
        # Reading the database in the same transaction that writes means the checks and the
        # changes see the same state.
        checked = await _check(session, rows, plan, problems, name, clock)
        if expected is not None and checked.preview.digest != expected:
            raise PlanChanged(name)
        summary = await _apply(session, rows, plan, checked.teams, checked.people, clock.now())
        detail = {"sha256": source.sha256} if isinstance(source, CsvUpload) else {}
        session.add(
            AuditEntry.by(
                actor,
                clock.now(),
                "people.import",
                file=name,
                created=summary.created,
                updated=summary.updated,
                teams_created=summary.teams_created,
                **detail,
            )
        )
    return summary


def source_name(source: Path | CsvUpload) -> str:
    return source.name


def _read(
    source: Path | CsvUpload, default_locale: str, default_timezone: str
) -> tuple[list[PersonRow | TeamLinks], _Plan, LineProblems]:
    """The file's rows and team structure; ImportFailed when it cannot be read as a table."""
    if default_locale not in SUPPORTED_LOCALES:
        raise ValueError(f"default_locale must be one of {', '.join(SUPPORTED_LOCALES)}")
    check_timezone(default_timezone)
    problems = LineProblems(source.name)
    if isinstance(source, CsvUpload):
        text = decode_text(source.raw, problems)
    else:
        text = read_text(source, problems)
    rows = read_rows(text, problems, default_locale, default_timezone) if text is not None else None
    if rows is None:
        # The file cannot be read as a table at all: there is nothing to cross-check.
        raise problems.failure()
    return rows, _plan(rows, problems), problems


@dataclass
class _Checked:
    teams: dict[str, Team]
    people: dict[str, Person]
    preview: ImportPreview


async def _check(
    session: AsyncSession,
    rows: list[PersonRow | TeamLinks],
    plan: _Plan,
    problems: LineProblems,
    name: str,
    clock: Clock,
) -> _Checked:
    """The checks against the database, and what applying would change; ImportFailed
    (raised inside the session: its read-only transaction is rolled back) on any problem."""
    emails = {row.email for row in rows if row.email}
    emails |= {email for email, _ in plan.managers.values()}
    teams = {team.name: team for team in (await session.scalars(select(Team))).all()}
    people = {person.email: person for person in await people_by_email(session, emails)}
    _check_against_database(rows, plan, teams, people, problems)
    if problems:
        raise problems.failure()
    preview = await _preview(session, rows, plan, teams, people, name, clock.now().date())
    return _Checked(teams, people, preview)


def _plan(rows: list[PersonRow | TeamLinks], problems: LineProblems) -> _Plan:
    """Gather the team structure the rows declare; flag duplicates and contradictions."""
    plan = _Plan(teams={}, parents={}, managers={})
    first_line_of_email: dict[str, int] = {}
    spelling: dict[str, tuple[str, int]] = {}
    for row in rows:
        if row.email:
            first = first_line_of_email.setdefault(row.email, row.line)
            if first != row.line:
                problems.add(
                    row.line,
                    f"email: {row.email} appears on lines {first} and {row.line};"
                    " each person must appear once",
                )
        if row.team is None:
            continue
        if row.team not in plan.teams:
            plan.teams[row.team] = row.line
            # Two spellings of one name would create two teams; almost always a typo.
            other, other_line = spelling.setdefault(row.team.casefold(), (row.team, row.line))
            if other != row.team:
                problems.add(
                    row.line,
                    f"team: {row.team!r} differs only in letter case from {other!r}"
                    f" on line {other_line}; use one spelling",
                )
        if row.parent_team is not None:
            if row.parent_team == row.team:
                problems.add(row.line, f"parent_team: team {row.team!r} cannot be its own parent")
            else:
                _declare(
                    plan.parents,
                    row.team,
                    row.parent_team,
                    row.line,
                    "parent_team",
                    "parent",
                    problems,
                )
        if row.manager_email is not None:
            _declare(
                plan.managers,
                row.team,
                row.manager_email,
                row.line,
                "manager_email",
                "manager",
                problems,
            )
    return plan


def _declare(
    declared: dict[str, tuple[str, int]],
    team: str,
    value: str,
    line: int,
    column: str,
    what: str,
    problems: LineProblems,
) -> None:
    previous = declared.setdefault(team, (value, line))
    if previous[0] != value:
        problems.add(
            line,
            f"{column}: team {team!r} already has {what} {previous[0]!r}"
            f" on line {previous[1]}; a team has one {what}",
        )


def _check_against_database(
    rows: list[PersonRow | TeamLinks],
    plan: _Plan,
    teams: dict[str, Team],
    people: dict[str, Person],
    problems: LineProblems,
) -> None:
    """Checks that need the database: names to link to, and the shape of the final tree."""
    existing_spelling = {name.casefold(): name for name in teams}
    folds_seen: set[str] = set()
    for name, line in plan.teams.items():
        other = existing_spelling.get(name.casefold())
        # A second spelling within the file was reported already by _plan.
        first_in_file = name.casefold() not in folds_seen
        folds_seen.add(name.casefold())
        if first_in_file and name not in teams and other is not None:
            problems.add(
                line,
                f"team: {name!r} differs only in letter case from the existing team {other!r}",
            )

    known_teams = set(plan.teams) | set(teams)
    folded_known = {name.casefold(): name for name in known_teams}
    for parent, line in plan.parents.values():
        if parent not in known_teams:
            hint = folded_known.get(parent.casefold())
            problems.add(
                line,
                f"parent_team: {parent!r} is not a team in this file or in the database"
                + (f" (did you mean {hint!r}?)" if hint else ""),
            )

    file_emails = {row.email for row in rows if row.email}
    for email, line in plan.managers.values():
        if email not in file_emails and email not in people:
            problems.add(
                line, f"manager_email: no person with email {email} in this file or in the database"
            )

    # The tree after the import: the database's parents, overridden by the file's.
    name_of = {team.id: team.name for team in teams.values()}
    parent_of: dict[str, str | None] = {
        team.name: name_of.get(team.parent_id) if team.parent_id is not None else None
        for team in teams.values()
    }
    for team, (parent, _) in plan.parents.items():
        if parent in known_teams:
            parent_of[team] = parent
    for cycle in _cycles(parent_of):
        declared = [member for member in cycle if member in plan.parents]
        if not declared:
            continue  # already in the database; not this file's doing
        # Report on the row that closed the loop, reading the chain from that row's team.
        closing = max(declared, key=lambda member: plan.parents[member][1])
        start = cycle.index(closing)
        chain = [*cycle[start:], *cycle[:start], closing]
        problems.add(
            plan.parents[closing][1],
            f"parent_team: makes a cycle in the team tree: {' → '.join(chain)}",
        )


def _cycles(parent_of: dict[str, str | None]) -> list[list[str]]:
    """Every cycle in a child -> parent map, each listed from child to parent."""
    finished: set[str] = set()
    cycles: list[list[str]] = []
    for start in parent_of:
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in finished and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = parent_of.get(node)
        if node is not None and node in on_path:
            cycles.append(path[path.index(node) :])
        finished.update(path)
    return cycles


# Previewing


async def _preview(
    session: AsyncSession,
    rows: list[PersonRow | TeamLinks],
    plan: _Plan,
    teams: dict[str, Team],
    people: dict[str, Person],
    name: str,
    today: date,
) -> ImportPreview:
    """What :func:`_apply` would do to a checked file, field by field."""
    team_names = {team.id: team.name for team in teams.values()}
    preview = ImportPreview(name, len(rows))
    mentioned = 0
    for row in rows:
        assert isinstance(row, PersonRow)  # a row with a problem stops the import
        values = {key: getattr(row, key) for key in ("name", "team", "role", "locale")}
        values |= {key: getattr(row, key) for key in ("timezone", "location")}
        values |= {"hire_date": row.hire_date, "leave_date": row.leave_date}
        person = people.get(row.email)
        if person is None:
            preview.added.append(PersonPreview(row.line, row.email, row.name, row.team))
            continue
        mentioned += person.is_active(today)
        changes = person_changes(person, values, team_names)
        if changes:
            preview.changed.append(
                PersonPreview(row.line, row.email, person.name, row.team, changes)
            )
        else:
            preview.unchanged += 1
    manager_ids = {team.manager_id for team in teams.values() if team.manager_id is not None}
    manager_emails = (
        dict(
            (
                await session.execute(
                    select(Person.id, Person.email).where(Person.id.in_(manager_ids))
                )
            )
            .tuples()
            .all()
        )
        if manager_ids
        else {}
    )
    preview.teams.extend(
        team_previews(
            list(plan.teams),
            {team: parent for team, (parent, _) in plan.parents.items()},
            {team: email for team, (email, _) in plan.managers.items()},
            teams,
            manager_emails,
        )
    )
    active = await session.scalar(
        select(func.count())
        .select_from(Person)
        .where(
            Person.erased_at.is_(None), or_(Person.leave_date.is_(None), Person.leave_date > today)
        )
    )
    preview.untouched = int(active or 0) - mentioned
    return preview


# Applying


async def _apply(
    session: AsyncSession,
    rows: list[PersonRow | TeamLinks],
    plan: _Plan,
    teams: dict[str, Team],
    people: dict[str, Person],
    now: datetime,
) -> ImportSummary:
    """Write a checked file. Every field used here passed its check, hence the asserts."""
    new_teams = [Team(name=name, created_at=now) for name in plan.teams if name not in teams]
    session.add_all(new_teams)
    await session.flush()  # team ids are needed for parents and people
    teams.update((team.name, team) for team in new_teams)
    for team_name, (parent, _) in plan.parents.items():
        teams[team_name].parent_id = teams[parent].id

    created: list[Person] = []
    moves: list[tuple[Person, int]] = []
    updated = unchanged = 0
    for row in rows:
        assert isinstance(row, PersonRow)  # a row with a problem stops the import
        values = {
            "name": row.name,
            "team_id": teams[row.team].id,
            "role": row.role,
            "locale": row.locale,
            "timezone": row.timezone,
            "location": row.location,
            "hire_date": row.hire_date,
            "leave_date": row.leave_date,
        }
        person = people.get(row.email)
        if person is None:
            person = Person(email=row.email, created_at=now, updated_at=now, **values)
            session.add(person)
            people[row.email] = person
            created.append(person)
            continue
        changed = {key: value for key, value in values.items() if getattr(person, key) != value}
        if not changed:
            unchanged += 1
            continue
        if "team_id" in changed:
            moves.append((person, person.team_id))
        for key, value in changed.items():
            setattr(person, key, value)
        person.updated_at = now
        updated += 1
    await session.flush()  # ids of new people, for their history and as managers

    session.add_all(
        TeamChange(person_id=p.id, from_team_id=None, to_team_id=p.team_id, changed_at=now)
        for p in created
    )
    session.add_all(
        TeamChange(person_id=p.id, from_team_id=old, to_team_id=p.team_id, changed_at=now)
        for p, old in moves
    )
    for team_name, (email, _) in plan.managers.items():
        teams[team_name].manager_id = people[email].id
    await session.flush()

    return ImportSummary(
        created=len(created),
        updated=updated,
        unchanged=unchanged,
        teams_created=len(new_teams),
        lines=len(rows),
    )
