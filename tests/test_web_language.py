"""The language switch in the web console's header: it sets the person's language as
``language`` does in chat (pages and chat then speak it), goes back to the page it was
pressed on and never to another site, refuses an unknown language and a forged form, and
is audited."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Person
from bot.db.session import Database

from .web_helpers import HR, demo_on_the_web, signed_in, web_client

BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ZoneInfo("Europe/Rome"))


async def locale_of(db: Database, email: str) -> str:
    async with db.session() as session:
        person = await session.scalar(select(Person).where(Person.email == email))
        assert person is not None
        return person.locale


async def test_the_switch_sets_the_person_s_language_and_goes_back_to_the_page(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, HR, browser)
        page = await (await browser.get("/hr/audit")).text()
        assert 'lang="it"' in page and "Registro delle attività" in page
        assert '<label for="language">La tua lingua</label>' in page
        switched = await browser.post(
            "/language",
            data={"csrf": csrf, "language": "en", "next": "/hr/audit"},
            allow_redirects=False,
        )
        assert switched.status == 303 and switched.headers["Location"] == "/hr/audit"
        page = await (await browser.get("/hr/audit")).text()
        assert 'lang="en"' in page and "Audit log" in page
        assert '<option value="en" selected lang="en">English</option>' in page
    assert await locale_of(db, HR) == "en"
    async with db.session() as session:
        changes = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "language"))
        ).all()
    assert [(a.actor_label, a.detail) for a in changes] == [
        (HR, {"before": "it", "after": "en", "channel": "web"})
    ]


async def test_unknown_languages_forged_forms_and_other_sites_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    async with web_client(settings, db, clock) as browser:
        refused = await browser.post("/language", data={"language": "en"})
        assert refused.status == 403  # not signed in: no CSRF token to give
        csrf = await signed_in(settings, db, clock, HR, browser)
        unknown = await browser.post("/language", data={"csrf": csrf, "language": "fr"})
        assert unknown.status == 400
        assert "Fidelio parla italiano e inglese" in await unknown.text()
        forged = await browser.post("/language", data={"language": "en", "next": "/hr"})
        assert forged.status == 403
        assert await locale_of(db, HR) == "it"
        for away in ("//evil.example/", "https://evil.example/", "/\\evil.example", ""):
            moved = await browser.post(
                "/language",
                data={"csrf": csrf, "language": "it", "next": away},
                allow_redirects=False,
            )
            assert moved.status == 303 and moved.headers["Location"] == "/", away
