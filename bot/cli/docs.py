"""``fidelio docs reference``: the reference pages generated from the code, written or
checked together (``make docs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import group, load, publish_pages, state
from bot.features import build_registry

docs_app = group("Reference pages generated from the code.")


@docs_app.command("reference")
def docs_reference(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="The folder of the pages")] = Path("docs"),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if a page differs from what would be written"
        ),
    ] = False,
) -> None:
    """Write configuration.md (from the settings models and the configuration file in use),
    command-line.md (every command's --help) and chat-commands.md (the chat commands per
    role, from the handlers, with their help in every language)."""
    from bot.reference.pages import reference_pages
    from bot.render import Renderer

    settings = load()
    renderer = Renderer(settings.content_dir / "templates")
    # The command tree being run is the whole of `fidelio`: its root documents everything.
    pages = reference_pages(
        ctx.find_root().command, build_registry(), renderer, Path(state.config_used())
    )
    publish_pages({folder / name: text for name, text in pages.items()}, check)
