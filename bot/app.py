"""Assemble and run Fidelio: every configured channel, the scheduler and the outbox in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import Any, TextIO

from bot.channels.callbacks import CallbackCodec
from bot.channels.console import ConsoleChannel
from bot.channels.port import ChatPort, HasCommandMenu
from bot.clock import Clock, SystemClock
from bot.command_menus import CommandMenus
from bot.config import Settings
from bot.db.session import Database
from bot.dispatch import Dispatcher
from bot.feature import Server, Wired, Wiring
from bot.features import FEATURES, build_registry, privacy_registry, retention_rules
from bot.operations.server import Metrics, OpsServer
from bot.outbox import OutboxDispatcher
from bot.privacy.retention import retention_jobs
from bot.render import Renderer
from bot.sender import Sender
from scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a running Fidelio holds; built by :func:`build_runtime`."""

    settings: Settings
    clock: Clock
    db: Database
    renderer: Renderer
    sender: Sender
    dispatcher: Dispatcher
    outbox: OutboxDispatcher
    scheduler: Scheduler
    #: What each feature added, by feature name (services, jobs, background loops).
    features: dict[str, Wired] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Metrics, the operations port, and what health checks look at.
    metrics: Metrics = field(default_factory=Metrics)
    ops: OpsServer | None = None
    #: The features' servers that were started (stopped in reverse order).
    servers: list[Server] = field(default_factory=list)
    background_started: bool = False
    outbox_task: asyncio.Task[Any] | None = None
    #: The command menus of the platforms that have one, by channel name.
    menus: dict[str, CommandMenus] = field(default_factory=dict)

    def service(self, name: str) -> Any:
        """A feature's service by name (``briefings``, ``surveys``, ``sealed_notices``...)."""
        for wired in self.features.values():
            if name in wired.services:
                return wired.services[name]
        raise KeyError(f"no feature provides a service called {name!r}")

    async def start(
        self, *, console: bool = False, sync_slack: bool = True, background: bool = True
    ) -> None:
        """Start channels (console only when asked), the scheduler and the outbox.

        ``background=False`` starts only the channels: tests then drive the due-work and the
        outbox themselves with an injected clock.
        """
        for wired in self.features.values():
            for server in wired.servers:
                # First: a port already taken stops Fidelio before it reaches anybody.
                await server.start()
                self.servers.append(server)
        started: list[str] = []
        for name, channel in self.channels.items():
            if name == "console":
                continue
            await channel.start()
            started.append(name)
        for menus in self.menus.values():
            self.tasks.append(asyncio.create_task(menus.run(self.stop_event)))
        if sync_slack and "slack" in self.channels:
            slack = self.channels["slack"]
            self.tasks.append(asyncio.create_task(slack.sync_directory(self.db, self.clock)))
        if background:
            if self.db.is_sqlite:
                # One process per SQLite file: leases left by a killed process are orphans.
                await self.outbox.release_orphaned_leases()
            await self.scheduler.start()
            self.outbox_task = asyncio.create_task(self.outbox.run_forever(self.stop_event))
            self.tasks.append(self.outbox_task)
            self.background_started = True
            for wired in self.features.values():
                for loop in wired.loops:
                    self.tasks.append(
                        asyncio.create_task(loop(self.stop_event, lambda: self.scheduler.active))
                    )
        if self.settings.operations.http_enabled:
            self.ops = OpsServer(self)
            await self.ops.start()
        log.info(
            "Fidelio started: channels=%s, scheduler=%s, outbox polling every %.1fs, database=%s",
            ", ".join(started + (["console"] if console else [])) or "none",
            "active" if self.scheduler.active else "passive",
            self.settings.scheduler.outbox_poll_s,
            "sqlite" if self.db.is_sqlite else "postgresql",
        )

    async def stop(self) -> None:
        self.stop_event.set()
        if self.ops is not None:
            await self.ops.stop()
        for wired in self.features.values():
            for close in wired.closing:
                try:
                    await close()
                except Exception:
                    log.exception("a feature failed to stop cleanly")
        for server in reversed(self.servers):
            try:
                await server.stop()
            except Exception:
                log.exception("stopping a server failed")
        self.servers.clear()
        for name, channel in self.channels.items():
            if name == "console":
                continue
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping %s failed", name)
        await self.scheduler.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.db.dispose()
        log.info("Fidelio stopped")


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    console_out: TextIO | None = None,
    with_console: bool | None = None,
) -> Runtime:
    """Wire the pieces together from settings (no network activity yet)."""
    clock = clock or SystemClock()
    db = Database(settings.database.url, echo=settings.database.echo)
    renderer = Renderer(
        settings.content_dir / "templates",
        settings.organisation.default_locale,
        settings.organisation.default_timezone,
    )
    codec = CallbackCodec(settings.security.secret_key.get_secret_value())
    channels: dict[str, Any] = {}
    if settings.telegram.enabled:
        from bot.channels.telegram import TelegramChannel

        channels["telegram"] = TelegramChannel(settings.telegram, codec)
    if settings.slack.enabled:
        from bot.channels.slack import SlackChannel

        channels["slack"] = SlackChannel(settings.slack, codec)
    if settings.console.enabled if with_console is None else with_console:
        channels["console"] = ConsoleChannel(
            out=console_out, image_dir=settings.content_dir.parent / "var" / "console-images"
        )
    ports: dict[str, ChatPort] = dict(channels)
    sender = Sender(ports, settings.rates)
    dispatcher = Dispatcher(settings, db, renderer, build_registry(), sender, clock)
    metrics = Metrics()
    sender.on_outcome = metrics.record_send
    for channel in channels.values():
        channel.on_event = metrics.timed(dispatcher.handle)
    if "slack" in channels:
        slack = channels["slack"]
        dispatcher.resolvers["slack"] = lambda session, user: slack.resolve(session, user, clock)
    outbox = OutboxDispatcher(settings, db, sender, renderer, clock)
    metrics.watch_outbox(outbox)
    scheduler = Scheduler(settings, db, clock)
    wiring = Wiring(settings, db, clock, sender, renderer, privacy_registry())
    features = {f.name: f.wire(wiring) for f in FEATURES if f.wire is not None}
    for wired in features.values():
        scheduler.job_factories.extend(wired.jobs)
    scheduler.job_factories.append(retention_jobs(settings, db, clock, retention_rules()))
    runtime = Runtime(
        settings,
        clock,
        db,
        renderer,
        sender,
        dispatcher,
        outbox,
        scheduler,
        features,
        channels,
        metrics=metrics,
        menus={
            name: CommandMenus(
                port,
                db,
                dispatcher.registry,
                renderer,
                clock,
                default_locale=settings.organisation.default_locale,
                every_s=settings.telegram.menu_refresh_s,
            )
            for name, port in channels.items()
            if isinstance(port, HasCommandMenu)
        },
    )
    return runtime


async def run(settings: Settings, *, console_as: str | None = None) -> None:
    """``fidelio run``: start everything and wait for Ctrl-C / SIGTERM (or the console's end)."""
    runtime = build_runtime(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, runtime.stop_event.set)
    console = runtime.channels.get("console")
    await runtime.start(console=console is not None)
    try:
        if console is not None:
            from bot.console_session import console_person, enable_switching

            email = await console_person(runtime, console_as or settings.console.as_email)
            enable_switching(runtime)
            for wired in runtime.features.values():
                for greet in wired.greetings:
                    if line := await greet(email):
                        console.note(line)
            chat = asyncio.create_task(console.converse(email))
            stop = asyncio.create_task(runtime.stop_event.wait())
            done, _ = await asyncio.wait({chat, stop}, return_when=asyncio.FIRST_COMPLETED)
            if chat in done:
                chat.result()
                others = [n for n in runtime.channels if n != "console"]
                if others:
                    log.info("console closed; still serving %s (Ctrl-C to stop)", ", ".join(others))
                    await runtime.stop_event.wait()
            else:
                chat.cancel()
            stop.cancel()
        else:
            await runtime.stop_event.wait()
    finally:
        await runtime.stop()
