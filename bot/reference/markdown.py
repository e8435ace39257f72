"""The little Markdown the generated references share: the note that says so, table cells
and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: The first paragraph of every generated page; ``{source}`` names what it is generated from.
GENERATED_NOTE = (
    "<!-- Generated from {source} by `make docs` (`fidelio docs reference`). Do not edit: "
    "change the source and run `make docs`. -->"
)


def cell(text: str) -> str:
    """Text fit for one table cell: on one line, its pipes escaped (also inside code spans,
    as GitHub's tables require)."""
    return " ".join(text.split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table as lines; cells are expected to be made with :func:`cell`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
