"""Helpers for end-to-end tests: settings pointed at the fakes, a running Fidelio, dialogs."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import Runtime, build_runtime
from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database
from bot.invites import issue_invites
from bot.people import import_people, person_by_email

REPO = Path(__file__).resolve().parent.parent
DEMO_PEOPLE = REPO / "content" / "demo" / "people.csv"


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
async def running(settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    """A started Fidelio (channels, scheduler, outbox) that is stopped afterwards."""
    runtime = build_runtime(settings, clock=clock)
    await runtime.start(sync_slack=False)
    try:
        yield runtime
    finally:
        await runtime.stop()
