"""What the services start from: the settings, the database and the clock (and, for those
that send messages themselves, the sender and the renderer), all injected so a test can move
time, share a session or watch what is sent."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database
from bot.render import Renderer
from bot.sender import Sender


class Service:
    """A service holding the settings, the database and the clock.

    ``db`` may be None when only the ``*_in(session, ...)`` methods are used (the caller's
    transaction); the methods that open their own session assert it is there.
    """

    def __init__(self, settings: Settings, db: Database | None, clock: Clock):
        self.settings = settings
        self.db = db
        self.clock = clock

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A transaction of the service's own, for the methods not given the caller's."""
        assert self.db is not None, "this service was made without a database"
        return self.db.session()


class SendingService(Service):
    """A service that sends messages itself rather than through the outbox's queue: it also
    holds the sender and the renderer, and always a database."""

    db: Database

    def __init__(
        self, settings: Settings, db: Database, sender: Sender, renderer: Renderer, clock: Clock
    ):
        super().__init__(settings, db, clock)
        self.sender = sender
        self.renderer = renderer
