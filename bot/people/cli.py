"""``fidelio people`` (import, list, invite, export, forget) and ``fidelio slack sync``."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bot import csvsafe
from bot.cli.common import err, group, load, out, privacy_registry, run_async
from bot.config import Settings
from bot.errors import InputError

people_app = group("The people directory.")
slack_app = group("Slack workspace housekeeping.")


@people_app.command("import")
def peopleimport_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with email, name, team, parent_team, manager_email, role, locale, timezone, location, hire_date, leave_date"
        ),
    ],
) -> None:
    """Upsert people by email. All or nothing: any bad row stops the whole import."""
    settings = load()
    summary = run_async(import_file(settings, file))
    out.print(
        f"[green]Imported {file.name}[/green]: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.teams_created} new teams."
    )


async def import_file(settings: Settings, file: Path) -> Any:
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
    settings = load()
    rows = run_async(_people_rows(settings, team))
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
    settings = load()
    issued, username = run_async(_invite(settings, team, email or [], bot_username, include_linked))
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
    from bot.people.invites import issue_invites

    username = bot_username or settings.telegram.bot_username or await telegram_username(settings)
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


async def telegram_username(settings: Settings) -> str:
    if not settings.telegram.enabled or settings.telegram.token is None:
        raise InputError(
            "--bot-username",
            "needed to build t.me links: pass it, set telegram.bot_username, or enable Telegram",
        )
    from bot.channels.telegram import bot_username

    return await bot_username(settings.telegram)


@slack_app.command("sync")
def slack_sync() -> None:
    """Match directory people to Slack users by email (users.lookupByEmail) and open DMs."""
    settings = load()
    if not settings.slack.enabled:
        err.print("[red]slack.enabled[/red]: Slack is not enabled in the configuration")
        raise typer.Exit(2)
    linked, missing = run_async(_slack_sync(settings))
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


@people_app.command("export")
def people_export(
    email: Annotated[str, typer.Argument(help="Email of the person")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON to this file")
    ] = None,
) -> None:
    """Everything Fidelio holds about one person, as JSON (the export is audited)."""
    settings = load()
    data = run_async(_export(settings, email))
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"[green]Exported[/green] {email} to {output}")


@people_app.command("forget")
def people_forget(
    email: Annotated[str, typer.Argument(help="Email of the person")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a person's identities and personal fields; anonymous answers and counts stay.

    One transaction; running it again changes nothing.
    """
    settings = load()
    if not yes:
        try:
            confirmed = typer.confirm(
                f"Erase everything that identifies {email}? This cannot be undone"
            )
        except typer.Abort:
            # No answer (input closed, Ctrl-C): nothing to confirm with.
            err.print(
                "\n[red]--yes[/red]: no answer to the question; nothing was erased. "
                "Answer y, or add --yes to erase without asking",
                soft_wrap=True,
                highlight=False,
            )
            raise typer.Exit(2) from None
        if not confirmed:
            out.print("Nothing was erased.")
            return
    summary = run_async(_forget(settings, email))
    if summary is None:
        out.print(
            f"Nobody with email {email} is in the directory (never imported, or already "
            "erased): nothing to do."
        )
        return
    parts = ", ".join(f"{name} {count}" for name, count in summary.changed.items())
    out.print(f"[green]Erased[/green] person #{summary.person_id} (rows changed: {parts})")


async def _export(settings: Settings, email: str) -> dict[str, Any]:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.errors import InputError
    from bot.privacy.service import NotHeld, export_person

    db = Database(settings.database.url)
    try:
        return await export_person(db, email, SystemClock(), registry=privacy_registry())
    except NotHeld:
        raise InputError("EMAIL", f"nobody with email {email} is in the directory") from None
    finally:
        await db.dispose()


async def _forget(settings: Settings, email: str) -> Any:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.privacy.service import NotHeld, forget_person

    db = Database(settings.database.url)
    try:
        return await forget_person(db, email, SystemClock(), registry=privacy_registry())
    except NotHeld:
        return None
    finally:
        await db.dispose()
