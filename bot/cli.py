"""The ``fidelio`` command. The only place that prints errors and chooses exit codes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot import csvsafe
from bot.cli_indicators import indicators_app
from bot.cli_reliability import register as _register_reliability
from bot.config import (
    ConfigError,
    Settings,
    load_settings,
    secret_key_problem,
    secret_key_weakness,
)
from bot.errors import InputError

T = TypeVar("T")

app = typer.Typer(
    name="fidelio",
    help="Fidelio: briefings, pulse surveys, suggestions and internal loyalty, in chat.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
people_app = typer.Typer(help="The people directory.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo organisation.", no_args_is_help=True)
slack_app = typer.Typer(help="Slack workspace housekeeping.", no_args_is_help=True)
content_app = typer.Typer(help="Briefing and survey content files.", no_args_is_help=True)
campaign_app = typer.Typer(
    help="Briefing campaigns: schedule, follow, cancel.", no_args_is_help=True
)
survey_app = typer.Typer(
    help="Pulse surveys: schedule, pause, resume, stop, close rounds, response rates, preview.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(people_app, name="people")
app.add_typer(demo_app, name="demo")
app.add_typer(slack_app, name="slack")
app.add_typer(content_app, name="content")
app.add_typer(campaign_app, name="campaign")
app.add_typer(survey_app, name="survey")
app.add_typer(indicators_app, name="indicators")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Configuration file \\[default: $FIDELIO_CONFIG or ./config.yaml]"
    ),
]


class _State:
    config_path: Path | None = None


state = _State()


@app.callback()
def _main(config: ConfigOption = None) -> None:
    state.config_path = config


def _settings(config: Path | None = None) -> Settings:
    return load_settings(config or state.config_path)


def _setup_logging(settings: Settings, quiet: bool = False, log_format: str | None = None) -> None:
    from bot.observability import setup_logging

    # Text lines or one JSON object per line (operations.log_format, or --log-format).
    fmt = log_format or settings.operations.log_format
    setup_logging(settings.logging.level, "json" if fmt == "json" else "text", quiet=quiet)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine and turn expected failures into a clear message and exit code 2."""
    from bot.people import ImportFailed

    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        err.print(f"[red]{exc.source}: invalid configuration[/red]")
        for key, reason in exc.problems:
            err.print(f"  [bold]{key}[/bold]: {reason}")
        raise typer.Exit(2) from None
    except ImportFailed as exc:
        err.print(f"[red]Nothing was imported: {len(exc.problems)} problem(s) found.[/red]")
        for problem in exc.problems:
            err.print(f"  [bold]{problem.where}[/bold]: {problem.reason}", markup=True)
        raise typer.Exit(2) from None
    except InputError as exc:
        err.print(f"[red]{exc.where}[/red]: {exc.reason}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:
        unreachable = database_problem(exc)
        if unreachable is not None:
            err.print(f"[red]error[/red]: {unreachable}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None
        if not isinstance(exc, OperationalError | ProgrammingError) or not _schema_missing(exc):
            raise
        err.print(
            "[red]The database has no Fidelio tables yet, or an older schema.[/red] "
            "Run [bold]fidelio db upgrade[/bold] first (`make run` does it for you).",
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def database_problem(exc: BaseException) -> str | None:
    """One line naming ``database.url`` when ``exc`` says the database cannot be reached
    (no such database, nothing on the port, unknown host, login refused), else None."""
    from bot.db.problems import connection_problem

    try:
        url: str | None = _settings().database.url
    except Exception:
        url = None
    return connection_problem(exc, url)


def _schema_missing(exc: Exception) -> bool:
    """SQLite's "no such table/column" and PostgreSQL's "undefined table/column": the
    database was never migrated, or not to this version of Fidelio."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(
        marker in text
        for marker in ("no such table", "no such column", "does not exist", "undefinedtable")
    )


def _load(config: Path | None = None) -> Settings:
    try:
        return _settings(config)
    except ConfigError as exc:
        err.print(f"[red]{exc.source}: invalid configuration[/red]")
        for key, reason in exc.problems:
            err.print(f"  [bold]{key}[/bold]: {reason}")
        raise typer.Exit(2) from None


def _check_secret_key(settings: Settings) -> str | None:
    """Refuse (exit 2) a weak ``security.secret_key`` when Telegram or Slack is enabled.

    With the console alone a weak key is allowed, so the shipped configuration runs as it
    is; the weakness is returned for the caller to warn about in its own output (``run``
    logs it, so ``--log-format json`` stays one JSON object per line).
    """
    problem = secret_key_problem(settings)
    if problem is not None:
        # One line, never wrapped: the command it suggests must be copyable as it is.
        err.print(f"[red]error[/red]: {problem}", soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    weakness = secret_key_weakness(settings)
    if weakness is None:
        return None
    return (
        f"{weakness}; fine for the console alone, set FIDELIO_SECRET_KEY before enabling "
        "Telegram or Slack"
    )


class LogFormat(StrEnum):
    text = "text"
    json = "json"


# --- run / chat -------------------------------------------------------------------------------


@app.command()
def run(
    as_email: Annotated[
        str | None,
        typer.Option("--as", help="Console: chat as this person (default: console.as_email)"),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format", help="Log lines as text or JSON (default: operations.log_format)"
        ),
    ] = None,
) -> None:
    """Start every configured channel, the scheduler and the outbox; Ctrl-C stops cleanly."""
    from bot.app import run as run_app

    settings = _load()
    weak_key = _check_secret_key(settings)
    _setup_logging(settings, log_format=log_format.value if log_format else None)
    if weak_key:
        logging.getLogger("bot.cli").warning(weak_key)
    _run(run_app(settings, console_as=as_email))


@app.command()
def chat(
    as_email: Annotated[str, typer.Option("--as", help="Email of the person to chat as")],
) -> None:
    """Chat with Fidelio in this terminal as any person (buttons are numbered choices).

    Works through a pipe too: ``echo help | fidelio chat --as someone@example.com``.
    """
    settings = _load()
    _setup_logging(settings, quiet=True)
    _run(_chat(settings, as_email))


async def _chat(settings: Settings, email: str) -> None:
    from bot.app import build_runtime
    from bot.console_session import console_person, enable_switching

    runtime = build_runtime(settings, with_console=True)
    # Only the console: a terminal chat must not start polling Telegram or Slack.
    runtime.channels = {"console": runtime.channels["console"]}
    runtime.sender.ports = dict(runtime.channels)
    try:
        who = await console_person(runtime, email)
        enable_switching(runtime)
        await runtime.channels["console"].converse(who)
    finally:
        await runtime.db.dispose()


# --- config -----------------------------------------------------------------------------------


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration file and print a summary (secrets hidden)."""
    settings = _load()
    weak_key = _check_secret_key(settings)
    import os

    used = state.config_path or os.environ.get("FIDELIO_CONFIG") or "config.yaml"
    out.print(f"[green]Configuration OK[/green] ({used})")
    channels = [n for n in ("console", "telegram", "slack") if getattr(settings, n).enabled]
    out.print(f"  database: {settings.database.url.split('@')[-1]}")
    out.print(f"  channels: {', '.join(channels)}")
    if settings.telegram.enabled:
        out.print(f"  telegram: {settings.telegram.mode} via {settings.telegram.base_url}")
    if settings.slack.enabled:
        out.print(f"  slack: {settings.slack.mode} mode via {settings.slack.base_url}")
    out.print(f"  content: {settings.content_dir}")
    if weak_key:
        err.print(f"[yellow]warning[/yellow]: {weak_key}", soft_wrap=True, highlight=False)


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or migrate the database schema (Alembic). At the newest revision it also gives
    every pulse round closed before release plans existed its plan and its anonymous storage,
    one transaction per round (safe to interrupt and to run again)."""
    from bot.clock import SystemClock
    from bot.db.migrate import check_revision, current_revision, upgrade
    from bot.db.session import Database
    from bot.loyalty.release import rewrite_closed_rounds

    settings = _load()

    def progress(done: int, total: int) -> None:
        out.print(f"  closed round {done} of {total}: plan decided, answers kept by plan atom")

    async def go() -> tuple[str | None, int]:
        check_revision(revision)
        db = Database(settings.database.url)  # creates the SQLite folder if needed
        try:
            await upgrade(settings.database.url, revision)
            rewritten = 0
            if revision == "head":
                rewritten = await rewrite_closed_rounds(db, settings, SystemClock().now(), progress)
            return await current_revision(settings.database.url), rewritten
        finally:
            await db.dispose()

    now, rewritten = _run(go())
    if rewritten:
        out.print(f"Rewrote {rewritten} closed pulse round(s) to their release plans.")
    out.print(f"[green]Database at revision {now}[/green]")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from bot.db.migrate import current_revision

    settings = _load()
    out.print(_run(current_revision(settings.database.url)) or "(empty database)")


# --- people -----------------------------------------------------------------------------------


@people_app.command("import")
def people_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with email, name, team, parent_team, manager_email, role, locale, timezone, location, hire_date, leave_date"
        ),
    ],
) -> None:
    """Upsert people by email. All or nothing: any bad row stops the whole import."""
    settings = _load()
    summary = _run(_import(settings, file))
    out.print(
        f"[green]Imported {file.name}[/green]: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.teams_created} new teams."
    )


async def _import(settings: Settings, file: Path) -> Any:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.people import import_people

    db = Database(settings.database.url)
    try:
        return await import_people(
            db,
            file,
            SystemClock(),
            default_locale=settings.organisation.default_locale,
            default_timezone=settings.organisation.default_timezone,
        )
    finally:
        await db.dispose()


@people_app.command("list")
def people_list(
    team: Annotated[str | None, typer.Option(help="Only this team and its sub-teams")] = None,
) -> None:
    """List people with their team, role and linked channels."""
    settings = _load()
    rows = _run(_people_rows(settings, team))
    table = Table("email", "name", "team", "role", "locale", "channels", "left")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"{len(rows)} people")


async def _people_query(session: Any, team: str | None) -> Any:
    """People (with their team loaded) ordered by email; only ``team`` and its sub-teams
    when given. InputError names --team when there is no such team."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.db.models import Person
    from bot.people import team_by_name, team_subtree_ids

    query = select(Person).options(selectinload(Person.team)).order_by(Person.email)
    if team:
        found = await team_by_name(session, team)
        if found is None:
            raise InputError("--team", f"no team named {team!r}")
        query = query.where(Person.team_id.in_(await team_subtree_ids(session, found.id)))
    return query


async def _people_rows(settings: Settings, team: str | None) -> list[tuple[str, ...]]:
    from sqlalchemy import select

    from bot.db.models import ChannelIdentity
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            query = await _people_query(session, team)
            people = list(await session.scalars(query))
            links: dict[int, list[str]] = {}
            for identity in await session.scalars(select(ChannelIdentity)):
                links.setdefault(identity.person_id, []).append(identity.channel.value)
            return [
                (
                    p.email,
                    p.name,
                    p.team.name,
                    p.role.value,
                    p.locale,
                    ", ".join(sorted(links.get(p.id, []))),
                    p.leave_date.isoformat() if p.leave_date else "",
                )
                for p in people
            ]
    finally:
        await db.dispose()


@people_app.command("invite")
def people_invite(
    team: Annotated[str | None, typer.Option(help="Invite this team and its sub-teams")] = None,
    email: Annotated[list[str] | None, typer.Option(help="Invite this person (repeatable)")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the links to this CSV instead of printing them"),
    ] = None,
    bot_username: Annotated[
        str | None,
        typer.Option(
            help="Telegram bot username \\[default: telegram.bot_username, else asked from Telegram]"
        ),
    ] = None,
    include_linked: Annotated[
        bool, typer.Option(help="Also invite people already linked on Telegram")
    ] = False,
) -> None:
    """Create one-time, expiring Telegram invite links (earlier unused links are revoked)."""
    settings = _load()
    issued, username = _run(_invite(settings, team, email or [], bot_username, include_linked))
    if not issued:
        out.print("Nobody to invite (everyone selected is already linked; see --include-linked).")
        return
    if output:
        with output.open("w", newline="", encoding="utf-8") as handle:
            # Names and teams come from the directory import: no cell may run as a formula.
            writer = csvsafe.writer(handle)
            writer.writerow(["email", "name", "team", "link", "expires_at"])
            for inv in issued:
                writer.writerow(
                    [inv.email, inv.name, inv.team, inv.link(username), inv.expires_at_iso]
                )
        out.print(
            f"[green]{len(issued)} invite links written to {output}[/green] (valid {settings.invites.ttl_hours} h)"
        )
        return
    # One line each, never wrapped or cropped: a cut link is a useless link.
    for inv in issued:
        print(f"{inv.email}\t{inv.name}\t{inv.team}\t{inv.link(username)}")
    out.print(
        f"{len(issued)} invites, valid {settings.invites.ttl_hours} h (until {issued[0].expires_at_iso} UTC), "
        "each usable once. Use -o FILE.csv to export them."
    )


async def _invite(
    settings: Settings,
    team: str | None,
    emails: list[str],
    bot_username: str | None,
    include_linked: bool,
) -> tuple[list[Any], str]:
    from sqlalchemy import select

    from bot.clock import SystemClock
    from bot.db.models import ChannelIdentity, ChannelName, Person
    from bot.db.session import Database
    from bot.invites import issue_invites

    username = bot_username or settings.telegram.bot_username or await _telegram_username(settings)
    clock = SystemClock()
    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            query = await _people_query(session, team)
            if emails:
                wanted = [e.strip().lower() for e in emails]
                query = query.where(Person.email.in_(wanted))
            people = [p for p in await session.scalars(query) if p.is_active(clock.now().date())]
            if emails:
                missing = set(wanted) - {p.email for p in people}
                if missing:
                    raise InputError(
                        "--email",
                        f"not in the directory (or has left): {', '.join(sorted(missing))}",
                    )
            if not include_linked:
                linked = set(
                    await session.scalars(
                        select(ChannelIdentity.person_id).where(
                            ChannelIdentity.channel == ChannelName.telegram
                        )
                    )
                )
                people = [p for p in people if p.id not in linked]
            issued = await issue_invites(
                session, people, clock, timedelta(hours=settings.invites.ttl_hours), actor="cli"
            )
            return issued, username
    finally:
        await db.dispose()


async def _telegram_username(settings: Settings) -> str:
    if not settings.telegram.enabled or settings.telegram.token is None:
        raise InputError(
            "--bot-username",
            "needed to build t.me links: pass it, set telegram.bot_username, or enable Telegram",
        )
    from telegram import Bot

    async with Bot(
        settings.telegram.token.get_secret_value(), base_url=settings.telegram.base_url
    ) as bot:
        return str(bot.username)


# --- demo -------------------------------------------------------------------------------------


@demo_app.command("load")
def demo_load(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the directory already has people")
    ] = False,
) -> None:
    """Import the demo organisation from content/demo/people.csv (safe to repeat)."""
    settings = _load()
    if if_empty and _run(_people_count(settings)):
        out.print("Directory already loaded; demo not imported again.")
        return
    file = settings.content_dir / "demo" / "people.csv"
    summary = _run(_import(settings, file))
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
    settings = _load()
    _setup_logging(settings, quiet=True)
    result = _run(_demo_tour(settings, briefing, survey))
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
        f"{days} days ({_local(settings, b.launch_at)}).",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"Pulse: survey schedule {result.schedule_ref}, round {result.round_id} (no. "
        f"{result.round_number}) of {result.survey_title}"
        f"{' (already open)' if result.round_reused else ' opened now'}, "
        f"{result.invited} people invited, open until {_local(settings, result.round_closes_at)}.",
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


# --- slack ------------------------------------------------------------------------------------


@slack_app.command("sync")
def slack_sync() -> None:
    """Match directory people to Slack users by email (users.lookupByEmail) and open DMs."""
    settings = _load()
    if not settings.slack.enabled:
        err.print("[red]slack.enabled[/red]: Slack is not enabled in the configuration")
        raise typer.Exit(2)
    linked, missing = _run(_slack_sync(settings))
    out.print(f"[green]{linked} people linked[/green]; {missing} not found on Slack.")


async def _slack_sync(settings: Settings) -> tuple[int, int]:
    from bot.channels.callbacks import CallbackCodec
    from bot.channels.slack import SlackChannel
    from bot.clock import SystemClock
    from bot.db.session import Database

    channel = SlackChannel(
        settings.slack, CallbackCodec(settings.security.secret_key.get_secret_value())
    )
    db = Database(settings.database.url)
    try:
        return await channel.sync_directory(db, SystemClock())
    finally:
        await channel.stop()
        await db.dispose()


# --- content ----------------------------------------------------------------------------------


@content_app.command("check")
def content_check() -> None:
    """Validate every briefing file and the pulse surveys (item bank and survey definitions);
    report file, field and reason. Exit 2 on any problem."""
    from bot.briefings.content import check_briefings
    from bot.clock import SystemClock

    settings = _load()
    now = SystemClock().now()
    folder = settings.content_dir / "briefings"
    result = check_briefings(folder, now, settings.organisation.default_timezone)
    surveys_folder = settings.content_dir / "surveys"
    surveys, survey_problems = _check_surveys(surveys_folder, now)
    for problem in [*result.problems, *survey_problems]:
        err.print(
            f"[red]error[/red] {problem.where}: {problem.reason}", highlight=False, soft_wrap=True
        )
    for warning in result.warnings:
        err.print(
            f"[yellow]warning[/yellow] {warning.where}: {warning.reason}",
            highlight=False,
            soft_wrap=True,
        )
    for briefing in result.briefings:
        out.print(
            f"[green]ok[/green] {briefing.id} ({briefing.kind}): launch "
            f"{briefing.launch_at.isoformat(timespec='minutes')}, briefing "
            f"{briefing.brief_at.isoformat(timespec='minutes')}, {len(briefing.quiz)} quiz questions, "
            f"{len(briefing.faq)} FAQ, locales {', '.join(briefing.locales)}",
            highlight=False,
            soft_wrap=True,
        )
    for line in surveys:
        out.print(f"[green]ok[/green] {line}", highlight=False, soft_wrap=True)
    survey_summary = (
        f"{len(surveys)} valid survey(s), {len(survey_problems)} problem(s) in {surveys_folder}"
        if surveys_folder.is_dir()
        else f"no surveys ({surveys_folder} does not exist)"
    )
    out.print(
        f"{len(result.briefings)} valid briefing(s), {len(result.problems)} problem(s), "
        f"{len(result.warnings)} warning(s) in {folder}; {survey_summary}",
        highlight=False,
        soft_wrap=True,
    )
    if result.problems or survey_problems:
        raise typer.Exit(2)


def _check_surveys(folder: Path, now: Any) -> tuple[list[str], list[InputError]]:
    """One summary line per valid survey, and every problem of the item bank and the survey
    files. A missing folder means no surveys (nothing to check)."""
    from zoneinfo import ZoneInfo

    from bot.surveys.content import load_survey_content

    if not folder.is_dir():
        return [], []
    content = load_survey_content(folder)
    lines = []
    for survey in content.surveys:
        cadence = survey.cadence.pinned(now - timedelta(seconds=survey.open_for_s))
        zone = ZoneInfo(cadence.timezone)
        opening = [
            f"{when.astimezone(zone):%Y-%m-%d %H:%M}" for when in _next_openings(cadence, now, 3)
        ]
        every = f" every {cadence.every_weeks} weeks" if cadence.every_weeks > 1 else ""
        start = f" from {survey.cadence.start}" if survey.cadence.start else ""
        lines.append(
            f'{survey.id}: cadence "{cadence.cron}"{every} in {cadence.timezone}{start}, '
            f"open {_duration(survey.open_for_s)}, next rounds: "
            f"{', '.join(opening) or 'none in the next 5 years'}, "
            f"{len(survey.core)} core + {len(survey.rotating)} rotating "
            f"({survey.per_round} per round), comment {'on' if survey.comment else 'off'}, "
            f"reminders {_reminders(survey)}"
        )
    return lines, content.problems


def _next_openings(cadence: Any, after: Any, count: int) -> list[Any]:
    """The first ``count`` openings after ``after`` (looking up to five years ahead)."""
    span = timedelta(days=60)
    while True:
        found = cadence.occurrences(after, after + span)
        if len(found) >= count or span >= timedelta(days=5 * 366):
            return list(found[:count])
        span *= 2


def _duration(seconds: int) -> str:
    """4 days -> ``4d``; 24 hours -> ``24h``; 90 minutes -> ``1h30m``."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    parts = []
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0m"


def _reminders(survey: Any) -> str:
    if not survey.reminders:
        return "none"
    names = []
    for rule in survey.reminders:
        if rule.kind == "halfway":
            names.append("halfway")
        elif rule.kind == "before_close":
            names.append(f"{_duration(rule.offset_s)} before close")
        else:
            names.append(f"{_duration(rule.offset_s)} after open")
    weekends = " (moved off weekends)" if survey.skip_weekends else ""
    return ", ".join(names) + weekends


# --- campaigns --------------------------------------------------------------------------------


def _briefing_service(settings: Settings) -> Any:
    from bot.briefings.service import BriefingService
    from bot.clock import SystemClock
    from bot.db.session import Database

    return BriefingService(settings, Database(settings.database.url), SystemClock())


CampaignRef = Annotated[
    str, typer.Argument(help="Campaign reference: B-3, or 3 (see fidelio campaign list)")
]
ScheduleRef = Annotated[
    str, typer.Argument(help="Survey schedule reference: P-1, or 1 (see fidelio survey list)")
]


@campaign_app.command("schedule")
def campaign_schedule(
    briefing_id: Annotated[str, typer.Argument(help="The id in the briefing file's front matter")],
) -> None:
    """Schedule a briefing: delivered at its briefing time to its audience as it stands then."""
    from bot.briefings.content import load_briefing

    settings = _load()

    async def go() -> tuple[Any, list[str], Any, str]:
        from bot.campaign_refs import ref_of

        briefing = load_briefing(
            settings.content_dir / "briefings", briefing_id, settings.organisation.default_timezone
        )
        service = _briefing_service(settings)
        try:
            campaign, warnings = await service.schedule(briefing, actor="cli")
            async with service.db.session() as session:
                ref = await ref_of(session, campaign)
            return campaign, warnings, briefing, ref
        finally:
            await service.db.dispose()

    campaign, warnings, briefing, ref = _run(go())
    out.print(
        f"[green]Scheduled campaign {ref}[/green]: {campaign.title}\n"
        f"  briefing {briefing.brief_at.isoformat(timespec='minutes')}, launch "
        f"{briefing.launch_at.isoformat(timespec='minutes')}, expires "
        f"{briefing.expires_at.isoformat(timespec='minutes')}",
        highlight=False,
    )
    for warning in warnings:
        err.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)


@campaign_app.command("cancel")
def campaign_cancel(campaign_ref: CampaignRef) -> None:
    """Cancel a campaign; messages not yet sent are dropped."""
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import CampaignKind

    settings = _load()

    async def go() -> tuple[Any, str]:
        service = _briefing_service(settings)
        try:
            async with service.db.session() as session:
                found = await find_campaign(session, campaign_ref, CampaignKind.briefing)
                ref = await ref_of(session, found)
                return await service.cancel_in(session, found.id, actor="cli"), ref
        finally:
            await service.db.dispose()

    campaign, ref = _run(go())
    out.print(f"[green]Campaign {ref} cancelled[/green]: {campaign.title}", highlight=False)


@campaign_app.command("list")
def campaign_list() -> None:
    """Every briefing campaign with its status and times."""
    settings = _load()
    rows = _run(_campaign_rows(settings))
    zone = settings.organisation.default_timezone
    table = Table(
        "ref", "briefing", "title", "status", f"briefing at ({zone})", "launch", "expires"
    )
    for row in rows:
        table.add_row(*row)
    out.print(table)


async def _campaign_rows(settings: Settings) -> list[tuple[str, ...]]:
    from sqlalchemy import select

    from bot.campaign_refs import refs_of
    from bot.db.models import Campaign, CampaignKind
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(settings.organisation.default_timezone)

            def local(when: Any) -> str:
                return str(when.astimezone(zone).strftime("%Y-%m-%d %H:%M"))

            # Survey schedules are campaigns too; they have their own `fidelio survey list`.
            campaigns = await session.scalars(
                select(Campaign).where(Campaign.kind == CampaignKind.briefing).order_by(Campaign.id)
            )
            refs = await refs_of(session, CampaignKind.briefing)
            return [
                (
                    refs[c.id],
                    c.content_id,
                    c.title,
                    c.status.value,
                    local(c.starts_at),
                    local(c.launch_at or c.starts_at),
                    local(c.ends_at),
                )
                for c in campaigns
            ]
    finally:
        await db.dispose()


@campaign_app.command("show")
def campaign_show(
    campaign_ref: CampaignRef,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Readiness per team: reached, acknowledged before launch, quiz mean, most-missed question."""
    import json

    settings = _load()
    report = _run(_readiness(settings, campaign_ref))
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    title = report["title"].get(settings.organisation.default_locale) or next(
        iter(report["title"].values())
    )
    out.print(
        f"[bold]Campaign {report['ref']}[/bold]: {title} ({report['status']}), launch "
        f"{report['launch_at']}",
        highlight=False,
    )
    table = Table(
        "team",
        "audience",
        "reached",
        "read before launch",
        "read",
        "quiz done",
        "quiz mean",
        "most missed",
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    for row in [*report["teams"], {**report["total"], "team": "ALL"}]:
        table.add_row(
            row["team"],
            str(row["audience"]),
            pct(row["reached_pct"]),
            pct(row["ack_before_launch_pct"]),
            pct(row["ack_pct"]),
            str(row["quiz_done"]),
            pct(row["mean_score_pct"]),
            "-" if row["most_missed"] is None else f"Q{row['most_missed']}",
        )
    out.print(table)


async def _readiness(settings: Settings, campaign_ref: str) -> dict[str, Any]:
    from bot.briefings.content import Briefing
    from bot.briefings.readiness import team_readiness
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import AuditEntry, CampaignKind
    from bot.db.session import Database

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            campaign = await find_campaign(session, campaign_ref, CampaignKind.briefing)
            ref = await ref_of(session, campaign)
            briefing = Briefing.from_json(campaign.snapshot)
            report = await team_readiness(session, campaign, briefing)
            from bot.clock import SystemClock

            session.add(
                AuditEntry(
                    at=SystemClock().now(),
                    actor_label="cli",
                    action="campaign.show",
                    detail={"campaign": campaign.id, "ref": ref},
                )
            )
            context = report.context(briefing, with_names=True)
            context["ref"] = ref
            context["status"] = campaign.status.value
            context["launch_at"] = briefing.launch_at.isoformat(timespec="minutes")
            return context
    finally:
        await db.dispose()


# --- surveys ----------------------------------------------------------------------------------


async def _survey_session(settings: Settings, work: Any, clock: Any = None) -> Any:
    """Run ``work(session, service)`` in one transaction (committed on success); ``clock``
    defaults to the system clock (tests pass a manual one)."""
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.surveys.service import SurveyService

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            return await work(session, SurveyService(settings, db, clock or SystemClock()))
    finally:
        await db.dispose()


def _local(settings: Settings, when: Any) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.organisation.default_timezone)
    return str(when.astimezone(zone).strftime("%Y-%m-%d %H:%M"))


def _pick_title(settings: Settings, title: dict[str, str]) -> str:
    return title.get(settings.organisation.default_locale) or next(iter(title.values()), "")


@survey_app.command("list")
def survey_list() -> None:
    """Survey schedules with their status and latest rounds (times in the organisation's zone)."""
    settings = _load()
    lines = _run(_survey_lines(settings))
    if not lines:
        out.print("No survey is scheduled. Use fidelio survey schedule SURVEY_ID.")
        return
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)
    out.print(f"Times in {settings.organisation.default_timezone}.", highlight=False)


async def _survey_lines(settings: Settings) -> list[str]:
    from sqlalchemy import select

    from bot.campaign_refs import refs_of
    from bot.db.models import Campaign, CampaignKind, SurveyRound

    async def work(session: Any, _service: Any) -> list[str]:
        lines: list[str] = []
        campaigns = await session.scalars(
            select(Campaign).where(Campaign.kind == CampaignKind.pulse).order_by(Campaign.id)
        )
        refs = await refs_of(session, CampaignKind.pulse)
        for campaign in list(campaigns):
            lines.append(
                f"[bold]schedule {refs[campaign.id]}[/bold]: {campaign.content_id}, "
                f"{campaign.title} ({campaign.status.value})"
            )
            rounds = list(
                await session.scalars(
                    select(SurveyRound)
                    .where(SurveyRound.campaign_id == campaign.id)
                    .order_by(SurveyRound.opens_at.desc())
                    .limit(3)
                )
            )
            if not rounds:
                lines.append("  no round yet")
            for round_ in rounds:
                lines.append(
                    f"  round {round_.id} (no. {round_.number}): {round_.status.value}, "
                    f"{_local(settings, round_.opens_at)} to {_local(settings, round_.closes_at)}, "
                    f"{round_.invited} invited"
                )
        return lines

    return list(await _survey_session(settings, work))


@survey_app.command("schedule")
def survey_schedule(
    survey_id: Annotated[str, typer.Argument(help="The id in the survey file (content/surveys)")],
) -> None:
    """Schedule a survey: rounds open on its cadence until it is stopped. Audited."""
    from bot.surveys.content import load_survey

    settings = _load()

    async def work(session: Any, service: Any) -> tuple[Any, Any, str]:
        from bot.campaign_refs import ref_of

        survey, items = load_survey(settings.content_dir / "surveys", survey_id)
        campaign = await service.schedule_in(session, survey, items, "cli")
        await session.flush()
        return campaign, survey, await ref_of(session, campaign)

    campaign, survey, ref = _run(_survey_session(settings, work))
    from bot.surveys.service import Schedule

    stored = Schedule.of(campaign).survey
    from bot.clock import SystemClock

    now = SystemClock().now()
    window = timedelta(seconds=stored.open_for_s)
    openings = [_local(settings, when) for when in _next_openings(stored.cadence, now - window, 3)]
    out.print(
        f"[green]Scheduled survey schedule {ref}[/green]: {campaign.title} ({survey.id})\n"
        f"  rounds open {_duration(stored.open_for_s)}; next openings "
        f"({settings.organisation.default_timezone}): {', '.join(openings) or 'none soon'}",
        highlight=False,
        soft_wrap=True,
    )


def _set_schedule_status(schedule_ref: str, status_name: str) -> None:
    from bot.campaign_refs import find_campaign, ref_of
    from bot.db.models import CampaignKind, CampaignStatus

    settings = _load()
    status = {
        "pause": CampaignStatus.paused,
        "resume": CampaignStatus.scheduled,
        "stop": CampaignStatus.cancelled,
    }[status_name]

    async def work(session: Any, service: Any) -> tuple[Any, str]:
        found = await find_campaign(session, schedule_ref, CampaignKind.pulse)
        ref = await ref_of(session, found)
        return await service.set_status_in(session, found.id, status, "cli"), ref

    campaign, ref = _run(_survey_session(settings, work))
    note = {
        "pause": "no new round opens until it is resumed; an open round runs to its end",
        "resume": "rounds open again on its cadence",
        "stop": "no new round will open; an open round runs to its end",
    }[status_name]
    out.print(
        f"[green]Survey schedule {ref}[/green] ({campaign.title}) is now "
        f"{campaign.status.value}: {note}.",
        highlight=False,
        soft_wrap=True,
    )


RoundId = Annotated[int, typer.Argument(help="Round id (see fidelio survey list)")]


@survey_app.command("pause")
def survey_pause(schedule_ref: ScheduleRef) -> None:
    """Pause a schedule: no round opens while paused. Audited."""
    _set_schedule_status(schedule_ref, "pause")


@survey_app.command("resume")
def survey_resume(schedule_ref: ScheduleRef) -> None:
    """Resume a paused schedule. Audited."""
    _set_schedule_status(schedule_ref, "resume")


@survey_app.command("stop")
def survey_stop(schedule_ref: ScheduleRef) -> None:
    """Stop a schedule for good (status cancelled). Audited."""
    _set_schedule_status(schedule_ref, "stop")


@survey_app.command("close")
def survey_close(round_id: RoundId) -> None:
    """Close a round now: its secret is destroyed, later answers are refused. Audited."""
    from bot.db.models import RoundStatus, SurveyRound

    settings = _load()

    async def work(session: Any, service: Any) -> tuple[Any, bool]:
        found = await session.get(SurveyRound, round_id)
        if found is None:
            raise InputError(f"round {round_id}", "no survey round with this id")
        was_open = found.status == RoundStatus.open
        return await service.close_round_in(session, round_id, "cli"), was_open

    round_, was_open = _run(_survey_session(settings, work))
    if not was_open:
        out.print(f"Round {round_.id} was already closed.")
        return
    out.print(
        f"[green]Round {round_.id} closed[/green]: its secret is destroyed, so no answer can be "
        "linked to a person any more; later answers are refused.",
        highlight=False,
        soft_wrap=True,
    )


@survey_app.command("rates")
def survey_rates(round_id: RoundId) -> None:
    """Response counts of a round: per team only for teams of at least anonymity.min_group
    invited people, the others pooled. Counts only, never answers. Audited."""
    settings = _load()
    report = _run(_survey_rates(settings, round_id))
    k = settings.anonymity.min_group
    out.print(
        f"[bold]Round {report['id']}[/bold] (no. {report['number']}) of {report['title']}: "
        f"{report['status']}, {report['opens_at']} to {report['closes_at']} "
        f"({settings.organisation.default_timezone})",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("team", "invited", "started", "finished", "finished %")

    def row(name: str, entry: dict[str, int]) -> None:
        share = f"{100 * entry['finished'] / entry['invited']:.0f}%" if entry["invited"] else "-"
        table.add_row(
            name, str(entry["invited"]), str(entry["started"]), str(entry["finished"]), share
        )

    for team in report["teams"]:
        row(team["team"], team)
    if report["pooled"]:
        row("other teams (pooled)", report["pooled"])
    row("ALL", report["total"])
    out.print(table)
    out.print(
        f"Counts only. Teams with fewer than {k} invited people are not shown on their own: "
        f"they are pooled (with the next-smallest teams when the pool would be under {k}), "
        f"and the pool is shown only when it has at least {k} people.",
        highlight=False,
        soft_wrap=True,
    )
    if report["live"]:
        from datetime import datetime

        taken = _local(settings, datetime.fromisoformat(report["taken_at"]))
        minutes = settings.anonymity.live_rates_refresh_s // 60
        out.print(
            f"The round is open: these figures were taken at {taken} and are refreshed at most "
            f"every {minutes} minutes; started and finished are rounded down to a multiple of "
            f"{report['step']}, so nobody's answer can be timed.",
            highlight=False,
            soft_wrap=True,
        )


async def _survey_rates(settings: Settings, round_id: int, clock: Any = None) -> dict[str, Any]:
    from bot.db.models import AuditEntry, Campaign, SurveyRound
    from bot.surveys.rates import response_rates

    async def work(session: Any, service: Any) -> dict[str, Any]:
        round_ = await session.get(SurveyRound, round_id)
        if round_ is None:
            raise InputError(f"round {round_id}", "no survey round with this id")
        campaign = await session.get(Campaign, round_.campaign_id)
        # The same (coarse, while open) figures as in chat: one snapshot for everyone.
        rates = await response_rates(session, round_, settings.anonymity, service.clock)
        session.add(
            AuditEntry(
                at=service.clock.now(),
                actor_label="cli",
                action="survey.rates",
                detail={"round": round_id},
            )
        )
        return {
            **rates,
            "id": round_.id,
            "number": round_.number,
            "title": campaign.title if campaign else "?",
            "status": round_.status.value,
            "opens_at": _local(settings, round_.opens_at),
            "closes_at": _local(settings, round_.closes_at),
        }

    return dict(await _survey_session(settings, work, clock))


@survey_app.command("preview")
def survey_preview(
    survey_id: Annotated[str, typer.Argument(help="The id in the survey file (content/surveys)")],
    locale: Annotated[str, typer.Option("--locale", help="Language: it or en")] = "",
    round_number: Annotated[
        int, typer.Option("--round", help="Round number, counting from 1 if scheduled now")
    ] = 1,
) -> None:
    """Print what people receive in round N: the invitation, then every question with its
    answer choices, as the console shows them. Reads only the content files."""
    import io
    from types import SimpleNamespace

    from bot.channels.console import ConsoleChannel
    from bot.channels.port import Address
    from bot.clock import SystemClock
    from bot.config import SUPPORTED_LOCALES
    from bot.db.models import SurveyRound
    from bot.render import Renderer
    from bot.surveys.content import load_survey
    from bot.surveys.service import Schedule, invitation
    from handlers.pulse import question

    settings = _load()
    chosen = locale or settings.organisation.default_locale
    zone = settings.organisation.default_timezone

    async def go() -> tuple[str, Any, Any]:
        if chosen not in SUPPORTED_LOCALES:
            raise InputError(
                "--locale", f"{chosen!r} is not supported ({', '.join(SUPPORTED_LOCALES)})"
            )
        if round_number < 1:
            raise InputError("--round", "must be 1 or more")
        survey, items = load_survey(settings.content_dir / "surveys", survey_id)
        now = SystemClock().now()
        window = timedelta(seconds=survey.open_for_s)
        cadence = survey.cadence.pinned(now - window)
        openings = _next_openings(cadence, now - window, round_number)
        if len(openings) < round_number:
            raise InputError(
                "--round", f"the cadence has no round {round_number} in the next 5 years"
            )
        opens = openings[round_number - 1]
        round_ = SurveyRound(
            id=0,
            number=round_number,
            opens_at=opens,
            closes_at=opens + window,
            items=survey.items_for_round(round_number - 1),
        )
        schedule = Schedule(cast(Any, None), survey, items)  # no stored campaign
        renderer = Renderer(
            settings.content_dir / "templates", settings.organisation.default_locale, zone
        )
        buffer = io.StringIO()
        console = ConsoleChannel(out=buffer)
        console.active = "preview"
        address = Address("console", "preview")
        # The handler's own question builder; the text item's conversation state is not kept.
        ctx: Any = SimpleNamespace(
            locale=chosen,
            channel="console",
            person=SimpleNamespace(id=0),
            clock=SystemClock(),
            session=SimpleNamespace(add=lambda _obj: None),
        )
        replies = [invitation(round_, schedule)]
        replies += [question(ctx, round_, schedule, i) for i in range(len(round_.items))]
        for reply in replies:
            await console.send(address, renderer.render(reply, chosen, "console", zone))
        return buffer.getvalue(), round_, survey

    text, round_, survey = _run(go())
    out.print(
        f"[bold]{survey.id}[/bold], round {round_number} if scheduled now: opens "
        f"{_local(settings, round_.opens_at)}, closes {_local(settings, round_.closes_at)} "
        f"({zone}); {len(round_.items)} questions; locale {chosen}",
        highlight=False,
        soft_wrap=True,
    )
    print(text.rstrip("\n"))


# --- suggestions ---
from bot.cli_suggestions import suggestions_app  # noqa: E402

app.add_typer(suggestions_app, name="suggestions")
# --- loyalty reports (bot/cli_report.py) ---
from bot.cli_report import report_app  # noqa: E402

app.add_typer(report_app, name="report")
# --- reliability: db backup, people export, people forget (bot/cli_reliability.py) ---
_register_reliability(db_app, people_app, lambda: _load(), _run)


def main() -> None:
    try:
        app()
    except Exception as exc:
        # A command that reached the database outside _run: still one line, never a traceback.
        problem = database_problem(exc)
        if problem is None:
            raise
        err.print(f"[red]error[/red]: {problem}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    # Through the package, so `python -m bot.cli` and the `fidelio` script share one module
    # (the sub-commands import bot.cli for its options and helpers).
    from bot.cli import main as package_main

    package_main()
