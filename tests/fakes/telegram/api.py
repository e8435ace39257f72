"""A fake Telegram Bot API server for tests.

:class:`FakeTelegramServer` speaks the real Bot API wire format on a loopback port, so the
unmodified ``python-telegram-bot`` client (or any other HTTP client) can talk to it::

    async with FakeTelegramServer(rate_scale=20) as tg:
        tg.add_user(1001, "Alice", username="alice")
        bot = telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
        ...
        await tg.send_text(1001, "/start abc")          # a person writes to the bot
        [reply] = await tg.wait_for_messages(1001)      # what the bot answered
        await tg.press(1001, "Yes")                      # a person presses an inline button

Besides the happy path it simulates what makes real bots fragile: flood limits (429 with
``retry_after``), transient server errors, blocked users (403), requests that time out although
they were carried out ("unknown outcome"), dropped connections, duplicate update delivery and
webhook delivery with retries.

Wire-format notes (mirroring Telegram):

* Requests go to ``/bot{token}/{method}`` via GET (query string) or POST (form-encoded,
  multipart or JSON).  Method names are matched case-insensitively, like Telegram does.
  Nested fields (``reply_markup``, ``allowed_updates``, ``commands``, ...) arrive as JSON strings
  in form bodies and are decoded.
* Success: ``{"ok": true, "result": ...}``; failure:
  ``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``.

Rate limits are token buckets per chat and across all chats; see :class:`FakeTelegramServer`.

Only loopback addresses are ever used: the server binds ``127.0.0.1`` and refuses webhook URLs
that do not point to a loopback host.  Nothing is ever fetched from the internet (``sendPhoto``
with an HTTP URL is accepted but the URL is not downloaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import re
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

__all__ = [
    "CONFIGURED_SECRET",
    "FAULTS",
    "FakeTelegramServer",
    "RecordedCall",
    "SentMessage",
]

_LOG = logging.getLogger(__name__)

#: Sentinel for :meth:`FakeTelegramServer.post_to_webhook`: use the secret given to setWebhook.
CONFIGURED_SECRET: Final = "__configured__"

#: Fault kinds accepted by :meth:`FakeTelegramServer.inject`.
FAULTS: Final = frozenset({"429", "500", "502", "timeout", "403", "reset"})

#: Methods that count against the per-chat and the global flood limits.
RATE_LIMITED_METHODS: Final = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
)

# Methods that fail with 403 once the target user has blocked the bot.
_BLOCKABLE_METHODS: Final = RATE_LIMITED_METHODS | {"sendChatAction"}

# Default sleep of the "timeout" fault: far longer than any sane client read timeout.
_DEFAULT_TIMEOUT_FAULT_DELAY: Final = 30.0

# Flood-control tolerance (fraction of one send); see _TokenBucket.
_SLACK_TOKENS: Final = 0.1

# Webhook redelivery policy: linear backoff, then give up (Telegram also drops eventually).
_WEBHOOK_BACKOFF_STEP: Final = 0.05
_WEBHOOK_MAX_ATTEMPTS: Final = 20

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

_COMMAND_RE: Final = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?(?!\S)")
_BOT_COMMAND_NAME_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def _clone(value: Any) -> Any:
    """A deep copy of JSON data (what the Bot API holds), through the C JSON codec: several
    times cheaper than ``copy.deepcopy``, which matters when a benchmark shares this process."""
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


class _ApiError(Exception):
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


class _Signal:
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
class _TokenBucket:
    """Flood control: ``rate`` sends per second with a burst of one second's worth.

    The bucket holds at most ``max(1, rate)`` tokens and refills continuously at ``rate`` per
    second; each send takes one token.  This is at least as lenient as a one-second sliding
    window with ``rate`` slots, so clients throttled by either a sliding window or a leaky
    bucket such as ``aiolimiter.AsyncLimiter(rate, 1)`` never hit it.  A send is admitted when
    ``_SLACK_TOKENS`` short of a full token, absorbing event-loop jitter between the client's
    throttle and the server's clock.
    """

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def for_rate(cls, per_second: float) -> _TokenBucket | None:
        """A full bucket for ``per_second``; ``None`` (unlimited) for an infinite rate."""
        if math.isinf(per_second):
            return None
        capacity = max(1.0, per_second)
        return cls(rate=per_second, capacity=capacity, tokens=capacity, updated=time.monotonic())

    def wait_time(self, now: float) -> float:
        """Seconds until one more send is admitted (0 if it is admitted now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        missing = 1.0 - _SLACK_TOKENS - self.tokens
        return missing / self.rate if missing > 0 else 0.0

    def take(self, now: float) -> None:
        self.wait_time(now)  # refill up to `now` first
        self.tokens -= 1.0


@dataclass
class _Fault:
    kind: str
    method: str | None  # lower-case method name or None for "any but getUpdates"
    chat_id: int | None
    remaining: int
    retry_after: int
    delay: float

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.method is None:
            if method == "getUpdates":
                return False
        elif self.method != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


@dataclass
class _Queued:
    """A pending update; ``forced`` marks a redelivery that ignores the confirmed offset."""

    update: dict[str, Any]
    forced: bool = False
    attempts: int = 0  # failed webhook deliveries so far


@dataclass
class _User:
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
class _StoredFile:
    data: bytes
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class _Upload:
    data: bytes
    filename: str | None
    content_type: str | None


_Handler = Callable[[dict[str, Any], dict[str, _Upload]], Awaitable[Any]]


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities for every ``/command`` token, as Telegram produces them."""
    return [
        {
            "type": "bot_command",
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
        }
        for match in _COMMAND_RE.finditer(text)
    ]


def _decode_param(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return None


def _image_size(data: bytes) -> tuple[int, int]:
    """Width/height of a PNG; a plausible default for anything else (we do not decode JPEG)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 100, 100


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _update_type(update: dict[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeTelegramServer:
    """In-process fake of the Telegram Bot API on ``127.0.0.1`` (OS-chosen port).

    Rate limits: sends (see :data:`RATE_LIMITED_METHODS`) are counted per target chat and
    globally.  The effective rates are ``per_chat_per_s * rate_scale`` and
    ``global_per_s * rate_scale`` sends per second (pass ``math.inf`` to disable one), enforced
    as token buckets allowing a burst of one second's worth (at least one send); see
    :class:`_TokenBucket`.  With the defaults and ``rate_scale=20`` a chat takes a burst of 20
    sends, then 20 more per second.  Only successful sends consume tokens.  Over the limit the
    answer is HTTP 429 with ``parameters.retry_after`` = ``ceil(seconds until a send is
    admitted)``, at least 1 — Telegram's integer format.  With ``fractional_retry_after=True``
    the exact wait is reported instead (rounded up to milliseconds, > 0); PTB accepts floats,
    and this keeps clients that sleep ``retry_after`` fast when ``rate_scale`` makes the real
    waits much shorter than a second.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "fidelio_test_bot",
        per_chat_per_s: float = 1.0,
        global_per_s: float = 30.0,
        rate_scale: float = 1.0,
        fractional_retry_after: bool = False,
    ) -> None:
        if per_chat_per_s <= 0 or global_per_s <= 0 or rate_scale <= 0:
            raise ValueError("rates and rate_scale must be positive")
        self.token = token
        self.bot_username = bot_username
        self.per_chat_per_s = per_chat_per_s
        self.global_per_s = global_per_s
        self.rate_scale = rate_scale
        self.fractional_retry_after = fractional_retry_after
        prefix, _, _ = token.partition(":")
        self.bot_id = int(prefix) if prefix.isdigit() else 1

        self.base_url = ""
        self.base_file_url = ""
        self.port = 0

        self.calls: list[RecordedCall] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status; 0 = error)
        self.rate_limited = 0

        self._users: dict[int, _User] = {}
        self._blocked: set[int] = set()
        self._sent: dict[int, list[SentMessage]] = {}
        self._sent_by_id: dict[int, SentMessage] = {}
        self._message_dates: dict[int, int] = {}
        self._edit_dates: dict[int, int] = {}
        self._media_json: dict[int, dict[str, Any]] = {}  # message_id -> {"photo": [...]} etc.
        self._incoming_ids: dict[int, set[int]] = {}  # chat -> message ids written by the user
        self._files: dict[str, _StoredFile] = {}
        self._callback_ids: set[str] = set()
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}

        self._next_message_id = 1
        # Distinct ranges make it obvious when a test confuses update ids and message ids.
        self._next_update_id = 100_000
        self._next_callback_id = 7_000_000
        self._next_file_id = 1

        self._pending: list[_Queued] = []
        self._history: dict[int, dict[str, Any]] = {}
        self._allowed_updates: set[str] | None = None

        self._faults: list[_Fault] = []
        self._chat_buckets: dict[int, _TokenBucket | None] = {}
        self._global_bucket = _TokenBucket.for_rate(global_per_s * rate_scale)

        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_allowed: list[str] | None = None
        self._webhook_last_error: tuple[int, str] | None = None

        self._updates_signal = _Signal()
        self._messages_signal = _Signal()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._m_get_me,
                "getUpdates": self._m_get_updates,
                "sendMessage": self._m_send_message,
                "editMessageText": self._m_edit_message_text,
                "editMessageReplyMarkup": self._m_edit_message_reply_markup,
                "answerCallbackQuery": self._m_answer_callback_query,
                "sendPhoto": self._m_send_photo,
                "sendDocument": self._m_send_document,
                "deleteMessage": self._m_delete_message,
                "setWebhook": self._m_set_webhook,
                "deleteWebhook": self._m_delete_webhook,
                "getWebhookInfo": self._m_get_webhook_info,
                "setMyCommands": self._m_set_my_commands,
                "getMyCommands": self._m_get_my_commands,
                "deleteMyCommands": self._m_delete_my_commands,
                "sendChatAction": self._m_send_chat_action,
                "close": self._m_true,
                "logOut": self._m_true,
            }.items()
        }

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind ``127.0.0.1`` on an OS-chosen port and start serving."""
        if self._runner is not None:
            return
        self._stopping.clear()  # allow start() again after stop()
        # Uploads may be large (Telegram allows 50 MB documents); aiohttp's default is 1 MiB.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # A short shutdown timeout: held requests (long polls, "timeout" faults) are woken by
        # _stopping anyway, and tests must never hang on teardown.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = int(port)
        self.base_url = f"http://{host}:{self.port}/bot"
        self.base_file_url = f"http://{host}:{self.port}/file/bot"
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_worker(), name="fake-tg-webhook")

    async def stop(self) -> None:
        """Stop serving; wakes held long polls and delayed answers first. Idempotent."""
        if self._runner is None:
            return
        self._stopping.set()
        self._updates_signal.notify()
        self._messages_signal.notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[RecordedCall]:
        """All recorded calls of ``method`` (case-insensitive, like Telegram's routing)."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id`` in order, including deleted ones."""
        return list(self._sent.get(chat_id, []))

    def last_message(self, chat_id: int) -> SentMessage:
        """The most recent message sent to ``chat_id``; ``LookupError`` if there is none."""
        messages = self._sent.get(chat_id)
        if not messages:
            raise LookupError(f"the bot has sent no message to chat {chat_id}")
        return messages[-1]

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent to ``chat_id``; return all of them.

        Raises ``TimeoutError`` describing what was sent and the latest calls otherwise.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages_to(chat_id)
            remaining = deadline - time.monotonic()
            if len(messages) >= count:
                return messages
            if remaining <= 0 or self._stopping.is_set():
                raise TimeoutError(self._wait_failure(chat_id, count, timeout, messages))
            await self._messages_signal.wait(remaining)

    def bot_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands stored by setMyCommands for a scope (default scope if ``None``)."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def pending_update_count(self) -> int:
        """Updates queued but not yet confirmed (polling) or delivered (webhook)."""
        return len(self._pending)

    @property
    def webhook_url(self) -> str:
        """The URL set by setWebhook ("" in polling mode)."""
        return self._webhook_url

    # ----------------------------------------------------------------------------- people

    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> None:
        """Register a person; their private chat with the bot has ``chat_id == user_id``."""
        self._users[user_id] = _User(user_id, first_name, username, language_code)
        self._sent.setdefault(user_id, [])

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every later send to their chat answers 403."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        """Undo :meth:`block`."""
        self._blocked.discard(user_id)

    async def send_text(self, user_id: int, text: str) -> int:
        """The user writes ``text`` to the bot; queues a ``message`` update, returns its id.

        ``/command`` tokens get ``bot_command`` entities like Telegram adds them.
        """
        user = self._user(user_id)
        message_id = self._new_message_id()
        self._incoming_ids.setdefault(user_id, set()).add(message_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user.user_json(),
            "chat": user.chat_json(),
            "date": int(time.time()),
            "text": text,
        }
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        update_id = self.enqueue_raw_update({"message": message})
        await asyncio.sleep(0)  # let a waiting long poll pick it up promptly
        return update_id

    async def press(self, user_id: int, label: str, *, message_id: int | None = None) -> int:
        """The user presses the inline button labelled ``label``; returns the update id.

        Uses message ``message_id`` or, by default, the latest non-deleted message in the chat
        that carries an inline keyboard.  ``LookupError`` if there is no such button.
        """
        self._user(user_id)
        if message_id is None:
            candidates = [
                msg for msg in self._sent.get(user_id, []) if msg.reply_markup and not msg.deleted
            ]
            if not candidates:
                raise LookupError(f"no message with an inline keyboard in chat {user_id}")
            message = candidates[-1]
        else:
            found = self._sent_by_id.get(message_id)
            if found is None or found.chat_id != user_id or found.deleted:
                raise LookupError(f"no bot message {message_id} in chat {user_id}")
            message = found
        for text, data in message.buttons():
            if text == label:
                return await self.press_data(user_id, message.message_id, data)
        raise LookupError(
            f"no callback button {label!r} on message {message.message_id} in chat {user_id}; "
            f"buttons: {message.buttons()!r}"
        )

    async def press_data(self, user_id: int, message_id: int, callback_data: str) -> int:
        """Queue a ``callback_query`` with arbitrary (possibly forged) ``callback_data``.

        If ``message_id`` is not a live bot message in that chat, the query carries an
        inaccessible message (``date`` 0), as Telegram does for old/unknown messages.
        """
        user = self._user(user_id)
        message = self._sent_by_id.get(message_id)
        if message is not None and message.chat_id == user_id and not message.deleted:
            message_json = self._message_json(message)
        else:
            message_json = {"chat": user.chat_json(), "message_id": message_id, "date": 0}
        query_id = str(self._next_callback_id)
        self._next_callback_id += 1
        self._callback_ids.add(query_id)
        update_id = self.enqueue_raw_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.user_json(),
                    "message": message_json,
                    "chat_instance": str(9_000_000_000 + user_id),
                    "data": callback_data,
                }
            }
        )
        await asyncio.sleep(0)
        return update_id

    def enqueue_raw_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update; assigns ``update_id`` if missing; returns the id."""
        update = _clone(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        update_id = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._history[update_id] = update
        self._pending.append(_Queued(update))
        self._updates_signal.notify()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Queue the very same update (same ``update_id``) again, i.e. a duplicate delivery.

        The duplicate is delivered even if the client already confirmed that id via ``offset``
        (that is the point: the bot must be idempotent).  In a getUpdates answer duplicates come
        first, so PTB's "last id + 1" offset logic is not thrown back.
        """
        try:
            update = self._history[update_id]
        except KeyError:
            raise LookupError(f"unknown update_id {update_id}") from None
        self._pending.append(_Queued(_clone(update), forced=True))
        self._updates_signal.notify()

    # ----------------------------------------------------------------------------- faults

    def inject(
        self,
        fault: str,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` matching calls fail with ``fault``.

        ``method=None`` matches every method except getUpdates; ``chat_id`` additionally
        restricts to calls targeting that chat.  Kinds:

        * ``"429"``: flood error with ``parameters.retry_after = retry_after`` (counted in
          :attr:`rate_limited`).
        * ``"500"``/``"502"``: server error answer.
        * ``"403"``: "Forbidden: bot was blocked by the user".
        * ``"timeout"``: the call IS carried out, then the answer (normally 200) is held for
          ``delay`` seconds (30 if ``delay`` is 0) — an "unknown outcome" for a client that
          gives up earlier.
        * ``"reset"``: the connection is closed without any response; the call is NOT carried
          out and is recorded with status 0.

        For the other kinds a non-zero ``delay`` postpones the failure answer.  Faults are
        checked before blocking and rate limits, in the order they were injected.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if fault == "timeout" and delay == 0.0:
            delay = _DEFAULT_TIMEOUT_FAULT_DELAY
        self._faults.append(
            _Fault(
                kind=fault,
                method=method.lower() if method else None,
                chat_id=chat_id,
                remaining=times,
                retry_after=retry_after,
                delay=delay,
            )
        )

    # ----------------------------------------------------------------------------- webhook

    async def post_to_webhook(
        self, update: dict[str, Any], *, secret: str | None = CONFIGURED_SECRET
    ) -> int:
        """POST ``update`` once to the configured webhook; return the receiver's HTTP status.

        ``secret``: header value to send; ``None`` sends no header; the default sends the
        secret configured with setWebhook (if any).  Not recorded in ``webhook_deliveries``
        and not queued.  An ``update_id`` is assigned if missing.  Connection errors propagate
        as ``aiohttp.ClientError``.
        """
        if not self._webhook_url:
            raise RuntimeError("no webhook is set")
        if self._session is None:
            raise RuntimeError("server is not running")
        update = _clone(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
        header = self._webhook_secret if secret == CONFIGURED_SECRET else secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header is not None else {}
        async with self._session.post(self._webhook_url, json=update, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def _webhook_worker(self) -> None:
        """Deliver pending updates one at a time, in order, while a webhook is set."""
        while not self._stopping.is_set():
            if not self._webhook_url or not self._pending:
                await self._updates_signal.wait(None)
                continue
            entry = self._pending[0]
            if self._webhook_allowed and _update_type(entry.update) not in self._webhook_allowed:
                self._remove_pending(entry)  # not subscribed to: never delivered, as on Telegram
                continue
            update_id = int(entry.update["update_id"])
            status = await self._deliver(entry.update)
            self.webhook_deliveries.append((update_id, status))
            if 200 <= status < 300:
                self._remove_pending(entry)
                continue
            entry.attempts += 1
            reason = f"Wrong response from the webhook: {status}" if status else "Connection error"
            self._webhook_last_error = (int(time.time()), reason)
            if entry.attempts >= _WEBHOOK_MAX_ATTEMPTS:
                _LOG.warning(
                    "fake telegram: dropping update %s after %s attempts", update_id, entry.attempts
                )
                self._remove_pending(entry)
                continue
            await self._sleep(_WEBHOOK_BACKOFF_STEP * entry.attempts)

    async def _deliver(self, update: dict[str, Any]) -> int:
        assert self._session is not None
        headers = {}
        if self._webhook_secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook_secret
        try:
            async with self._session.post(self._webhook_url, json=update, headers=headers) as r:
                await r.read()
                return r.status
        except (ClientError, TimeoutError, OSError) as exc:
            _LOG.debug("fake telegram: webhook delivery failed: %r", exc)
            return 0

    def _remove_pending(self, entry: _Queued) -> None:
        # Identity, not equality: a redelivered duplicate compares equal to its original.
        for index, queued in enumerate(self._pending):
            if queued is entry:
                del self._pending[index]
                return

    # ----------------------------------------------------------------------------- HTTP layer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        params, uploads = await self._read_params(request)
        raw_method = request.match_info["method"]
        known = self._methods.get(raw_method.lower())
        record = RecordedCall(
            method=known[0] if known else raw_method,
            params=params,
            status=0,
            at=at,
            files={name: upload.data for name, upload in uploads.items()},
        )
        self.calls.append(record)

        if request.match_info["token"] != self.token:
            return self._respond(record, _ApiError(401, "Unauthorized"))
        if known is None:
            return self._respond(record, _ApiError(404, "Not Found: method not found"))
        method, handler = known
        chat_id = _as_int(params.get("chat_id"))

        fault = self._take_fault(method, chat_id)
        if fault is None:
            return self._respond(record, await self._dispatch(method, handler, params, uploads))
        if fault.kind == "timeout":
            # Carry the call out first so the outcome exists although the client gives up.
            outcome = await self._dispatch(method, handler, params, uploads)
            response = self._respond(record, outcome)
            await self._sleep(fault.delay)
            return response
        if fault.delay > 0:
            await self._sleep(fault.delay)
        if fault.kind == "reset":
            record.status = 0
            return self._reset(request)
        return self._respond(record, self._fault_error(fault))

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, _Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, _Upload] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[name] = _Upload(
                            value.file.read(), value.filename, value.content_type
                        )
                    else:
                        raw[name] = value
        params = {name: _decode_param(name, value) for name, value in raw.items()}
        return params, uploads

    def _respond(self, record: RecordedCall, outcome: Any) -> web.Response:
        if isinstance(outcome, _ApiError):
            record.status = outcome.status
            return web.json_response(outcome.body(), status=outcome.status)
        record.status = 200
        return web.json_response({"ok": True, "result": outcome})

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        # Abort the socket so the client sees the connection drop with no response at all;
        # aiohttp then silently discards the response we must still return.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _take_fault(self, method: str, chat_id: int | None) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_error(self, fault: _Fault) -> _ApiError:
        if fault.kind == "429":
            self.rate_limited += 1
            return _ApiError(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                {"retry_after": fault.retry_after},
            )
        if fault.kind == "403":
            return _ApiError(403, "Forbidden: bot was blocked by the user")
        if fault.kind == "502":
            return _ApiError(502, "Bad Gateway")
        return _ApiError(500, "Internal Server Error")

    async def _dispatch(
        self,
        method: str,
        handler: _Handler,
        params: dict[str, Any],
        uploads: dict[str, _Upload],
    ) -> Any:
        """Run a method with blocking and flood control; returns a result or an ``_ApiError``."""
        chat_id = _as_int(params.get("chat_id"))
        if method in _BLOCKABLE_METHODS and chat_id in self._blocked:
            return _ApiError(403, "Forbidden: bot was blocked by the user")
        limited = method in RATE_LIMITED_METHODS and chat_id is not None
        now = time.monotonic()
        if limited:
            assert chat_id is not None
            flood = self._flood_error(chat_id, now)
            if flood is not None:
                return flood
        try:
            result = await handler(params, uploads)
        except _ApiError as error:
            return error
        if limited:
            assert chat_id is not None
            for bucket in (self._global_bucket, self._chat_bucket(chat_id)):
                if bucket is not None:
                    bucket.take(now)
        return result

    def _chat_bucket(self, chat_id: int) -> _TokenBucket | None:
        if chat_id not in self._chat_buckets:
            rate = self.per_chat_per_s * self.rate_scale
            self._chat_buckets[chat_id] = _TokenBucket.for_rate(rate)
        return self._chat_buckets[chat_id]

    def _flood_error(self, chat_id: int, now: float) -> _ApiError | None:
        buckets = [self._chat_bucket(chat_id), self._global_bucket]
        wait = max((b.wait_time(now) for b in buckets if b is not None), default=0.0)
        if wait <= 0:
            return None
        self.rate_limited += 1
        retry_after: float | int
        if self.fractional_retry_after:
            retry_after = max(0.001, math.ceil(wait * 1000) / 1000)
        else:
            retry_after = max(1, math.ceil(wait))
        return _ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but return early when the server stops (so teardown never hangs)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # ----------------------------------------------------------------------------- helpers

    def _user(self, user_id: int) -> _User:
        try:
            return self._users[user_id]
        except KeyError:
            raise LookupError(f"unknown user {user_id}; call add_user() first") from None

    def _new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Fidelio",
            "username": self.bot_username,
        }

    def _target_chat(self, params: dict[str, Any]) -> _User:
        chat_id = _as_int(params.get("chat_id"))
        if chat_id is None:
            if "chat_id" not in params:
                raise _ApiError(400, "Bad Request: chat_id is empty")
            raise _ApiError(400, "Bad Request: chat not found")
        user = self._users.get(chat_id)
        if user is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return user

    @staticmethod
    def _parse_markup(value: Any) -> dict[str, Any] | None:
        """Validate ``reply_markup``; return it if it is an inline keyboard, else ``None``."""
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        keyboard = value.get("inline_keyboard")
        if keyboard is None:
            return None  # reply keyboards etc. are not part of the returned Message
        if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
            raise _ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array')
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                # Telegram rejects callback_data outside 1..64 bytes.
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return _clone(value)

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        user = self._users[message.chat_id]
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_json(),
            "chat": user.chat_json(),
            "date": self._message_dates[message.message_id],
        }
        if message.message_id in self._edit_dates:
            data["edit_date"] = self._edit_dates[message.message_id]
        if message.text is not None:
            data["text"] = message.text
        data.update(_clone(self._media_json.get(message.message_id, {})))
        if message.caption is not None:
            data["caption"] = message.caption
        if message.reply_markup:
            data["reply_markup"] = _clone(message.reply_markup)
        return data

    def _store_message(self, message: SentMessage) -> dict[str, Any]:
        self._message_dates[message.message_id] = int(time.time())
        self._sent.setdefault(message.chat_id, []).append(message)
        self._sent_by_id[message.message_id] = message
        self._messages_signal.notify()
        return self._message_json(message)

    def _message_to_edit(self, params: dict[str, Any]) -> SentMessage:
        if "inline_message_id" in params:
            raise _ApiError(400, "Bad Request: inline messages are not supported by the fake")
        user = self._target_chat(params)
        message_id = _as_int(params.get("message_id"))
        message = self._sent_by_id.get(message_id) if message_id is not None else None
        if message is None or message.chat_id != user.user_id or message.deleted:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return message

    def _new_file_ids(self) -> tuple[str, str]:
        number = self._next_file_id
        self._next_file_id += 1
        return f"FAKEFILE{number:06d}-{self.bot_id}", f"FAKEUNIQ{number:06d}"

    def _resolve_file(
        self, field_name: str, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> _StoredFile | None:
        """Stored file for an upload or a known file_id; ``None`` for an (unfetched) URL."""
        upload = uploads.get(field_name)
        if upload is None:
            reference = params.get(field_name)
            # attach://name references an upload under another field name.
            if isinstance(reference, str) and reference.startswith("attach://"):
                upload = uploads.get(reference.removeprefix("attach://"))
        if upload is not None:
            file_id, unique_id = self._new_file_ids()
            stored = _StoredFile(
                upload.data, file_id, unique_id, upload.filename, upload.content_type
            )
            self._files[file_id] = stored
            return stored
        reference = params.get(field_name)
        if not isinstance(reference, str) or not reference:
            raise _ApiError(400, f"Bad Request: there is no {field_name} in the request")
        if reference in self._files:
            return self._files[reference]
        if reference.startswith(("http://", "https://")):
            return None  # never fetched: this fake does not touch the network
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    @staticmethod
    def _caption(params: dict[str, Any]) -> str | None:
        caption = params.get("caption")
        if caption is None:
            return None
        caption = str(caption)
        if len(caption) > 1024:
            raise _ApiError(400, "Bad Request: message caption is too long")
        return caption

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _wait_failure(
        self, chat_id: int, count: int, timeout: float, messages: list[SentMessage]
    ) -> str:
        sent = [
            m.text if m.text is not None else f"<media caption={m.caption!r}>" for m in messages
        ]
        recent = [
            f"{c.method}(chat_id={c.params.get('chat_id')!r}) -> {c.status}"
            for c in self.calls[-10:]
            if c.method != "getUpdates"
        ]
        return (
            f"expected at least {count} message(s) to chat {chat_id} within {timeout}s, "
            f"got {len(messages)}: {sent!r}; pending updates: {len(self._pending)}; "
            f"recent non-polling calls: {recent!r}"
        )

    # ----------------------------------------------------------------------------- methods

    async def _m_true(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> bool:
        return True

    async def _m_get_me(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        if self._webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset"))
        limit = _as_int(params.get("limit"))
        limit = 100 if limit is None else min(max(limit, 1), 100)
        timeout_value = params.get("timeout", 0)
        timeout = float(timeout_value) if isinstance(timeout_value, int | float) else 0.0
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            # Like Telegram, the setting persists; an empty list means "all (default) types".
            self._allowed_updates = set(allowed) or None
        if offset is not None:
            self._confirm(offset)
        deadline = time.monotonic() + timeout
        while True:
            batch = self._take_batch(limit)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopping.is_set() or self._webhook_url:
                return batch
            await self._updates_signal.wait(remaining)

    def _confirm(self, offset: int) -> None:
        """Forget regular updates confirmed by ``offset`` (negative: keep only the last -N)."""
        regular = sorted(
            (q for q in self._pending if not q.forced), key=lambda q: q.update["update_id"]
        )
        if offset < 0:
            dropped = regular[: max(len(regular) + offset, 0)]
        else:
            dropped = [q for q in regular if q.update["update_id"] < offset]
        for entry in dropped:
            self._remove_pending(entry)

    def _take_batch(self, limit: int) -> list[dict[str, Any]]:
        if self._allowed_updates is not None:
            # Telegram never delivers updates of types the bot did not ask for.
            for entry in list(self._pending):
                if _update_type(entry.update) not in self._allowed_updates:
                    self._remove_pending(entry)
        forced = [q for q in self._pending if q.forced][:limit]
        regular = sorted(
            (q for q in self._pending if not q.forced), key=lambda q: q.update["update_id"]
        )
        batch = forced + regular[: limit - len(forced)]
        for entry in forced:
            # Duplicates are fire-and-forget: they cannot be confirmed by offset.
            self._remove_pending(entry)
        return [_clone(entry.update) for entry in batch]

    async def _m_send_message(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        user = self._target_chat(params)
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=user.user_id,
            text=text,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._parse_markup(params.get("reply_markup")),
        )
        return self._store_message(message)

    async def _m_edit_message_text(
        self, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> Any:
        message = self._message_to_edit(params)
        if message.text is None:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        # As on Telegram, omitting reply_markup in an edit removes the inline keyboard.
        markup = self._parse_markup(params.get("reply_markup"))
        parse_mode = params.get("parse_mode")
        if (text, parse_mode, markup) == (message.text, message.parse_mode, message.reply_markup):
            raise _ApiError(400, _NOT_MODIFIED)
        message.text, message.parse_mode, message.reply_markup = text, parse_mode, markup
        message.edits.append(dict(params))
        self._edit_dates[message.message_id] = int(time.time())
        self._messages_signal.notify()
        return self._message_json(message)

    async def _m_edit_message_reply_markup(
        self, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> Any:
        message = self._message_to_edit(params)
        markup = self._parse_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise _ApiError(400, _NOT_MODIFIED)
        message.reply_markup = markup
        message.edits.append(dict(params))
        self._edit_dates[message.message_id] = int(time.time())
        self._messages_signal.notify()
        return self._message_json(message)

    async def _m_answer_callback_query(
        self, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> Any:
        # Answering the same query twice is tolerated (and recorded twice) to keep retry tests
        # simple; unknown ids fail like expired queries do on Telegram.
        if str(params.get("callback_query_id")) not in self._callback_ids:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.answered_callbacks.append(dict(params))
        return True

    async def _m_send_photo(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        user = self._target_chat(params)
        caption = self._caption(params)
        stored = self._resolve_file("photo", params, uploads)
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=user.user_id,
            text=None,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._parse_markup(params.get("reply_markup")),
            photo=stored.data if stored else None,
            caption=caption,
        )
        if stored is not None:
            width, height = _image_size(stored.data)
            file_id, unique_id, size = stored.file_id, stored.file_unique_id, len(stored.data)
        else:
            width, height = 100, 100
            file_id, unique_id = self._new_file_ids()
            size = 0
        self._media_json[message.message_id] = {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": unique_id,
                    "width": width,
                    "height": height,
                    "file_size": size,
                }
            ]
        }
        return self._store_message(message)

    async def _m_send_document(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        user = self._target_chat(params)
        caption = self._caption(params)
        stored = self._resolve_file("document", params, uploads)
        message = SentMessage(
            message_id=self._new_message_id(),
            chat_id=user.user_id,
            text=None,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._parse_markup(params.get("reply_markup")),
            caption=caption,
            document=stored.data if stored else None,
            document_name=stored.file_name if stored else None,
        )
        document: dict[str, Any]
        if stored is not None:
            document = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data),
            }
            if stored.file_name:
                document["file_name"] = stored.file_name
            if stored.mime_type:
                document["mime_type"] = stored.mime_type
        else:
            file_id, unique_id = self._new_file_ids()
            document = {"file_id": file_id, "file_unique_id": unique_id}
        self._media_json[message.message_id] = {"document": document}
        return self._store_message(message)

    async def _m_delete_message(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        user = self._target_chat(params)
        message_id = _as_int(params.get("message_id"))
        message = self._sent_by_id.get(message_id) if message_id is not None else None
        if message is not None and message.chat_id == user.user_id and not message.deleted:
            message.deleted = True
            self._messages_signal.notify()
            return True
        incoming = self._incoming_ids.get(user.user_id, set())
        if message_id in incoming:
            incoming.discard(message_id)
            return True
        raise _ApiError(400, "Bad Request: message to delete not found")

    async def _m_set_webhook(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        url = str(params.get("url") or "")
        if url and not _is_loopback_url(url):
            # Safety net: the fake must never send anything off this machine.
            raise _ApiError(
                400, "Bad Request: bad webhook: the fake only delivers to loopback addresses"
            )
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        secret = params.get("secret_token")
        self._webhook_url = url
        self._webhook_secret = str(secret) if secret else None
        allowed = params.get("allowed_updates")
        self._webhook_allowed = allowed if isinstance(allowed, list) else None
        self._webhook_last_error = None
        self._updates_signal.notify()  # wakes the delivery worker and any held long poll
        return True

    async def _m_delete_webhook(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_allowed = None
        self._updates_signal.notify()
        return True

    async def _m_get_webhook_info(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if self._webhook_allowed is not None:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_last_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        return info

    async def _m_set_my_commands(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if (
                not isinstance(command, dict)
                or not _BOT_COMMAND_NAME_RE.match(str(command.get("command", "")))
                or not 1 <= len(str(command.get("description", ""))) <= 256
            ):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = _clone(commands)
        return True

    async def _m_get_my_commands(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        return self.bot_commands(params.get("scope"), str(params.get("language_code") or ""))

    async def _m_delete_my_commands(
        self, params: dict[str, Any], uploads: dict[str, _Upload]
    ) -> Any:
        self._commands.pop(
            self._commands_key(params.get("scope"), params.get("language_code")), None
        )
        return True

    async def _m_send_chat_action(self, params: dict[str, Any], uploads: dict[str, _Upload]) -> Any:
        self._target_chat(params)
        if not params.get("action"):
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        return True
