"""The one small object through which a feature plugs into Fidelio.

A feature (briefings, pulse, suggestions, loyalty, people, operations) is one package under
bot/ holding its service, content parsing, settings section, tables, jobs, command-line groups,
personal-data parts and retention rules; its chat surface is handlers/<feature>.py and its
APScheduler wiring scheduler/<feature>.py. It shows itself to the rest of Fidelio as one
:class:`Feature`; :mod:`bot.features` lists them, and the app, the command line, the scheduler,
privacy and retention loop over that list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # annotations only: these modules never import this one back
    import typer

    from bot.clock import Clock
    from bot.config import Settings
    from bot.db.session import Database
    from bot.handling import Registry
    from bot.privacy.parts import PersonalDataPart, PrivacyRegistry
    from bot.privacy.retention import RetentionRule
    from bot.render import Renderer
    from bot.sender import Sender
    from scheduler import JobFactory

#: A loop run beside the outbox while Fidelio runs: ``loop(stop, is_active)``; it works only
#: while ``is_active()`` (this instance runs the scheduled work) and returns once ``stop`` is set.
BackgroundLoop = Callable[[asyncio.Event, Callable[[], bool]], Coroutine[Any, Any, None]]


#: A line for the terminal when ``fidelio run`` opens the console as the person with this
#: email (None: nothing to say).
Greeting = Callable[[str], Coroutine[Any, Any, str | None]]


class Server(Protocol):
    """Something that listens while Fidelio runs (the web console)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Wiring:
    """What a feature is given when a running Fidelio is assembled (no network activity yet)."""

    settings: Settings
    db: Database
    clock: Clock
    sender: Sender
    renderer: Renderer
    #: Every feature's personal-data parts (the web console exports and forgets people).
    privacy: PrivacyRegistry | None = None


@dataclass
class Wired:
    """What a feature adds to a running Fidelio: its services by name (the app and tests reach
    them through ``Runtime.service``), its scheduled jobs, its background loops, the servers
    it runs, what it tells the person at the console when Fidelio starts and what it does
    when Fidelio stops."""

    services: dict[str, object] = field(default_factory=dict)
    jobs: list[JobFactory] = field(default_factory=list)
    loops: list[BackgroundLoop] = field(default_factory=list)
    #: Called when Fidelio stops, before the database is closed (work still in hand).
    closing: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    #: Started on every instance, passive ones too (unlike loops), before the channels.
    servers: list[Server] = field(default_factory=list)
    greetings: list[Greeting] = field(default_factory=list)


S = TypeVar("S")


def swept_service(
    name: str,
    make: Callable[[Settings, Database, Clock], S],
    jobs: Callable[[S, float], JobFactory],
) -> Callable[[Wiring], Wired]:
    """The ``wire`` of a feature that runs as one service and its sweep: the service, made
    from the settings, the database and the clock and known as ``name``, and the jobs that
    ``jobs`` builds from it and the sweep period (``scheduler.sweep_s``)."""

    def wire(wiring: Wiring) -> Wired:
        service = make(wiring.settings, wiring.db, wiring.clock)
        return Wired(
            services={name: service}, jobs=[jobs(service, wiring.settings.scheduler.sweep_s)]
        )

    return wire


def _nothing(_registry: Registry) -> None:
    """A feature without a chat surface."""


@dataclass(frozen=True)
class Feature:
    """One feature, as the rest of Fidelio sees it. Every field is optional but the name."""

    name: str
    #: The module of its tables (imported, so they are on ``Base.metadata`` for migrations).
    tables: ModuleType | None = None
    #: Registers its chat commands and buttons (``handlers/<feature>.py``'s ``register``).
    chat: Callable[[Registry], None] = _nothing
    #: Its ``fidelio`` command groups, by name (``fidelio <name> ...``).
    commands: Sequence[tuple[str, typer.Typer]] = ()
    #: Builds its services, jobs and loops for a running Fidelio.
    wire: Callable[[Wiring], Wired] | None = None
    #: What it holds about a person: exported by ``people export``, erased by ``people forget``.
    personal_data: Callable[[], Sequence[PersonalDataPart]] = tuple
    #: What it deletes once older than a configured lifetime (the daily retention job).
    retention: Callable[[], Sequence[RetentionRule]] = tuple
