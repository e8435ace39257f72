"""docs/chat-commands.md, written from the handler registry: the commands each role may run,
in the order and groups ``help`` shows them, with their aliases and their one-line help in
every language Fidelio speaks (the same templates ``help`` and the Telegram menus use)."""

from __future__ import annotations

from bot.db.models import Role
from bot.handling import Command, Registry
from bot.reference.markdown import GENERATED_NOTE, cell, table
from bot.render import Renderer
from bot.settings_section import SUPPORTED_LOCALES

LANGUAGE_NAMES = {"en": "English", "it": "Italiano"}

HEADER = """\
# Chat commands reference

{note}

The same commands work on every channel. Type them as a message, with or without a leading
`/`; on Slack also as `/fidelio <command>`. What a person may run depends on their role in the
directory (the `role` column of [the people CSV file](hr-guide.md#the-people-csv-file)); the
lists below are what `help` shows each role, grouped as it groups them, with the same one-line
help. *Audited*: each use is written to the audit log. The guides for
[employees](employee-guide.md#chat-commands), [managers](manager-guide.md#your-commands) and
[HR](hr-guide.md#chat-commands-for-hr) say more about each command.

| Command | Aliases | Roles | Audited |
|---|---|---|---|
{overview}
"""


def chat_commands_reference(registry: Registry, renderer: Renderer) -> str:
    """The page for ``registry``, its help texts rendered by ``renderer``."""
    commands = _unique(registry)
    overview = "\n".join(
        f"| `{c.name}` | {_aliases(c)} | {', '.join(_roles(c))} | {'yes' if c.audited else ''} |"
        for c in commands
    )
    parts = [
        HEADER.format(
            note=GENERATED_NOTE.format(source="the handler registry (`handlers/`)"),
            overview=overview,
        )
    ]
    for role in Role:
        parts.append(_role_section(registry, renderer, role))
    return "\n".join(parts)


def _role_section(registry: Registry, renderer: Renderer, role: Role) -> str:
    by_name = {c.name: c for c in registry.visible_commands(role)}
    rows = []
    for section in registry.help_sections(role):
        group = renderer.label(f"help.{section['key']}", "en")
        for entry in section["commands"]:
            command = by_name[entry["name"]]
            helps = [
                cell(renderer.text(command.summary, locale, {}, "console"))
                for locale in SUPPORTED_LOCALES
            ]
            rows.append((cell(group), f"`{command.name}`", _aliases(command), *helps))
    header = ("Group", "Command", "Aliases", *(LANGUAGE_NAMES[x] for x in SUPPORTED_LOCALES))
    lines = [f"## {role.value}", "", *table(header, rows), ""]
    return "\n".join(lines)


def _unique(registry: Registry) -> list[Command]:
    """Every command once, in registration order (aliases point at the same command)."""
    seen: dict[str, Command] = {}
    for command in registry.commands.values():
        seen.setdefault(command.name, command)
    return list(seen.values())


def _aliases(command: Command) -> str:
    return ", ".join(f"`{alias}`" for alias in command.aliases)


def _roles(command: Command) -> list[str]:
    return [role.value for role in Role if role in command.roles]
