"""Inbound events: every platform payload is normalised into one of these frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.channels.port import MessageRef


@dataclass(frozen=True)
class ChannelUser:
    """Who wrote, as the platform knows them, and where to answer."""

    channel: str
    external_id: str
    address: str
    display_name: str | None = None
    language_code: str | None = None


@dataclass(frozen=True)
class ChannelEvent:
    """What every inbound event carries: who acted, and the platform's id of the event (a
    redelivered event has the same id, so it is handled once)."""

    user: ChannelUser
    event_id: str


@dataclass(frozen=True)
class CommandInvoked(ChannelEvent):
    command: str
    args: str = ""
    #: Slack's trigger id (slash commands): lets a reply open a modal form.
    trigger: str | None = None


@dataclass(frozen=True)
class TextReceived(ChannelEvent):
    text: str


@dataclass(frozen=True)
class ButtonPressed(ChannelEvent):
    action: str
    value: str
    message: MessageRef | None = None
    #: Slack's trigger id: lets a reply open a modal form.
    trigger: str | None = None


@dataclass(frozen=True)
class FormSubmitted(ChannelEvent):
    form: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewOpened(ChannelEvent):
    """The person opened a view the platform shows of its own, outside the chat (``home``:
    Slack's App Home tab). It is answered by publishing that view, never in the chat."""

    view: str = "home"


InboundEvent = CommandInvoked | TextReceived | ButtonPressed | FormSubmitted | ViewOpened


def parse_command_text(text: str) -> tuple[str, str] | None:
    """Split ``/cmd args`` or ``cmd args`` into (command, args) when the first word is a command.

    Used for plain-text channels (console, Slack DMs) where people type ``help`` as often as
    ``/help``. Returns None for empty text.
    """
    stripped = text.strip()
    if not stripped:
        return None
    head, _, rest = stripped.partition(" ")
    head = head.lstrip("/").split("@", 1)[0].lower()
    return head, rest.strip()
