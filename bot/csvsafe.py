"""CSV that a spreadsheet opens as data, never as formulas (OWASP "CSV injection").

Names, teams and other text in Fidelio's CSV files come from people and directory imports.
A cell such as ``=HYPERLINK("http://x","y")`` or ``@SUM(1)`` would run as a formula when HR
opens the file in a spreadsheet. Every CSV Fidelio writes goes through :func:`writer`, which
passes each cell through :func:`safe_cell`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

#: A text cell starting with one of these is read as a formula (or, for tab and carriage
#: return, can hide one after leading whitespace that spreadsheets drop).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """``value`` as it may be written to CSV without being run as a formula.

    Strings (and other values written as their text, such as dates or enums) that begin with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a single quote ``'`` in front,
    which spreadsheets show as text and which a reader can strip. Numbers (``int``, ``float``,
    ``Decimal``; ``bool`` too) are returned unchanged, so a genuinely negative figure such as
    an eNPS of -20 stays a number: a number written by Python's ``csv`` module cannot hold a
    formula. Hence write figures as numbers, never pre-formatted as strings. ``None`` stays
    ``None`` (an empty cell).
    """
    if value is None or isinstance(value, int | float | Decimal):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class SafeWriter:
    """A ``csv.writer`` whose every cell goes through :func:`safe_cell`."""

    def __init__(self, handle: _Writable, **options: Any):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row, each cell neutralised."""
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write several rows, each cell neutralised."""
        for row in rows:
            self.writerow(row)


def writer(handle: _Writable, **options: Any) -> SafeWriter:
    """Like :func:`csv.writer` (same options), but no cell can start a formula."""
    return SafeWriter(handle, **options)
