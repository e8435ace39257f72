"""``fidelio web``: a sign-in link from the terminal, and ending someone's sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from bot.cli.common import group, load, out, run_async
from bot.config import Settings
from bot.errors import InputError

web_app = group("The web console: sign-in links and sessions.")

AsOption = Annotated[
    str, typer.Option("--as", help="The person (email) of the directory", show_default=False)
]


@web_app.command("link")
def web_link(as_email: AsOption) -> None:
    """Print a one-time sign-in link for a person (it works once, for web.link_ttl_minutes)."""
    settings = load()
    url, expires = run_async(_link(settings, as_email))
    out.print(url, soft_wrap=True, highlight=False)
    out.print(
        f"One use, until {expires} (UTC). Whoever opens it first is signed in.", highlight=False
    )


async def _link(settings: Settings, email: str) -> tuple[str, str]:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.people import person_by_email
    from bot.web.access import issue_link, may_sign_in, sign_in_url

    if not settings.web.enabled:
        raise InputError("web.enabled", "the web console is off: set web.enabled to true first")
    clock = SystemClock()
    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            person = await person_by_email(session, email)
            if person is None or not may_sign_in(person, clock.now()):
                raise InputError("--as", f"nobody active with the email {email!r}")
            now = clock.now()
            token = await issue_link(session, person, now, settings.web, by="cli")
            expires = now + timedelta(minutes=settings.web.link_ttl_minutes)
            return sign_in_url(settings.web, token), expires.strftime("%Y-%m-%d %H:%M")
    finally:
        await db.dispose()


@web_app.command("revoke")
def web_revoke(as_email: AsOption) -> None:
    """End every web session of a person at once (and their unused links)."""
    settings = load()
    count = run_async(_revoke(settings, as_email))
    out.print(f"{count} session(s) ended for {as_email}.", highlight=False)


async def _revoke(settings: Settings, email: str) -> int:
    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.people import person_by_email
    from bot.web.access import revoke_person

    db = Database(settings.database.url)
    try:
        async with db.session() as session:
            person = await person_by_email(session, email)
            if person is None:
                raise InputError("--as", f"nobody with the email {email!r}")
            return await revoke_person(session, person.id, SystemClock().now(), "cli")
    finally:
        await db.dispose()
