"""The Telegram command menu (what people see when they type "/"): ``setMyCommands`` and
``deleteMyCommands``, part of the Telegram adapter (:class:`bot.channels.telegram.TelegramChannel`
calls these; :mod:`bot.command_menus` decides what each menu holds).

Scopes used: the default scope, once per language (``language_code``) and once without, for
everyone; and one private chat (``BotCommandScopeChat``) for a person whose role has
commands of its own. Telegram shows a person the most specific list that exists: their
chat's, then their app language's, then the default.

Telegram refuses the whole list for one bad entry, so entries are fitted to its limits here:
a command of 1 to 32 characters of ``a-z 0-9 _`` (others are left out, with a warning), a
description of 1 to 256 characters, at most 100 commands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.constants import BotCommandLimit

from bot.channels.port import MenuCommand

log = logging.getLogger(__name__)

_NAME = re.compile(rf"^[a-z0-9_]{{{BotCommandLimit.MIN_COMMAND},{BotCommandLimit.MAX_COMMAND}}}$")


def fitted(commands: Sequence[MenuCommand]) -> list[BotCommand]:
    """``commands`` as Telegram accepts them (see the module's docstring), in their order."""
    fit: list[BotCommand] = []
    for command in commands:
        name = command.name.lower()
        if not _NAME.match(name):
            log.warning("telegram: command %r cannot be in the menu", command.name)
            continue
        description = " ".join(command.description.split()) or name
        if len(description) > BotCommandLimit.MAX_DESCRIPTION:
            description = description[: BotCommandLimit.MAX_DESCRIPTION - 1] + "…"
        fit.append(BotCommand(name, description))
    if len(fit) > BotCommandLimit.MAX_COMMAND_NUMBER:
        limit = int(BotCommandLimit.MAX_COMMAND_NUMBER)
        log.warning("telegram: %d commands, the menu shows the first %d", len(fit), limit)
    return fit[: BotCommandLimit.MAX_COMMAND_NUMBER]


async def set_commands(
    bot: Bot,
    commands: Sequence[MenuCommand],
    *,
    language: str | None = None,
    chat: str | None = None,
) -> None:
    """The menu of one chat, or of everyone (for one app language, or by default)."""
    scope = BotCommandScopeChat(int(chat)) if chat is not None else BotCommandScopeDefault()
    await bot.set_my_commands(fitted(commands), scope=scope, language_code=language)


async def delete_commands(bot: Bot, chat: str) -> None:
    """Drop one chat's menu: the chat shows the general one again."""
    await bot.delete_my_commands(scope=BotCommandScopeChat(int(chat)))
