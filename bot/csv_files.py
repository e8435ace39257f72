"""CSV files as Fidelio's imports read them (the people directory, the loyalty indicators).

A file is read as UTF-8 (a byte-order mark is accepted), its delimiter is a comma or, when
the first line has semicolons and no comma, a semicolon. Every problem is kept with its
physical line (``people.csv:7``) so the whole file can be reported at once, and a file with
any problem is refused as a whole (:class:`ImportFailed`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.errors import InputError
from bot.field_errors import field_problems


class ImportFailed(Exception):
    """The file was refused and nothing was written; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[InputError]):
        self.problems: list[InputError] = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} found; nothing was imported"
        super().__init__("\n".join([heading, *(f"  {p.where}: {p.reason}" for p in self.problems)]))


class LineProblems:
    """Collects problems with the line they belong to, to report them in file order."""

    def __init__(self, file_name: str):
        self.file_name = file_name
        self._items: list[tuple[int, InputError]] = []

    def add(self, line: int, reason: str) -> None:
        """A problem on ``line``; line 0 is the file as a whole."""
        where = f"{self.file_name}:{line}" if line else self.file_name
        self._items.append((line, InputError(where, reason)))

    def add_file(self, reason: str) -> None:
        self.add(0, reason)

    def add_validation_error(self, line: int, error: ValidationError) -> None:
        """Every problem a row model found on ``line``, each as ``column: reason``."""
        for column, reason in field_problems(error):
            self.add(line, f"{column}: {reason}")

    def __bool__(self) -> bool:
        return bool(self._items)

    def failure(self) -> ImportFailed:
        return ImportFailed([error for _, error in sorted(self._items, key=lambda i: i[0])])


def read_text(path: Path, problems: LineProblems) -> str | None:
    """The file's text, or None (and a problem) when it cannot be read as UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add_file(f"cannot read the file ({exc.strerror or exc})")
        return None
    return decode_text(raw, problems)


def decode_text(raw: bytes, problems: LineProblems) -> str | None:
    """The text of a file's bytes, or None (and a problem) when they are not UTF-8."""
    try:
        # utf-8-sig drops a leading byte-order mark (Excel writes one), which would otherwise
        # stick to the first column name and make it unknown.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add_file(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"
        )
        return None


class Records:
    """The records of CSV ``text`` (not blank), each with the line it starts on.

    Iterating raises ``csv.Error`` for text that is not valid CSV; :attr:`line_num` is then
    the line where the reader stopped.
    """

    def __init__(self, text: str):
        #: The column names once the header record is read and accepted.
        self.header: list[str] | None = None
        #: The header record was refused (reading stopped there).
        self.header_refused = False
        #: How many records came after the header.
        self.data_lines = 0
        first_line = next((line for line in text.splitlines() if line.strip()), "")
        self.delimiter = ";" if ";" in first_line and "," not in first_line else ","
        # newline="" lets the csv module see line ends itself, so quoted fields may span
        # lines; line_num then counts physical lines, which is what the problems report.
        self._reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        next_line = 1
        for values in self._reader:
            line, next_line = next_line, self._reader.line_num + 1
            if any(value.strip() for value in values):  # blank lines (often one at the end)
                yield line, values

    def data(
        self,
        check_header: Callable[[list[str], int, LineProblems], list[str] | None],
        problems: LineProblems,
    ) -> Iterator[tuple[int, list[str]]]:
        """The records after the header; the first record is the header, whose column names
        ``check_header(values, line, problems)`` returns, or None to refuse it (and stop)."""
        for line, values in self:
            if self.header is None:
                self.header = check_header(values, line, problems)
                if self.header is None:
                    self.header_refused = True
                    return
                continue
            self.data_lines += 1
            yield line, values

    def fields(self, line: int, values: list[str], problems: LineProblems) -> dict[str, str] | None:
        """A data record's values by column name, or None (and a problem) when it does not
        have one value per column."""
        assert self.header is not None
        if len(values) != len(self.header):
            problems.add(
                line, f"{len(values)} values but the header has {len(self.header)} columns"
            )
            return None
        return dict(zip(self.header, (value.strip() for value in values), strict=True))
