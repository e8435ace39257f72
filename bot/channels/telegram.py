"""Telegram adapter (python-telegram-bot 22).

Started by hand inside Fidelio's event loop (never ``run_polling``, which owns the loop):
long polling by :mod:`bot.channels.telegram_polling` (which confirms an update only once it is
handled), or a webhook served by our own aiohttp endpoint that checks
``X-Telegram-Bot-Api-Secret-Token`` before anything else. Updates are processed concurrently,
but one chat at a time, so a person's messages are handled in the order they were sent.

Bot API calls go through :class:`AiohttpRequest` (PTB's ``BaseRequest`` on an aiohttp client
session) rather than PTB's default httpx backend: under a burst of replies httpcore's pool
re-checks every pooled connection for every queued request (a socket poll each), which made
the HTTP client the largest CPU cost of answering a button press.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from telegram import Bot, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest, RequestData

from bot.aiohttp_sites import bound_port
from bot.channels.callbacks import INVALID_ACTION, CallbackCodec
from bot.channels.port import (
    Address,
    Button,
    MenuCommand,
    Message,
    MessageRef,
    PermanentFailure,
    RateLimited,
    SendError,
    TransientFailure,
    UnknownOutcome,
)
from bot.channels.telegram_commands import delete_commands, set_commands
from bot.channels.telegram_internals import post_json
from bot.channels.telegram_polling import UpdatePoller
from bot.config import TelegramSettings
from bot.events import ButtonPressed, ChannelUser, CommandInvoked, InboundEvent, TextReceived
from bot.markup import to_telegram_html

log = logging.getLogger(__name__)

# Opt in to python-telegram-bot's timedelta durations (its next major version's default):
# without it PTB 22 emits a deprecation warning on every 429. The code below handles both.
os.environ.setdefault("PTB_TIMEDELTA", "1")

MAX_TEXT = 4096
MAX_CAPTION = 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: TelegramSettings, codec: CallbackCodec):
        assert settings.token is not None
        self.settings = settings
        self.codec = codec
        self.on_event: Callable[[InboundEvent], Awaitable[object]] | None = None
        timeout = settings.request_timeout_s
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .base_file_url(settings.base_file_url)
            .request(
                AiohttpRequest(
                    connection_pool_size=128,
                    connect_timeout=5.0,
                    read_timeout=timeout,
                    pool_timeout=timeout,
                )
            )
            .get_updates_request(
                AiohttpRequest(
                    connection_pool_size=1,
                    connect_timeout=5.0,
                    read_timeout=settings.poll_timeout_s + 10.0,
                )
            )
            .concurrent_updates(True)
            .build()
        )
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self._chat_locks = ChatLocks()
        self._webhook_runner: web.AppRunner | None = None
        self._polling: asyncio.Task[None] | None = None
        self._poller: UpdatePoller | None = None
        self.webhook_port: int | None = None
        self.username: str | None = settings.bot_username

    # Lifecycle

    async def start(self) -> None:
        await self.app.initialize()  # getMe: fails early on a bad token
        self.username = self.settings.bot_username or self.app.bot.username
        await self.app.start()
        allowed = [Update.MESSAGE, Update.CALLBACK_QUERY]
        if self.settings.mode == "polling":
            await self.app.bot.delete_webhook(drop_pending_updates=False)
            self._poller = UpdatePoller(
                self.app.bot,
                self.app.process_update,
                poll_timeout_s=self.settings.poll_timeout_s,
                allowed_updates=allowed,
            )
            self._polling = asyncio.create_task(self._poller.run(), name="telegram-polling")
            log.info("telegram: long polling as @%s", self.username)
        else:
            await self._start_webhook_server()
            assert self.settings.webhook_url and self.settings.webhook_secret
            await self.app.bot.set_webhook(
                url=self.settings.webhook_url,
                secret_token=self.settings.webhook_secret.get_secret_value(),
                allowed_updates=allowed,
            )
            log.info(
                "telegram: webhook %s (listening on %s:%s) as @%s",
                self.settings.webhook_url,
                self.settings.webhook_listen,
                self.webhook_port,
                self.username,
            )

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        if self._poller is not None:
            await self._poller.drain()
            await self._confirm_handled(self._poller.offset)
            self._poller = None
        if self._webhook_runner is not None:
            await self._webhook_runner.cleanup()
            self._webhook_runner = None
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _confirm_handled(self, offset: int | None) -> None:
        """On a clean stop, tell Telegram which updates were handled (one short request), so
        that the next start does not receive them again."""
        if offset is None:
            return
        try:
            await self.app.bot.get_updates(offset=offset, timeout=0, limit=1)
        except TelegramError as exc:
            log.info("telegram: could not confirm the last updates at stop: %s", exc)

    async def _start_webhook_server(self) -> None:
        web_app = web.Application(client_max_size=1 << 20)
        web_app.router.add_post(self.settings.webhook_path, self._webhook)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.webhook_listen, self.settings.webhook_port)
        await site.start()
        self._webhook_runner = runner
        # The bound port matters when port 0 was asked for.
        self.webhook_port = bound_port(runner, self.settings.webhook_port)

    async def _webhook(self, request: web.Request) -> web.Response:
        assert self.settings.webhook_secret is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(
            given.encode(), self.settings.webhook_secret.get_secret_value().encode()
        ):
            log.warning("telegram webhook: wrong or missing secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            data = await request.json()
            update = Update.de_json(data, self.app.bot)
        except Exception:
            log.warning("telegram webhook: unreadable update body")
            return web.Response(status=400, text="bad update")
        # Handle before answering: Telegram retries a non-2xx answer, and de-duplication
        # on update_id makes that retry harmless.
        await self.app.process_update(update)
        return web.Response(status=200, text="ok")

    # Inbound

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        event = self.normalise(update)
        if event is None or self.on_event is None:
            return
        chat = update.effective_chat
        async with self._chat_locks.hold(chat.id if chat else 0):
            await self.on_event(event)

    def normalise(self, update: Update) -> InboundEvent | None:
        """Platform update -> neutral event (None for updates Fidelio ignores)."""
        event_id = str(update.update_id)
        if update.callback_query is not None:
            query = update.callback_query
            message = query.message
            chat_id = message.chat.id if message is not None else query.from_user.id
            user = self._user(query.from_user, chat_id)
            # Answer at once so the person's button stops spinning.
            # PTB keeps the task referenced and awaits it in ``stop()``, before its HTTP
            # session closes (a bare asyncio task could be cut off or garbage-collected).
            self.app.create_task(self._answer(query.id))
            decoded = self.codec.decode(query.data or "", str(chat_id))
            action, value = decoded if decoded else (INVALID_ACTION, "")
            ref = MessageRef(self.name, str(chat_id), str(message.message_id)) if message else None
            return ButtonPressed(user, event_id, action, value, ref)
        message = update.message
        if message is None or message.from_user is None:
            return None
        if message.chat.type != "private":
            log.info("telegram: ignoring message from non-private chat %s", message.chat.id)
            return None
        user = self._user(message.from_user, message.chat.id)
        text = message.text or ""
        entities = message.entities or ()
        if text.startswith("/") and any(
            e.type == "bot_command" and e.offset == 0 for e in entities
        ):
            head, _, rest = text.partition(" ")
            command = head[1:].split("@", 1)[0].lower()
            return CommandInvoked(user, event_id, command, rest.strip())
        if not text:
            return TextReceived(user, event_id, "")
        return TextReceived(user, event_id, text)

    def _user(self, tg_user: Any, chat_id: int) -> ChannelUser:
        return ChannelUser(
            self.name,
            str(tg_user.id),
            str(chat_id),
            display_name=tg_user.full_name,
            language_code=tg_user.language_code,
        )

    async def _answer(self, query_id: str) -> None:
        try:
            await post_json(self.app.bot, "answerCallbackQuery", {"callback_query_id": query_id})
        except TelegramError as exc:
            log.debug("answerCallbackQuery failed: %s", exc)

    # ChatPort

    def _keyboard(self, buttons: tuple[Button, ...], chat_id: str) -> dict[str, Any] | None:
        """An inline keyboard as Bot API JSON (built directly: this is on every reply)."""
        if not buttons:
            return None
        per_row = 6 if all(len(b.label) <= 3 for b in buttons) else 2
        keys = [
            {"text": b.label, "callback_data": self.codec.encode(b.action, b.value, chat_id)}
            for b in buttons
        ]
        return {"inline_keyboard": [keys[i : i + per_row] for i in range(0, len(keys), per_row)]}

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        """One Bot API call through PTB's request path (its errors, timeouts and retry_after
        handling), with the result left as JSON: Fidelio needs at most the message id, and
        turning every answer into PTB objects was a large share of the cost of a reply.

        See :mod:`bot.channels.telegram_internals` for why this needs a private PTB method.
        """
        async with _translate_errors():
            return await post_json(self.app.bot, method, params)

    async def send(self, to: Address, message: Message) -> MessageRef:
        sent = await self._call(
            "sendMessage",
            {
                "chat_id": int(to.chat_id),
                "text": _fit(to_telegram_html(message.text), MAX_TEXT),
                "parse_mode": "HTML",
                "reply_markup": self._keyboard(message.buttons, to.chat_id),
                "link_preview_options": {"is_disabled": True},
            },
        )
        return MessageRef(self.name, to.chat_id, str(sent["message_id"]))

    async def edit(self, ref: MessageRef, message: Message) -> None:
        await self._call(
            "editMessageText",
            {
                "chat_id": int(ref.chat_id),
                "message_id": int(ref.message_id),
                "text": _fit(to_telegram_html(message.text), MAX_TEXT),
                "parse_mode": "HTML",
                "reply_markup": self._keyboard(message.buttons, ref.chat_id),
            },
        )

    async def send_image(self, to: Address, png: bytes, caption: str) -> MessageRef:
        async with _translate_errors():
            sent = await self.app.bot.send_photo(
                chat_id=int(to.chat_id),
                photo=png,
                caption=_fit(to_telegram_html(caption), MAX_CAPTION),
                parse_mode="HTML",
            )
        return MessageRef(self.name, to.chat_id, str(sent.message_id))

    async def open(self, external_id: str) -> Address:
        # In a private chat the chat id is the user id.
        return Address(self.name, external_id)

    # Command menu (bot/channels/telegram_commands.py)

    async def set_menu(
        self,
        commands: Sequence[MenuCommand],
        *,
        language: str | None = None,
        chat: str | None = None,
    ) -> None:
        async with _translate_errors():
            await set_commands(self.app.bot, commands, language=language, chat=chat)

    async def reset_menu(self, chat: str) -> None:
        async with _translate_errors():
            await delete_commands(self.app.bot, chat)


class ChatLocks:
    """One lock per chat, so a person's updates are handled in order while different chats
    run concurrently; a chat's lock is dropped when nobody holds or waits for it (a
    long-running bot sees many chats, and each lock would otherwise live forever)."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._users[chat_id] = self._users.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat_id] -= 1
            if not self._users[chat_id]:
                del self._users[chat_id]
                del self._locks[chat_id]


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _translate_errors:
    """Map python-telegram-bot exceptions onto the port's SendError family."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None or not isinstance(exc, TelegramError):
            return False
        if isinstance(exc, RetryAfter):
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, dtm.timedelta) else float(delay)
            raise RateLimited(seconds, "telegram") from exc
        if isinstance(exc, Forbidden | ChatMigrated):
            raise PermanentFailure(f"telegram: {exc.message}") from exc
        if isinstance(exc, BadRequest):
            raise PermanentFailure(f"telegram bad request: {exc.message}") from exc
        if isinstance(exc, TimedOut):
            # A connect/pool timeout means nothing left this machine; a read timeout means
            # Telegram may have delivered the message.
            if isinstance(exc.__cause__, aiohttp.ConnectionTimeoutError):
                raise TransientFailure(f"telegram: {exc.message}") from exc
            raise UnknownOutcome(f"telegram: timed out after sending ({exc.message})") from exc
        if isinstance(exc, NetworkError):
            # A 5xx answer or a failed connect: nothing was delivered. A transport error after
            # the request left (reset, protocol error) may follow Telegram's acceptance.
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientError) and not isinstance(
                cause, aiohttp.ClientConnectorError
            ):
                raise UnknownOutcome(f"telegram: connection lost ({exc.message})") from exc
            raise TransientFailure(f"telegram: {exc.message}") from exc
        raise SendError(f"telegram: {exc}") from exc


class AiohttpRequest(BaseRequest):
    """python-telegram-bot's HTTP backend on one aiohttp ``ClientSession`` (kept-alive pool).

    Errors follow PTB's own backend: a timeout becomes ``TimedOut`` and any other transport
    failure ``NetworkError``, each chained to the aiohttp exception so that
    :class:`_translate_errors` can tell "never sent" (connect or pool timeout, failed connect)
    from "maybe delivered" (read timeout, connection lost after sending). The connect timeout
    covers waiting for a free pooled connection too (aiohttp's ``connect``), so the pool
    timeout is added to it. There is no separate write timeout: a slow upload is bounded by
    the read timeout that follows it.
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 1,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        pool_timeout: float = 1.0,
    ):
        self._pool_size = connection_pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0),
                headers={"User-Agent": self.USER_AGENT},
                # Bot API URLs carry the token: no cookies, no redirects, no env proxies.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | None | Any = BaseRequest.DEFAULT_NONE,
        write_timeout: float | None | Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: float | None | Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: float | None | Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        connect = (
            self._connect_timeout
            if connect_timeout is BaseRequest.DEFAULT_NONE
            else connect_timeout
        )
        pool = self._pool_timeout if pool_timeout is BaseRequest.DEFAULT_NONE else pool_timeout
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        body: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, content_type) in files.items():
                    form.add_field(name, content, filename=filename, content_type=content_type)
                body = form
            else:
                body = request_data.json_parameters
        try:
            async with self._session.request(
                method, url, data=body, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimedOut("Connect or pool timeout: the request was not sent to Telegram") from exc
        except TimeoutError as exc:
            raise TimedOut() from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


async def bot_username(settings: TelegramSettings) -> str:
    """The bot's @username (getMe), for t.me links when ``telegram.bot_username`` is unset."""
    token = settings.token.get_secret_value() if settings.token else ""
    async with Bot(token, base_url=settings.base_url) as bot:
        return str(bot.username)
