"""Platform faults not covered elsewhere: connection resets on sends, a chat reply that times
out, Telegram webhook retries and Slack event retries arriving while the first delivery is
still being handled. Each: handled, counted in the logs, no duplicate side effect."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import DeliveryStatus, Person, ProcessedEvent
from bot.db.session import Database

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import (
    free_port,
    invite_code,
    load_demo,
    make_settings,
    running,
    running_on_slack,
    telegram_section,
    telegram_text_update,
    telegram_webhook,
    times_processed,
)
from .test_outbox import (
    delivered,
    demo_people,
    link_slack,
    link_telegram,
    outbox_runtime,
    outbox_settings,
    queue_all,
    row,
)

ENGLISH = "james.whitaker@demo.fidelio.example"


async def test_connection_resets_on_broadcast_sends_deliver_exactly_once(
    db: Database,
    clock: ManualClock,
    database_url: str,
    telegram: FakeTelegramServer,
    slack: FakeSlackServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reset drops the connection before the platform acted: retried, delivered once."""
    await load_demo(db, clock)
    [tg] = await link_telegram(db, telegram, await demo_people(db, 1), clock)
    [sl] = await link_slack(db, slack, await demo_people(db, 1, skip=1), clock)
    await queue_all(db, clock, "campaign:reset", [tg, sl])
    telegram.inject("reset", method="sendMessage", chat_id=tg.chat_id, times=1)
    slack.inject("reset", method="chat.postMessage", channel=sl.dm, times=1)
    settings = outbox_settings(database_url, telegram=telegram, slack=slack)
    async with outbox_runtime(settings, clock) as runtime:
        first = await runtime.outbox.run_once()
        assert first.sent == 0 and first.retried == 2
        for _ in range(3):
            clock.advance(5)
            await runtime.outbox.run_once()
    for contact in (tg, sl):
        delivery = await row(db, f"campaign:reset:{contact.person_id}")
        assert delivery.status == DeliveryStatus.sent
        assert len(delivered(contact, telegram, slack)) == 1
    # Two requests each: the one reset, the one that went through.
    assert len(telegram.calls_to("sendMessage")) == 2
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_a_chat_reply_that_fails_is_neither_duplicated_nor_fatal(
    db: Database,
    clock: ManualClock,
    database_url: str,
    telegram: FakeTelegramServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 502 on a reply is retried (the person gets one answer); a reply whose outcome is
    unknown (timeout after sending, connection lost) is not repeated: at most one copy.
    Either way the bot goes on answering."""
    await load_demo(db, clock)
    code = await invite_code(db, ENGLISH, clock)
    telegram.add_user(911, "James")
    settings = make_settings(
        database_url, telegram=telegram_section(telegram, request_timeout_s=0.5)
    )
    async with running(settings, clock):
        await telegram.send_text(911, f"/start {code}")
        await telegram.wait_for_messages(911, 1)

        telegram.inject("502", method="sendMessage", chat_id=911)
        await telegram.send_text(911, "/whoami")
        replies = await telegram.wait_for_messages(911, 2)
        assert ENGLISH in (replies[1].text or "")

        with caplog.at_level(logging.WARNING):
            telegram.inject("timeout", method="sendMessage", chat_id=911, delay=2.0)
            await telegram.send_text(911, "/whoami")
            await telegram.wait_for_messages(911, 3, timeout=5)  # carried out, answered late
            telegram.inject("reset", method="sendMessage", chat_id=911)
            await telegram.send_text(911, "/whoami")  # dropped: no answer, no crash
            await asyncio.sleep(1.0)
            await telegram.send_text(911, "/help")
            after = await telegram.wait_for_messages(911, 4, timeout=5)
        await asyncio.sleep(0.5)
    texts = [m.text or "" for m in telegram.messages_to(911)]
    assert len(texts) == 4, texts
    assert texts[3].startswith("Hi James Whitaker") and after
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "unknown outcome" in logged


def _update(update_id: int, text: str) -> dict[str, Any]:
    return telegram_text_update(update_id, 912, text, language_code="en")


async def test_telegram_webhook_retries_of_one_update_have_one_side_effect(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    code = await invite_code(db, ENGLISH, clock)
    telegram.add_user(912, "James")
    port = free_port()
    settings = make_settings(
        database_url, telegram=telegram_webhook(telegram, port, "retry-secret")
    )
    async with running(settings, clock):
        assert await telegram.post_to_webhook(_update(500_001, f"/start {code}")) == 200
        # Telegram retries an update it thinks was not delivered: the same update id again,
        # even while the first delivery is still being handled.
        change = _update(500_002, "/language it")
        statuses = await asyncio.gather(*(telegram.post_to_webhook(change) for _ in range(3)))
        assert statuses == [200, 200, 200]
        assert await telegram.post_to_webhook(change) == 200  # and once more, later
        await telegram.wait_for_messages(912, 2)
        await asyncio.sleep(0.3)
    texts = [m.text or "" for m in telegram.messages_to(912)]
    assert len(texts) == 2, texts  # the welcome and one language confirmation
    seen = await times_processed(db, "500002")
    async with db.session() as session:
        james = await session.scalar(select(Person).where(Person.email == ENGLISH))
    assert seen == 1 and james is not None and james.locale == "it"


async def test_slack_retries_during_handling_have_one_side_effect(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    slack.add_user(SlackUser("U0JAMES", ENGLISH, "james"))
    async with running_on_slack(slack, clock, database_url):
        # The original and its retries (X-Slack-Retry-Num 1, 2) arrive together.
        statuses = await asyncio.gather(
            *(
                slack.send_dm("U0JAMES", "language it", event_id="Ev0CONCURRENT", retry_num=n)
                for n in (None, 1, 2)
            )
        )
        assert statuses == [200, 200, 200]
        dm = slack.dm_channel_of("U0JAMES")
        await slack.wait_for_messages(dm, 1)
        await asyncio.sleep(0.5)
    assert len(slack.messages_in(dm)) == 1
    async with db.session() as session:
        james = await session.scalar(select(Person).where(Person.email == ENGLISH))
        processed = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert james is not None and james.locale == "it"
    assert processed == 1
