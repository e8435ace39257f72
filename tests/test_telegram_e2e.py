"""End to end on Telegram: the real python-telegram-bot client against the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.app import Runtime, build_runtime
from bot.clock import ManualClock
from bot.db.models import ChannelIdentity, ChannelName, Person, ProcessedEvent
from bot.db.session import Database

from .fakes.telegram import FakeTelegramServer
from .harness import (
    TelegramDialog,
    fake_telegram,
    free_port,
    invite_code,
    load_demo,
    make_settings,
    running,
    telegram_section,
    telegram_text_update,
    telegram_webhook,
    times_processed,
)

ITALIAN = "marco.bianchi@demo.fidelio.example"
ENGLISH = "james.whitaker@demo.fidelio.example"


fake = fake_telegram("fake", 20.0)


async def _reply_to(fake: FakeTelegramServer, user_id: int, text: str) -> str:
    return (await TelegramDialog(fake, user_id).say(text))[0]


async def test_invite_links_person_and_help_comes_in_their_language(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code_it = await invite_code(db, ITALIAN, clock)
    code_en = await invite_code(db, ENGLISH, clock)
    fake.add_user(501, "Marco", language_code="en")  # the app's language does not matter
    fake.add_user(502, "James", language_code="it")
    settings = make_settings(database_url, telegram=telegram_section(fake))
    async with running(settings, clock):
        welcome = await _reply_to(fake, 501, f"/start {code_it}")
        assert "Benvenuto, Marco Bianchi" in welcome
        assert "questo elenco" in welcome  # the Italian help list is part of the welcome
        help_it = await _reply_to(fake, 501, "/help")
        assert help_it.startswith("Ciao Marco Bianchi")
        assert "<code>language</code>" in help_it  # rendered as Telegram HTML
        help_en = await _reply_to(fake, 502, f"/start {code_en}")
        assert "Welcome, James Whitaker" in help_en
        assert "choose your language" in help_en
    async with db.session() as session:
        identity = await session.scalar(
            select(ChannelIdentity)
            .join(Person, Person.id == ChannelIdentity.person_id)
            .where(Person.email == ITALIAN)
        )
    assert identity is not None
    assert (identity.channel, identity.external_id, identity.address) == (
        ChannelName.telegram,
        "501",
        "501",
    )


async def test_bad_used_and_expired_invites_grant_no_access(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code = await invite_code(db, ITALIAN, clock, hours=2)
    expiring = await invite_code(db, ENGLISH, clock, hours=1)
    for user_id in (601, 602, 603, 604):
        fake.add_user(user_id, f"User {user_id}", language_code="en")
    settings = make_settings(database_url, telegram=telegram_section(fake))
    async with running(settings, clock):
        bad = await _reply_to(fake, 601, "/start not-a-real-code")
        assert "not valid" in bad
        assert "I do not know you yet" in await _reply_to(fake, 601, "/help")

        assert "Benvenuto" in await _reply_to(fake, 602, f"/start {code}")
        used = await _reply_to(fake, 603, f"/start {code}")
        assert "already been used" in used
        assert "I do not know you yet" in await _reply_to(fake, 603, "/whoami")

        clock.advance(timedelta(hours=1, minutes=1))
        expired = await _reply_to(fake, 604, f"/start {expiring}")
        assert "expired" in expired
        assert "I do not know you yet" in await _reply_to(fake, 604, "/status")
    async with db.session() as session:
        linked = await session.scalar(
            select(func.count())
            .select_from(ChannelIdentity)
            .where(ChannelIdentity.channel == ChannelName.telegram)
        )
    assert linked == 1


async def test_duplicated_update_is_processed_once(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code = await invite_code(db, ENGLISH, clock)
    fake.add_user(701, "James")
    settings = make_settings(database_url, telegram=telegram_section(fake))
    async with running(settings, clock):
        await _reply_to(fake, 701, f"/start {code}")
        before = len(fake.messages_to(701))
        update_id = await fake.send_text(701, "/whoami")
        fake.redeliver(update_id)
        fake.redeliver(update_id)
        # A later message in the same chat is handled after the duplicates (per-chat order),
        # so once its answer is there the duplicates have been dealt with.
        await fake.send_text(701, "/help")
        messages = await fake.wait_for_messages(701, before + 2)
        await asyncio.sleep(0.2)
        texts = [m.text or "" for m in fake.messages_to(701)[before:]]
    assert len(texts) == 2, texts
    assert "james.whitaker@demo.fidelio.example" in texts[0]
    assert texts[1].startswith("Hi James Whitaker")
    assert messages
    assert await times_processed(db, str(update_id)) == 1


async def test_language_button_and_tampered_callback(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code = await invite_code(db, ITALIAN, clock)
    fake.add_user(801, "Marco", language_code="it")
    settings = make_settings(database_url, telegram=telegram_section(fake))
    async with running(settings, clock):
        await _reply_to(fake, 801, f"/start {code}")
        choose = await _reply_to(fake, 801, "/language")
        assert "Scegline una" in choose
        card = fake.last_message(801)
        assert [label for label, _ in card.buttons()] == ["English", "Italiano"]
        marco = TelegramDialog(fake, 801)
        done = (await marco.press("English"))[0]
        assert "I will write to you in <b>English</b>" in done
        assert fake.answered_callbacks, "the button press must be answered"

        # Forged data: same action, edited value, stale signature.
        data = dict(fake.last_message(801).buttons() or card.buttons())["Italiano"]
        forged = data.replace("|it|", "|en|")
        refused = (await marco.press_data(forged, message_id=card.message_id))[0]
        assert "no longer valid" in refused
    async with db.session() as session:
        person = await session.scalar(select(Person).where(Person.email == ITALIAN))
    assert person is not None and person.locale == "en"


async def test_webhook_checks_the_secret_token(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code = await invite_code(db, ENGLISH, clock)
    fake.add_user(901, "James")
    port = free_port()
    settings = make_settings(database_url, telegram=telegram_webhook(fake, port, "s3cret-token_ok"))
    async with running(settings, clock):
        assert fake.webhook_url == f"http://127.0.0.1:{port}/telegram/webhook"
        welcome = await _reply_to(fake, 901, f"/start {code}")
        assert "Welcome, James Whitaker" in welcome

        forged = telegram_text_update(999_001, 901, "/status", message_id=77)
        before = len(fake.messages_to(901))
        assert await fake.post_to_webhook(forged, secret="wrong-secret") == 403
        assert await fake.post_to_webhook(forged, secret=None) == 403
        assert await fake.post_to_webhook(forged) == 200  # the configured secret
        after = await fake.wait_for_messages(901, before + 1)
    assert len(after) == before + 1
    async with db.session() as session:
        ids = set(await session.scalars(select(ProcessedEvent.event_id)))
    assert "999001" in ids


def _block_on(runtime: Runtime, slow_text: str) -> asyncio.Event:
    """Make the Telegram channel's handling of the message ``slow_text`` wait until the
    returned event is set (patched before the channel starts)."""
    release = asyncio.Event()
    channel = runtime.channels["telegram"]
    handle = channel.on_event

    async def slow(event):  # type: ignore[no-untyped-def]
        if getattr(event, "text", None) == slow_text:
            await release.wait()
        return await handle(event)

    channel.on_event = slow
    return release


async def test_polling_confirms_updates_only_once_they_are_handled(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    """Telegram keeps every update from the oldest one still being handled unconfirmed, so a
    crash half-way means redelivery (made harmless by de-duplication), never loss; a slow
    update holds up nobody else, not even updates that arrive after it. A clean stop waits
    for what is in hand and confirms it."""
    for user_id in (501, 502, 503, 504):
        fake.add_user(user_id, f"Stranger{user_id}")
    await fake.send_text(501, "hello")
    await fake.send_text(502, "slow")
    await fake.send_text(503, "hi")
    runtime = build_runtime(
        make_settings(database_url, telegram=telegram_section(fake)), clock=clock
    )
    release = _block_on(runtime, "slow")
    await runtime.start(sync_slack=False, background=False)
    stopping: asyncio.Task[None] | None = None
    try:
        await fake.wait_for_messages(501, 1)
        await fake.wait_for_messages(503, 1)
        await fake.send_text(504, "later")  # arrives while 502 is still in hand
        await fake.wait_for_messages(504, 1)
        await asyncio.sleep(0.3)  # any further poll would have confirmed more by now
        assert fake.messages_to(502) == []
        # 501 is confirmed; 502 (in hand) and everything after it are not.
        assert fake.pending_update_count == 3

        stopping = asyncio.create_task(runtime.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done()  # stopping waits for the update in hand
        release.set()
        await stopping
    finally:
        release.set()
        if stopping is None:
            await runtime.stop()
    assert len(fake.messages_to(502)) == 1  # handled before the channel stopped
    assert fake.pending_update_count == 0  # and confirmed at stop
    async with db.session() as session:
        handled = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert handled == 4


async def test_chat_locks_keep_a_chats_order_and_are_dropped_when_free() -> None:
    from bot.channels.telegram import ChatLocks

    locks = ChatLocks()
    seen: list[tuple[int, int]] = []
    gate = asyncio.Event()

    async def handle(chat: int, n: int) -> None:
        async with locks.hold(chat):
            if (chat, n) == (1, 0):
                await gate.wait()  # the first update of chat 1 is slow
            seen.append((chat, n))

    tasks = [asyncio.create_task(handle(chat, n)) for n in range(3) for chat in (1, 2)]
    await asyncio.sleep(0.05)
    assert seen == [(2, 0), (2, 1), (2, 2)]  # chat 2 is not held up by chat 1
    assert len(locks) == 1  # chat 2's lock is gone already
    gate.set()
    await asyncio.gather(*tasks)
    assert seen[3:] == [(1, 0), (1, 1), (1, 2)]  # chat 1 in its own order
    assert len(locks) == 0
