"""The fake Telegram server itself: its state, its method table and its lifecycle; the
behaviour comes from the mixins in the sibling modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from .api import ApiMixin
from .driver import DriverMixin
from .faults import FaultRule, FaultsMixin
from .limits import LimitsMixin, TokenBucket
from .records import Handler, Queued, RecordedCall, SentMessage, Signal, StoredFile, User
from .webhook import WebhookMixin


class FakeTelegramServer(ApiMixin, DriverMixin, FaultsMixin, LimitsMixin, WebhookMixin):
    """In-process fake of the Telegram Bot API on ``127.0.0.1`` (OS-chosen port).

    Rate limits: sends (see :data:`RATE_LIMITED_METHODS`) are counted per target chat and
    globally.  The effective rates are ``per_chat_per_s * rate_scale`` and
    ``global_per_s * rate_scale`` sends per second (pass ``math.inf`` to disable one), enforced
    as token buckets allowing a burst of one second's worth (at least one send); see
    :class:`TokenBucket`.  With the defaults and ``rate_scale=20`` a chat takes a burst of 20
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
        #: Called with each message the bot sends or edits, as soon as the fake has stored it
        #: (before the bot gets its answer): a benchmark's people react to what they receive.
        self.message_observers: list[Callable[[SentMessage], None]] = []

        self._users: dict[int, User] = {}
        self._blocked: set[int] = set()
        self._sent: dict[int, list[SentMessage]] = {}
        self._sent_by_id: dict[int, SentMessage] = {}
        self._message_dates: dict[int, int] = {}
        self._edit_dates: dict[int, int] = {}
        self._media_json: dict[int, dict[str, Any]] = {}  # message_id -> {"photo": [...]} etc.
        self._incoming_ids: dict[int, set[int]] = {}  # chat -> message ids written by the user
        self._files: dict[str, StoredFile] = {}
        self._callback_ids: set[str] = set()
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}

        self._next_message_id = 1
        # Distinct ranges make it obvious when a test confuses update ids and message ids.
        self._next_update_id = 100_000
        self._next_callback_id = 7_000_000
        self._next_file_id = 1

        self._pending: list[Queued] = []
        self._history: dict[int, dict[str, Any]] = {}
        self._allowed_updates: set[str] | None = None

        self._faults: list[FaultRule] = []
        self._chat_buckets: dict[int, TokenBucket | None] = {}
        self._global_bucket = TokenBucket.for_rate(global_per_s * rate_scale)

        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_allowed: list[str] | None = None
        self._webhook_last_error: tuple[int, str] | None = None

        self._updates_signal = Signal()
        self._messages_signal = Signal()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        self._methods: dict[str, tuple[str, Handler]] = {
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

    # Lifecycle

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
