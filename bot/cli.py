"""The ``fidelio`` command. The only place that prints errors and chooses exit codes."""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from bot.config import ConfigError, Settings, load_settings
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
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(people_app, name="people")
app.add_typer(demo_app, name="demo")
app.add_typer(slack_app, name="slack")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file [default: $FIDELIO_CONFIG or ./config.yaml]"),
]


class _State:
    config_path: Path | None = None


state = _State()


@app.callback()
def _main(config: ConfigOption = None) -> None:
    state.config_path = config


def _settings(config: Path | None = None) -> Settings:
    return load_settings(config or state.config_path)


def _setup_logging(settings: Settings, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else getattr(logging, settings.logging.level)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # Every HTTP request at INFO would drown our own lines.
    for noisy in ("httpx", "telegram", "apscheduler", "slack_sdk", "slack_bolt", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


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
        err.print(f"[red]{exc.where}[/red]: {exc.reason}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _load(config: Path | None = None) -> Settings:
    try:
        return _settings(config)
    except ConfigError as exc:
        err.print(f"[red]{exc.source}: invalid configuration[/red]")
        for key, reason in exc.problems:
            err.print(f"  [bold]{key}[/bold]: {reason}")
        raise typer.Exit(2) from None


# --- run / chat -------------------------------------------------------------------------------

@app.command()
def run(
    as_email: Annotated[
        str | None, typer.Option("--as", help="Console: chat as this person (default: console.as_email)")
    ] = None,
) -> None:
    """Start every configured channel, the scheduler and the outbox; Ctrl-C stops cleanly."""
    from bot.app import run as run_app

    settings = _load()
    _setup_logging(settings)
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
    from bot.console_session import console_person

    runtime = build_runtime(settings, with_console=True)
    # Only the console: a terminal chat must not start polling Telegram or Slack.
    runtime.channels = {"console": runtime.channels["console"]}
    runtime.sender.ports = dict(runtime.channels)
    try:
        who = await console_person(runtime, email)
        await runtime.channels["console"].converse(who)
    finally:
        await runtime.db.dispose()


# --- config -----------------------------------------------------------------------------------

@config_app.command("check")
def config_check() -> None:
    """Validate the configuration file and print a summary (secrets hidden)."""
    settings = _load()
    out.print(f"[green]Configuration OK[/green] ({state.config_path or 'config.yaml'})")
    channels = [n for n in ("console", "telegram", "slack") if getattr(settings, n).enabled]
    out.print(f"  database: {settings.database.url.split('@')[-1]}")
    out.print(f"  channels: {', '.join(channels)}")
    if settings.telegram.enabled:
        out.print(f"  telegram: {settings.telegram.mode} via {settings.telegram.base_url}")
    if settings.slack.enabled:
        out.print(f"  slack: {settings.slack.mode} mode via {settings.slack.base_url}")
    out.print(f"  content: {settings.content_dir}")
    if settings.security.secret_key.get_secret_value() == "change-me-in-production" and (
        settings.telegram.enabled or settings.slack.enabled
    ):
        err.print(
            "[yellow]warning[/yellow]: security.secret_key is the default; set FIDELIO_SECRET_KEY "
            "before connecting real chat platforms"
        )


# --- db ---------------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or migrate the database schema (Alembic)."""
    from bot.db.migrate import current_revision, upgrade
    from bot.db.session import Database

    settings = _load()

    async def go() -> str | None:
        Database(settings.database.url)  # creates the SQLite folder if needed
        await upgrade(settings.database.url, revision)
        return await current_revision(settings.database.url)

    now = _run(go())
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
    file: Annotated[Path, typer.Argument(help="CSV with email, name, team, parent_team, manager_email, role, locale, timezone, location, hire_date, leave_date")],
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
            db, file, SystemClock(),
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
    table = Table("email", "name", "team", "role", "locale", "channels")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"{len(rows)} people")


async def _people_rows(settings: Settings, team: str | None) -> list[tuple[str, ...]]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.db.models import ChannelIdentity, Person
    from bot.db.session import Database
    from bot.people import team_by_name, team_subtree_ids

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            query = select(Person).options(selectinload(Person.team)).order_by(Person.email)
            if team:
                found = await team_by_name(session, team)
                if found is None:
                    raise InputError("--team", f"no team named {team!r}")
                query = query.where(Person.team_id.in_(await team_subtree_ids(session, found.id)))
            people = list(await session.scalars(query))
            links: dict[int, list[str]] = {}
            for identity in await session.scalars(select(ChannelIdentity)):
                links.setdefault(identity.person_id, []).append(identity.channel.value)
            return [
                (p.email, p.name, p.team.name, p.role.value, p.locale, ", ".join(sorted(links.get(p.id, []))))
                for p in people
            ]
    finally:
        await db.dispose()


@people_app.command("invite")
def people_invite(
    team: Annotated[str | None, typer.Option(help="Invite this team and its sub-teams")] = None,
    email: Annotated[list[str] | None, typer.Option(help="Invite this person (repeatable)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the links to this CSV instead of printing them")] = None,
    bot_username: Annotated[str | None, typer.Option(help="Telegram bot username [default: telegram.bot_username, else asked from Telegram]")] = None,
    include_linked: Annotated[bool, typer.Option(help="Also invite people already linked on Telegram")] = False,
) -> None:
    """Create one-time, expiring Telegram invite links (earlier unused links are revoked)."""
    settings = _load()
    issued, username = _run(_invite(settings, team, email or [], bot_username, include_linked))
    if not issued:
        out.print("Nobody to invite (everyone selected is already linked; see --include-linked).")
        return
    if output:
        with output.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "name", "team", "link", "expires_at"])
            for inv in issued:
                writer.writerow([inv.email, inv.name, inv.team, inv.link(username), inv.expires_at_iso])
        out.print(f"[green]{len(issued)} invite links written to {output}[/green] (valid {settings.invites.ttl_hours} h)")
        return
    table = Table("email", "name", "team", "link", "expires (UTC)")
    for inv in issued:
        table.add_row(inv.email, inv.name, inv.team, inv.link(username), inv.expires_at_iso)
    out.print(table)
    out.print(f"{len(issued)} invites, valid {settings.invites.ttl_hours} h, each usable once.")


async def _invite(
    settings: Settings, team: str | None, emails: list[str], bot_username: str | None, include_linked: bool
) -> tuple[list[Any], str]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from bot.clock import SystemClock
    from bot.db.models import ChannelIdentity, ChannelName, Person
    from bot.db.session import Database
    from bot.invites import issue_invites
    from bot.people import team_by_name, team_subtree_ids

    username = bot_username or settings.telegram.bot_username or await _telegram_username(settings)
    clock = SystemClock()
    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            query = select(Person).options(selectinload(Person.team)).order_by(Person.email)
            if team:
                found = await team_by_name(session, team)
                if found is None:
                    raise InputError("--team", f"no team named {team!r}")
                query = query.where(Person.team_id.in_(await team_subtree_ids(session, found.id)))
            if emails:
                wanted = [e.strip().lower() for e in emails]
                query = query.where(Person.email.in_(wanted))
            people = [p for p in await session.scalars(query) if p.is_active(clock.now().date())]
            if emails:
                missing = set(wanted) - {p.email for p in people}
                if missing:
                    raise InputError("--email", f"not in the directory (or has left): {', '.join(sorted(missing))}")
            if not include_linked:
                linked = set(
                    await session.scalars(
                        select(ChannelIdentity.person_id).where(ChannelIdentity.channel == ChannelName.telegram)
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

    async with Bot(settings.telegram.token.get_secret_value(), base_url=settings.telegram.base_url) as bot:
        return str(bot.username)


# --- demo -------------------------------------------------------------------------------------

@demo_app.command("load")
def demo_load() -> None:
    """Import the demo organisation from content/demo/people.csv (safe to repeat)."""
    settings = _load()
    file = settings.content_dir / "demo" / "people.csv"
    summary = _run(_import(settings, file))
    out.print(
        f"[green]Demo organisation loaded[/green]: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged."
    )


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

    channel = SlackChannel(settings.slack, CallbackCodec(settings.security.secret_key.get_secret_value()))
    db = Database(settings.database.url)
    try:
        return await channel.sync_directory(db, SystemClock())
    finally:
        await channel.stop()
        await db.dispose()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
