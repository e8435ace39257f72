"""Importing objective HR figures per team and month from CSV: all or nothing.

CSV format: UTF-8 (a byte-order mark is accepted), comma- or semicolon-separated; header on
line 1 with exactly these columns, in any order:

``team, period, absence_days, absence_spells, available_days, disciplinary_cases,
initiative_participants, eligible``

* ``team``: a team name already in the directory.
* ``period``: a calendar month, ``YYYY-MM`` (e.g. ``2026-10``). Months add up to any
  reporting period, so quarters and years are never imported as such.
* ``absence_days``, ``available_days``: days (decimals allowed: ``3.5``, or ``3,5`` in a
  semicolon-separated file); absence days cannot exceed available days.
* ``absence_spells``, ``disciplinary_cases``, ``initiative_participants``, ``eligible``:
  whole numbers ≥ 0; participants cannot exceed eligible.

Every row is checked (by the pydantic model :class:`IndicatorRow`) before anything is
written, and every problem is reported with its line and column. A clean file **replaces** each month it contains: all rows stored for that month (for
every team) are deleted and the file's rows written, in one transaction, so re-importing a
corrected month never leaves a stale team behind.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import delete, func, insert, select

from bot.clock import Clock
from bot.csv_files import LineProblems, Records, read_text
from bot.db.models import AuditEntry, Team
from bot.db.session import Database
from bot.loyalty.tables import FIGURES, IndicatorFigure

COLUMNS = ("team", "period", *FIGURES)
COUNT_COLUMNS = ("absence_spells", "disciplinary_cases", "initiative_participants", "eligible")
_PERIOD = re.compile(r"(\d{4})-(\d{2})")
_CHUNK = 500

#: Called with the number of rows just handled (checked, then written), for a progress bar.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class IndicatorImportSummary:
    rows: int
    periods: tuple[str, ...]
    #: Rows that were stored for those periods before and have been replaced.
    replaced: int


def _decimal_comma(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("decimal_comma"))


def _days(value: str, info: ValidationInfo) -> float:
    text = value.replace(",", ".") if _decimal_comma(info) else value
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{value!r} must be a number ≥ 0")
    return number


def _count(value: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise ValueError(f"{value!r} is not a whole number ≥ 0")
    return int(value)


Days = Annotated[float, PlainValidator(_days)]
Count = Annotated[int, PlainValidator(_count)]


class IndicatorRow(BaseModel):
    """One data row (values already stripped), validated with ``context={"decimal_comma":
    True}`` for a semicolon-separated file. A total comes before the part checked against it,
    so each part's check sees its total."""

    model_config = ConfigDict(frozen=True)

    line: int
    team: str
    period: str
    available_days: Days
    absence_days: Days
    absence_spells: Count
    disciplinary_cases: Count
    eligible: Count
    initiative_participants: Count

    @field_validator("team")
    @classmethod
    def _team(cls, team: str) -> str:
        if not team:
            raise ValueError("empty")
        return team

    @field_validator("period")
    @classmethod
    def _period(cls, period: str) -> str:
        match = _PERIOD.fullmatch(period)
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{period!r} is not a month written YYYY-MM (e.g. 2026-10)")
        return period

    @field_validator("absence_days")
    @classmethod
    def _within_available(cls, absence_days: float, info: ValidationInfo) -> float:
        available = info.data.get("available_days")
        if available is not None and absence_days > available:
            raise ValueError(f"{absence_days:g} is more than available_days {available:g}")
        return absence_days

    @field_validator("initiative_participants")
    @classmethod
    def _within_eligible(cls, participants: int, info: ValidationInfo) -> int:
        eligible = info.data.get("eligible")
        if eligible is not None and participants > eligible:
            raise ValueError(f"{participants} is more than eligible {eligible}")
        return participants


def count_lines(path: Path) -> int:
    """Data lines in the file (for a progress bar's total); 0 if unreadable."""
    try:
        with path.open("rb") as handle:
            return max(0, sum(1 for line in handle if line.strip()) - 1)
    except OSError:
        return 0


async def import_indicators(
    db: Database, path: Path, clock: Clock, *, actor: str = "cli", progress: Progress | None = None
) -> IndicatorImportSummary:
    """Check the whole file, then replace the months it holds; raises ImportFailed."""
    problems = LineProblems(path.name)
    text = read_text(path, problems)
    rows = _parse(text, problems, progress) if text is not None else []
    async with db.session() as session:
        team_ids = dict((await session.execute(select(Team.name, Team.id))).tuples().all())
        for row in rows:
            if row.team not in team_ids:
                problems.add(
                    row.line, f"team: unknown team {row.team!r} (import the people directory first)"
                )
        if problems:
            raise problems.failure()
        periods = tuple(sorted({row.period for row in rows}))
        replaced = int(
            await session.scalar(
                select(func.count())
                .select_from(IndicatorFigure)
                .where(IndicatorFigure.period.in_(periods))
            )
            or 0
        )
        await session.execute(delete(IndicatorFigure).where(IndicatorFigure.period.in_(periods)))
        now = clock.now()
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            await session.execute(
                insert(IndicatorFigure),
                [
                    {
                        "team_id": team_ids[row.team],
                        "period": row.period,
                        "absence_days": row.absence_days,
                        "available_days": row.available_days,
                        **{column: getattr(row, column) for column in COUNT_COLUMNS},
                        "imported_at": now,
                    }
                    for row in chunk
                ],
            )
            if progress is not None:
                progress(len(chunk))
        session.add(
            AuditEntry.by(
                actor,
                now,
                "indicators_import",
                file=path.name,
                rows=len(rows),
                periods=list(periods),
            )
        )
    return IndicatorImportSummary(len(rows), periods, replaced)


def _parse(text: str, problems: LineProblems, progress: Progress | None) -> list[IndicatorRow]:
    add = problems.add
    if not text.strip():
        add(0, "the file is empty; expected a header line and one line per team and month")
        return []
    records = Records(text)
    rows: list[IndicatorRow] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for line, values in records.data(_header, problems):
            if progress is not None:
                progress(1)
            if (fields := records.fields(line, values, problems)) is None:
                continue
            try:
                row = IndicatorRow.model_validate(
                    {**fields, "line": line}, context={"decimal_comma": records.delimiter == ";"}
                )
            except ValidationError as exc:
                problems.add_validation_error(line, exc)
                continue
            key = (row.team, row.period)
            if key in seen:
                add(
                    line,
                    f"duplicate: team {row.team!r} and period {row.period} already on line {seen[key]}",
                )
                continue
            seen[key] = line
            rows.append(row)
    except csv.Error as exc:
        add(records.line_num, f"not valid CSV ({exc})")
        return []
    if records.header is not None and not records.data_lines:
        add(0, "no figures: the file has a header but no data lines")
    return rows


def _header(values: list[str], line: int, problems: LineProblems) -> list[str] | None:
    add = problems.add
    header = [value.strip().lower() for value in values]
    unknown = [
        name or f"(unnamed column {i + 1})" for i, name in enumerate(header) if name not in COLUMNS
    ]
    if unknown:
        add(
            line, f"unknown column(s): {', '.join(unknown)} (the columns are: {', '.join(COLUMNS)})"
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        add(line, f"column named more than once: {', '.join(repeated)}")
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        add(line, f"missing column(s): {', '.join(missing)}")
    return None if unknown or repeated or missing else header
