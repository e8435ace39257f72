"""Test infrastructure and scheduler wiring."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
from sqlalchemy import text

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


async def test_a_dead_pooled_connection_is_replaced_before_use(database_url: str) -> None:
    """PostgreSQL: a pooled connection that was idle long enough is pinged at checkout, and
    one whose server process is gone is replaced instead of failing the transaction."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    db = Database(database_url, ping_after_idle_s=0.0)
    other = Database(database_url)
    try:
        async with db.session() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        async with other.session() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)
        async with db.session() as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await other.dispose()
        await db.dispose()
