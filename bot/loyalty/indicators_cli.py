"""``fidelio indicators``: import objective HR figures, show the objective indicators and index."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bot.cli.common import load, out, run_async
from bot.durations import parse_day
from bot.errors import InputError

indicators_app = typer.Typer(
    help="Objective indicators: import HR figures, show indicators and the objective index.",
    no_args_is_help=True,
)


@indicators_app.command("import")
def indicators_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: team, period (YYYY-MM), absence_days, absence_spells, available_days, disciplinary_cases, initiative_participants, eligible"
        ),
    ],
) -> None:
    """Import monthly figures per team. All or nothing; each month in the file replaces
    what was stored for that month."""
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.loyalty.indicators_import import count_lines, import_indicators

    settings = load()
    lines = count_lines(file)

    async def go() -> Any:
        db = Database(settings.database.url)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=out,
                transient=True,
                disable=lines < 1000,  # a bar only where there is something to wait for
            ) as bar:
                # Each row is counted twice: when it is checked and when it is written.
                task = bar.add_task(f"Importing {file.name}", total=2 * lines)
                return await import_indicators(
                    db, file, SystemClock(), progress=lambda n: bar.advance(task, n)
                )
        finally:
            await db.dispose()

    summary = run_async(go())
    periods = ", ".join(summary.periods)
    out.print(
        f"[green]Imported {file.name}[/green]: {summary.rows} rows for {periods}"
        + (
            f" (replacing {summary.replaced} rows stored for those months)"
            if summary.replaced
            else ""
        ),
        highlight=False,
    )


def _parse_day(value: str | None, option: str) -> date | None:
    return parse_day(value, option)


@indicators_app.command("show")
def indicators_show(
    team: Annotated[str | None, typer.Option(help="This team and its sub-teams")] = None,
    since: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD [default: a year before --until]")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD [default: today]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    as_person: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="The person this report is for (their email): HR sees any team, a manager "
            "their own teams",
        ),
    ] = None,
) -> None:
    """The objective indicators of a team (or the organisation) and the objective index, for
    the person named by --as (audited as theirs)."""

    settings = load()

    async def go() -> Any:
        from sqlalchemy import select

        from bot.clock import SystemClock
        from bot.db.models import Role, Team
        from bot.db.session import Database
        from bot.loyalty.access import allowed_teams
        from bot.loyalty.objective import objective_summary
        from bot.loyalty.service import TeamTree
        from bot.loyalty.viewer import AS_OPTION, acting_person, audit_entry
        from bot.people import team_by_name, team_subtree_ids

        last = _parse_day(until, "--until") or date.today()
        first = _parse_day(since, "--since") or last - timedelta(days=365)
        if first > last:
            raise InputError("--since", f"{first} is after --until {last}")
        db = Database(settings.database.url)
        try:
            async with db.session() as session:
                person = await acting_person(session, as_person, date.today())
                if person.role == Role.employee:
                    raise InputError(
                        AS_OPTION,
                        f"{person.email} is an employee; indicators are for HR and managers",
                    )
                allowed = await allowed_teams(session, person, await TeamTree.load(session))
                if team:
                    found = await team_by_name(session, team)
                    if found is None:
                        raise InputError("--team", f"no team named {team!r}")
                    ids = sorted(await team_subtree_ids(session, found.id))
                else:
                    ids = list(await session.scalars(select(Team.id)))
                if allowed is not None and not set(ids) <= allowed:
                    raise InputError("--team", f"{person.email} may see only the teams they manage")
                summary = await objective_summary(session, settings, ids, first, last)
                session.add(
                    audit_entry(
                        person,
                        SystemClock().now(),
                        "indicators_view",
                        team=team,
                        since=str(first),
                        until=str(last),
                    )
                )
                return summary
        finally:
            await db.dispose()

    summary = run_async(go())
    if as_json:
        print(json.dumps({"team": team, **summary.to_json()}, indent=2))
        return
    table = Table("indicator", "value", "0–100", "weight", "bounds (worst → best)")
    for c in summary.components:
        table.add_row(
            c.name,
            "n/a" if c.raw is None else f"{c.raw:.1f}",
            "n/a" if c.mapped is None else f"{c.mapped:.1f}",
            f"{c.weight:g}",
            f"{c.worst:g} → {c.best:g}",
        )
    out.print(f"[bold]{team or 'Whole organisation'}[/bold], {summary.since} to {summary.until}")
    out.print(table)
    index = "n/a" if summary.index is None else f"{summary.index:.1f}"
    out.print(
        f"Objective index: [bold]{index}[/bold] (on {summary.coverage:.0%} of the weight; "
        "indicators without data are left out and the others re-weighted)",
        highlight=False,
    )
    out.print(
        "Voluntary turnover: not known (the directory has no leave reason). "
        "Bradford factor: not available (absence is imported per team, not per person).",
        highlight=False,
    )
