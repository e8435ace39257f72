"""Records of what the fake Telegram server saw and sent, and the wire-format helpers its
modules share: request parameter decoding, ``bot_command`` entities, private-chat JSON,
the error answer (:class:`ApiError`) and the wake-up signal behind every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

# Parameters whose wire value is a plain string even if it happens to look like JSON
# (e.g. the text "42" must stay "42").  Every other form value is JSON-decoded when possible,
# which turns "123" into 123, "true" into True and '{"inline_keyboard": ...}' into a dict.
_TEXT_PARAMS: Final = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "url",
        "secret_token",
        "action",
        "language_code",
        "inline_message_id",
        "ip_address",
        "photo",
        "document",
        "certificate",
        "business_connection_id",
        "message_effect_id",
        "emoji",
        "title",
        "description",
        "short_description",
        "name",
        "query",
    }
)

#: The ``BotCommandScope`` types, by their ``type`` field.
COMMAND_SCOPES: Final = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)

_COMMAND_RE: Final = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?(?!\S)")


def clone(value: Any) -> Any:
    """A deep copy of JSON data (what the Bot API holds), through the C JSON codec: several
    times cheaper than ``copy.deepcopy``, which matters when a benchmark shares this process."""
    return json.loads(json.dumps(value))


# Public records


@dataclass
class RecordedCall:
    """One HTTP request the fake received, in arrival order.

    ``params`` holds the request parameters (query string and body merged); JSON-encoded nested
    fields are decoded and numeric/boolean values converted, except for free-text fields such as
    ``text`` and ``caption`` which are kept verbatim.  ``status`` is the HTTP status that was (or
    is being) answered; ``0`` means the connection was reset without a response.
    """

    method: str
    params: dict[str, Any]
    status: int
    at: float  # time.monotonic() when the request arrived
    files: dict[str, bytes] = field(default_factory=dict)  # multipart uploads by field name


@dataclass
class SentMessage:
    """A message the bot sent into a chat, with its current state (edits applied)."""

    message_id: int
    chat_id: int
    text: str | None
    parse_mode: str | None
    reply_markup: dict[str, Any] | None  # parsed inline keyboard JSON or None
    photo: bytes | None = None
    caption: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)  # params of each edit call
    # Additions beyond the agreed interface (all defaulted, so positional use is unaffected):
    document: bytes | None = None
    document_name: str | None = None
    deleted: bool = False  # set by deleteMessage; deleted messages stay in the history

    def buttons(self) -> list[tuple[str, str]]:
        """Return the inline keyboard flattened row by row as ``(text, callback_data)``.

        Only callback buttons are listed; URL/other buttons are visible in ``reply_markup``.
        """
        if not self.reply_markup:
            return []
        return [
            (button["text"], button["callback_data"])
            for row in self.reply_markup.get("inline_keyboard", [])
            for button in row
            if "callback_data" in button
        ]


# Internals


class ApiError(Exception):
    """An error answer of the Bot API, raised by method handlers."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            payload["parameters"] = self.parameters
        return payload


class Signal:
    """Broadcast wake-up for waiters that re-check a condition (long polls, wait_for_*).

    Unlike ``asyncio.Condition`` it can be notified from synchronous code.  Waiters must call
    :meth:`wait` right after checking their condition, without awaiting in between, so that a
    notification can never slip through unnoticed.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None) -> None:
        event = self._event  # captured synchronously, before any other task can run
        if timeout is not None and timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass
class Queued:
    """A pending update; ``forced`` marks a redelivery that ignores the confirmed offset."""

    update: dict[str, Any]
    forced: bool = False
    attempts: int = 0  # failed webhook deliveries so far


@dataclass
class User:
    user_id: int
    first_name: str
    username: str | None
    language_code: str | None

    def user_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.username is not None:
            data["username"] = self.username
        if self.language_code is not None:
            data["language_code"] = self.language_code
        return data

    def chat_json(self) -> dict[str, Any]:
        # Private chat: the chat id equals the user id.
        data: dict[str, Any] = {
            "id": self.user_id,
            "type": "private",
            "first_name": self.first_name,
        }
        if self.username is not None:
            data["username"] = self.username
        return data


@dataclass
class StoredFile:
    data: bytes
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class Upload:
    data: bytes
    filename: str | None
    content_type: str | None


Handler = Callable[[dict[str, Any], dict[str, Upload]], Awaitable[Any]]


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities for every ``/command`` token, as Telegram produces them."""
    return [
        {
            "type": "bot_command",
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
        }
        for match in _COMMAND_RE.finditer(text)
    ]


def decode_param(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return None


def image_size(data: bytes) -> tuple[int, int]:
    """Width/height of a PNG; a plausible default for anything else (we do not decode JPEG)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 100, 100


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def update_type(update: dict[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)
