"""What every ``fidelio`` command shares: the consoles, loading the settings, running a
coroutine with one error policy (a clear message and exit code 2), logging set-up.

The only place that prints errors and chooses exit codes; feature command groups (each in its
feature package) use these helpers and nothing else of the command line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.config import (
    ConfigError,
    Settings,
    load_settings,
    secret_key_problem,
    secret_key_weakness,
)
from bot.errors import InputError
from bot.feature import Feature
from bot.privacy.parts import PrivacyRegistry, build_privacy_registry

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Configuration file \\[default: $FIDELIO_CONFIG or ./config.yaml]"
    ),
]


class CliState:
    """What the root command hands its sub-commands: the ``--config`` path, and the features
    (set by :mod:`bot.cli.main`; feature packages cannot import the list they are in)."""

    config_path: Path | None = None
    features: Sequence[Feature] = ()

    def config_used(self) -> str:
        """The configuration file in use, as the person named it (or the default)."""
        return str(self.config_path or os.environ.get("FIDELIO_CONFIG") or "config.yaml")


state = CliState()


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def print_config_error(exc: ConfigError) -> None:
    """Every problem of an invalid configuration, one per line, under its file."""
    err.print(f"[red]{exc.source}: invalid configuration[/red]")
    for key, reason in exc.problems:
        err.print(f"  [bold]{key}[/bold]: {reason}")


def load(config: Path | None = None) -> Settings:
    """The settings (``--config``, ``$FIDELIO_CONFIG`` or ./config.yaml); exit 2 with every
    problem listed when the configuration is invalid."""
    try:
        return load_settings(config or state.config_path)
    except ConfigError as exc:
        print_config_error(exc)
        raise typer.Exit(2) from None


def setup_logging(settings: Settings, quiet: bool = False, log_format: str | None = None) -> None:
    """Text lines or one JSON object per line (``operations.log_format``, or --log-format)."""
    from bot.operations.observability import setup_logging as configure

    fmt = log_format or settings.operations.log_format
    configure(settings.logging.level, "json" if fmt == "json" else "text", quiet=quiet)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine and turn expected failures into a clear message and exit code 2."""
    from bot.people import ImportFailed

    try:
        return asyncio.run(coro)
    except ConfigError as exc:
        print_config_error(exc)
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
        if not isinstance(exc, OperationalError | ProgrammingError) or not schema_missing(exc):
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
        url: str | None = load_settings(state.config_path).database.url
    except Exception:
        url = None
    return connection_problem(exc, url)


def schema_missing(exc: Exception) -> bool:
    """SQLite's "no such table/column" and PostgreSQL's "undefined table/column": the
    database was never migrated, or not to this version of Fidelio."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(
        marker in text
        for marker in ("no such table", "no such column", "does not exist", "undefinedtable")
    )


def check_secret_key(settings: Settings) -> str | None:
    """Refuse (exit 2) a weak ``security.secret_key`` when Telegram, Slack or a web console
    other machines can reach is enabled.

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
        "Telegram or Slack, or serving the web console to other machines"
    )


def local_time(settings: Settings, when: Any) -> str:
    """``when`` in the organisation's zone, as ``YYYY-MM-DD HH:MM``."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.organisation.default_timezone)
    return str(when.astimezone(zone).strftime("%Y-%m-%d %H:%M"))


def pick_title(settings: Settings, title: dict[str, str]) -> str:
    """A title in the organisation's language, else in the first language it has."""
    return title.get(settings.organisation.default_locale) or next(iter(title.values()), "")


def group(help_text: str) -> typer.Typer:
    """A command group as every group of ``fidelio`` is made (no args: show its help)."""
    return typer.Typer(help=help_text, no_args_is_help=True)


def privacy_registry() -> PrivacyRegistry:
    """Every feature's personal-data parts, for ``people export`` and ``people forget``."""
    return build_privacy_registry(part for f in state.features for part in f.personal_data())


def publish_pages(pages: Mapping[Path, str], check: bool) -> None:
    """Write generated pages, or with ``check`` only compare them: exit 1 naming every page
    that differs from what would be written, and how to bring it up to date."""
    from bot.reference.pages import outdated, write

    if check:
        stale = outdated(pages)
        for path in stale:
            err.print(
                f"[red]{path}[/red] is out of date: run `make docs` (or `fidelio docs reference`)",
                soft_wrap=True,
                highlight=False,
            )
        if stale:
            raise typer.Exit(1)
        out.print(f"{len(pages)} page(s) up to date", highlight=False)
        return
    written = write(pages)
    for path in written:
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)
    out.print(f"{len(written)} of {len(pages)} page(s) changed", highlight=False)
