"""CLI commands for operations and personal data: ``db backup``, ``people export``,
``people forget``. Registered on the existing ``db`` and ``people`` groups by bot/cli.py."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from bot.config import Settings

T = TypeVar("T")

out = Console()
err = Console(stderr=True)


def register(
    db_app: typer.Typer,
    people_app: typer.Typer,
    load: Callable[[], Settings],
    run: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    """Add the commands to the ``db`` and ``people`` groups. ``load`` reads the settings and
    ``run`` runs a coroutine with the CLI's error handling (exit 2 on bad input)."""

    @db_app.command("backup")
    def db_backup(
        path: Annotated[Path, typer.Argument(help="File to write the copy to")],
        force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists")] = False,
    ) -> None:
        """Copy the SQLite database to PATH, consistently, even while Fidelio runs."""
        from bot.backup import backup_database

        settings = load()
        with err.status("Copying the database..."):
            result = run(backup_database(settings.database.url, path, overwrite=force))
        out.print(
            f"[green]Backup written[/green]: {result.path} ({result.size_bytes:,} bytes, "
            f"{result.pages} pages, schema revision {result.revision or 'none'}; "
            "integrity check ok)"
        )

    @people_app.command("export")
    def people_export(
        email: Annotated[str, typer.Argument(help="Email of the person")],
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write the JSON to this file")
        ] = None,
    ) -> None:
        """Everything Fidelio holds about one person, as JSON (the export is audited)."""
        settings = load()
        data = run(_export(settings, email))
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
        summary = run(_forget(settings, email))
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
        return await export_person(db, email, SystemClock())
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
        return await forget_person(db, email, SystemClock())
    except NotHeld:
        return None
    finally:
        await db.dispose()
