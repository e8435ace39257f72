"""Inbound events: every platform payload is normalised into one of these frozen dataclasses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.channels.port import Elsewhere, MessageRef

#: Answers a submitted form on its platform (see :attr:`FormSubmitted.answer`).
AnswersForm = Callable[[Mapping[str, str]], Awaitable[bool]]


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
    #: Set when the command was typed outside the conversation with Fidelio (a Slack channel).
    elsewhere: Elsewhere | None = None


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
    #: Answers the form on the platform that shows it (Slack: the ``view_submission``'s
    #: acknowledgement), once, as soon as the outcome is known: given no errors it closes the
    #: form; given refused fields (field id -> message in Fidelio's markup) it shows each
    #: message under its field and keeps the form open. Returns False when it could not show
    #: the errors (too late, or a field the form does not have): they are then sent as
    #: messages.
    answer: AnswersForm | None = field(default=None, compare=False, repr=False)


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
