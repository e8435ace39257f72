"""What the scheduled services of the features start from: the settings, the database and the
clock, all injected so a test can move time and share a session."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database


class Service:
    """A service holding the settings, the database and the clock.

    ``db`` may be None when only the ``*_in(session, ...)`` methods are used (the caller's
    transaction); the methods that open their own session assert it is there.
    """

    def __init__(self, settings: Settings, db: Database | None, clock: Clock):
        self.settings = settings
        self.db = db
        self.clock = clock
