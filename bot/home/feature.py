"""The Home tab as a feature: the service that builds and publishes it, the refresher that
keeps it current (bot/home/refresh.py) and what opening it does in chat terms (handlers/home.py).
It reads the other features through their services; none of them knows about it."""

from __future__ import annotations

from bot.feature import Feature, Wired, Wiring
from bot.home.refresh import HomeRefresher
from bot.home.service import HomeService
from handlers.home import register


def wire(wiring: Wiring) -> Wired:
    """The service, and its refresher listening to the database's committed changes."""
    service = HomeService(wiring.settings, wiring.db, wiring.sender, wiring.renderer, wiring.clock)
    refresher = HomeRefresher(wiring.settings.home, service.publish)
    wiring.db.changes.listen(refresher.changed)

    async def close() -> None:
        wiring.db.changes.forget(refresher.changed)
        await refresher.close()

    return Wired(services={"home": service, "home_refresher": refresher}, closing=[close])


FEATURE = Feature("home", chat=register, wire=wire)
