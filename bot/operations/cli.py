"""``fidelio config`` and ``fidelio db``: check the configuration; create, migrate and back up
the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from bot.cli.common import (
    check_secret_key,
    err,
    group,
    load,
    out,
    publish_pages,
    run_async,
    state,
)

config_app = group("Check the configuration; write its reference.")
db_app = group("Database schema.")


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration file and print a summary (secrets hidden)."""
    settings = load()
    weak_key = check_secret_key(settings)
    used = state.config_used()
    out.print(f"[green]Configuration OK[/green] ({used})")
    channels = [n for n in ("console", "telegram", "slack") if getattr(settings, n).enabled]
    out.print(f"  database: {settings.database.url.split('@')[-1]}")
    out.print(f"  channels: {', '.join(channels)}")
    if settings.telegram.enabled:
        out.print(f"  telegram: {settings.telegram.mode} via {settings.telegram.base_url}")
    if settings.slack.enabled:
        out.print(f"  slack: {settings.slack.mode} mode via {settings.slack.base_url}")
    if settings.web.enabled:
        out.print(f"  web console: {settings.web.base_url}")
    out.print(f"  content: {settings.content_dir}")
    if weak_key:
        err.print(f"[yellow]warning[/yellow]: {weak_key}", soft_wrap=True, highlight=False)


@config_app.command("reference")
def config_reference(
    output: Annotated[Path, typer.Option("--output", "-o", help="The page to write")] = Path(
        "docs/configuration.md"
    ),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if the page differs from what would be written"
        ),
    ] = False,
) -> None:
    """Write the configuration reference (every key with its type, default, environment
    variable and description) from the settings models, with the values the configuration
    file in use sets."""
    from bot.reference.pages import configuration_page

    used = Path(state.config_used())
    try:
        page = configuration_page(used)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        err.print(f"[red]error[/red]: {used}: {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    publish_pages({output: page}, check)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or migrate the database schema (Alembic). At the newest revision it also gives
    every pulse round closed before release plans existed its plan and its anonymous storage,
    one transaction per round (safe to interrupt and to run again)."""
    from bot.clock import SystemClock
    from bot.db.migrate import check_revision, current_revision, upgrade
    from bot.db.session import Database
    from bot.loyalty.release import rewrite_closed_rounds

    settings = load()

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

    now, rewritten = run_async(go())
    if rewritten:
        out.print(f"Rewrote {rewritten} closed pulse round(s) to their release plans.")
    out.print(f"[green]Database at revision {now}[/green]")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    from bot.db.migrate import current_revision

    settings = load()
    out.print(run_async(current_revision(settings.database.url)) or "(empty database)")


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="File to write the copy to")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists")] = False,
) -> None:
    """Copy the SQLite database to PATH, consistently, even while Fidelio runs."""
    from bot.operations.backup import backup_database

    settings = load()
    with err.status("Copying the database..."):
        result = run_async(backup_database(settings.database.url, path, overwrite=force))
    out.print(
        f"[green]Backup written[/green]: {result.path} ({result.size_bytes:,} bytes, "
        f"{result.pages} pages, schema revision {result.revision or 'none'}; "
        "integrity check ok)"
    )
