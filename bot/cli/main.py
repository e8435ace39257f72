"""The ``fidelio`` command: the root, its own ``run`` and ``chat``, and every command group
attached the one way: each feature's groups (``Feature.commands``), then the two that span
features (``content`` and ``demo``), and ``docs``."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    LogFormat,
    check_secret_key,
    database_problem,
    err,
    load,
    run_async,
    setup_logging,
    state,
)
from bot.cli.content import content_app
from bot.cli.demo import demo_app
from bot.cli.docs import docs_app
from bot.config import Settings
from bot.features import FEATURES

app = typer.Typer(
    name="fidelio",
    help="Fidelio: briefings, pulse surveys, suggestions and internal loyalty, in chat.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(config: ConfigOption = None) -> None:
    state.config_path = config


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

    settings = load()
    weak_key = check_secret_key(settings)
    setup_logging(settings, log_format=log_format.value if log_format else None)
    if weak_key:
        logging.getLogger("bot.cli.main").warning(weak_key)
    run_async(run_app(settings, console_as=as_email))


@app.command()
def chat(
    as_email: Annotated[str, typer.Option("--as", help="Email of the person to chat as")],
) -> None:
    """Chat with Fidelio in this terminal as any person (buttons are numbered choices).

    Works through a pipe too: ``echo help | fidelio chat --as someone@example.com``.
    """
    settings = load()
    setup_logging(settings, quiet=True)
    run_async(_chat(settings, as_email))


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


state.features = FEATURES
for name, group in [
    *(pair for feature in FEATURES for pair in feature.commands),
    ("content", content_app),
    ("demo", demo_app),
    ("docs", docs_app),
]:
    app.add_typer(group, name=name)


def main() -> None:
    """The ``fidelio`` script."""
    try:
        app()
    except Exception as exc:
        # A command that reached the database outside run_async: one line, never a traceback.
        problem = database_problem(exc)
        if problem is None:
            raise
        err.print(f"[red]error[/red]: {problem}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None
