"""Real ``fidelio run`` processes against the fake platform servers: a populated world (demo
people on Telegram and Slack), its config file, a process that is started, SIGKILLed and
restarted, and what the people received. Shared by the crash and failover tests."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.briefings.content import parse_briefing
from bot.briefings.service import BriefingService
from bot.clock import SystemClock
from bot.db.models import ChannelName, Delivery, DeliveryStatus, Person
from bot.db.session import Database
from bot.identities import link
from bot.people import import_people
from bot.pulse.content import parse_items, parse_survey
from bot.pulse.service import SurveyService

from .fakes.slack import FakeSlackServer, SlackUser
from .fakes.telegram import FakeTelegramServer
from .harness import DEMO_PEOPLE, REPO, STRONG_KEY, free_port, make_settings

HR = "hr@demo.fidelio.example"


@dataclass
class World:
    db: Database
    url: str
    config: Path
    log: Path
    telegram: FakeTelegramServer
    slack: FakeSlackServer
    #: person id -> ("telegram", chat id) or ("slack", DM channel)
    reach: dict[int, tuple[str, Any]]
    #: People who have not left: the audience of "everyone".
    active: list[int]


async def populate(
    db: Database, telegram: FakeTelegramServer, slack: FakeSlackServer
) -> tuple[dict[int, tuple[str, Any]], list[int]]:
    """Import the demo people, a third of them on Slack and the rest on Telegram; returns
    how each is reached and who has not left."""
    await import_people(db, DEMO_PEOPLE, SystemClock())
    reach: dict[int, tuple[str, Any]] = {}
    async with db.session() as session:
        people = list(await session.scalars(select(Person).order_by(Person.id)))
        for index, person in enumerate(people):
            if index % 3 == 2:
                user_id = f"U0C{person.id:05d}"
                slack.add_user(SlackUser(user_id, person.email, person.name.split()[0]))
                dm = slack.dm_channel_of(user_id)
                await link(session, person, ChannelName.slack, user_id, dm, SystemClock())
                reach[person.id] = ("slack", dm)
            else:
                chat = 30_000 + person.id
                telegram.add_user(chat, person.name.split()[0])
                await link(
                    session, person, ChannelName.telegram, str(chat), str(chat), SystemClock()
                )
                reach[person.id] = ("telegram", chat)
    today = datetime.now(UTC).date()
    active = [p.id for p in people if p.leave_date is None or p.leave_date > today]
    return reach, active


def write_config(
    path: Path,
    url: str,
    telegram_fake: FakeTelegramServer,
    slack_fake: FakeSlackServer,
    **sections: dict[str, Any],
) -> Path:
    """A config.yaml for ``fidelio run`` against the fakes (Telegram polling, Slack over
    HTTP on a free port); ``sections`` are merged into the defaults."""
    config: dict[str, Any] = {
        "database": {"url": url},
        "content_dir": str(REPO / "content"),
        "organisation": {"name": "Demo Elettronica"},
        "console": {"enabled": False},
        "security": {"secret_key": STRONG_KEY},
        "telegram": {
            "enabled": True,
            "token": telegram_fake.token,
            "base_url": telegram_fake.base_url,
            "base_file_url": telegram_fake.base_file_url,
            "poll_timeout_s": 1,
            "request_timeout_s": 5.0,
        },
        "slack": {
            "enabled": True,
            "mode": "http",
            "bot_token": slack_fake.bot_token,
            "signing_secret": slack_fake.signing_secret,
            "base_url": slack_fake.base_url,
            "http_port": free_port(),
            "request_timeout_s": 5.0,
        },
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Fidelio:
    """``fidelio run`` as a child process, logging to a file (a pipe could fill and block)."""

    def __init__(self, config: Path, log: Path):
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    def output(self) -> str:
        """Everything the process (all its runs) logged so far."""
        return self.log.read_text() if self.log.exists() else ""

    async def start(self) -> None:
        """Start ``fidelio run`` and wait for its "Fidelio started" line."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIDELIO_")}
        offset = self.log.stat().st_size if self.log.exists() else 0
        log = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "-c",
            str(self.config),
            "run",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 30
        while "Fidelio started" not in self.log.read_bytes()[offset:].decode():
            assert self.process.returncode is None, self.log.read_text()
            assert time.monotonic() < deadline, "fidelio run did not start"
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 20 s)."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def briefing_text(briefing_id: str, title: str, brief: str, launch: datetime) -> str:
    return (
        f"---\nid: {briefing_id}\nkind: product\ntitle: {title!r}\nsummary: 'All staff first.'\n"
        f"launch_at: {launch.isoformat(timespec='seconds')}\nbrief: {brief}\n"
        "audience:\n  everyone: true\nlocales: [en]\nack_required: true\n---\nThe text.\n"
    )


async def schedule_briefing(world: World, briefing_id: str, title: str, brief: str) -> None:
    """A briefing to everyone, launched in three days; ``brief``: when it is sent."""
    launch = datetime.now(UTC) + timedelta(days=3)
    briefing, problems = parse_briefing(
        briefing_text(briefing_id, title, brief, launch), f"{briefing_id}.md"
    )
    assert briefing is not None, problems
    settings = make_settings(world.url)
    await BriefingService(settings, world.db, SystemClock()).schedule(briefing, actor=HR)


async def schedule_pulse(world: World, title: str, cron: str, open_for: str, zone: str) -> None:
    """A pulse to everyone, three one-tap items, no reminders: rounds open at ``cron`` (in
    ``zone``) and stay open ``open_for``; a round whose opening is past but whose closing is
    not opens when Fidelio next looks."""
    items, _ = parse_items((REPO / "content/surveys/items.yaml").read_text(), "items.yaml")
    survey, problems = parse_survey(
        f"id: test-pulse\ntitle: {title!r}\ncadence:\n  cron: '{cron}'\n"
        f"  timezone: {zone}\nopen_for: {open_for}\naudience:\n  everyone: true\n"
        "core: [sat_overall, intent_stay, enps]\ncomment: false\nreminders: []\n",
        "test-pulse.yaml",
        items,
    )
    assert survey is not None, problems
    service = SurveyService(make_settings(world.url), world.db, SystemClock())
    async with world.db.session() as session:
        await service.schedule_in(session, survey, items, HR)


def messages(world: World, person_id: int) -> list[str]:
    """The texts a person received, on their platform."""
    platform, chat = world.reach[person_id]
    if platform == "telegram":
        return [m.text or "" for m in world.telegram.messages_to(chat)]
    return [m.text or "" for m in world.slack.messages_in(chat)]


#: The pulse's closing thanks name the survey too (templates pulse/thanks.j2).
THANKS = re.compile(r"^(Thank you! Your answers to|Grazie! Le tue risposte a) ")


def copies(world: World, person_id: int, title: str) -> int:
    """Messages carrying ``title`` that are the delivery itself (a pulse question repeats the
    title followed by ``n/N`` and the thanks name it; the invitation does neither)."""
    return sum(
        1
        for text in messages(world, person_id)
        if title in text and not re.search(r"\d+/\d+", text) and not THANKS.match(text)
    )


async def deliveries(db: Database) -> list[Delivery]:
    async with db.session() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def unknown_at_kill(db: Database) -> set[str]:
    """Keys of rows still ``sending`` after a kill: sends whose outcome nobody knows."""
    return {d.key for d in await deliveries(db) if d.status == DeliveryStatus.sending}


async def until(condition: Any, timeout: float, what: str) -> None:
    """Wait for the coroutine function ``condition`` to return true."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def all_settled(db: Database) -> bool:
    """Every outbox row has its final outcome (sent, failed or unknown)."""
    rows = await deliveries(db)
    return bool(rows) and all(
        d.status in (DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.unknown)
        for d in rows
    )
