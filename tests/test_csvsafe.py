"""bot.csvsafe: no CSV cell Fidelio writes can start a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from bot.csvsafe import safe_cell, writer


def test_text_that_starts_a_formula_gets_a_leading_quote() -> None:
    for text in ('=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(1)", "\t=1", "\r=1"):
        assert safe_cell(text) == "'" + text
    for text in ("Ann Normal", "", "a=b", "Sales+Marketing", "2027-01-04", "'quoted"):
        assert safe_cell(text) == text


def test_numbers_stay_numbers_and_other_values_are_text() -> None:
    assert safe_cell(-20) == -20
    assert safe_cell(-18.25) == -18.25
    assert safe_cell(Decimal("-3.5")) == Decimal("-3.5")
    assert safe_cell(None) is None
    assert safe_cell(date(2027, 1, 4)) == "2027-01-04"

    class Hostile:
        def __str__(self) -> str:
            return "=1+1"

    assert safe_cell(Hostile()) == "'=1+1"


def test_round_trip_through_csv_reader_shows_the_leading_quote() -> None:
    buffer = io.StringIO()
    out = writer(buffer)
    out.writerow(["name", "team", "enps"])
    out.writerows(
        [
            ['=HYPERLINK("http://x","y")', "+cmd", -20],
            ["@SUM(1)", "Ops", 12.5],
        ]
    )
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [
        ["name", "team", "enps"],
        ['\'=HYPERLINK("http://x","y")', "'+cmd", "-20"],
        ["'@SUM(1)", "Ops", "12.5"],
    ]
