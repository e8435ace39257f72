"""Operations: /healthz and /metrics over real HTTP on loopback, JSON logs, SQLite backup."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import ManualClock
from bot.db.models import AuditEntry
from bot.db.session import Database
from bot.errors import InputError
from bot.operations.backup import backup_database
from bot.operations.observability import log_context, setup_logging

from .fakes.telegram import FakeTelegramServer
from .harness import fake_telegram, free_port, load_demo, make_settings, running, telegram_section
from .test_cli import fidelio, write_config
from .test_outbox import demo_people, link_telegram, queue


def schema_head() -> str:
    """The newest migration: a backup of a migrated test database is at this revision."""
    from alembic.script import ScriptDirectory

    from bot.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


HR = "hr@demo.fidelio.example"


fake = fake_telegram("fake", 20.0)


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def wait_for_metric(port: int, name: str, labels: dict[str, str], at_least: float) -> float:
    key = (name, tuple(sorted(labels.items())))
    for _ in range(200):
        status, body = await get(port, "/metrics")
        assert status == 200
        value = samples(body).get(key, 0.0)
        if value >= at_least:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}{labels} never reached {at_least}: {body}")


def ops(port: int) -> dict[str, Any]:
    return {"http_enabled": True, "http_port": port}


async def test_the_operations_port_is_off_by_default(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = make_settings(database_url, console={"enabled": True})
    assert settings.operations.http_enabled is False
    async with running(settings, clock) as runtime:
        assert runtime.ops is None


async def test_healthz_reports_database_scheduler_and_queue(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    [contact] = await link_telegram(db, fake, await demo_people(db, 1), clock)
    port = free_port()
    settings = make_settings(database_url, telegram=telegram_section(fake), operations=ops(port))
    # Without the background work (scheduler, outbox loop) the runtime is not healthy.
    async with running(settings, clock, background=False):
        await queue(db, clock, "ops:waiting", contact.person_id, contact.name)
        status, body = await get(port, "/healthz")
        report = json.loads(body)
        assert status == 503
        assert report["database"] == "ok" and report["scheduler"] == "stopped"
        assert report["outbox_queue"] == {"pending": 1, "sending": 0}
        status, body = await get(port, "/metrics")
        assert samples(body)[("fidelio_outbox_queue_depth", (("status", "pending"),))] == 1.0

    async with running(settings, clock) as runtime:
        assert runtime.ops is not None and runtime.ops.port == port
        await fake.wait_for_messages(contact.chat_id, 1)  # the queued message went out
        for _ in range(100):
            status, body = await get(port, "/healthz")
            report = json.loads(body)
            if report["outbox_queue"] == {"pending": 0, "sending": 0}:  # outcome recorded
                break
            await asyncio.sleep(0.05)
        assert status == 200, report
        assert report == {
            "database": "ok",
            "outbox_queue": {"pending": 0, "sending": 0},
            "scheduler": "active",
            "role": "active",
            "outbox": "running",
            "status": "ok",
        }
        # The database becomes unreachable: the probe says so, with 503.
        good = runtime.db.engine
        runtime.db.engine = create_async_engine("sqlite+aiosqlite:////nonexistent/dir/x.db")
        try:
            status, body = await get(port, "/healthz")
        finally:
            await runtime.db.engine.dispose()
            runtime.db.engine = good
        assert status == 503
        assert json.loads(body)["database"].startswith("unreachable")
        # Metrics still answer without the database.


async def test_metrics_count_sends_failures_retries_and_handler_latency(
    db: Database, clock: ManualClock, database_url: str, fake: FakeTelegramServer
) -> None:
    await load_demo(db, clock)
    first, second = await link_telegram(db, fake, await demo_people(db, 2), clock)
    port = free_port()
    settings = make_settings(
        database_url,
        telegram=telegram_section(fake),
        operations=ops(port),
        outbox={"backoff_base_s": 5.0},
    )
    async with running(settings, clock):
        fake.inject("500", method="sendMessage", chat_id=first.chat_id)
        fake.block(second.chat_id)
        await queue(db, clock, "ops:first", first.person_id, first.name)
        await queue(db, clock, "ops:second", second.person_id, second.name)
        await wait_for_metric(port, "fidelio_outbox_retried_total", {}, 1)
        await wait_for_metric(port, "fidelio_outbox_failed_total", {}, 1)  # blocked: permanent
        clock.advance(timedelta(seconds=6))  # the retry of the first is due
        await wait_for_metric(port, "fidelio_outbox_sent_total", {}, 1)
        await wait_for_metric(port, "fidelio_messages_sent_total", {"channel": "telegram"}, 1)
        failed = samples((await get(port, "/metrics"))[1])
        assert (
            failed[
                (
                    "fidelio_messages_failed_total",
                    (("channel", "telegram"), ("kind", "TransientFailure")),
                )
            ]
            == 1.0
        )
        assert (
            failed[
                (
                    "fidelio_messages_failed_total",
                    (("channel", "telegram"), ("kind", "PermanentFailure")),
                )
            ]
            == 1.0
        )
        # An inbound message is timed from arrival to its reply.
        fake.add_user(4711, "Stranger")
        await fake.send_text(4711, "hello")
        await fake.wait_for_messages(4711, 1)
        await wait_for_metric(
            port,
            "fidelio_handler_latency_seconds_count",
            {"channel": "telegram", "event": "TextReceived"},
            1,
        )
    assert len(fake.messages_to(first.chat_id)) == 1


async def test_two_runtimes_keep_separate_metrics(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    from bot.app import build_runtime

    settings = make_settings(database_url, console={"enabled": True})
    one, two = build_runtime(settings, clock=clock), build_runtime(settings, clock=clock)
    try:
        one.metrics.record_send("telegram", "sent")
        assert b'fidelio_messages_sent_total{channel="telegram"} 1.0' in one.metrics.render()
        assert b"fidelio_messages_sent_total{" not in two.metrics.render()
    finally:
        await one.db.dispose()
        await two.db.dispose()


def test_json_logs_are_one_object_per_line_with_context_fields() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream)
    log = logging.getLogger("fidelio.test")
    try:
        with log_context(channel="telegram", event_id="42"):
            log.info("handled %s", "whoami", extra={"delivery_id": 7})
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("it failed")
        log.warning("outside")
    finally:
        setup_logging("INFO", "text")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    first, second, third = records
    assert first["message"] == "handled whoami" and first["level"] == "INFO"
    assert (first["channel"], first["event_id"], first["delivery_id"]) == ("telegram", "42", 7)
    assert "ValueError: boom" in second["exception"] and second["event_id"] == "42"
    assert "channel" not in third and third["logger"] == "fidelio.test"


async def test_run_with_log_format_json_writes_json_lines(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url, console={"enabled": True, "as_email": HR})
    code, out, err = await fidelio(config, "run", "--log-format", "json", stdin="whoami\n")
    assert code == 0, err
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    messages = [r["message"] for r in records]
    assert any(m.startswith("Fidelio started") for m in messages), messages
    assert "Fidelio stopped" in messages
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)


async def test_backup_is_consistent_while_the_database_is_written(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    if not db.is_sqlite:
        with pytest.raises(InputError, match="pg_dump"):
            await backup_database(database_url, tmp_path / "copy.db")
        return
    await load_demo(db, clock)
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            async with db.session() as session:
                for _ in range(20):
                    session.add(
                        AuditEntry(at=clock.now(), actor_label="w", action="write", detail={})
                    )
            written += 20
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    try:
        while written < 100:
            await asyncio.sleep(0.01)
        before = written
        result = await backup_database(database_url, tmp_path / "copy.db")
        after = written
    finally:
        stop.set()
        await task
    assert result.revision == schema_head()
    copy = sqlite3.connect(result.path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        copied = copy.execute("SELECT count(*) FROM audit_log WHERE action='write'").fetchone()[0]
        people = copy.execute("SELECT count(*) FROM people").fetchone()[0]
    finally:
        copy.close()
    # Whole transactions only: a multiple of the 20 rows each commit adds.
    assert before <= copied <= after + 20 and copied % 20 == 0
    assert people == 48
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) > 0
    assert not list(tmp_path.glob(".*.partial"))


async def test_backup_command(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    config = write_config(tmp_path, database_url, console={"enabled": True})
    target = tmp_path / "backup.db"
    code, out, err = await fidelio(config, "db", "backup", str(target))
    if not db.is_sqlite:
        assert code == 2 and "pg_dump" in " ".join(err.split()) and not target.exists()
        return
    assert code == 0, err
    assert "Backup written" in out and f"revision {schema_head()}" in out and target.is_file()
    code, out, err = await fidelio(config, "db", "backup", str(target))
    assert code == 2 and "already exists" in " ".join(err.split())  # rich wraps lines
    code, out, err = await fidelio(config, "db", "backup", "--force", str(target))
    assert code == 0, err
