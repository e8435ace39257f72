"""docs/command-line.md, written from the ``fidelio`` command tree: every command and
sub-command with its ``--help`` text.

The help is produced by click's own formatter (typer builds a click command from the app;
``typer.main.get_command``), at a fixed width so the page does not depend on the terminal of
whoever runs ``make docs``. Typer draws ``--help`` with rich when rich is installed; the page
uses click's plain layout instead (same usage, options and texts, without box drawing), which
reads well in a text block.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import typer

from bot.reference.markdown import GENERATED_NOTE

#: Columns of the help texts: wide enough for the option tables, narrow enough to read.
WIDTH = 100

HEADER = """\
# Command line reference

{note}

Every `fidelio` command with its `--help`. `-c`/`--config FILE` is a global option and goes
before the command (`fidelio -c /etc/fidelio.yaml run`). Commands exit with status 0 on success
and 2 on a configuration or input problem, after printing what is wrong.
[Running Fidelio](administration.md#the-command-line) says what each command does in more words.

{contents}
"""


def command_line_reference(root: Any, name: str = "fidelio") -> str:
    """The page for the click command ``root`` (``typer.main.get_command(app)``)."""
    helps = list(_helps(root, [name], None))
    contents = "\n".join(
        f"{'  ' * (len(path) - 1)}- [`{' '.join(path)}`](#{_anchor(path)})" for path, _ in helps
    )
    parts = [
        HEADER.format(
            note=GENERATED_NOTE.format(source="the `fidelio` commands"), contents=contents
        )
    ]
    for path, text in helps:
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def _helps(command: Any, path: list[str], parent: Any) -> Iterator[tuple[list[str], str]]:
    """``(path, help)`` for ``command`` and, depth first in declaration order, everything
    under it; hidden commands are left out as ``--help`` leaves them out."""
    plain = copy.copy(command)
    # Rich's layout depends on the terminal; the copy keeps the caller's command as it was.
    plain.rich_markup_mode = None
    ctx = typer.Context(
        plain, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH
    )
    yield path, _plain_text(plain.get_help(ctx))
    for sub_name in getattr(plain, "list_commands", lambda _ctx: [])(ctx):
        sub = plain.get_command(ctx, sub_name)
        if sub is not None and not getattr(sub, "hidden", False):
            yield from _helps(sub, [*path, sub_name], ctx)


def _plain_text(text: str) -> str:
    """Help text without what only rich interprets: ``\\[`` is how a literal ``[`` is
    written for rich; trailing spaces are dropped so the page is stable."""
    lines = [line.rstrip() for line in text.replace("\\[", "[").splitlines()]
    return "\n".join(lines).strip("\n")


def _anchor(path: list[str]) -> str:
    """The anchor GitHub gives the heading ``## `fidelio people import```."""
    return "-".join(path).lower()
