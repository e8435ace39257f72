"""Shared fixtures: a real database (SQLite always, PostgreSQL when configured) and a
guard that fails any network connection leaving the loopback interface."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.db.migrate import upgrade
from bot.db.models import Base
from bot.db.session import Database

# Every feature's tables on Base.metadata, so truncation and schema checks cover them all.
from bot.features import FEATURES  # noqa: F401

from .fakes.slack import FakeSlackServer
from .harness import fake_telegram

REPO = Path(__file__).resolve().parent.parent
# As in production (bot/channels/telegram.py): PTB's timedelta durations, whichever test
# happens to import the adapter first.
os.environ.setdefault("PTB_TIMEDELTA", "1")
PG_URL = os.environ.get("FIDELIO_TEST_DATABASE_URL")
DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


# Loopback guard


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Any connection to a non-loopback address fails the test that made it.

    Proxy variables are cleared too: HTTP clients would otherwise route loopback traffic
    through a proxy elsewhere.
    """
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise AssertionError(f"test tried to connect outside loopback: {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


# Databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "fidelio.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def _admin_execute(url: str, *statements: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    assert PG_URL, "FIDELIO_TEST_DATABASE_URL is not set"
    base = make_url(PG_URL)
    name = f"{base.database or 'fidelio_test'}_{os.getpid()}"
    url = base.set(database=name).render_as_string(hide_password=False)
    asyncio.run(
        _admin_execute(
            PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
        )
    )
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(_admin_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database; every test runs once per configured database.

    Synchronous on purpose: the session fixtures it pulls in run ``asyncio.run``, which must
    not happen inside a running event loop.
    """
    if request.param == "sqlite":
        target = tmp_path / "fidelio.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate_all(url))
    return url


async def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await database.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# Fake chat platforms


#: The fakes run 20 times faster than the real platforms unless a module says otherwise.
FAKE_RATE_SCALE = 20.0


telegram = fake_telegram("telegram", FAKE_RATE_SCALE)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    """A fake Slack server, 20 times faster than the real one."""
    async with FakeSlackServer(rate_scale=FAKE_RATE_SCALE) as server:
        yield server
