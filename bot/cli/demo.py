"""``fidelio demo``: load the demo organisation, and a tour that sends it a briefing and a
pulse round through the console."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.cli.common import group, load, local_time, out, run_async, setup_logging
from bot.config import Settings
from bot.people.cli import import_file

demo_app = group("The demo organisation.")


@demo_app.command("load")
def demo_load(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the directory already has people")
    ] = False,
) -> None:
    """Import the demo organisation from content/demo/people.csv (safe to repeat)."""
    settings = load()
    if if_empty and run_async(_people_count(settings)):
        out.print("Directory already loaded; demo not imported again.")
        return
    file = settings.content_dir / "demo" / "people.csv"
    summary = run_async(import_file(settings, file))
    out.print(
        f"[green]Demo organisation loaded[/green]: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged."
    )


@demo_app.command("tour")
def demo_tour(
    briefing: Annotated[
        str, typer.Option(help="The briefing to send now (an id in content/briefings)")
    ] = "spring-trade-in",
    survey: Annotated[
        str, typer.Option(help="The survey to open a round of now (an id in content/surveys)")
    ] = "pulse-fortnightly",
) -> None:
    """Send a briefing and open a pulse round now, to the demo people, through the console.

    Only on a database that holds the demo organisation and nobody else (an empty one gets it
    loaded first); then `fidelio chat --as EMAIL`, and `:as EMAIL` to switch person."""
    settings = load()
    setup_logging(settings, quiet=True)
    result = run_async(_demo_tour(settings, briefing, survey))
    zone = settings.organisation.default_timezone
    b = result.briefing
    lead = b.launch_at - b.brief_at
    days = lead.days + (1 if lead.seconds >= 43200 else 0)
    if result.loaded:
        out.print("Directory was empty: demo organisation loaded.")
    out.print(
        f"Demo tour on the demo organisation: {result.people} people at work, each reachable "
        "on the console.",
        highlight=False,
        soft_wrap=True,
    )
    title = b.text(b.title, settings.organisation.default_locale)
    out.print(
        f"Briefing: campaign {result.campaign_ref}, {title}"
        f"{' (already running)' if result.campaign_reused else ''}: card and "
        f"{len(b.quiz)}-question quiz sent to {result.briefing_audience} people, launch in "
        f"{days} days ({local_time(settings, b.launch_at)}).",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"Pulse: survey schedule {result.schedule_ref}, round {result.round_id} (no. "
        f"{result.round_number}) of {result.survey_title}"
        f"{' (already open)' if result.round_reused else ' opened now'}, "
        f"{result.invited} people invited, open until {local_time(settings, result.round_closes_at)}.",
        highlight=False,
        soft_wrap=True,
    )
    failed = f", {result.failed} failed" if result.failed else ""
    out.print(
        f"Delivered through the console: {result.sent} messages{failed} (times in {zone}).",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        "See what a salesperson received, and switch to others with :as EMAIL:\n"
        "  fidelio chat --as aisha.khan@demo.fidelio.example",
        highlight=False,
        soft_wrap=True,
    )


async def _demo_tour(settings: Settings, briefing: str, survey: str) -> Any:
    import io

    from bot.app import build_runtime
    from bot.demo import run_tour

    runtime = build_runtime(settings, with_console=True, console_out=io.StringIO())
    # Only the console: the tour never talks to Telegram or Slack.
    runtime.channels = {"console": runtime.channels["console"]}
    runtime.sender.ports = dict(runtime.channels)
    try:
        return await run_tour(runtime, briefing, survey)
    finally:
        await runtime.db.dispose()


async def _people_count(settings: Settings) -> int:
    from sqlalchemy import func, select

    from bot.db.models import Person
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Person)) or 0)
    finally:
        await db.dispose()
