"""Helpers for end-to-end tests: settings pointed at the fakes, a running Fidelio, dialogs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Runtime, build_runtime
from bot.briefings.content import load_briefing
from bot.clock import Clock, ManualClock
from bot.config import Settings
from bot.console_session import console_person
from bot.db.models import ChannelName, Person, ProcessedEvent
from bot.db.session import Database
from bot.identities import link
from bot.people import import_people, person_by_email
from bot.people.invites import issue_invites

from .fakes.telegram import FakeTelegramServer

REPO = Path(__file__).resolve().parent.parent
DEMO_PEOPLE = REPO / "content" / "demo" / "people.csv"
#: 48 bytes: a key `fidelio run` accepts with Telegram or Slack enabled (at least 32 bytes).
STRONG_KEY = "vH3kq9ZpX2mL7wR4tY8uN1cB6dF0gJ5sA-eK_iO3pQ9zT2xW"


def fake_telegram(name: str, rate_scale: float) -> Any:
    """A fixture ``name``: a fake Telegram server ``rate_scale`` times faster than the real one."""

    @pytest.fixture(name=name)
    async def fixture() -> AsyncIterator[FakeTelegramServer]:
        async with FakeTelegramServer(rate_scale=rate_scale) as server:
            yield server

    return fixture


def make_settings(database_url: str, **sections: Any) -> Settings:
    """Settings for a test: given database, repo content, no console unless asked, fast polling."""
    data: dict[str, Any] = {
        "database": {"url": database_url},
        "content_dir": str(REPO / "content"),
        "console": {"enabled": False},
        "organisation": {"name": "Demo Elettronica"},
        "scheduler": {"outbox_poll_s": 0.05},
        "security": {"secret_key": "test-secret-key"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)


def telegram_section(fake: Any, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "token": fake.token,
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout_s": 1,
        "request_timeout_s": 5.0,
        **extra,
    }


def slack_section(fake: Any, port: int | None = None, **extra: Any) -> dict[str, Any]:
    """The ``slack`` section for HTTP mode on ``port`` (a free one when not given)."""
    return {
        "enabled": True,
        "mode": "http",
        "bot_token": fake.bot_token,
        "signing_secret": fake.signing_secret,
        "base_url": fake.base_url,
        "http_port": free_port() if port is None else port,
        "request_timeout_s": 5.0,
        **extra,
    }


def fast_rates(scale: float) -> dict[str, float | int]:
    """Fidelio's pacing for fakes running ``scale`` times faster than the real platforms."""
    return {
        "telegram_per_chat_per_s": scale,
        "telegram_global_per_s": 20 * scale,
        "slack_per_channel_per_s": scale,
        "slack_global_per_s": 20 * scale,
        "slack_views_per_min": int(90 * scale),
    }


@asynccontextmanager
async def running_on_slack(
    fake: Any,
    clock: Clock,
    database_url: str,
    *,
    background: bool = True,
    slack: dict[str, Any] | None = None,
    **sections: Any,
) -> AsyncIterator[Runtime]:
    """Fidelio running (see :func:`running`) with Slack in HTTP mode on a free port, the fake
    posting its events there; ``slack`` adds to that section, ``sections`` to the settings."""
    port = free_port()
    section = slack_section(fake, port, **(slack or {}))
    settings = make_settings(database_url, slack=section, **sections)
    async with running(settings, clock, background=background) as runtime:
        fake.set_request_url(f"http://127.0.0.1:{port}/slack/events")
        yield runtime


def telegram_webhook(fake: Any, port: int, secret: str) -> dict[str, Any]:
    """The ``telegram`` section for webhook mode on ``port`` of this machine."""
    return telegram_section(
        fake,
        mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
        webhook_secret=secret,
        webhook_port=port,
    )


def telegram_text_update(
    update_id: int, chat_id: int, text: str, *, message_id: int | None = None, **sender: Any
) -> dict[str, Any]:
    """A Bot API update: James writes ``text`` in his private chat ``chat_id`` (a command
    gets its entity); ``message_id`` defaults to ``update_id``, ``sender`` adds to ``from``."""
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id if message_id is None else message_id,
            "date": 1_700_000_000,
            "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "James"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "James", **sender},
            "entities": entities if text.startswith("/") else [],
        },
    }


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (polling every 20 ms) until ``condition()`` holds; TimeoutError after ``timeout`` s."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


async def times_processed(db: Database, event_id: str) -> int:
    """How many ``processed_event`` rows hold ``event_id``."""
    async with db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.event_id == event_id)
        )
    return int(count or 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load_demo(db: Database, clock: Clock) -> None:
    await import_people(db, DEMO_PEOPLE, clock)


async def invite_code(db: Database, email: str, clock: Clock, hours: int = 24) -> str:
    async with db.session() as session:
        person = await person_by_email(session, email)
        assert person is not None, email
        await session.refresh(person, ["team"])
        issued = await issue_invites(session, [person], clock, timedelta(hours=hours))
        return issued[0].code


@asynccontextmanager
async def running(
    settings: Settings, clock: Clock, *, background: bool = True
) -> AsyncIterator[Runtime]:
    """A started Fidelio (channels, and unless ``background=False`` the scheduler and the
    outbox loop) that is stopped afterwards."""
    runtime = build_runtime(settings, clock=clock)
    await runtime.start(sync_slack=False, background=background)
    try:
        yield runtime
    finally:
        await runtime.stop()


class TelegramDialog:
    """One person talking to Fidelio through the fake Telegram server."""

    def __init__(self, fake: Any, user_id: int):
        self.fake = fake
        self.user_id = user_id

    async def say(self, text: str, *, replies: int = 1) -> list[str]:
        """Send a text and return the texts of the next ``replies`` messages Fidelio sends."""
        return [m.text or "" for m in await self.say_for_messages(text, replies=replies)]

    async def say_for_messages(self, text: str, *, replies: int = 1) -> list[Any]:
        """Like :meth:`say`, but return the sent messages themselves (photos, buttons, ...)."""
        return await self.replies_to(self.fake.send_text(self.user_id, text), replies)

    async def press(
        self, label: str, *, replies: int = 1, message_id: int | None = None
    ) -> list[str]:
        """Press a button (on the latest message with buttons, or on ``message_id``)."""
        action = self.fake.press(self.user_id, label, message_id=message_id)
        return [m.text or "" for m in await self.replies_to(action, replies)]

    async def press_data(self, data: str, *, message_id: int = 1, replies: int = 1) -> list[str]:
        """Press a button carrying ``data`` (forged, stale or another person's) on
        ``message_id``; return the texts of the next ``replies`` messages."""
        action = self.fake.press_data(self.user_id, message_id, data)
        return [m.text or "" for m in await self.replies_to(action, replies)]

    async def replies_to(self, action: Awaitable[Any], replies: int) -> list[Any]:
        """Run ``action`` (not yet started) and return the next ``replies`` messages sent."""
        before = len(self.fake.messages_to(self.user_id))
        await action
        messages = await self.fake.wait_for_messages(self.user_id, before + replies)
        return list(messages[before : before + replies])

    def last_message(self) -> Any:
        return self.fake.last_message(self.user_id)


class SlackDialog:
    """One person talking to Fidelio in their DM on the fake Slack server."""

    def __init__(self, fake: Any, user_id: str):
        self.fake = fake
        self.user_id = user_id
        self.dm = fake.dm_channel_of(user_id)

    async def say(self, text: str, *, replies: int = 1, **kwargs: Any) -> list[str]:
        """Write ``text`` in the DM (the app must accept it) and return the texts of the next
        ``replies`` messages Fidelio posts there; ``kwargs`` go to ``send_dm``."""
        return await self.replies_to(self.fake.send_dm(self.user_id, text, **kwargs), replies)

    async def press(self, label: str, *, replies: int = 1, **kwargs: Any) -> list[str]:
        """Press the button ``label`` (newest message with it) and return the next replies."""
        return await self.replies_to(self.fake.press(self.user_id, label, **kwargs), replies)

    async def replies_to(self, action: Awaitable[int], replies: int) -> list[str]:
        """Run ``action`` (not yet started; the app must answer it 200) and return the texts
        of the next ``replies`` messages posted in the DM."""
        before = len(self.fake.messages_in(self.dm))
        assert await action == 200
        messages = await self.fake.wait_for_messages(self.dm, before + replies)
        return [m.text or "" for m in messages[before : before + replies]]

    def last_message(self) -> Any:
        return self.fake.last_message(self.dm)


class ConsoleDialog:
    """In-process console conversation: the dispatcher and the console port, no subprocess."""

    def __init__(self, runtime: Runtime, email: str):
        import io

        self.runtime = runtime
        self.email = email
        self.console = runtime.channels["console"]
        self.console.out = io.StringIO()
        self.console.active = email

    async def say(self, text: str) -> str:
        out = self.console.out
        start = out.tell()
        event = self.console.event_for(text, self.email)
        if event is not None:  # None: the console itself asked again
            await self.runtime.dispatcher.handle(event)
        out.seek(start)
        written = out.read()
        return written

    async def press(self, number: int) -> str:
        return await self.say(str(number))


async def schedule_demo_briefing(runtime: Runtime) -> Any:
    """HR schedules the demo briefing ``spring-trade-in``; returns its campaign."""
    briefing = load_briefing(REPO / "content" / "briefings", "spring-trade-in")
    campaign, _ = await runtime.service("briefings").schedule(briefing, actor="hr")
    return campaign


async def link_on_console(runtime: Runtime, *emails: str) -> None:
    """Link each of ``emails`` on the console, as its first message there would."""
    for email in emails:
        await console_person(runtime, email)


@asynccontextmanager
async def demo_console(
    db: Database,
    clock: ManualClock,
    database_url: str,
    *emails: str,
    at: datetime | None = None,
    **sections: Any,
) -> AsyncIterator[Runtime]:
    """The demo loaded, the clock set to ``at`` (when given) and a console runtime (the
    console enabled, ``sections`` added to the settings) with ``emails`` linked there."""
    await load_demo(db, clock)
    if at is not None:
        clock.set(at)
    settings = make_settings(database_url, console={"enabled": True}, **sections)
    async with console_runtime(settings, clock) as runtime:
        await link_on_console(runtime, *emails)
        yield runtime


@asynccontextmanager
async def console_runtime(settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    """A runtime with only the console port wired (nothing started, no network)."""
    runtime = build_runtime(settings, clock=clock, with_console=True)
    try:
        yield runtime
    finally:
        await runtime.db.dispose()


async def link_everyone_on_telegram(
    db: Database,
    fake: Any,
    clock: Clock,
    user_id: Callable[[int], int],
    *,
    language_code: str | None = None,
) -> dict[str, Person]:
    """Give every person in the directory an account on the fake Telegram server (chat id
    ``user_id(person id)``) and link it; returns the people by e-mail."""
    async with db.session() as session:
        people = list(await session.scalars(select(Person).order_by(Person.id)))
        for person in people:
            chat = user_id(person.id)
            fake.add_user(chat, person.name.split()[0], language_code=language_code)
            await link(session, person, ChannelName.telegram, str(chat), str(chat), clock)
    return {p.email: p for p in people}
