"""The people directory: importing it from CSV, and looking people and teams up.

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
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import SUPPORTED_LOCALES, check_timezone
from bot.db.models import AuditEntry, Person, Role, Team, TeamChange
from bot.db.session import Database
from bot.errors import InputError

COLUMNS = (
    "email",
    "name",
    "team",
    "parent_team",
    "manager_email",
    "role",
    "locale",
    "timezone",
    "location",
    "hire_date",
    "leave_date",
)
REQUIRED_COLUMNS = ("email", "name", "team")

# Column sizes of the schema: checked here so a long value is a readable problem on its
# line rather than a database error (PostgreSQL enforces VARCHAR lengths, SQLite does not).
MAX_EMAIL = 254
MAX_NAME = 200
MAX_TEAM = 120
MAX_LOCATION = 120

# A pragmatic address check (RFC 5322 "dot-atom" local part, DNS-style domain with at least
# one dot): it catches typos and swapped columns without rejecting real addresses.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# date.fromisoformat also accepts "20250101" and week dates; the file format is stricter.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# SQLite's default limit on bound parameters is well above this; PostgreSQL's is higher.
_IN_CHUNK = 500

#: Reports a problem with one column of the row being checked: (column, reason).
_ProblemFn = Callable[[str, str], None]


class ImportFailed(Exception):
    """The file was refused and nothing was written; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[InputError]):
        self.problems: list[InputError] = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} found; nothing was imported"
        super().__init__("\n".join([heading, *(f"  {p.where}: {p.reason}" for p in self.problems)]))


@dataclass(frozen=True)
class ImportSummary:
    """What an import did. ``lines`` is the number of data rows (people) in the file."""

    created: int
    updated: int
    unchanged: int
    teams_created: int
    lines: int


@dataclass
class _Row:
    """One data row after checking. A field that failed its check is ``None`` (or the
    default); such a row is only used for cross-checks, never applied."""

    line: int
    email: str | None
    name: str
    team: str | None
    parent_team: str | None
    manager_email: str | None
    role: Role
    locale: str
    timezone: str
    location: str | None
    hire_date: date | None
    leave_date: date | None


class _Problems:
    """Collects problems with the line they belong to, to report them in file order."""

    def __init__(self, file_name: str):
        self.file_name = file_name
        self._items: list[tuple[int, InputError]] = []

    def add(self, line: int, reason: str) -> None:
        self._items.append((line, InputError(f"{self.file_name}:{line}", reason)))

    def add_file(self, reason: str) -> None:
        self._items.append((0, InputError(self.file_name, reason)))

    def __bool__(self) -> bool:
        return bool(self._items)

    def failure(self) -> ImportFailed:
        return ImportFailed([error for _, error in sorted(self._items, key=lambda i: i[0])])


@dataclass
class _Plan:
    """The file's team structure, as declared by its rows."""

    #: Team name -> first line naming it in the ``team`` column (file order is kept).
    teams: dict[str, int]
    #: Team name -> (parent team name, line that stated it).
    parents: dict[str, tuple[str, int]]
    #: Team name -> (manager email, line that stated it).
    managers: dict[str, tuple[str, int]]


# --- public API -----------------------------------------------------------------------------


async def import_people(
    db: Database,
    path: Path,
    clock: Clock,
    *,
    actor: str = "cli",
    default_locale: str = "en",
    default_timezone: str = "Europe/Rome",
) -> ImportSummary:
    """Create or update people and teams from the CSV file at ``path``.

    People are matched by email (case-insensitive). New people, and people whose team
    changes, get a :class:`TeamChange` row at ``clock.now()``. One :class:`AuditEntry`
    (``people.import``) records the outcome.

    Raises :class:`ImportFailed` listing every problem in the file — or in how it fits the
    database (unknown parent team or manager, a cycle in the team tree) — without writing
    anything; otherwise applies the whole file in one transaction.
    """
    if default_locale not in SUPPORTED_LOCALES:
        raise ValueError(f"default_locale must be one of {', '.join(SUPPORTED_LOCALES)}")
    check_timezone(default_timezone)

    problems = _Problems(path.name)
    text = _read_text(path, problems)
    rows = _parse(text, problems, default_locale, default_timezone) if text is not None else None
    if rows is None:
        # The file cannot be read as a table at all: there is nothing to cross-check.
        raise problems.failure()

    plan = _plan(rows, problems)
    emails = {row.email for row in rows if row.email}
    emails |= {email for email, _ in plan.managers.values()}

    async with db.session() as session:
        # Reading the database in the same transaction that writes means the checks and the
        # changes see the same state.
        teams = {team.name: team for team in (await session.scalars(select(Team))).all()}
        people = {person.email: person for person in await _people_by_email(session, emails)}
        _check_against_database(rows, plan, teams, people, problems)
        if problems:
            # Raising inside the session rolls the (so far read-only) transaction back.
            raise problems.failure()
        summary = await _apply(session, rows, plan, teams, people, clock.now())
        session.add(
            AuditEntry(
                at=clock.now(),
                actor_label=actor,
                action="people.import",
                detail={
                    "file": path.name,
                    "created": summary.created,
                    "updated": summary.updated,
                    "teams_created": summary.teams_created,
                },
            )
        )
    return summary


async def person_by_email(session: AsyncSession, email: str) -> Person | None:
    """The person with this email address (any letter case), or None."""
    query = select(Person).where(Person.email == email.strip().lower())
    return (await session.scalars(query)).one_or_none()


async def team_by_name(session: AsyncSession, name: str) -> Team | None:
    """The team with exactly this name (surrounding spaces ignored), or None."""
    return (await session.scalars(select(Team).where(Team.name == name.strip()))).one_or_none()


async def team_subtree_ids(session: AsyncSession, team_id: int) -> set[int]:
    """The ids of the team and of all its descendants; empty if the team does not exist."""
    return await _subtrees(session, select(Team.id).where(Team.id == team_id))


async def managed_team_ids(session: AsyncSession, person: Person) -> set[int]:
    """The ids of every team in the subtrees of the teams ``person`` manages."""
    return await _subtrees(session, select(Team.id).where(Team.manager_id == person.id))


# --- reading and checking the file --------------------------------------------------------------


def _read_text(path: Path, problems: _Problems) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add_file(f"cannot read the file ({exc.strerror or exc})")
        return None
    try:
        # utf-8-sig drops a leading byte-order mark (Excel writes one), which would otherwise
        # stick to the first column name and make it unknown.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add_file(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"
        )
        return None


def _parse(
    text: str, problems: _Problems, default_locale: str, default_timezone: str
) -> list[_Row] | None:
    """Check the header and every row; None when the file has no usable table."""
    if not text.strip():
        problems.add_file("the file is empty; expected a header line and one line per person")
        return None
    first_line = next(line for line in text.splitlines() if line.strip())
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    # newline="" lets the csv module see line ends itself, so quoted fields may span lines;
    # line_num then counts physical lines, which is what the problems report.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[_Row] = []
    data_lines = 0
    next_line = 1
    try:
        for values in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(value.strip() for value in values):
                continue  # blank lines (often one at the end) are not rows
            if header is None:
                header = _check_header(values, line, problems)
                if header is None:
                    return None
                continue
            data_lines += 1
            if len(values) != len(header):
                problems.add(line, f"{len(values)} values but the header has {len(header)} columns")
                continue
            fields = dict(zip(header, (value.strip() for value in values), strict=True))
            for column, value in fields.items():
                # Quoted values may hold line breaks, and stray control characters come from
                # copy-paste; neither belongs in a directory field (PostgreSQL even refuses NUL).
                if any(unicodedata.category(char) == "Cc" for char in value):
                    problems.add(line, f"{column}: contains a line break or control character")
            rows.append(_check_row(fields, line, problems, default_locale, default_timezone))
    except csv.Error as exc:
        problems.add(reader.line_num, f"not valid CSV ({exc})")
        return None
    if not data_lines:
        problems.add_file("no people: the file has a header but no data lines")
        return None
    return rows


def _check_header(values: list[str], line: int, problems: _Problems) -> list[str] | None:
    """Normalised column names, or None if the required ones are missing."""
    header = [value.strip().lower() for value in values]
    unknown = [
        name or f"(unnamed column {i + 1})" for i, name in enumerate(header) if name not in COLUMNS
    ]
    if unknown:
        problems.add(
            line,
            f"unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
            f" (the columns are: {', '.join(COLUMNS)})",
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        problems.add(line, f"column named more than once: {', '.join(repeated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        problems.add(
            line, f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
        )
        return None
    return header


def _check_row(
    fields: dict[str, str],
    line: int,
    problems: _Problems,
    default_locale: str,
    default_timezone: str,
) -> _Row:
    def problem(column: str, reason: str) -> None:
        problems.add(line, f"{column}: {reason}")

    email = _check_email(fields["email"], "email", problem)

    name = fields["name"]
    if not name:
        problem("name", "empty; every person needs a name")
    elif len(name) > MAX_NAME:
        problem("name", f"longer than {MAX_NAME} characters")

    team = _check_team(fields["team"], "team", problem)
    if team is None and not fields["team"]:
        problem("team", "empty; every person belongs to a team")
    parent_team = _check_team(fields.get("parent_team", ""), "parent_team", problem)
    manager_email = _check_email(fields.get("manager_email", ""), "manager_email", problem)

    role = Role.employee
    raw_role = fields.get("role", "")
    if raw_role:
        try:
            role = Role(raw_role.lower())
        except ValueError:
            problem("role", f"{raw_role!r} is not a role ({', '.join(r.value for r in Role)})")

    locale = fields.get("locale", "").lower() or default_locale
    if locale not in SUPPORTED_LOCALES:
        problem("locale", f"{locale!r} is not supported ({', '.join(SUPPORTED_LOCALES)})")

    timezone = fields.get("timezone", "") or default_timezone
    try:
        check_timezone(timezone)
    except ValueError as exc:
        problem("timezone", str(exc))

    location = fields.get("location", "") or None
    if location is not None and len(location) > MAX_LOCATION:
        problem("location", f"longer than {MAX_LOCATION} characters")

    hire_date = _check_date(fields.get("hire_date", ""), "hire_date", problem)
    leave_date = _check_date(fields.get("leave_date", ""), "leave_date", problem)
    if hire_date and leave_date and leave_date < hire_date:
        problem(
            "leave_date", f"{leave_date.isoformat()} is before hire_date {hire_date.isoformat()}"
        )

    return _Row(
        line=line,
        email=email,
        name=name,
        team=team,
        parent_team=parent_team,
        manager_email=manager_email,
        role=role,
        locale=locale,
        timezone=timezone,
        location=location,
        hire_date=hire_date,
        leave_date=leave_date,
    )


def _check_email(value: str, column: str, problem: _ProblemFn) -> str | None:
    if not value:
        if column == "email":
            problem(column, "empty; every person needs an email address")
        return None
    if len(value) > MAX_EMAIL or not _EMAIL.fullmatch(value):
        problem(column, f"{value!r} is not a valid email address")
        return None
    return value.lower()


def _check_team(value: str, column: str, problem: _ProblemFn) -> str | None:
    if not value:
        return None
    if len(value) > MAX_TEAM:
        problem(column, f"team name longer than {MAX_TEAM} characters")
        return None
    return value


def _check_date(value: str, column: str, problem: _ProblemFn) -> date | None:
    if not value:
        return None
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problem(column, f"{value!r} is not a date in the form YYYY-MM-DD")
    return None


def _plan(rows: list[_Row], problems: _Problems) -> _Plan:
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
    problems: _Problems,
) -> None:
    previous = declared.setdefault(team, (value, line))
    if previous[0] != value:
        problems.add(
            line,
            f"{column}: team {team!r} already has {what} {previous[0]!r}"
            f" on line {previous[1]}; a team has one {what}",
        )


def _check_against_database(
    rows: list[_Row],
    plan: _Plan,
    teams: dict[str, Team],
    people: dict[str, Person],
    problems: _Problems,
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


# --- applying -----------------------------------------------------------------------------------


async def _apply(
    session: AsyncSession,
    rows: list[_Row],
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
        assert row.email is not None and row.team is not None
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


# --- queries --------------------------------------------------------------------------------


async def _people_by_email(session: AsyncSession, emails: Iterable[str]) -> list[Person]:
    wanted = sorted(emails)
    found: list[Person] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found.extend((await session.scalars(select(Person).where(Person.email.in_(chunk)))).all())
    return found


async def _subtrees(session: AsyncSession, roots: Select[tuple[int]]) -> set[int]:
    """Ids of the ``roots`` teams and all their descendants, with one recursive query.

    UNION (not UNION ALL) drops rows already found, so even a damaged tree with a cycle
    ends instead of recursing forever; both SQLite and PostgreSQL support this form.
    """
    tree = roots.cte("subtree", recursive=True)
    tree = tree.union(select(Team.id).join(tree, Team.parent_id == tree.c.id))
    return set((await session.scalars(select(tree.c.id))).all())
