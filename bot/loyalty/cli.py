"""``fidelio report loyalty``: HR's loyalty report on the command line. Every run is audited."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import err, load, out, run_async

report_app = typer.Typer(
    help="Loyalty reports, each for a named person (--as EMAIL) and audited as theirs.",
    no_args_is_help=True,
)

AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="The person this report is for (their email): their role decides what they may see, as in chat",
    ),
]


@report_app.command("loyalty")
def report_loyalty(
    team: Annotated[
        str | None,
        typer.Option("--team", help="A team (with its subtree); default: the organisation"),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Rounds opened on or after this date (YYYY-MM-DD)")
    ] = None,
    last: Annotated[
        int | None,
        typer.Option(
            "--last",
            min=1,
            max=104,
            help="The last N closed rounds [default: loyalty.default_rounds]",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, json, csv, png or html")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (png and html: default loyalty-report.<format>)",
        ),
    ] = None,
    locale: Annotated[
        str | None, typer.Option("--locale", help="en or it [default: organisation.default_locale]")
    ] = None,
    as_person: AsOption = None,
) -> None:
    """The loyalty summary of a team or of the organisation, from the closed rounds' release
    plans, for the person named by --as (managers: their teams; HR: anything)."""
    from bot.errors import InputError
    from bot.loyalty.report import FORMATS

    settings = load()
    if fmt not in FORMATS:
        err.print(f"[red]--format[/red]: {fmt!r} is not one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    chosen_locale = locale or settings.organisation.default_locale
    if chosen_locale not in ("en", "it"):
        err.print(f"[red]--locale[/red]: {chosen_locale!r} is not en or it")
        raise typer.Exit(2)
    when = _since(since, last)
    if output is None and fmt in ("png", "html"):
        output = Path(f"loyalty-report.{fmt}")

    async def go() -> Any:
        return await loyalty_report(settings, team, when, last, fmt, chosen_locale, as_person)

    try:
        payload = run_async(go())
    except InputError as exc:  # pragma: no cover - _run already handles it
        raise typer.Exit(2) from exc
    if output is not None:
        data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
        output.write_bytes(data)
        out.print(f"Report written to {output}", highlight=False)
    elif isinstance(payload, bytes):  # pragma: no cover - png always has an output
        raise typer.Exit(2)
    else:
        print(payload.rstrip("\n"))


async def loyalty_report(
    settings: Any,
    team: str | None,
    since: date | None,
    last: int | None,
    fmt: str,
    locale: str,
    as_person: str | None,
) -> str | bytes:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.errors import InputError
    from bot.loyalty.access import ScopeRefused
    from bot.loyalty.report_files import report_file
    from bot.loyalty.service import NoClosedRounds, Window
    from bot.loyalty.viewer import acting_person

    window = Window(since=since) if since else Window(last=last or settings.loyalty.default_rounds)
    clock = SystemClock()
    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            person = await acting_person(session, as_person, clock.now().date())
            try:
                made = await report_file(
                    session,
                    settings,
                    person,
                    team or "",
                    window,
                    fmt,
                    locale,
                    clock.now(),
                    route="cli",
                )
            except ScopeRefused as refused:
                if refused.reason == "summaries/unknown_team":
                    raise InputError(
                        "--team", f"no team called {team!r} (see fidelio people list)"
                    ) from None
                raise InputError(
                    "--team", f"{person.email} ({person.role.value}) may not see {refused.team!r}"
                ) from None
            except NoClosedRounds:
                raise _no_closed_rounds(since) from None
    finally:
        await db.dispose()
    if made.payload is None:
        raise InputError("--team", "not enough answers to report without identifying people")
    return made.payload


@report_app.command("comments")
def report_comments(
    since: Annotated[
        str | None, typer.Option("--since", help="Rounds opened on or after this date (YYYY-MM-DD)")
    ] = None,
    last: Annotated[
        int | None,
        typer.Option("--last", min=1, max=104, help="The last N closed rounds [default: 1]"),
    ] = None,
    as_person: AsOption = None,
) -> None:
    """Free-text answers of closed pulse rounds, for HR (--as), for the whole organisation
    only, and only for a round whose plan releases them: at least
    anonymity.comment_min_group people wrote one (audited)."""

    settings = load()
    when = _since(since, last)
    print(run_async(_comments(settings, when, last, as_person)).rstrip("\n"))


async def _comments(
    settings: Any, since: date | None, last: int | None, as_person: str | None
) -> str:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.loyalty.comments import organisation_comments
    from bot.loyalty.service import Window, closed_rounds
    from bot.loyalty.viewer import acting_person, audit_entry, require_hr

    window = Window(since=since) if since else Window(last=last or 1)
    clock = SystemClock()
    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            person = await acting_person(session, as_person, clock.now().date())
            require_hr(person, "comments")
            rounds = await closed_rounds(session, window)
            if not rounds:
                raise _no_closed_rounds(since)
            found = await organisation_comments(session, settings, rounds)
            session.add(
                audit_entry(
                    person,
                    clock.now(),
                    "loyalty.comments",
                    window=window.describe(),
                    rounds=[c.round_id for c in found],
                    shown=[c.round_id for c in found if c.texts is not None],
                )
            )
    finally:
        await db.dispose()
    k = max(settings.anonymity.comment_min_group, settings.anonymity.min_group)
    lines: list[str] = []
    for comments in found:
        lines.append(f"{comments.title} — round of {comments.label}: {comments.writers} wrote")
        if comments.texts is None:
            lines.append(
                f"  (withheld: fewer than {k} people wrote a comment, so they could be recognised)"
            )
        else:
            lines.extend(f"  • {' '.join(text.split())}" for text in comments.texts)
        lines.append("")
    lines.append(
        "Comments are shown for the whole organisation only, in alphabetical order, without "
        "team or time."
    )
    return "\n".join(lines)


def _no_closed_rounds(since: date | None) -> Exception:
    """The error for an empty window: --since when it chose the window; otherwise no round
    has closed at all (--last N counts closed rounds, so it is never the one to blame)."""
    from bot.errors import InputError

    if since is not None:
        return InputError("--since", f"no closed pulse round opened on or after {since}")
    return InputError(
        "pulse rounds",
        "none has closed yet: figures appear once a round closes (fidelio survey list shows "
        "the rounds; fidelio survey close ROUND_ID closes one now)",
    )


def _since(since: str | None, last: int | None) -> date | None:
    """``--since`` as a date (None when not given); exits 2 naming the option when it is not
    a date or comes with ``--last``."""
    from bot.durations import parse_day
    from bot.errors import InputError

    try:
        when = parse_day(since, "--since")
    except InputError as exc:
        err.print(f"[red]{exc.where}[/red]: {exc.reason}")
        raise typer.Exit(2) from None
    if when is not None and last is not None:
        err.print("[red]--since[/red]: give either --since or --last, not both")
        raise typer.Exit(2)
    return when
