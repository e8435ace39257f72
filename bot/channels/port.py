"""The ChatPort: the only thing the core knows about a chat platform.

Messages are neutral: text in Fidelio's Markdown subset (see bot/markup.py) and buttons.
Each adapter turns them into Telegram HTML + inline keyboards, Slack Block Kit, or numbered
console choices. Failures are raised as the SendError family so the outbox can decide
what to do without knowing the platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Button:
    """A choice under a message; pressing it produces ``ButtonPressed(action, value)``."""

    label: str
    action: str
    value: str = ""


@dataclass(frozen=True)
class Message:
    text: str
    buttons: tuple[Button, ...] = ()
    image: bytes | None = None
    image_name: str = "chart.png"
    #: A form to open instead, where the channel can (bot.replies.FormSpec).
    form: Any = None
    #: What to say when a typed answer is none of the buttons (the console asks again).
    retry: str = ""
    #: The outbox delivery this message carries, if any. A platform that can attach it to
    #: the message (Slack message metadata) does, so that a send whose outcome is unknown can
    #: be found again; the others ignore it.
    delivery_key: str | None = None


@dataclass(frozen=True)
class Address:
    """Where to send on one channel: Telegram chat id, Slack DM channel id, console email."""

    channel: str
    chat_id: str


@dataclass(frozen=True)
class MessageRef:
    channel: str
    chat_id: str
    message_id: str


class SendError(Exception):
    """A send did not succeed; subclasses say whether and when to try again."""


@dataclass
class RateLimited(SendError):
    retry_after: float
    detail: str = ""

    def __str__(self) -> str:
        return f"rate limited, retry after {self.retry_after:g}s {self.detail}".strip()


class TransientFailure(SendError):
    """Server error or connection failure before the request was accepted: safe to retry."""


class PermanentFailure(SendError):
    """Blocked by the person, account gone, bad request: retrying will not help."""


class UnknownOutcome(SendError):
    """Timed out after sending: the platform may have delivered the message."""


@runtime_checkable
class ChatPort(Protocol):
    """What the core needs from a platform."""

    name: str

    async def send(self, to: Address, message: Message) -> MessageRef:
        """Send a message (with its buttons, and image if any)."""
        ...

    async def edit(self, ref: MessageRef, message: Message) -> None:
        """Replace a sent message's text and buttons (e.g. remove buttons once pressed)."""
        ...

    async def send_image(self, to: Address, png: bytes, caption: str) -> MessageRef:
        """Send a PNG (photo on Telegram, file on Slack, saved file on the console)."""
        ...

    async def open(self, external_id: str) -> Address:
        """The address to message a platform user directly (Slack: conversations.open)."""
        ...


@runtime_checkable
class FindsDeliveries(Protocol):
    """A platform where the bot can read back what it posted (Slack; a Telegram bot cannot)."""

    async def find_delivery(self, to: Address, key: str, since: datetime) -> MessageRef | None:
        """The message posted to ``to`` since ``since`` that carries delivery ``key``, if any.

        Raises the SendError family when the platform cannot be asked (rate limited, down).
        """
        ...


@dataclass(frozen=True)
class MenuCommand:
    """One entry of a platform's command menu: a command and its one-line description (plain
    text, in the reader's language)."""

    name: str
    description: str


@runtime_checkable
class HasCommandMenu(Protocol):
    """A platform that lists the bot's commands in a menu of its own (Telegram's "/" menu).

    Menus are kept in step with roles by :mod:`bot.command_menus`.
    """

    name: str

    async def set_menu(
        self,
        commands: Sequence[MenuCommand],
        *,
        language: str | None = None,
        chat: str | None = None,
    ) -> None:
        """Show ``commands``: in one chat (``chat``: an address's ``chat_id``), or to everyone
        whose app is set to ``language``, or, with neither, to everyone else.

        Raises the SendError family when the platform refuses or cannot be reached.
        """
        ...

    async def reset_menu(self, chat: str) -> None:
        """Drop the menu set for ``chat``: it shows the general menu again."""
        ...


@dataclass(frozen=True)
class Elsewhere:
    """Where a command was typed when that is not the conversation with Fidelio (a Slack
    channel): the answers go to the conversation, and a short note, seen only by the person
    who typed it, says so there."""

    #: The platform's handle for that note (Slack: the slash command's ``response_url``).
    reply_to: str
    #: A link that opens the conversation with Fidelio (https).
    link: str


@runtime_checkable
class NotesElsewhere(Protocol):
    """A platform where a command can be typed outside the conversation with Fidelio."""

    async def note_elsewhere(self, where: Elsewhere, message: Message) -> None:
        """Show ``message`` where the command was typed, to its sender only."""
        ...


@dataclass(frozen=True)
class HomeItem:
    """One entry of a home view: text in Fidelio's Markdown subset and its buttons."""

    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class HomeSection:
    """A titled part of a home view; ``note`` (Markdown subset) follows its items, e.g. how
    many more there are and the command that lists them."""

    title: str
    items: tuple[HomeItem, ...] = ()
    note: str = ""
    #: Buttons for the whole section (a new suggestion), after its items.
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class HomeView:
    """A person's home: what is waiting for them, by section, already in their language.
    Each platform that has a place for it lays it out itself (Slack: the Home tab)."""

    title: str
    intro: str
    sections: tuple[HomeSection, ...] = ()
    #: Said last when a platform cannot show everything (where the rest can be found).
    cut: str = ""


@runtime_checkable
class PublishesHome(Protocol):
    """A platform with a home of the bot's own for each person (Slack's App Home tab).
    Telegram and the console have none: they do not implement it."""

    async def publish_home(self, external_id: str, view: HomeView) -> None:
        """Replace the home the platform user ``external_id`` sees with ``view``.

        Its buttons are pressed like a message's, as ``ButtonPressed`` answered in the
        person's direct chat. Raises the SendError family.
        """
        ...


@dataclass
class Outgoing:
    """A rendered message for one address, produced by the dispatcher or the outbox."""

    to: Address
    message: Message
    edit: MessageRef | None = field(default=None)
