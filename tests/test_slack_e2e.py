"""End to end on Slack: the real slack-bolt AsyncApp and slack-sdk against the fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import ChannelIdentity, ChannelName, Person, ProcessedEvent
from bot.db.session import Database
from bot.outbox import enqueue
from bot.replies import Reply, ReplyButton

from .fakes.slack import FakeSlackServer, SlackUser
from .harness import SlackDialog, load_demo, make_settings, running, running_on_slack

ENGLISH = "james.whitaker@demo.fidelio.example"
ITALIAN = "marco.bianchi@demo.fidelio.example"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer(rate_scale=20.0) as server:
        server.add_user(SlackUser("U0JAMES", ENGLISH, "james"))
        server.add_user(SlackUser("U0MARCO", ITALIAN, "marco"))
        server.add_user(SlackUser("U0GUEST", "guest@elsewhere.example", "guest"))
        yield server


async def _answer(fake: FakeSlackServer, user_id: str, text: str, **kwargs: Any) -> str:
    return (await SlackDialog(fake, user_id).say(text, **kwargs))[0]


async def test_person_found_by_email_gets_a_dm_and_answers_a_button(
    db: Database, clock: ManualClock, database_url: str, fake: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(fake, clock, database_url) as runtime:
        linked, missing = await runtime.channels["slack"].sync_directory(db, clock)
        assert linked == 2  # James and Marco are on Slack; the rest of the demo is not
        assert missing > 40
        assert {c.params["email"] for c in fake.calls_to("users.lookupByEmail")} >= {
            ENGLISH,
            ITALIAN,
        }

        async with db.session() as session:
            james = await session.scalar(select(Person).where(Person.email == ENGLISH))
            assert james is not None
            await enqueue(
                session,
                key=f"test:language:{james.id}",
                person_id=james.id,
                purpose="test",
                reply=Reply(
                    "language/choose",
                    {"current": "English"},
                    (
                        ReplyButton("English", "language", "en"),
                        ReplyButton("Italiano", "language", "it"),
                    ),
                ),
                now=clock.now(),
            )
        # The running outbox loop delivers it (this test does not drive the outbox itself).
        dm = fake.dm_channel_of("U0JAMES")
        card = (await fake.wait_for_messages(dm, 1))[0]
        assert "Your language is English" in (card.text or "")
        assert [label for label, _, _ in card.buttons()] == ["English", "Italiano"]
        assert await fake.press("U0JAMES", "Italiano") == 200
        reply = (await fake.wait_for_messages(dm, 2))[1]
        assert "Fatto" in (reply.text or "")
        assert reply.blocks and reply.blocks[0]["text"]["text"].endswith("*italiano*.")
    async with db.session() as session:
        james = await session.scalar(select(Person).where(Person.email == ENGLISH))
        assert james is not None and james.locale == "it"
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.person_id == james.id)
        )
        assert identity is not None
        assert (identity.channel, identity.external_id, identity.address) == (
            ChannelName.slack,
            "U0JAMES",
            dm,
        )


async def test_unlinked_person_is_matched_by_email_when_they_write(
    db: Database, clock: ManualClock, database_url: str, fake: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(fake, clock, database_url):
        help_text = await _answer(fake, "U0MARCO", "aiuto")
        assert help_text.startswith("Ciao Marco Bianchi")
        stranger = await _answer(fake, "U0GUEST", "help")
        assert "I do not know you yet" in stranger
        assert "work email" in stranger

        dm = fake.dm_channel_of("U0MARCO")
        before = len(fake.messages_in(dm))
        assert await fake.slash_command("U0MARCO", "whoami") == 200
        whoami = (await fake.wait_for_messages(dm, before + 1))[before]
        assert "marco.bianchi@demo.fidelio.example" in (whoami.text or "")
        assert "canale: slack" in (whoami.text or "")


async def test_forged_and_stale_signatures_are_refused(
    db: Database, clock: ManualClock, database_url: str, fake: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(fake, clock, database_url):
        import time

        assert await fake.send_dm("U0JAMES", "help", signing_secret="not-the-secret") == 401
        assert await fake.send_dm("U0JAMES", "help", timestamp=int(time.time()) - 6 * 60) == 401
        assert await fake.slash_command("U0JAMES", "status", signing_secret="forged") == 401
        assert (
            await fake.press_raw("U0JAMES", "fidelio:0", "language|it|x", signing_secret="f") == 401
        )
        # A genuine request still works, and is the only one that was processed.
        assert "Hi James Whitaker" in await _answer(fake, "U0JAMES", "help")
    assert len(fake.messages_in(fake.dm_channel_of("U0JAMES"))) == 1
    async with db.session() as session:
        processed = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert processed == 1


async def test_slack_retries_are_processed_once(
    db: Database, clock: ManualClock, database_url: str, fake: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    async with running_on_slack(fake, clock, database_url):
        await _answer(fake, "U0JAMES", "whoami", event_id="Ev0RETRY1")
        dm = fake.dm_channel_of("U0JAMES")
        for attempt in (1, 2):
            assert (
                await fake.send_dm("U0JAMES", "whoami", event_id="Ev0RETRY1", retry_num=attempt)
                == 200
            )
        # A later, different event is answered; the retries before it were not.
        assert "Hi James" in await _answer(fake, "U0JAMES", "help")
    texts = [m.text or "" for m in fake.messages_in(dm)]
    assert len(texts) == 2, texts


async def test_socket_mode_round_trip(
    db: Database, clock: ManualClock, database_url: str, fake: FakeSlackServer
) -> None:
    await load_demo(db, clock)
    settings = make_settings(
        database_url,
        slack={
            "enabled": True,
            "mode": "socket",
            "bot_token": fake.bot_token,
            "app_token": fake.app_token,
            "base_url": fake.base_url,
        },
    )
    async with running(settings, clock):
        await fake.wait_socket_connected()
        assert "Hi James Whitaker" in await _answer(fake, "U0JAMES", "help")
        dm = fake.dm_channel_of("U0JAMES")
        assert await fake.press_raw("U0JAMES", "fidelio:0", "language|it|forged000000") == 200
        refused = (await fake.wait_for_messages(dm, 2))[1]
        assert "no longer valid" in (refused.text or "")
