"""The web console's Suggestions pages, over HTTP: the list with the filters of the
`suggestions` chat command, a suggestion's page that never names an anonymous author, and
the triage actions of `suggestion` (status, reply, ask, publish, merge), each through the
SuggestionService call chat makes, so the author is told through its notices (a sealed notice
for an anonymous author, the outbox for a named one) and the service audits it. A refused form
changes nothing and says why at its field; managers triage their teams only, employees are
refused, and a form without its CSRF token is refused."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import AuditEntry, Delivery, Person
from bot.db.session import Database
from bot.suggestions.service import SuggestionService
from bot.suggestions.tables import SealedNotice, Suggestion, SuggestionEvent, SuggestionStatus

from .harness import load_demo
from .test_web_pages import text_of
from .web_helpers import AISHA, HR, LUCA, signed_in, web_client, web_settings

MARCO = "marco.bianchi@demo.fidelio.example"  # Headquarters, named author


async def two_suggestions(db: Database, clock: ManualClock, database_url: str) -> Settings:
    """The demo, S-0001 from Aisha (anonymous, Sales Milano), S-0002 from Marco (named)."""
    await load_demo(db, clock)
    settings = web_settings(database_url)
    service = SuggestionService(settings, clock)
    async with db.session() as session:
        for email, text, category, anonymous in (
            (AISHA, "A demo OLED at every till", "product", True),
            (MARCO, "Più parcheggi per i clienti il sabato", "customer_service", False),
        ):
            author = await session.scalar(select(Person).where(Person.email == email))
            assert author is not None
            await service.create(session, author, text, category, anonymous)
    return settings


async def post(browser: TestClient, path: str, csrf: str, **form: str) -> Any:
    return await browser.post(path, data={"csrf": csrf, **form}, allow_redirects=False)


async def state(db: Database) -> tuple[list[Any], int, int, int]:
    """Statuses and publication of every suggestion; events, sealed notices, outbox rows."""
    async with db.session() as session:
        rows = await session.execute(
            select(Suggestion.status, Suggestion.published_at, Suggestion.merged_into_id).order_by(
                Suggestion.id
            )
        )
        counts = []
        for table in (SuggestionEvent, SealedNotice, Delivery):
            counts.append(int(await session.scalar(select(func.count()).select_from(table)) or 0))
    return [tuple(r) for r in rows.all()], counts[0], counts[1], counts[2]


async def test_the_list_filters_like_chat_and_never_shows_the_anonymous_author(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await two_suggestions(db, clock, database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        everything = text_of(await (await browser.get("/suggestions")).text())
        assert "S-0001" in everything and "S-0002" in everything and "anonimo" in everything
        for query, shown, hidden in (
            ("status=new&category=product", "S-0001", "S-0002"),
            ("anonymous=named", "S-0002", "S-0001"),
            ("team=Sales Milano", "S-0001", "S-0002"),
            ("status=planned", "Suggerimenti mostrati: 0", "S-0001"),
        ):
            found = text_of(await (await browser.get(f"/suggestions?{query}")).text())
            assert shown in found and hidden not in found, query
        for query, field, words in (
            ("status=bogus", "status", "Scegli uno degli stati"),
            ("category=nope", "category", "Non esiste la categoria “nope”"),
            ("team=Nowhere", "team", "Non esiste un team chiamato “Nowhere”"),
            ("anonymous=maybe", "anonymous", "Scegli firmati, anonimi"),
        ):
            refused = await browser.get(f"/suggestions?{query}")
            html = await refused.text()
            assert refused.status == 400 and f'id="error-{field}"' in html, query
            assert words in text_of(html) and "S-0001" not in text_of(html)

        anonymous = await (await browser.get("/suggestions/1")).text()
        assert "A demo OLED at every till" in anonymous and "Anonimo" in anonymous
        for trace in ("Aisha", "Khan", AISHA):
            assert trace not in anonymous and trace not in everything
        named = text_of(await (await browser.get("/suggestions/2")).text())
        assert "Marco Bianchi" in named  # who gave their name is shown, as in chat
        assert (await browser.get("/suggestions/99")).status == 404
    async with db.session() as session:
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    lists = [a.detail for a in audit if a.action == "suggestions.list"]
    assert lists[0] == {"filters": "", "shown": 2, "channel": "web"}
    assert len(lists) == 5  # refused filters list nothing and are not a listing
    shows = [a.detail["suggestion"] for a in audit if a.action == "suggestion.show"]
    assert shows == [1, 2]


async def test_status_reply_and_ask_reach_the_author_and_bad_posts_change_nothing(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await two_suggestions(db, clock, database_url)
    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, HR, browser)
        before = await state(db)
        for path, form, field, words in (
            (
                "/suggestions/1/status",
                {"status": "declined"},
                "reason",
                "serve un motivo, per chi l'ha scritto: scrivilo qui",
            ),
            ("/suggestions/1/status", {"status": "merged"}, "status", "merged"),
            ("/suggestions/1/status", {"status": "new"}, "status", "S-0001 è già nuovo"),
            ("/suggestions/1/reply", {"reply": "  "}, "reply", "Scrivi la risposta."),
            ("/suggestions/1/ask", {"question": ""}, "question", "Scrivi la domanda."),
        ):
            refused = await post(browser, path, csrf, **form)
            html = await refused.text()
            assert refused.status == 400 and f'id="error-{field}"' in html, form
            assert words in text_of(html), (form, text_of(html)[-600:])
            assert "Non è stato cambiato nulla" in text_of(html)
        assert await state(db) == before

        planned = await post(browser, "/suggestions/1/status", csrf, status="planned")
        assert planned.status == 303
        assert planned.headers["Location"] == "/suggestions/1?done=status"
        page = text_of(await (await browser.get(planned.headers["Location"])).text())
        assert "S-0001: stato cambiato" in page and "S-0001 · Pianificato" in page
        declined = await post(
            browser, "/suggestions/2/status", csrf, status="declined", reason="Non è nostro."
        )
        assert declined.status == 303
        assert (await post(browser, "/suggestions/2/reply", csrf, reply="Grazie!")).status == 303
        asked = await post(browser, "/suggestions/1/ask", csrf, question="Which models?")
        assert asked.status == 303
        statuses, events, sealed, outbox = await state(db)
    assert [s[0] for s in statuses] == [SuggestionStatus.planned, SuggestionStatus.declined]
    # Aisha is told by sealed notices (nothing names her), Marco through the outbox.
    assert (events, sealed) == (4, 2)
    async with db.session() as session:
        marco = await session.scalar(select(Person.id).where(Person.email == MARCO))
        notices = list(await session.scalars(select(Delivery).where(Delivery.person_id == marco)))
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert outbox == 2 and [d.template for d in notices] == [
        "suggestions/status_changed",
        "suggestions/replied",
    ]
    triage = [(a.action, a.actor_label) for a in audit if a.action.startswith("suggestion.")]
    assert [t for t in triage if t[0] != "suggestion.show"] == [
        ("suggestion.status", HR),
        ("suggestion.status", HR),
        ("suggestion.reply", HR),
        ("suggestion.question", HR),
    ]


async def test_publish_and_merge_with_errors_at_their_fields(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await two_suggestions(db, clock, database_url)
    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, HR, browser)
        assert (await post(browser, "/suggestions/1/publish", csrf)).status == 303
        again = await post(browser, "/suggestions/1/publish", csrf)
        assert again.status == 400 and "S-0001 è già pubblicato" in text_of(await again.text())
        before = await state(db)
        for target, words in (
            ("abc", "Indica il riferimento di un altro suggerimento"),
            ("S-0099", "Non c'è un suggerimento S-0099"),
            ("S-0002", "Indica il riferimento di un altro suggerimento"),  # itself
        ):
            refused = await post(browser, "/suggestions/2/merge", csrf, target=target)
            html = await refused.text()
            assert refused.status == 400 and 'id="error-target"' in html, target
            assert words in text_of(html), target
        assert await state(db) == before
        merged = await post(browser, "/suggestions/2/merge", csrf, target="S-0001")
        assert merged.status == 303
        page = text_of(await (await browser.get("/suggestions/2")).text())
        assert "S-0002 · Unito" in page and "Unito a S-0001" in page
        assert 'action="/suggestions/2/merge"' not in page
    statuses, *_ = await state(db)
    assert statuses[1][0] == SuggestionStatus.merged and statuses[1][2] == 1
    assert statuses[0][1] is not None  # published


async def test_managers_triage_their_teams_only_employees_and_forged_forms_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await two_suggestions(db, clock, database_url)
    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, LUCA, browser)
        mine = text_of(await (await browser.get("/suggestions")).text())
        assert "S-0001" in mine and "S-0002" not in mine
        assert (await browser.get("/suggestions/2")).status == 404
        assert (await post(browser, "/suggestions/2/reply", csrf, reply="Ciao")).status == 404
        page = await (await browser.get("/suggestions/1")).text()
        assert 'action="/suggestions/1/ask"' not in page  # HR's, as in chat
        refused = await post(browser, "/suggestions/1/ask", csrf, question="Quali modelli?")
        assert refused.status == 400 and 'id="error-question"' in await refused.text()
        assert "non è disponibile per te" in text_of(await refused.text())
        assert (await browser.get("/hr/surveys")).status == 403
        before = await state(db)
    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, AISHA, browser)
        assert (await browser.get("/suggestions")).status == 403
        assert (await browser.get("/suggestions/1")).status == 403
        assert (await post(browser, "/suggestions/1/reply", csrf, reply="me")).status == 403
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        forged = await browser.post(
            "/suggestions/1/status", data={"status": "done"}, allow_redirects=False
        )
        assert forged.status == 403
    assert await state(db) == before
