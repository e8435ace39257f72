"""Test infrastructure and scheduler wiring."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.db.models import ProcessedEvent
from bot.db.session import Database
from scheduler import Scheduler

from .harness import make_settings


def test_guard_refuses_connections_outside_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.1)
        with pytest.raises(AssertionError, match="outside loopback"):
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed


def test_guard_allows_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


async def test_only_one_scheduler_is_active_on_postgres(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url)
    first, second = Scheduler(settings, db, clock), Scheduler(settings, db, clock)
    await first.start()
    await second.start()
    try:
        assert first.active
        # SQLite is single-process by design; PostgreSQL holds an advisory lock.
        assert second.active is db.is_sqlite
    finally:
        await second.stop()
        await first.stop()
    assert not first.scheduler.running and not second.scheduler.running


async def test_old_event_ids_are_forgotten(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with db.session() as session:
        session.add(ProcessedEvent(channel="telegram", event_id="old", processed_at=clock.now()))
    clock.advance(timedelta(days=8))
    async with db.session() as session:
        session.add(ProcessedEvent(channel="telegram", event_id="new", processed_at=clock.now()))
    assert await Scheduler(make_settings(database_url), db, clock).prune_processed_events() == 1
