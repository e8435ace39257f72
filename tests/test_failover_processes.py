"""Failover with two real ``fidelio run`` processes on one PostgreSQL database.

The active one is SIGKILLed in the middle of a broadcast, shortly before a pulse round's
closing time. What must hold:

* the passive one takes over within ``scheduler.failover_s`` (its ``/healthz`` says so);
* the broadcast completes and the round closes once, after the kill, on the survivor;
* every delivery arrives once, except the Telegram sends the killed process had in flight
  (their outcome is unknown): those arrive at most once more, and are counted; on Slack
  they are found in the chat's history by their delivery key and not sent again;
* the killed instance, restarted, stays passive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.db.models import AuditEntry, Delivery, DeliveryStatus
from bot.db.session import Database
from bot.pulse.tables import RoundStatus, SurveyRound

from .fakes.slack import FakeSlackServer
from .fakes.telegram import FakeTelegramServer
from .harness import free_port
from .processes import (
    Fidelio,
    World,
    all_settled,
    copies,
    deliveries,
    populate,
    schedule_briefing,
    schedule_pulse,
    until,
    write_config,
)

pytestmark = pytest.mark.slow

FAILOVER_S = 3.0
BATCH = 8
BROADCAST = "Failover broadcast"
PULSE = "Failover pulse"


@dataclass
class Pair:
    world: World
    instances: list[Fidelio]
    #: The operations port (``/healthz``) of each instance.
    ops: list[int]


@pytest.fixture
async def pair(tmp_path: Path, database_url: str) -> AsyncIterator[Pair]:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: a SQLite file is served by one process")
    db = Database(database_url)
    async with (
        FakeTelegramServer(rate_scale=20.0) as telegram,
        FakeSlackServer(rate_scale=20.0) as slack,
    ):
        reach, active = await populate(db, telegram, slack)
        instances, ops = [], []
        for name in ("first", "second"):
            webhook, ops_port = free_port(), free_port()
            config = write_config(
                tmp_path / f"{name}.yaml",
                database_url,
                telegram,
                slack,
                # Behind a load balancer each instance serves the Telegram webhook.
                telegram={
                    "mode": "webhook",
                    "webhook_url": f"http://127.0.0.1:{webhook}/telegram/webhook",
                    "webhook_secret": "failover-secret",
                    "webhook_port": webhook,
                },
                rates={"telegram_global_per_s": 8, "slack_global_per_s": 8},
                outbox={"batch_size": BATCH, "retry_unknown": 1},
                scheduler={"sweep_s": 0.5, "outbox_poll_s": 0.1, "failover_s": FAILOVER_S},
                operations={"http_enabled": True, "http_port": ops_port},
            )
            instances.append(Fidelio(config, tmp_path / f"{name}.log"))
            ops.append(ops_port)
        world = World(
            db, database_url, config, tmp_path / "first.log", telegram, slack, reach, active
        )
        try:
            yield Pair(world, instances, ops)
        finally:
            for instance in instances:
                await instance.stop()
    await db.dispose()


async def role(port: int) -> str:
    """The role an instance's ``/healthz`` reports (it must be healthy either way)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            report = json.loads(await response.text())
            assert response.status == 200, report
            return str(report["role"])


async def the_round(db: Database) -> SurveyRound:
    async with db.session() as session:
        [round_] = list(await session.scalars(select(SurveyRound)))
        return round_


async def schedule_work(world: World) -> datetime:
    """A pulse round open since shortly before now, closing at the first whole minute at
    least 20 s away (cadences are whole minutes); a broadcast starting 3 s before that.
    Returns the closing time."""
    now = datetime.now(UTC)
    close_at = (now + timedelta(seconds=80)).replace(second=0, microsecond=0)
    opens = close_at - timedelta(minutes=2)
    await schedule_pulse(world, PULSE, f"{opens.minute} {opens.hour} * * *", "2m", "UTC")
    brief_at = (close_at - timedelta(seconds=3)).isoformat(timespec="seconds")
    await schedule_briefing(world, "failover", BROADCAST, brief_at)
    return close_at


async def leases_of_the_dead(db: Database, at_kill: dict[int, datetime | None]) -> set[str]:
    """The killed process's sends in flight, their outcome unknown: rows leased before the
    kill whose lease is unchanged once the survivor has settled everything else. Their
    lease would run out after ``bot.outbox.LEASE`` (2 minutes); it is made to run out now,
    and the survivor then treats them as any expired lease (retried once)."""

    async def survivor_done() -> bool:
        rows = await deliveries(db)
        return all(
            row.status != DeliveryStatus.sending or at_kill.get(row.id, False) == row.claimed_until
            for row in rows
        ) and all(row.status != DeliveryStatus.pending for row in rows)

    await until(survivor_done, 60, "the survivor to send everything it could")
    stuck = [
        row
        for row in await deliveries(db)
        if row.status == DeliveryStatus.sending and at_kill.get(row.id) == row.claimed_until
    ]
    async with db.session() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_([row.id for row in stuck]))
            .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    return {row.key for row in stuck}


async def kill_mid_broadcast(
    pair: Pair, close_at: datetime
) -> tuple[dict[int, datetime | None], float]:
    """Wait for the invitations, then for a quarter of the broadcast; SIGKILL the active
    instance. Returns the leases at the kill and the time to the survivor's takeover."""
    world, everyone = pair.world, pair.world.active

    async def invited() -> bool:
        return all(copies(world, p, PULSE) for p in everyone)

    async def a_quarter() -> bool:
        return sum(copies(world, p, BROADCAST) for p in everyone) >= len(everyone) // 4

    await until(invited, 60, "the pulse invitations")
    # The broadcast starts 3 s before the closing time, which may be up to 80 s away.
    starts_in = (close_at - datetime.now(UTC)).total_seconds()
    await until(a_quarter, starts_in + 60, "a quarter of the broadcast")
    await pair.instances[0].kill()
    killed = time.monotonic()
    at_kill = {row.id: row.claimed_until for row in await deliveries(world.db)}
    assert datetime.now(UTC) < close_at, "the kill must come before the round's closing time"
    received = sum(copies(world, p, BROADCAST) for p in everyone)
    assert 0 < received < len(everyone), "the kill must come in the middle of the broadcast"
    while await role(pair.ops[1]) != "active":
        assert time.monotonic() - killed < FAILOVER_S, "no takeover within failover_s"
        await asyncio.sleep(0.05)
    return at_kill, time.monotonic() - killed


def tally(world: World, rows: list[Delivery], in_flight: set[str]) -> dict[str, int]:
    """Copies per delivery: exactly one, or for a send in flight at the kill one or two
    (or none, left ``unknown``). Returns the duplicates per platform."""
    titles = {"briefing": BROADCAST, "pulse": PULSE}
    duplicates = {"telegram": 0, "slack": 0}
    for row in rows:
        kind = row.key.split(":")[0]
        if kind not in titles:
            continue  # what the closing itself sends (digests): not part of the broadcast
        got = copies(world, row.person_id, titles[kind])
        if row.key in in_flight:
            assert got <= 2 and (got >= 1 or row.status == DeliveryStatus.unknown), (row, got)
            duplicates[world.reach[row.person_id][0]] += max(got - 1, 0)
        else:
            assert got == 1 and row.status == DeliveryStatus.sent, (row.key, row.status, got)
    return duplicates


async def test_the_passive_instance_takes_over_a_broadcast_and_a_closing(pair: Pair) -> None:
    world = pair.world
    first, second = pair.instances
    close_at = await schedule_work(world)
    await first.start()
    await second.start()
    assert [await role(port) for port in pair.ops] == ["active", "passive"]

    at_kill, took_over = await kill_mid_broadcast(pair, close_at)

    async def closed() -> bool:
        return (await the_round(world.db)).status == RoundStatus.closed

    await until(closed, 120, "the round to close")
    in_flight = await leases_of_the_dead(world.db, at_kill)
    await until(lambda: all_settled(world.db), 60, "the outbox to settle")

    # The killed instance comes back: the survivor keeps the lock.
    await first.start()
    await asyncio.sleep(FAILOVER_S)
    assert [await role(port) for port in pair.ops] == ["passive", "active"]
    await first.stop()
    await second.stop()

    round_ = await the_round(world.db)
    assert round_.closed_at is not None and round_.closed_at >= close_at
    async with world.db.session() as session:
        closes = [
            entry
            for entry in await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "survey.close")
            )
            if entry.detail["round"] == round_.id
        ]
    assert len(closes) == 1
    rows = await deliveries(world.db)
    assert len(in_flight) <= BATCH
    duplicates = tally(world, rows, in_flight)
    # Slack: what was in flight is found in the DM's history by its metadata, not re-sent.
    assert duplicates["slack"] == 0
    print(
        f"\nfailover: taken over in {took_over:.2f}s (failover_s={FAILOVER_S}); "
        f"{len(rows)} deliveries, {len(in_flight)} in flight at the kill, duplicates "
        f"{duplicates}; the round closed once, {round_.closed_at - close_at} after its time"
    )
