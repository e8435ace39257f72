"""The optional operations port: ``/healthz`` and Prometheus metrics at ``/metrics``.

Off by default (``operations.http_enabled``). Each runtime has its own
:class:`prometheus_client.CollectorRegistry`, so two runtimes in one process (tests) never
mix their figures, and nothing is registered in the library's global registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from bot.aiohttp_sites import bound_port
from bot.db.models import Delivery, DeliveryStatus
from bot.events import InboundEvent
from bot.operations.observability import log_context

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.db.session import Database
    from bot.outbox import OutboxDispatcher
    from scheduler import Scheduler

log = logging.getLogger(__name__)


class Observed(Protocol):
    """What health checks and metrics look at in a running Fidelio (``bot.app.Runtime``)."""

    settings: Settings
    db: Database
    scheduler: Scheduler
    metrics: Metrics
    background_started: bool
    outbox_task: asyncio.Task[Any] | None


#: Handler latency buckets, in seconds: chat answers should come well under a second.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A health probe that cannot reach the database within this time reports it down.
DB_PROBE_TIMEOUT_S = 3.0


class _OutboxCollector(Collector):
    """Reads the outbox's running totals at scrape time (no second set of counters)."""

    def __init__(self, outbox: OutboxDispatcher):
        self.outbox = outbox

    def collect(self) -> Iterator[CounterMetricFamily]:
        totals = self.outbox.totals
        for name, value, doc in (
            ("sent", totals.sent, "Outbox deliveries the platform confirmed."),
            ("failed", totals.failed, "Outbox deliveries given up (permanent error or too many)."),
            ("retried", totals.retried, "Outbox deliveries scheduled for another attempt."),
            ("rate_limited", totals.rate_limited, "Outbox sends answered 429 (waited, retried)."),
            ("unknown", totals.unknown, "Outbox deliveries left with an unknown outcome."),
            (
                "in_doubt",
                totals.in_doubt,
                "Outbox deliveries a stopped process left sending (their send may have gone out).",
            ),
            (
                "recovered",
                totals.recovered,
                "Outbox sends of unknown outcome found on the platform (Slack), not resent.",
            ),
        ):
            yield CounterMetricFamily(f"fidelio_outbox_{name}", doc, value=value)


class Metrics:
    """Every figure Fidelio exposes, in one registry per runtime."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages_sent = Counter(
            "fidelio_messages_sent",
            "Messages the platform accepted (replies and outbox deliveries).",
            ["channel"],
            registry=self.registry,
        )
        self.messages_failed = Counter(
            "fidelio_messages_failed",
            "Sends that did not succeed, by kind (RateLimited, TransientFailure, "
            "PermanentFailure, UnknownOutcome, ...).",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "fidelio_handler_latency_seconds",
            "Time from an inbound event to its replies being sent.",
            ["channel", "event"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.handler_errors = Counter(
            "fidelio_handler_errors",
            "Inbound events whose handling raised past the dispatcher.",
            ["channel"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "fidelio_outbox_queue_depth",
            "Outbox rows waiting (pending) or being sent (sending), at the last scrape.",
            ["status"],
            registry=self.registry,
        )

    def watch_outbox(self, outbox: OutboxDispatcher) -> None:
        self.registry.register(_OutboxCollector(outbox))

    def record_send(self, channel: str, outcome: str) -> None:
        """Sender hook: one call per send."""
        if outcome == "sent":
            self.messages_sent.labels(channel).inc()
        else:
            self.messages_failed.labels(channel, outcome).inc()

    def timed(
        self, handle: Callable[[InboundEvent], Awaitable[Any]]
    ) -> Callable[[InboundEvent], Awaitable[Any]]:
        """Wrap an event handler: latency histogram, and log context for its records."""

        async def timed_handle(event: InboundEvent) -> Any:
            channel = event.user.channel
            kind = type(event).__name__
            started = time.perf_counter()
            with log_context(channel=channel, event_id=event.event_id, event=kind):
                try:
                    return await handle(event)
                except Exception:
                    self.handler_errors.labels(channel).inc()
                    raise
                finally:
                    self.handler_latency.labels(channel, kind).observe(
                        time.perf_counter() - started
                    )

        return timed_handle

    def render(self) -> bytes:
        return _generate(self.registry)


async def outbox_depths(runtime: Observed) -> dict[str, int]:
    """Rows per outbox status that still need work (pending, sending)."""
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.status.in_((DeliveryStatus.pending, DeliveryStatus.sending)))
            .group_by(Delivery.status)
        )
        found = {str(status): int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in ("pending", "sending")}


async def health(runtime: Observed) -> tuple[bool, dict[str, Any]]:
    """Is this runtime working? Database reachable, scheduler running (or passive behind
    another instance), outbox loop alive; with the queue depth and this instance's role
    (``active``: it runs the scheduled work; ``passive``: another instance does) for
    information."""
    report: dict[str, Any] = {}
    database_ok = True
    try:
        async with asyncio.timeout(DB_PROBE_TIMEOUT_S):
            async with runtime.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            report["outbox_queue"] = await outbox_depths(runtime)
        report["database"] = "ok"
    except Exception as exc:  # any driver error or the timeout: the database is not usable
        database_ok = False
        report["database"] = f"unreachable: {type(exc).__name__}"
    scheduler = runtime.scheduler
    if scheduler.scheduler.running:
        report["scheduler"] = "active"
    elif runtime.background_started and not scheduler.active:
        report["scheduler"] = "passive"  # another instance holds the lock: healthy
    else:
        report["scheduler"] = "stopped"
    # Which instance runs the scheduled work; with several instances exactly one is active,
    # and a passive one is healthy (it takes over when the active one goes).
    report["role"] = "active" if scheduler.active else "passive"
    outbox_task = runtime.outbox_task
    report["outbox"] = (
        "running" if outbox_task is not None and not outbox_task.done() else "stopped"
    )
    ok = database_ok and report["scheduler"] != "stopped" and report["outbox"] == "running"
    report["status"] = "ok" if ok else "unhealthy"
    return ok, report


class OpsServer:
    """aiohttp server for ``/healthz`` and ``/metrics`` on ``operations.http_listen:port``."""

    def __init__(self, runtime: Observed):
        self.runtime = runtime
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.runtime.settings.operations
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.http_listen, settings.http_port)
        await site.start()
        self._runner = runner
        self.port = bound_port(runner, settings.http_port)
        log.info(
            "operations: /healthz and /metrics on http://%s:%s", settings.http_listen, self.port
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        ok, report = await health(self.runtime)
        return web.json_response(report, status=200 if ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        metrics = self.runtime.metrics
        try:
            async with asyncio.timeout(DB_PROBE_TIMEOUT_S):
                depths = await outbox_depths(self.runtime)
            for status, count in depths.items():
                metrics.queue_depth.labels(status).set(count)
        except Exception:
            log.warning("metrics: outbox queue depth unavailable (database unreachable?)")
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
