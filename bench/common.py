"""What the benchmarks share: the loopback guard, scratch databases, bulk-made people, and the
progress display and result table of their console output."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.migrate import upgrade
from bot.db.models import ChannelIdentity, ChannelName, Person, Role, Team

#: Rows per INSERT when making people in bulk.
CHUNK = 1000


def loopback_only(program: str) -> None:
    """Refuse any TCP connection that would leave 127.0.0.1 / ::1, and drop proxy variables."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host = address[0] if isinstance(address, tuple) else address
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConnectionRefusedError(f"{program} only talks to loopback, not {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


async def admin_connect(url: str, timeout: float = 5.0) -> Any:
    """An asyncpg connection to the ``postgres`` database of the server of ``url``."""
    import asyncpg

    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
        timeout=timeout,
    )


async def admin_execute(url: str, *statements: str) -> None:
    """Run statements on the server's ``postgres`` database (CREATE/DROP DATABASE)."""
    conn = await admin_connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def postgres_reachable(url: str) -> bool:
    """True when the server of ``url`` accepts a connection within two seconds."""
    try:
        conn = await admin_connect(url, timeout=2.0)
    except Exception:
        return False
    await conn.close()
    return True


@asynccontextmanager
async def scratch_database(server_url: str | None, label: str) -> AsyncIterator[str]:
    """A migrated, empty database, removed afterwards; yields its URL.

    ``server_url`` None: a SQLite file in a temporary folder. Otherwise a database named
    ``<database>_<label>_<pid>`` on that PostgreSQL server (the named database itself is
    never touched).
    """
    if server_url is None:
        with tempfile.TemporaryDirectory(prefix=f"fidelio-{label}-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/fidelio.db"
            await upgrade(url)
            yield url
        return
    base = make_url(server_url)
    name = f"{base.database or 'fidelio'}_{label}_{os.getpid()}"
    scratch = base.set(database=name).render_as_string(hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    await admin_execute(server_url, drop, f'CREATE DATABASE "{name}"')
    try:
        await upgrade(scratch)
        yield scratch
    finally:
        await admin_execute(server_url, drop)


async def insert_people(
    session: AsyncSession,
    count: int,
    *,
    prefix: str,
    per_team: int,
    name_of: Callable[[int], str],
    locale_of: Callable[[int], str],
) -> list[tuple[int, str, str, str]]:
    """Bulk-insert ``count`` employees in teams of about ``per_team``, e-mails
    ``<prefix>.<n>@bench.example``; returns (id, email, name, locale) in e-mail order."""
    now = datetime.now(UTC)
    teams = max(1, count // per_team)
    await session.execute(
        insert(Team), [{"name": f"{prefix} team {t:03d}", "created_at": now} for t in range(teams)]
    )
    team_ids = list(
        await session.scalars(
            select(Team.id).where(Team.name.like(f"{prefix} team %")).order_by(Team.id)
        )
    )
    people = [
        {
            "email": f"{prefix}.{i:06d}@bench.example",
            "name": name_of(i),
            "team_id": team_ids[i % len(team_ids)],
            "role": Role.employee,
            "locale": locale_of(i),
            "timezone": "Europe/Rome",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    for start in range(0, count, CHUNK):
        await session.execute(insert(Person), people[start : start + CHUNK])
    rows = await session.execute(
        select(Person.id, Person.email, Person.name, Person.locale)
        .where(Person.email.like(f"{prefix}.%@bench.example"))
        .order_by(Person.email)
    )
    return [(row.id, row.email, row.name, row.locale) for row in rows]


async def insert_identities(
    session: AsyncSession, channel: ChannelName, accounts: list[tuple[int, str, str]]
) -> None:
    """Link people to platform accounts in bulk: (person id, external id, address)."""
    now = datetime.now(UTC)
    rows = [
        {
            "person_id": person_id,
            "channel": channel,
            "external_id": external_id,
            "address": address,
            "created_at": now,
        }
        for person_id, external_id, address in accounts
    ]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(ChannelIdentity), rows[start : start + CHUNK])


def task_progress(
    console: Console, label: str, *, rate: str | None = None, refresh_per_second: float = 10
) -> Progress:
    """A progress display: ``label`` (a column template such as ``{task.description}``), a bar,
    done of total, then the task's ``rate`` field shown with the ``rate`` template when given,
    and the time elapsed."""
    rate_column = [TextColumn(rate)] if rate else []
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        *rate_column,
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=refresh_per_second,
    )


def results_table(title: str, runs: Iterable[str]) -> Table:
    """A table of figures with a label column, then a right-aligned column per run."""
    table = Table(title=title)
    table.add_column("")
    for run in runs:
        table.add_column(run, justify="right")
    return table
