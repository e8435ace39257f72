"""The three reference pages together: what ``make docs`` writes under docs/, and how a
committed page is compared with what would be written now."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bot.handling import Registry
from bot.reference.chat_commands import chat_commands_reference
from bot.reference.command_line import command_line_reference
from bot.reference.configuration import configuration_reference
from bot.render import Renderer

CONFIGURATION = "configuration.md"
COMMAND_LINE = "command-line.md"
CHAT_COMMANDS = "chat-commands.md"


def shipped_config(path: Path) -> dict[str, Any]:
    """The configuration file as written, ``${VAR}`` references left as they are."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: must be a mapping of sections")
    return raw


def configuration_page(config_file: Path) -> str:
    """docs/configuration.md, with the values ``config_file`` (the shipped one) sets."""
    return configuration_reference(shipped_config(config_file))


def reference_pages(
    cli: Any, registry: Registry, renderer: Renderer, config_file: Path
) -> dict[str, str]:
    """Every reference page by file name: ``cli`` is the root click command of ``fidelio``,
    ``registry`` every feature's chat commands, ``renderer`` over the shipped templates."""
    return {
        CONFIGURATION: configuration_page(config_file),
        COMMAND_LINE: command_line_reference(cli),
        CHAT_COMMANDS: chat_commands_reference(registry, renderer),
    }


def outdated(pages: Mapping[Path, str]) -> list[Path]:
    """The pages whose file is missing or differs from the text given."""
    return [
        path
        for path, text in pages.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def write(pages: Mapping[Path, str]) -> list[Path]:
    """Write the pages that changed (``\\n`` line endings on every system); the paths
    written."""
    changed = outdated(pages)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pages[path], encoding="utf-8", newline="\n")
    return changed
