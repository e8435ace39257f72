"""Charts delivered for real: a photo on the fake Telegram server, a file upload
(files_upload_v2's three calls) on the fake Slack server, a saved file on the console,
through the outbox (the image is stored with the delivery) and the one sender."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.channels.port import Address, Message
from bot.clock import ManualClock
from bot.core_settings import RateSettings
from bot.db.models import ChannelName, DeliveryImage, DeliveryStatus
from bot.db.session import Database
from bot.identities import link
from bot.loyalty.charts import TrendPoint, heatmap_chart, summary_chart, translated_labels
from bot.outbox import enqueue
from bot.render import Renderer
from bot.replies import Reply

from .fakes.slack import UPLOAD_METHOD, FakeSlackServer
from .fakes.telegram import FakeTelegramServer
from .harness import REPO, console_runtime, load_demo, make_settings
from .test_outbox import (
    Contact,
    demo_people,
    first_on_slack,
    first_on_telegram,
    one_on_each,
    outbox_runtime,
    outbox_settings,
    row,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chart() -> bytes:
    labels = translated_labels(
        lambda key: Renderer(REPO / "content" / "templates").label(key, "it")
    )
    return summary_chart(
        [TrendPoint("gen", 62.0, 10.0), TrendPoint("feb", 66.0, 18.0)],
        {"apostle": 0.5, "hostage": 0.3, "loose_cannon": 0.2},
        {"Fiducia": 78.0, "Retribuzione": 41.0},
        title="Vendite Roma",
        labels=labels,
    )


def chart_reply(png: bytes, title: str = "Sales Roma") -> Reply:
    return Reply("charts/caption", {"title": title, "note": "3 rounds"}, image=png)


async def queue_chart(
    db: Database, clock: ManualClock, contact: Contact, png: bytes, key: str
) -> None:
    async with db.session() as session:

        async def enqueue_chart() -> bool:
            return await enqueue(
                session,
                key=key,
                person_id=contact.person_id,
                purpose="summary",
                reply=chart_reply(png),
                now=clock.now(),
            )

        assert await enqueue_chart()
        # Enqueuing the same key again is a no-op: one image row, not two.
        assert not await enqueue_chart()


async def image_rows(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(DeliveryImage)) or 0)


async def test_chart_arrives_as_a_telegram_photo_through_the_outbox(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer, chart: bytes
) -> None:
    tg = await first_on_telegram(db, clock, telegram)
    await queue_chart(db, clock, tg, chart, "summary:1")
    assert await image_rows(db) == 1
    async with outbox_runtime(outbox_settings(database_url, telegram=telegram), clock) as runtime:
        stats = await runtime.outbox.drain()
    assert (stats.claimed, stats.sent) == (1, 1)
    [call] = telegram.calls_to("sendPhoto")
    assert call.status == 200
    assert call.params["chat_id"] == tg.chat_id
    assert call.files["photo"] == chart and chart.startswith(PNG_SIGNATURE)
    assert "Sales Roma" in call.params["caption"] and "3 rounds" in call.params["caption"]
    assert not telegram.calls_to("sendMessage")
    [message] = telegram.messages_to(tg.chat_id)
    assert message.photo == chart
    delivery = await row(db, "summary:1")
    assert delivery.status == DeliveryStatus.sent
    assert delivery.platform_message_id == str(message.message_id)


async def test_telegram_429_on_a_photo_waits_and_sends_the_same_image(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer, chart: bytes
) -> None:
    tg = await first_on_telegram(db, clock, telegram)
    await queue_chart(db, clock, tg, chart, "summary:flood")
    telegram.inject("429", method="sendPhoto", chat_id=tg.chat_id, retry_after=6)
    start = clock.now()
    async with outbox_runtime(outbox_settings(database_url, telegram=telegram), clock) as runtime:
        first = await runtime.outbox.run_once()
        assert (first.rate_limited, first.sent) == (1, 0)
        delivery = await row(db, "summary:flood")
        assert delivery.status == DeliveryStatus.pending and delivery.attempts == 0
        assert delivery.not_before == start + timedelta(seconds=6)
        clock.advance(6)
        assert (await runtime.outbox.run_once()).sent == 1
    calls = telegram.calls_to("sendPhoto")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].files["photo"] == chart
    assert [m.photo for m in telegram.messages_to(tg.chat_id)] == [chart]


async def test_several_charts_to_one_chat_keep_within_telegram_flood_limits(
    db: Database, clock: ManualClock, database_url: str, chart: bytes
) -> None:
    # Real-speed limits (1 message per second per chat) on both sides: the sender paces.
    async with FakeTelegramServer(rate_scale=1.0) as telegram:
        tg = await first_on_telegram(db, clock, telegram)
        for number in range(3):
            await queue_chart(db, clock, tg, chart, f"summary:pace:{number}")
        settings = outbox_settings(
            database_url,
            telegram=telegram,
            rates={"telegram_per_chat_per_s": RateSettings().telegram_per_chat_per_s},
        )
        async with outbox_runtime(settings, clock) as runtime:
            stats = await runtime.outbox.drain()
        assert stats.sent == 3
        assert telegram.rate_limited == 0
        assert [m.photo for m in telegram.messages_to(tg.chat_id)] == [chart] * 3


async def test_chart_arrives_as_a_slack_file_upload_in_the_dm(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer, chart: bytes
) -> None:
    sl = await first_on_slack(db, clock, slack)
    await queue_chart(db, clock, sl, chart, "summary:slack")
    async with outbox_runtime(outbox_settings(database_url, slack=slack), clock) as runtime:
        stats = await runtime.outbox.drain()
    assert (stats.claimed, stats.sent) == (1, 1)
    [ask] = slack.calls_to("files.getUploadURLExternal")
    assert int(ask.params["length"]) == len(chart)
    [upload] = slack.calls_to(UPLOAD_METHOD)
    assert list(upload.files.values()) == [chart]
    [complete] = slack.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == sl.dm
    [shared] = slack.uploads
    assert shared["content"] == chart and shared["channel_id"] == sl.dm
    assert "Sales Roma" in shared["initial_comment"] and shared["title"] == "Sales Roma"
    assert not slack.calls_to("chat.postMessage")
    assert (await row(db, "summary:slack")).platform_message_id == shared["file_id"]


@pytest.mark.parametrize(
    "method", [UPLOAD_METHOD, "files.completeUploadExternal", "files.getUploadURLExternal"]
)
async def test_slack_429_during_an_upload_retries_the_whole_upload_once_shared(
    db: Database,
    clock: ManualClock,
    database_url: str,
    slack: FakeSlackServer,
    chart: bytes,
    method: str,
) -> None:
    sl = await first_on_slack(db, clock, slack)
    await queue_chart(db, clock, sl, chart, "summary:slack429")
    slack.inject("429", method=method, retry_after=2)
    async with outbox_runtime(outbox_settings(database_url, slack=slack), clock) as runtime:
        first = await runtime.outbox.run_once()
        assert (first.rate_limited, first.sent) == (1, 0)
        delivery = await row(db, "summary:slack429")
        assert delivery.status == DeliveryStatus.pending and delivery.attempts == 0
        assert not slack.uploads  # nothing was shared
        clock.advance(2)
        assert (await runtime.outbox.run_once()).sent == 1
    [shared] = slack.uploads
    assert shared["content"] == chart and shared["channel_id"] == sl.dm
    assert (await row(db, "summary:slack429")).status == DeliveryStatus.sent


async def test_an_interactive_image_reply_goes_through_the_sender_on_both_platforms(
    db: Database,
    clock: ManualClock,
    database_url: str,
    telegram: FakeTelegramServer,
    slack: FakeSlackServer,
) -> None:
    tg, sl = await one_on_each(db, clock, telegram, slack)
    heatmap = heatmap_chart(["A", "B"], ["Trust"], [[70.0], [None]], title="Org", labels={})
    settings = outbox_settings(database_url, telegram=telegram, slack=slack)
    async with outbox_runtime(settings, clock) as runtime:
        message = Message("**Organisation** heat map", image=heatmap)
        assert await runtime.sender.reply(Address("telegram", str(tg.chat_id)), message)
        assert await runtime.sender.reply(Address("slack", sl.dm), message)
    [photo] = telegram.calls_to("sendPhoto")
    assert photo.files["photo"] == heatmap and "<b>Organisation</b>" in photo.params["caption"]
    [shared] = slack.uploads
    assert shared["content"] == heatmap and shared["channel_id"] == sl.dm
    assert "*Organisation*" in shared["initial_comment"]


async def test_console_saves_the_png_and_prints_its_path(
    db: Database, clock: ManualClock, database_url: str, tmp_path: Path, chart: bytes
) -> None:
    await load_demo(db, clock)
    [person] = await demo_people(db, 1)
    async with db.session() as session:
        fresh = await session.get(type(person), person.id)
        assert fresh is not None
        await link(session, fresh, ChannelName.console, person.email, person.email, clock)
        await enqueue(
            session,
            key="summary:console",
            person_id=person.id,
            purpose="summary",
            reply=chart_reply(chart),
            now=clock.now(),
        )
    settings = make_settings(database_url)
    async with console_runtime(settings, clock) as runtime:
        console = runtime.channels["console"]
        console.out = io.StringIO()
        console.image_dir = tmp_path / "images"
        stats = await runtime.outbox.drain()
        assert stats.sent == 1
        printed = console.out.getvalue()
    assert "Sales Roma" in printed
    [saved] = list((tmp_path / "images").glob("*.png"))
    assert str(saved.resolve()) in printed
    assert saved.read_bytes() == chart


async def test_slack_server_error_on_the_upload_backs_off_then_shares_once(
    db: Database, clock: ManualClock, database_url: str, slack: FakeSlackServer, chart: bytes
) -> None:
    sl = await first_on_slack(db, clock, slack)
    await queue_chart(db, clock, sl, chart, "summary:slack500")
    slack.inject("500", method=UPLOAD_METHOD)
    settings = outbox_settings(database_url, slack=slack, outbox={"backoff_base_s": 2})
    async with outbox_runtime(settings, clock) as runtime:
        first = await runtime.outbox.run_once()
        assert (first.retried, first.sent) == (1, 0)
        delivery = await row(db, "summary:slack500")
        assert delivery.attempts == 1 and "500" in (delivery.last_error or "")
        clock.advance(2)
        assert (await runtime.outbox.run_once()).sent == 1
    assert [c.status for c in slack.calls_to(UPLOAD_METHOD)] == [500, 200]
    [shared] = slack.uploads
    assert shared["content"] == chart


async def test_a_blocked_telegram_chat_fails_the_image_delivery_at_once(
    db: Database, clock: ManualClock, database_url: str, telegram: FakeTelegramServer, chart: bytes
) -> None:
    tg = await first_on_telegram(db, clock, telegram)
    await queue_chart(db, clock, tg, chart, "summary:blocked")
    telegram.block(tg.chat_id)
    async with outbox_runtime(outbox_settings(database_url, telegram=telegram), clock) as runtime:
        stats = await runtime.outbox.drain()
    assert (stats.failed, stats.sent) == (1, 0)
    delivery = await row(db, "summary:blocked")
    assert delivery.status == DeliveryStatus.failed and delivery.attempts == 0
    assert len(telegram.calls_to("sendPhoto")) == 1
