"""Helpers for end-to-end tests: settings pointed at the fakes, a running Fidelio, dialogs."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.app import Runtime, build_runtime
from bot.clock import Clock
from bot.config import Settings
from bot.db.models import ChannelName, Person
from bot.db.session import Database
from bot.identities import link
from bot.people import import_people, person_by_email
from bot.people.invites import issue_invites

REPO = Path(__file__).resolve().parent.parent
DEMO_PEOPLE = REPO / "content" / "demo" / "people.csv"
#: 48 bytes: a key `fidelio run` accepts with Telegram or Slack enabled (at least 32 bytes).
STRONG_KEY = "vH3kq9ZpX2mL7wR4tY8uN1cB6dF0gJ5sA-eK_iO3pQ9zT2xW"


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
        before = len(self.fake.messages_to(self.user_id))
        await self.fake.send_text(self.user_id, text)
        messages = await self.fake.wait_for_messages(self.user_id, before + replies)
        return list(messages[before : before + replies])

    async def press(
        self, label: str, *, replies: int = 1, message_id: int | None = None
    ) -> list[str]:
        """Press a button (on the latest message with buttons, or on ``message_id``)."""
        before = len(self.fake.messages_to(self.user_id))
        await self.fake.press(self.user_id, label, message_id=message_id)
        messages = await self.fake.wait_for_messages(self.user_id, before + replies)
        return [m.text or "" for m in messages[before : before + replies]]

    async def press_data(self, data: str, *, message_id: int = 1, replies: int = 1) -> list[str]:
        """Press a button carrying ``data`` (forged, stale or another person's) on
        ``message_id``; return the texts of the next ``replies`` messages."""
        before = len(self.fake.messages_to(self.user_id))
        await self.fake.press_data(self.user_id, message_id, data)
        messages = await self.fake.wait_for_messages(self.user_id, before + replies)
        return [m.text or "" for m in messages[before : before + replies]]

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
        before = len(self.fake.messages_in(self.dm))
        assert await self.fake.send_dm(self.user_id, text, **kwargs) == 200
        messages = await self.fake.wait_for_messages(self.dm, before + replies)
        return [m.text or "" for m in messages[before : before + replies]]

    async def press(self, label: str, *, replies: int = 1, **kwargs: Any) -> list[str]:
        """Press the button ``label`` (newest message with it) and return the next replies."""
        before = len(self.fake.messages_in(self.dm))
        assert await self.fake.press(self.user_id, label, **kwargs) == 200
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
