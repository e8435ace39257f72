"""The web console's pages and how people get there: `web` in chat and `fidelio web link`, HR's
dashboard (launch readiness, open rounds, suggestions waiting), the audit log, and a manager's
teams with loyalty figures through the anonymity rules (the nearest reportable parent for a
team that is too small)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Person
from bot.db.session import Database
from bot.markup import to_plain, to_slack_mrkdwn, to_telegram_html
from bot.render import Renderer
from bot.replies import Reply
from bot.suggestions.service import SuggestionService

from .harness import REPO, ConsoleDialog, demo_console, load_demo, schedule_demo_briefing
from .loyalty_seed import closed_round, schedule_survey
from .test_cli import fidelio, write_config
from .test_summaries_e2e import ITEMS, answers
from .test_surveys_ops import FIRST, schedule
from .web_helpers import AISHA, HR, LUCA, SILVIA, sign_in, signed_in, web_client, web_settings

ROME = ZoneInfo("Europe/Rome")
BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
BRIEFED = datetime(2027, 2, 26, 9, 30, tzinfo=ROME)  # spring-trade-in is briefed on 26 Feb
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/signin/([\w-]+)")


def text_of(html: str) -> str:
    """A page's text, tags and runs of spaces removed (what a reader sees, in order)."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


async def test_web_in_chat_gives_hr_and_managers_a_link_and_refuses_employees(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    port = web_settings(database_url).web.port
    async with demo_console(
        db, clock, database_url, HR, AISHA, web={"enabled": True, "port": port}
    ) as runtime:
        answer = await ConsoleDialog(runtime, HR).say("web")
        assert "entro 10 minuti" in answer and "Non inoltrarlo" in answer
        found = LINK.search(answer)
        assert found is not None and found.group(1) == f"http://127.0.0.1:{port}"
        refused = await ConsoleDialog(runtime, AISHA).say("web")
        assert "`web` is not available to you" in refused or "web is not available" in refused
        assert LINK.search(refused) is None
        async with web_client(runtime.settings, db, clock) as browser:
            pressed = await sign_in(browser, found.group(2))
            assert pressed.status == 303
        help_text = await ConsoleDialog(runtime, HR).say("help")
        assert "La console web" in help_text and "web — la console web" in help_text
    async with db.session() as session:
        audit = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert "command.web" in audit and "web.link" in audit and "denied" in audit

    # Switched off: the command says so instead of giving a link that leads nowhere.
    async with demo_console(db, clock, database_url, HR) as runtime:
        off = await ConsoleDialog(runtime, HR).say("web")
        assert "non è attiva" in off and LINK.search(off) is None


async def test_fidelio_web_link_prints_a_link_that_signs_in(
    tmp_path: Path, database_url: str, db: Database, clock: ManualClock
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    config = write_config(tmp_path, database_url, web={"enabled": True, "port": settings.web.port})
    code, out, err = await fidelio(config, "web", "link", "--as", LUCA)
    assert code == 0, err
    found = LINK.search(out)
    assert found is not None and "One use" in out
    async with web_client(settings, db, clock) as browser:
        assert (await sign_in(browser, found.group(2))).status == 303
        assert (await browser.get("/team")).status == 200
    code, _, err = await fidelio(config, "web", "link", "--as", "ghost@nowhere.example")
    assert code == 2 and "--as" in err and "Traceback" not in err
    code, out, err = await fidelio(config, "web", "revoke", "--as", LUCA)
    assert code == 0 and "1 session(s) ended" in out, err
    async with web_client(settings, db, clock) as browser:
        assert (await browser.get("/team")).status == 401


async def test_dashboard_shows_readiness_rounds_and_suggestions_waiting(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        await schedule_demo_briefing(rt)
        await schedule(rt)
        clock.set(FIRST)
        await rt.service("surveys").run_due()
        async with db.session() as session:
            aisha = await session.scalar(select(Person).where(Person.email == AISHA))
            assert aisha is not None
            await SuggestionService(rt.settings, clock).create(
                session, aisha, "Longer opening hours on Saturdays", "workplace", True
            )
        async with web_client(rt.settings, db, clock) as browser:
            await signed_in(rt.settings, db, clock, HR, browser)
            page = text_of(await (await browser.get("/hr")).text())
            assert "Permuta di primavera" in page and "Non l'ha ancora ricevuto nessuno" in page
            assert "Turni pulse aperti" in page and "Invitati" in page
            assert "Suggerimenti nuovi: 1" in page and "Longer opening hours" in page
            assert "anonimo" in page and "Aisha" not in page

            clock.set(BRIEFED)
            await rt.service("briefings").run_due()
            await signed_in(rt.settings, db, clock, HR, browser)  # weeks later: a new session
            live = text_of(await (await browser.get("/hr/launches")).text())
            for team in ("Sales Milano", "Sales Roma", "Customer Care", "Totale"):
                assert team in live, team
            assert "Aisha" not in live  # names of who has not acknowledged stay in chat
            assert '<section id="launches"' in await (await browser.get("/hr")).text()


async def test_audit_log_filters_by_action_and_person_a_page_at_a_time(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    async with db.session() as session:
        for number in range(60):
            who = "someone@demo.fidelio.example" if number % 2 else "cli"
            session.add(AuditEntry.by(who, clock.now(), "test.thing", number=number))
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        first = text_of(await (await browser.get("/hr/audit?action=test")).text())
        assert "60 voci · pagina 1 di 2" in first and "number: 59" in first
        second = await browser.get("/hr/audit?action=test&page=2")
        assert "pagina 2 di 2" in text_of(await second.text())
        assert "number: 0 " in text_of(await second.text())
        person = text_of(await (await browser.get("/hr/audit?person=someone&page=9")).text())
        assert "30 voci · pagina 1 di 1" in person
        web = text_of(await (await browser.get("/hr/audit?action=web")).text())
        assert "web.sign_in" in web and "test.thing" not in web
    async with db.session() as session:
        views = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "web.view"))
        )
    assert [v.detail.get("action") for v in views if v.detail["page"] == "audit"][:2] == [
        "test",
        "test",
    ]


async def seed_three_rounds(db: Database, clock: ManualClock, database_url: str) -> None:
    await load_demo(db, clock)
    campaign = await schedule_survey(web_settings(database_url), db, clock)
    for number in range(1, 4):
        await closed_round(db, campaign, number, ITEMS, answers)
    clock.set(FIRST + timedelta(weeks=8))


async def test_a_manager_of_a_small_team_is_shown_the_nearest_reportable_parent(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, SILVIA, browser)
        page = text_of(await (await browser.get("/team")).text())
        assert "Troppe poche risposte per mostrare HR & People" in page
        assert "ecco l'organizzazione" in page and "Indice di fedeltà" in page
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        own = text_of(await (await browser.get("/team")).text())
        assert "Sales Milano" in own and "Troppe poche" not in own and "eNPS" in own
        other = text_of(await (await browser.get("/team?team=Sales Roma")).text())
        assert "Sales Roma non è uno dei tuoi team" in other and "eNPS" not in other
    async with db.session() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.startswith("loyalty."))
                .order_by(AuditEntry.id)
            )
        )
    # Every opening of the page is a view (signing in lands there too); each kind once here.
    seen = [(a.action, a.actor_label, a.detail.get("shown")) for a in audit]
    assert list(dict.fromkeys(seen)) == [
        ("loyalty.view", SILVIA, "the organisation"),
        ("loyalty.view", LUCA, "Sales Milano"),
        ("loyalty.refused", LUCA, None),
    ]
    assert all(a.detail["channel"] == "web" for a in audit)


def test_the_link_in_chat_survives_every_platform_s_markup() -> None:
    """A token may hold ``_`` and ``-``: written as a link, no platform formats or breaks it."""
    renderer = Renderer(REPO / "content" / "templates")
    url = "http://127.0.0.1:8080/signin/ab_cd-EF_gh"
    for locale in ("en", "it"):
        text = renderer.render(Reply("web/link", {"url": url, "minutes": 10}), locale).text
        assert f'<a href="{url}">' in to_telegram_html(text)
        assert f"<{url}|" in to_slack_mrkdwn(text)
        assert f"({url})" in to_plain(text)
