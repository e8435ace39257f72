"""Reading a people CSV file and checking each row with the pydantic model :class:`PersonRow`.

Every problem is kept with its physical line (``people.csv:7``) and names the column, so the
whole file can be reported at once (see :mod:`bot.people.importing` for the format and for
the checks across rows and against the database).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.config import check_timezone
from bot.csv_files import LineProblems, Records
from bot.db.models import Role
from bot.settings_section import SUPPORTED_LOCALES

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


# The row model


def _email(value: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_EMAIL or not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid email address")
    return value.lower()


def _required_email(value: str) -> str:
    email = _email(value)
    if email is None:
        raise ValueError("empty; every person needs an email address")
    return email


def _team(value: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_TEAM:
        raise ValueError(f"team name longer than {MAX_TEAM} characters")
    return value


def _required_team(value: str) -> str:
    team = _team(value)
    if team is None:
        raise ValueError("empty; every person belongs to a team")
    return team


def _date(value: str) -> date | None:
    if not value:
        return None
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date in the form YYYY-MM-DD")


Email = Annotated[str, PlainValidator(_required_email)]
OptionalEmail = Annotated[str | None, PlainValidator(_email)]
TeamName = Annotated[str, PlainValidator(_required_team)]
OptionalTeamName = Annotated[str | None, PlainValidator(_team)]
OptionalDate = Annotated[date | None, PlainValidator(_date)]


class TeamLinks(BaseModel):
    """The columns of a row that link it to other rows and to the team tree: what the
    checks across rows need. A row with problems keeps the links that passed their check
    (a link that failed is None), so its other problems are still found."""

    model_config = ConfigDict(frozen=True)

    line: int
    email: OptionalEmail = None
    team: OptionalTeamName = None
    parent_team: OptionalTeamName = None
    manager_email: OptionalEmail = None


class PersonRow(BaseModel):
    """One data row of a people CSV (values already stripped), checked column by column.

    Validated with ``context={"default_locale": ..., "default_timezone": ...}``, which fill
    empty ``locale`` and ``timezone`` values. Columns missing from the file take their
    defaults; ``email``, ``name`` and ``team`` are required columns, checked by the header.
    """

    model_config = ConfigDict(frozen=True)

    line: int
    email: Email
    name: str
    team: TeamName
    parent_team: OptionalTeamName = None
    manager_email: OptionalEmail = None
    role: Role = Field(Role.employee, validate_default=True)
    locale: str = Field("", validate_default=True)
    timezone: str = Field("", validate_default=True)
    location: str | None = None
    hire_date: OptionalDate = None
    leave_date: OptionalDate = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # Quoted values may hold line breaks, and stray control characters come from
        # copy-paste; neither belongs in a directory field (PostgreSQL even refuses NUL).
        if isinstance(value, str) and any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("contains a line break or control character")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name:
            raise ValueError("empty; every person needs a name")
        if len(name) > MAX_NAME:
            raise ValueError(f"longer than {MAX_NAME} characters")
        return name

    @field_validator("role", mode="plain")
    @classmethod
    def _role(cls, value: Any) -> Role:
        if isinstance(value, Role):
            return value
        if not value:
            return Role.employee
        try:
            return Role(str(value).lower())
        except ValueError:
            raise ValueError(
                f"{value!r} is not a role ({', '.join(r.value for r in Role)})"
            ) from None

    @field_validator("locale", mode="plain")
    @classmethod
    def _locale(cls, value: Any, info: ValidationInfo) -> str:
        locale = str(value).lower() or _context(info, "default_locale")
        if locale not in SUPPORTED_LOCALES:
            raise ValueError(f"{locale!r} is not supported ({', '.join(SUPPORTED_LOCALES)})")
        return locale

    @field_validator("timezone", mode="plain")
    @classmethod
    def _timezone(cls, value: Any, info: ValidationInfo) -> str:
        return check_timezone(str(value) or _context(info, "default_timezone"))

    @field_validator("location", mode="plain")
    @classmethod
    def _location(cls, value: Any) -> str | None:
        if not value:
            return None
        if len(value) > MAX_LOCATION:
            raise ValueError(f"longer than {MAX_LOCATION} characters")
        return str(value)

    @field_validator("leave_date")
    @classmethod
    def _after_hire(cls, leave_date: date | None, info: ValidationInfo) -> date | None:
        hire_date = info.data.get("hire_date")
        if hire_date and leave_date and leave_date < hire_date:
            raise ValueError(
                f"{leave_date.isoformat()} is before hire_date {hire_date.isoformat()}"
            )
        return leave_date


def _context(info: ValidationInfo, key: str) -> str:
    return str(info.context[key]) if isinstance(info.context, dict) else ""


# Reading the file


def read_rows(
    text: str, problems: LineProblems, default_locale: str, default_timezone: str
) -> list[PersonRow | TeamLinks] | None:
    """Check the header and every row; None when the file has no usable table.

    A row with problems is returned as its :class:`TeamLinks` only, for the checks across
    rows; such a file is never applied.
    """
    if not text.strip():
        problems.add_file("the file is empty; expected a header line and one line per person")
        return None
    records = Records(text)
    context = {"default_locale": default_locale, "default_timezone": default_timezone}
    rows: list[PersonRow | TeamLinks] = []
    try:
        for line, values in records.data(_check_header, problems):
            if (fields := records.fields(line, values, problems)) is not None:
                rows.append(_check_row(fields, line, problems, context))
    except csv.Error as exc:
        problems.add(records.line_num, f"not valid CSV ({exc})")
        return None
    if records.header_refused:
        return None
    if not records.data_lines:
        problems.add_file("no people: the file has a header but no data lines")
        return None
    return rows


def _check_header(values: list[str], line: int, problems: LineProblems) -> list[str] | None:
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
    fields: dict[str, str], line: int, problems: LineProblems, context: dict[str, str]
) -> PersonRow | TeamLinks:
    values = {name: value for name, value in fields.items() if name in COLUMNS}
    try:
        return PersonRow.model_validate({**values, "line": line}, context=context)
    except ValidationError as exc:
        problems.add_validation_error(line, exc)
        failed = {str(details["loc"][0]) for details in exc.errors() if details["loc"]}
    links = {name: value for name, value in values.items() if name not in failed}
    try:
        return TeamLinks.model_validate({**links, "line": line})
    except ValidationError:  # only values that passed above are left; kept safe anyway
        return TeamLinks(line=line)
