"""Fan-out benchmark: one briefing-style broadcast through the fake Telegram and Slack servers.

Run from the repository root (it is a benchmark, not a test; nothing asserts its figures)::

    .venv/bin/python -m bench.fanout [--people 5000] [--scale 5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/<db>]

For each platform in turn: start the fake server in this process on 127.0.0.1 with its rate
limits multiplied by ``--scale``, create ``--people`` people linked to accounts on it (bulk
inserts with SQLAlchemy core), enqueue one delivery per person with :func:`bot.outbox.enqueue`,
then let the real :class:`bot.outbox.OutboxDispatcher` (``build_runtime`` with only that channel
enabled and started) send them while a background task injects 429s and 5xx answers. Fidelio's
own pacing (``rates.*_global_per_s``) is set to the fake's enforced global limit times
:data:`PACING`; per-chat limits stay enforced on both sides, but nobody gets two messages.

Reported per platform: messages per second achieved, the enforced limit, their ratio, people
who got more than one message (duplicates) or none / whose row is not ``sent`` (lost), the 429s
and 5xx seen, and the process's peak resident memory. The last line of output is one JSON
object with the headline figures.

The database is SQLite in a temporary folder unless ``--database-url`` names a PostgreSQL
server: then a scratch database ``<db>_fanout_<pid>`` is created there, migrated, and dropped
at the end (``<db>`` itself is never touched).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform as host_platform
import resource
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.progress import Progress, TaskID
from sqlalchemy import func, select
from telegram.warnings import PTBDeprecationWarning

from bench.common import (
    insert_identities,
    insert_people,
    loopback_only,
    results_table,
    scratch_database,
    task_progress,
)
from bot.app import build_runtime
from bot.clock import SystemClock
from bot.db.models import ChannelName, Delivery, DeliveryStatus
from bot.db.session import Database
from bot.locale import language_choice, language_name
from bot.outbox import RunStats, enqueue
from bot.replies import Reply, ReplyButton
from bot.settings_section import SUPPORTED_LOCALES
from tests.fakes.slack import FakeSlackServer, SlackUser
from tests.fakes.telegram import FakeTelegramServer
from tests.harness import free_port, make_settings, telegram_section

#: Fidelio's global pace as a fraction of the fake's enforced limit. No margin is needed: the
#: Sender's WindowLimiter keeps a send's slot until a second after its answer, so however the
#: requests are delayed on the way, the platform never counts more than the rate in a window.
PACING = 1.0
#: The platforms' published limits that the fakes model (messages per second).
TELEGRAM_GLOBAL_PER_S = 30.0
TELEGRAM_PER_CHAT_PER_S = 1.0
SLACK_WORKSPACE_PER_S = 50.0
SLACK_PER_CHANNEL_PER_S = 1.0
#: Faults are injected only during this leading fraction of the expected phase duration, so
#: their retries are folded into the stream instead of trailing behind it.
FAULT_WINDOW = 0.6
#: A phase that takes this many times its expected duration is abandoned (and reported).
PHASE_TIMEOUT_FACTOR = 6.0
FIRST_NAMES = ("Giulia", "Marco", "Sara", "Luca", "Anna", "Paolo", "Elena", "Davide", "Chiara")
LAST_NAMES = ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno")


# Platforms


class Target(Protocol):
    """One fake platform as the benchmark drives it."""

    name: ChannelName
    limit_per_s: float

    def account(self, index: int, email: str, name: str) -> tuple[str, str]:
        """Create account ``index`` on the fake; returns (external id, address) to link."""
        ...

    def settings_sections(self) -> dict[str, Any]:
        """``make_settings`` sections enabling only this channel, paced to the fake."""
        ...

    def inject(self, fault: str) -> None:
        """Make the next send fail with ``fault`` ("429" or a 5xx kind)."""
        ...

    @property
    def server_errors(self) -> tuple[str, ...]:
        """The 5xx fault kinds this fake can inject."""
        ...

    def accepted(self) -> int:
        """Sends the fake has accepted so far."""
        ...

    def last_accepted_at(self) -> float | None:
        """``time.monotonic()`` when the last accepted send arrived."""
        ...

    def copies(self, address: str) -> list[str]:
        """Platform message ids of every message delivered to ``address``."""
        ...

    def answers(self, status: int) -> int:
        """Send calls the fake answered with HTTP ``status``."""
        ...

    @property
    def rate_limited(self) -> int:
        """429s the fake answered (flood control and injected)."""
        ...


class FakeApiTarget:
    """What both fakes answer alike: their recorded send calls (method ``_SEND``), faults
    injected on that method, their 429 count. A subclass sets ``fake`` and ``_SEND``."""

    fake: Any
    _SEND: str

    def inject(self, fault: str) -> None:
        self.fake.inject(fault, method=self._SEND, retry_after=1)

    def _sends(self) -> list[Any]:
        return [call for call in self.fake.calls if call.method == self._SEND]

    def accepted(self) -> int:
        return sum(1 for call in self._sends() if call.status == 200)

    def last_accepted_at(self) -> float | None:
        return max((call.at for call in self._sends() if call.status == 200), default=None)

    def answers(self, status: int) -> int:
        return sum(1 for call in self._sends() if call.status == status)

    @property
    def rate_limited(self) -> int:
        return self.fake.rate_limited


class TelegramTarget(FakeApiTarget):
    """The fake Telegram Bot API: global limit ``30/s × scale``, ``1/s × scale`` per chat."""

    name = ChannelName.telegram
    server_errors = ("500", "502")
    _SEND = "sendMessage"

    def __init__(self, scale: float):
        self.fake = FakeTelegramServer(
            per_chat_per_s=TELEGRAM_PER_CHAT_PER_S,
            global_per_s=TELEGRAM_GLOBAL_PER_S,
            rate_scale=scale,
        )
        self.scale = scale
        self.limit_per_s = TELEGRAM_GLOBAL_PER_S * scale

    def account(self, index: int, email: str, name: str) -> tuple[str, str]:
        user_id = 100_000 + index
        self.fake.add_user(user_id, name.split()[0])
        return str(user_id), str(user_id)  # a private chat's id is the user's id

    def settings_sections(self) -> dict[str, Any]:
        return {
            "telegram": telegram_section(self.fake, request_timeout_s=10.0),
            "rates": {
                "telegram_global_per_s": self.limit_per_s * PACING,
                "telegram_per_chat_per_s": TELEGRAM_PER_CHAT_PER_S * self.scale,
            },
        }

    def copies(self, address: str) -> list[str]:
        return [str(message.message_id) for message in self.fake.messages_to(int(address))]


class SlackTarget(FakeApiTarget):
    """The fake Slack Web API: ``50/s × scale`` per workspace, ``1/s × scale`` per channel."""

    name = ChannelName.slack
    server_errors = ("500", "503")
    _SEND = "chat.postMessage"

    def __init__(self, scale: float):
        self.fake = FakeSlackServer(
            per_channel_per_s=SLACK_PER_CHANNEL_PER_S,
            workspace_per_s=SLACK_WORKSPACE_PER_S,
            rate_scale=scale,
        )
        self.scale = scale
        self.limit_per_s = SLACK_WORKSPACE_PER_S * scale

    def account(self, index: int, email: str, name: str) -> tuple[str, str]:
        user_id = f"U{index:09d}"
        self.fake.add_user(SlackUser(user_id, email, name.split()[0]))
        return user_id, self.fake.dm_channel_of(user_id)

    def settings_sections(self) -> dict[str, Any]:
        return {
            "slack": {
                "enabled": True,
                "mode": "http",  # inbound traffic is not part of this benchmark
                "bot_token": self.fake.bot_token,
                "signing_secret": self.fake.signing_secret,
                "base_url": self.fake.base_url,
                "http_port": free_port(),
                "request_timeout_s": 10.0,
            },
            "rates": {
                "slack_global_per_s": self.limit_per_s * PACING,
                "slack_per_channel_per_s": SLACK_PER_CHANNEL_PER_S * self.scale,
            },
        }

    def copies(self, address: str) -> list[str]:
        return [message.ts for message in self.fake.messages_in(address)]


# Results


@dataclass
class PhaseResult:
    """What one platform's broadcast achieved."""

    platform: str
    people: int
    limit_per_s: float
    pacing_per_s: float
    accepted: int = 0
    send_window_s: float = 0.0
    settled_s: float = 0.0
    duplicates: int = 0
    lost: int = 0
    id_mismatches: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    injected_429: int = 0
    injected_5xx: int = 0
    fake_429: int = 0
    fake_5xx: int = 0
    stats: RunStats = field(default_factory=RunStats)
    timed_out: bool = False
    peak_rss_mb: float = 0.0

    @property
    def rate_per_s(self) -> float:
        """Accepted sends per second, from the dispatcher's start to the last accepted send."""
        return self.accepted / self.send_window_s if self.send_window_s > 0 else 0.0

    @property
    def ratio(self) -> float:
        return self.rate_per_s / self.limit_per_s


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (``getrusage`` ``ru_maxrss``), in MB."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


# Setup


async def create_people(db: Database, target: Target, count: int) -> list[tuple[int, str, str]]:
    """Bulk-insert ``count`` people with an account on ``target``; (person id, locale, address)."""
    async with db.session() as session:
        people = await insert_people(
            session,
            count,
            prefix=target.name.value,
            per_team=100,
            name_of=lambda i: (
                f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[i // 7 % len(LAST_NAMES)]}"
            ),
            locale_of=lambda i: "it" if i % 4 == 0 else "en",
        )
        linked: list[tuple[int, str, str]] = []
        accounts: list[tuple[int, str, str]] = []
        for index, (person_id, email, name, locale) in enumerate(people):
            external_id, address = target.account(index, email, name)
            accounts.append((person_id, external_id, address))
            linked.append((person_id, locale, address))
        await insert_identities(session, target.name, accounts)
    return linked


def briefing(locale: str) -> Reply:
    """The message every person gets: the language picker, with its two buttons."""
    return Reply(
        "language/choose",
        {"current": language_name(locale, locale)},
        buttons=tuple(
            ReplyButton(language_choice(code), "language", code) for code in SUPPORTED_LOCALES
        ),
    )


async def enqueue_all(db: Database, target: Target, people: Sequence[tuple[int, str, str]]) -> None:
    """One delivery per person through :func:`bot.outbox.enqueue`, keyed per campaign."""
    now = datetime.now(UTC)
    for start in range(0, len(people), 500):
        async with db.session() as session:
            for person_id, locale, _address in people[start : start + 500]:
                await enqueue(
                    session,
                    key=f"fanout:{target.name.value}:{person_id}",
                    person_id=person_id,
                    purpose="briefing",
                    reply=briefing(locale),
                    now=now,
                )


async def due_rows(db: Database) -> int:
    """Rows still waiting or in flight (every row of the running phase, none of the others)."""
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status.in_((DeliveryStatus.pending, DeliveryStatus.sending)))
            )
            or 0
        )


# One phase


async def inject_faults(target: Target, expected_s: float, count_429: int, count_5xx: int) -> None:
    """Spread ``count_429`` 429s and ``count_5xx`` 5xx answers over the first part of the run."""
    kinds: list[str] = []
    for i in range(max(count_429, count_5xx)):
        if i < count_429:
            kinds.append("429")
        if i < count_5xx:
            kinds.append(target.server_errors[i % len(target.server_errors)])
    interval = expected_s * FAULT_WINDOW / max(1, len(kinds))
    for kind in kinds:
        await asyncio.sleep(interval)
        target.inject(kind)


async def run_phase(
    target: Target, database_url: str, people: Sequence[tuple[int, str, str]], progress: Progress
) -> PhaseResult:
    """Send the queued broadcast to everyone on ``target`` with the real outbox; measure it."""
    sections = target.settings_sections()
    pacing = float(next(v for k, v in sections["rates"].items() if k.endswith("global_per_s")))
    result = PhaseResult(target.name.value, len(people), target.limit_per_s, pacing)
    expected_s = len(people) / target.limit_per_s
    result.injected_429 = result.injected_5xx = max(1, len(people) // 250)

    settings = make_settings(database_url, **sections)
    runtime = build_runtime(settings, clock=SystemClock())
    channel = runtime.channels[target.name.value]
    await channel.start()
    task: TaskID = progress.add_task(target.name.value, total=len(people), rate=0.0)
    stop = asyncio.Event()
    started = time.monotonic()
    dispatcher = asyncio.create_task(runtime.outbox.run_forever(stop), name="outbox")
    faults = asyncio.create_task(
        inject_faults(target, expected_s, result.injected_429, result.injected_5xx), name="faults"
    )
    try:
        next_check = started
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            accepted = target.accepted()
            progress.update(task, completed=accepted, rate=accepted / (now - started))
            if now >= next_check:
                next_check = now + 0.5
                if await due_rows(runtime.db) == 0:
                    break
            if now - started > max(60.0, expected_s * PHASE_TIMEOUT_FACTOR):
                result.timed_out = True
                break
        result.settled_s = time.monotonic() - started
    finally:
        stop.set()
        faults.cancel()
        await asyncio.gather(dispatcher, faults, return_exceptions=True)
        await channel.stop()
        await runtime.db.dispose()
    result.accepted = target.accepted()
    progress.update(task, completed=result.accepted)
    last = target.last_accepted_at()
    result.send_window_s = (last - started) if last is not None else result.settled_s
    result.stats = runtime.outbox.totals
    result.fake_429 = target.rate_limited
    result.fake_5xx = sum(target.answers(status) for status in (500, 502, 503))
    await check_delivery(target, database_url, people, result)
    result.peak_rss_mb = peak_rss_mb()
    return result


async def check_delivery(
    target: Target, database_url: str, people: Sequence[tuple[int, str, str]], result: PhaseResult
) -> None:
    """Compare the outbox rows with what the fake really holds: duplicates, losses, ids."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = {
                row.person_id: row
                for row in (
                    await session.execute(
                        select(
                            Delivery.person_id, Delivery.status, Delivery.platform_message_id
                        ).where(Delivery.key.like(f"fanout:{target.name.value}:%"))
                    )
                ).all()
            }
    finally:
        await db.dispose()
    for person_id, _locale, address in people:
        copies = target.copies(address)
        row = rows.get(person_id)
        status = row.status.value if row is not None else "missing"
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if len(copies) > 1:
            result.duplicates += 1
        if not copies or row is None or row.status != DeliveryStatus.sent:
            result.lost += 1
        elif row.platform_message_id != copies[-1]:
            result.id_mismatches += 1


# Reporting


def report(console: Console, results: Sequence[PhaseResult]) -> None:
    """The per-platform table and one summary line per platform."""
    table = results_table("Fan-out through the real outbox", (r.platform for r in results))
    row = table.add_row

    row("people", *(f"{r.people}" for r in results))
    row("accepted by the fake", *(f"{r.accepted}" for r in results))
    row("send window (start → last accepted)", *(f"{r.send_window_s:.1f} s" for r in results))
    row("all rows settled after", *(f"{r.settled_s:.1f} s" for r in results))
    row("achieved", *(f"{r.rate_per_s:.1f} msg/s" for r in results))
    row("enforced limit (fake, global)", *(f"{r.limit_per_s:.1f} msg/s" for r in results))
    row(
        "Fidelio's pacing (rates.*_global_per_s)", *(f"{r.pacing_per_s:.1f} msg/s" for r in results)
    )
    row("ratio achieved / limit (goal ≥ 0.9)", *(f"{r.ratio:.3f}" for r in results))
    row("duplicates (goal 0)", *(f"{r.duplicates}" for r in results))
    row("lost (goal 0)", *(f"{r.lost}" for r in results))
    row("row id ≠ platform id", *(f"{r.id_mismatches}" for r in results))
    row(
        "row statuses",
        *(", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items())) for r in results),
    )
    row("429s injected", *(f"{r.injected_429}" for r in results))
    row("429s answered by the fake (all)", *(f"{r.fake_429}" for r in results))
    row("429s handled by Fidelio (RunStats)", *(f"{r.stats.rate_limited}" for r in results))
    row("5xx injected / answered", *(f"{r.injected_5xx} / {r.fake_5xx}" for r in results))
    row("retried (RunStats)", *(f"{r.stats.retried}" for r in results))
    row("failed / unknown (RunStats)", *(f"{r.stats.failed} / {r.stats.unknown}" for r in results))
    row("peak RSS after phase (ru_maxrss)", *(f"{r.peak_rss_mb:.0f} MB" for r in results))
    console.print(table)
    for r in results:
        flood = r.fake_429 - r.injected_429
        console.print(
            f"{r.platform}: {r.rate_per_s:.1f} msg/s of {r.limit_per_s:.0f} enforced → ratio "
            f"{r.ratio:.3f}; duplicates {r.duplicates}; lost {r.lost}; 429s {r.fake_429} "
            f"({r.injected_429} injected, {flood} flood; Fidelio handled {r.stats.rate_limited}); "
            f"5xx {r.fake_5xx} injected, {r.stats.retried} retried; peak RSS "
            f"{r.peak_rss_mb:.0f} MB" + ("; TIMED OUT" if r.timed_out else ""),
            soft_wrap=True,
        )


# Main


async def fanout(
    people: int, scale: float, database_url: str | None, console: Console
) -> dict[str, Any]:
    """Run both phases; print the report; return the JSON summary."""
    results: list[PhaseResult] = []
    async with scratch_database(database_url, "fanout") as url:
        backend = "PostgreSQL (scratch database)" if database_url else "SQLite (temporary file)"
        console.print(
            f"Fidelio fan-out benchmark: {people} people per platform, rate scale {scale:g}, "
            f"{backend}. Python {host_platform.python_version()}, {os.cpu_count()} CPU core(s) "
            "shared by the fake servers and Fidelio (one process, one event loop, loopback only). "
            "Achieved rate = sends the fake accepted / (dispatcher start -> last accepted send); "
            "memory = peak RSS of the whole process, fakes included (getrusage ru_maxrss).",
            soft_wrap=True,
        )
        db = Database(url)
        targets: list[TelegramTarget | SlackTarget] = [TelegramTarget(scale), SlackTarget(scale)]
        try:
            with task_progress(
                console, "{task.description:>8}", rate="{task.fields[rate]:7.1f} msg/s"
            ) as progress:
                for target in targets:
                    async with target.fake:
                        began = time.monotonic()
                        linked = await create_people(db, target, people)
                        await enqueue_all(db, target, linked)
                        progress.console.print(
                            f"{target.name.value}: {people} people created and queued in "
                            f"{time.monotonic() - began:.1f} s; enforced limit "
                            f"{target.limit_per_s:g} msg/s, Fidelio paced at "
                            f"{target.limit_per_s * PACING:g} msg/s",
                            soft_wrap=True,
                        )
                        results.append(await run_phase(target, url, linked, progress))
        finally:
            await db.dispose()
    report(console, results)
    by_name = {r.platform: r for r in results}
    return {
        "telegram_ratio": round(by_name["telegram"].ratio, 3),
        "slack_ratio": round(by_name["slack"].ratio, 3),
        "duplicates": sum(r.duplicates for r in results),
        "lost": sum(r.lost for r in results),
        "retries_429": sum(r.stats.rate_limited for r in results),
        "peak_mb": round(peak_rss_mb(), 1),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--people", type=int, default=5000, help="people per platform (5000)")
    parser.add_argument(
        "--scale",
        type=float,
        default=5.0,
        help="multiplier on the fakes' rate limits (5: Telegram 150/s, Slack 250/s)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql+asyncpg://user@127.0.0.1:5432/<db>: run on a scratch copy there "
        "(default: SQLite in a temporary folder)",
    )
    args = parser.parse_args(argv)
    if args.people < 1 or args.scale <= 0:
        parser.error("--people must be ≥ 1 and --scale > 0")
    if args.database_url and not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must start with postgresql+asyncpg://")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    loopback_only("bench.fanout")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # PTB 22 warns whenever RetryAfter.retry_after is read; that is PTB's migration, not ours.
    warnings.filterwarnings("ignore", category=PTBDeprecationWarning)
    console = Console(highlight=False)
    summary = asyncio.run(fanout(args.people, args.scale, args.database_url, console))
    sys.stdout.flush()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
