"""Self-tests of the fake Telegram server, driven by the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from .telegram import FakeTelegramServer

# PTB 22 warns whenever RetryAfter.retry_after is read (even in its own __init__) that it will
# become a timedelta; that is PTB's business, not this fixture's. Fidelio opts in to the
# timedelta form (PTB_TIMEDELTA), so these tests accept both forms.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def _seconds(value: object) -> float:
    import datetime as dtm

    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)  # type: ignore[arg-type]


TOKEN = "123456:TEST-TOKEN"
ALICE = 1001
BOB = 1002
# Smallest meaningful PNG header: signature + IHDR (2x3 pixels); enough for size parsing.
PNG = (
    b"\x89PNG\r\n\x1a\n"
    b"\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00\x00\x00\x00\x00"
)


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    # rate_scale=20: 20 sends/s per chat, so ordinary tests never trip the flood limit.
    async with FakeTelegramServer(TOKEN, rate_scale=20) as srv:
        srv.add_user(ALICE, "Alice", username="alice")
        srv.add_user(BOB, "Bob", language_code="de")
        yield srv


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as b:
        yield b


@asynccontextmanager
async def polling_app(
    server: FakeTelegramServer, *handlers: BaseHandler[Any, Any, Any]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """A real PTB Application polling the fake (never run_polling: we own the event loop)."""
    app = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def wait_until(predicate: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


# Basics


async def test_get_me(server: FakeTelegramServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.first_name == "Fidelio"
    assert me.username == "fidelio_test_bot"
    assert server.calls_to("getMe")[0].status == 200
    assert server.base_url.startswith("http://127.0.0.1:")


async def test_unknown_token_and_unknown_method(server: FakeTelegramServer, bot: Bot) -> None:
    with pytest.raises(InvalidToken):
        await Bot("999:WRONG", base_url=server.base_url).get_me()
    assert server.calls[-1].status == 401
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": ALICE})
    assert server.calls[-1].status == 404


async def test_start_command_is_parsed_by_command_handler(server: FakeTelegramServer) -> None:
    seen: list[list[str]] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(list(context.args or []))
        await update.effective_message.reply_text("welcome")

    async with polling_app(server, CommandHandler("start", start)):
        update_id = await server.send_text(ALICE, "/start abc")
        [reply] = await server.wait_for_messages(ALICE, 1, timeout=2)

    assert seen == [["abc"]]
    assert reply.text == "welcome"
    assert update_id >= 100_000
    sent = server.calls_to("sendMessage")[0]
    assert sent.params["chat_id"] == ALICE and sent.params["text"] == "welcome"


async def test_command_entities_use_utf16_offsets(server: FakeTelegramServer, bot: Bot) -> None:
    await server.send_text(ALICE, "😀 /help@fidelio_test_bot")
    [update] = await bot.get_updates()
    assert update.message is not None
    assert update.message.parse_entities() == {update.message.entities[0]: "/help@fidelio_test_bot"}
    assert update.message.entities[0].offset == 3  # the emoji is two UTF-16 code units


async def test_send_message_and_press_button(server: FakeTelegramServer) -> None:
    pressed: list[str] = []

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        pressed.append(f"{query.data}@{query.message.message_id}")
        await query.answer("noted")

    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="vote:yes"),
                InlineKeyboardButton("No", callback_data="vote:no"),
            ],
            [InlineKeyboardButton("Docs", url="https://example.invalid/")],
        ]
    )
    async with polling_app(server, CallbackQueryHandler(on_press)) as app:
        sent = await app.bot.send_message(
            ALICE, "<b>Vote?</b>", parse_mode="HTML", reply_markup=markup
        )
        stored = server.last_message(ALICE)
        assert stored.message_id == sent.message_id
        assert stored.parse_mode == "HTML"
        assert stored.buttons() == [("Yes", "vote:yes"), ("No", "vote:no")]
        assert sent.reply_markup == markup  # the returned Message round-trips through PTB

        await server.press(ALICE, "No")
        await wait_until(lambda: bool(server.answered_callbacks))

        with pytest.raises(LookupError):
            await server.press(ALICE, "Maybe")
        with pytest.raises(LookupError):
            await server.press(BOB, "Yes")

    assert pressed == [f"vote:no@{sent.message_id}"]
    assert server.answered_callbacks[0]["text"] == "noted"


async def test_edits_and_not_modified(server: FakeTelegramServer, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await bot.send_message(ALICE, "one", reply_markup=keyboard)
    await bot.edit_message_text(
        "two", chat_id=ALICE, message_id=sent.message_id, reply_markup=keyboard
    )
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text(
            "two", chat_id=ALICE, message_id=sent.message_id, reply_markup=keyboard
        )
    await bot.edit_message_reply_markup(chat_id=ALICE, message_id=sent.message_id)
    stored = server.last_message(ALICE)
    assert stored.text == "two" and stored.reply_markup is None
    assert [e.get("text") for e in stored.edits] == ["two", None]
    with pytest.raises(LookupError):
        await server.press(ALICE, "A")
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALICE, message_id=999_999)
    assert await bot.delete_message(ALICE, sent.message_id)
    assert server.last_message(ALICE).deleted


async def test_forged_callback_data_and_unknown_chat(server: FakeTelegramServer, bot: Bot) -> None:
    await server.press_data(BOB, 4242, "admin:drop_tables")
    [update] = await bot.get_updates()
    assert update.callback_query is not None
    assert update.callback_query.data == "admin:drop_tables"
    assert update.callback_query.message is not None
    assert not update.callback_query.message.is_accessible
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(5555, "hello?")


# Updates


async def test_get_updates_offset_limit_and_long_poll(server: FakeTelegramServer, bot: Bot) -> None:
    ids = [await server.send_text(ALICE, f"m{i}") for i in range(3)]
    first = await bot.get_updates(limit=2)
    assert [u.update_id for u in first] == ids[:2]
    again = await bot.get_updates()  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == ids
    rest = await bot.get_updates(offset=ids[1] + 1)
    assert [u.update_id for u in rest] == ids[2:]

    started = time.monotonic()
    assert await bot.get_updates(offset=ids[2] + 1, timeout=timedelta(seconds=0.3)) == ()
    assert 0.25 < time.monotonic() - started < 1.5

    async def later() -> int:
        await asyncio.sleep(0.1)
        return await server.send_text(BOB, "wake up")

    task = asyncio.create_task(later())
    woken = await bot.get_updates(offset=ids[2] + 1, timeout=5)
    assert [u.update_id for u in woken] == [await task]
    assert woken[0].effective_user is not None and woken[0].effective_user.language_code == "de"


async def test_redeliver_gives_same_update_id_twice(server: FakeTelegramServer) -> None:
    seen: list[int] = []

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    async with polling_app(server, MessageHandler(filters.TEXT, on_text)):
        update_id = await server.send_text(ALICE, "pay 10")
        await wait_until(lambda: len(seen) == 1)
        server.redeliver(update_id)
        await wait_until(lambda: len(seen) == 2)
        follow_up = await server.send_text(ALICE, "next")
        await wait_until(lambda: len(seen) == 3)

    assert seen == [update_id, update_id, follow_up]


# Limits & faults


async def test_per_chat_rate_limit_raises_retry_after() -> None:
    async with FakeTelegramServer(TOKEN, per_chat_per_s=1.0, rate_scale=5) as srv:
        srv.add_user(ALICE, "Alice")
        srv.add_user(BOB, "Bob")
        async with Bot(TOKEN, base_url=srv.base_url) as bot:
            for i in range(5):
                await bot.send_message(ALICE, f"burst {i}")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(ALICE, "one too many")
            await bot.send_message(BOB, "other chats are not affected")
            assert _seconds(caught.value.retry_after) == 1
            assert srv.rate_limited == 1
            assert srv.calls_to("sendMessage")[5].status == 429
            assert len(srv.messages_to(ALICE)) == 5

            await asyncio.sleep(1 / 5 + 0.05)  # the scaled bucket refills one send in 0.2 s
            await bot.send_message(ALICE, "after the window")
            assert len(srv.messages_to(ALICE)) == 6


async def test_global_rate_limit_and_fractional_retry_after() -> None:
    async with FakeTelegramServer(
        TOKEN, per_chat_per_s=100, global_per_s=3, rate_scale=1, fractional_retry_after=True
    ) as srv:
        for user_id in (1, 2, 3, 4):
            srv.add_user(user_id, f"U{user_id}")
        async with Bot(TOKEN, base_url=srv.base_url) as bot:
            for user_id in (1, 2, 3):
                await bot.send_message(user_id, "hi")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(4, "hi")
            retry_after = _seconds(caught.value.retry_after)
            # 3 sends/s: the next token is about 1/3 s away, reported exactly (not rounded to 1).
            assert isinstance(retry_after, float) and 0.2 < retry_after < 0.4
            await bot.get_me()  # not a send: never limited
            assert srv.rate_limited == 1


async def test_injected_429(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject("429", method="sendMessage", retry_after=7)
    with pytest.raises(RetryAfter, match="Retry in") as caught:
        await bot.send_message(ALICE, "x")
    assert _seconds(caught.value.retry_after) == 7
    await bot.send_message(ALICE, "y")  # only the next call was affected
    assert server.rate_limited == 1
    assert [m.text for m in server.messages_to(ALICE)] == ["y"]


async def test_injected_500_and_502_are_network_errors(
    server: FakeTelegramServer, bot: Bot
) -> None:
    server.inject("500", method="sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE, "x")
    server.inject("502", chat_id=ALICE)
    await bot.send_message(BOB, "unaffected")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(ALICE, "x")
    assert server.messages_to(ALICE) == []
    assert [c.status for c in server.calls_to("sendMessage")] == [500, 200, 502]


async def test_injected_403_and_blocked_user(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject("403", method="sendMessage")
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(ALICE, "x")
    await bot.send_message(ALICE, "fine again")
    server.block(ALICE)
    for _ in range(2):
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(ALICE, "still there?")
    await bot.send_message(BOB, "hi")
    assert [m.text for m in server.messages_to(ALICE)] == ["fine again"]


async def test_timeout_fault_is_an_unknown_outcome(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject("timeout", method="sendMessage", delay=5)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(ALICE, "did it arrive?", read_timeout=0.3)
    assert time.monotonic() - started < 2
    # The client gave up, but the message was delivered.
    assert server.last_message(ALICE).text == "did it arrive?"
    assert server.calls_to("sendMessage")[0].status == 200


async def test_reset_fault_drops_connection(server: FakeTelegramServer, bot: Bot) -> None:
    server.inject("reset", method="sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE, "lost")
    assert server.messages_to(ALICE) == []
    assert server.calls_to("sendMessage")[0].status == 0
    await bot.send_message(ALICE, "retried")
    assert server.last_message(ALICE).text == "retried"


# Media & misc


async def test_send_photo_stores_bytes(server: FakeTelegramServer, bot: Bot) -> None:
    sent = await bot.send_photo(ALICE, photo=PNG, caption="chart")
    stored = server.last_message(ALICE)
    assert stored.photo == PNG and stored.caption == "chart" and stored.text is None
    assert server.calls_to("sendPhoto")[0].files["photo"] == PNG
    assert (sent.photo[-1].width, sent.photo[-1].height) == (2, 3)
    assert sent.caption == "chart"
    # Re-sending by file_id resolves to the same bytes, as on Telegram.
    await bot.send_photo(BOB, photo=sent.photo[-1].file_id)
    assert server.last_message(BOB).photo == PNG

    doc = await bot.send_document(BOB, document=b"a,b\n1,2\n", filename="report.csv")
    assert doc.document is not None and doc.document.file_name == "report.csv"
    assert server.last_message(BOB).document == b"a,b\n1,2\n"


async def test_commands_chat_action_and_misc(server: FakeTelegramServer, bot: Bot) -> None:
    assert await bot.set_my_commands([("start", "Begin"), ("help", "Help")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert server.bot_commands()[1] == {"command": "help", "description": "Help"}
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.send_chat_action(ALICE, "typing")
    assert server.calls_to("sendChatAction")[0].params["action"] == "typing"


async def test_command_menus_are_checked_like_telegram(
    server: FakeTelegramServer, bot: Bot
) -> None:
    for commands, error in (
        ([("Start", "Begin")], "BOT_COMMAND_INVALID"),
        ([("a" * 33, "Begin")], "BOT_COMMAND_INVALID"),
        ([("start", " ")], "BOT_COMMAND_DESCRIPTION_INVALID"),
        ([("start", "x" * 257)], "BOT_COMMAND_DESCRIPTION_INVALID"),
        ([(f"c{i}", "x") for i in range(101)], "BOT_COMMANDS_TOO_MUCH"),
    ):
        with pytest.raises(BadRequest, match=f"(?i){error}"):
            await bot.set_my_commands(commands)
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.set_my_commands([("help", "Help")], scope=BotCommandScopeChat(999))
    with pytest.raises(BadRequest, match="(?i)language code"):
        await bot.set_my_commands([("help", "Help")], language_code="english")
    assert server.bot_commands() == []
    assert [c["status"] for c in server.command_calls()] == [400] * 7


async def test_command_menus_are_recorded_and_shown_by_scope_and_language(
    server: FakeTelegramServer, bot: Bot
) -> None:
    assert await bot.set_my_commands([("start", "Begin")])
    assert await bot.set_my_commands([("hilfe", "Hilfe")], language_code="de")
    assert await bot.set_my_commands([("admin", "Admin")], scope=BotCommandScopeChat(ALICE))
    # Bob's app is in German: the German default; Alice: her chat's own list.
    assert server.commands_shown(BOB) == ["hilfe"]
    assert server.commands_shown(ALICE) == ["admin"]
    assert await bot.set_my_commands([("private", "P")], scope=BotCommandScopeAllPrivateChats())
    assert server.commands_shown(BOB) == ["private"]  # all private chats before the default
    assert await bot.delete_my_commands(scope=BotCommandScopeChat(ALICE))
    assert server.commands_shown(ALICE) == ["private"]
    calls = server.command_calls()
    assert [(c["method"], c["scope"], c["language_code"]) for c in calls] == [
        ("setMyCommands", {"type": "default"}, ""),
        ("setMyCommands", {"type": "default"}, "de"),
        ("setMyCommands", {"type": "chat", "chat_id": ALICE}, ""),
        ("setMyCommands", {"type": "all_private_chats"}, ""),
        ("deleteMyCommands", {"type": "chat", "chat_id": ALICE}, ""),
    ]
    assert calls[2]["commands"] == [("admin", "Admin")] and calls[4]["commands"] == []


async def test_wait_for_messages_times_out_helpfully(server: FakeTelegramServer) -> None:
    with pytest.raises(TimeoutError, match="expected at least 2 message"):
        await server.wait_for_messages(ALICE, 2, timeout=0.1)


# Webhook


async def test_webhook_delivery_with_secret_and_retries(
    server: FakeTelegramServer, bot: Bot
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if secret != "s3cret":
            return web.Response(status=403)
        if fail_first.pop() if fail_first else False:
            return web.Response(status=500)  # the fake must retry
        received.append((secret, await request.json()))
        return web.Response(status=200)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/hook"
    try:
        assert await bot.set_webhook(url, secret_token="s3cret")
        with pytest.raises(Conflict):
            await bot.get_updates()

        update_id = await server.send_text(ALICE, "via webhook")
        await wait_until(lambda: bool(received))
        secret, body = received[0]
        assert secret == "s3cret"
        assert body["update_id"] == update_id
        assert body["message"]["text"] == "via webhook"
        assert server.webhook_deliveries == [(update_id, 500), (update_id, 200)]
        assert (await bot.get_webhook_info()).url == url

        probe = {"message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
        assert await server.post_to_webhook(probe, secret="wrong") == 403
        assert await server.post_to_webhook(probe, secret=None) == 403
        assert await server.post_to_webhook(probe) == 200

        with pytest.raises(BadRequest, match="loopback"):
            await bot.set_webhook("https://example.com/hook")
        assert await bot.delete_webhook()
        assert await bot.get_updates() == ()
    finally:
        await runner.cleanup()
