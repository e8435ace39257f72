"""The web console as a feature: its tables, the ``web`` chat command, ``fidelio web``, the
server and its sweep, sign-ins as personal data and their retention."""

from __future__ import annotations

from bot.feature import Feature, Greeting, Wired, Wiring
from bot.handling import MANAGERS
from bot.people import person_by_email
from bot.web import tables
from bot.web.access import LapsedSessions, issue_link, may_sign_in
from bot.web.cli import web_app
from bot.web.privacy import parts, retention_rules
from bot.web.server import WebServer
from handlers.web import register
from scheduler.web import web_jobs


def wire(wiring: Wiring) -> Wired:
    """The server (when ``web.enabled``), its sweep and the console's greeting."""
    if not wiring.settings.web.enabled:
        return Wired()
    server = WebServer(wiring.settings, wiring.db, wiring.clock, wiring.privacy)
    lapsed = LapsedSessions(wiring.db, wiring.clock)
    return Wired(
        services={"web": server},
        jobs=[web_jobs(lapsed, wiring.settings.scheduler.sweep_s)],
        servers=[server],
        greetings=[greeting(wiring, server)],
    )


def greeting(wiring: Wiring, server: WebServer) -> Greeting:
    """At the console: the console's address and, for HR or a manager, a sign-in link."""

    async def greet(email: str) -> str | None:
        base = server.base_url
        ttl = wiring.settings.web.link_ttl_minutes
        now = wiring.clock.now()
        async with wiring.db.session() as session:
            person = await person_by_email(session, email)
            if person is None or person.role not in MANAGERS or not may_sign_in(person, now):
                return f"Web console: {base}"
            token = await issue_link(session, person, now, wiring.settings.web, by="console")
            name = person.name
        return (
            f"Web console: {base}\n"
            f"Sign in as {name} (one use, within {ttl} minutes): {base}/signin/{token}"
        )

    return greet


FEATURE = Feature(
    "web",
    tables=tables,
    chat=register,
    commands=[("web", web_app)],
    wire=wire,
    personal_data=parts,
    retention=retention_rules,
)
