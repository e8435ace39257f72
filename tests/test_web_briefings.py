"""HR's briefing pages over HTTP: the list with statuses, the editor (the checks of content
files, each problem at its field, nothing stored when one is found), the preview per channel
and language (the chat renderer's own output), schedule, reschedule and cancel (audited, their
problems at their fields), readiness per team, and who may use them."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.briefings.body import body_reply
from bot.briefings.content import load_briefing
from bot.briefings.service import BriefingService, card_reply
from bot.briefings.tables import BriefingText
from bot.clock import ManualClock
from bot.db.models import AuditEntry, Campaign, CampaignStatus
from bot.db.session import Database
from bot.features import privacy_registry
from bot.markup import to_plain, to_slack_mrkdwn, to_telegram_html
from bot.privacy.service import forget_person
from bot.render import Renderer
from bot.web.briefing_form import form_of_text

from .harness import REPO, ConsoleDialog, demo_console
from .test_web_pages import text_of
from .web_helpers import AISHA, HR, LUCA, demo_on_the_web, signed_in, web_client, web_settings

ROME = ZoneInfo("Europe/Rome")
BEFORE = datetime(2027, 1, 1, 12, 0, tzinfo=ROME)
BRIEFINGS = REPO / "content" / "briefings"
BRIEFED = datetime(2027, 2, 26, 9, 30, tzinfo=ROME)  # spring-trade-in goes out on 26 Feb

GOOD: dict[str, Any] = {
    "id": "aurora-soundbar",
    "kind": "product",
    "locales": ["en", "it"],
    "launch_at": "2027-03-20 09:00 Europe/Rome",
    "brief": "2d",
    "expires_at": "",
    "audience": "teams: [Sales Milano]",
    "ack_required": "on",
    "reminders": "24h after briefing",
    "quiz": "",
    "faq": "- q: Does it fit the Aurora?\n  a: Yes, any size.\n",
    "title.en": "Aurora soundbar",
    "title.it": "Soundbar Aurora",
    "summary.en": "A soundbar for the Aurora TVs.",
    "summary.it": "Una soundbar per i TV Aurora.",
    "body.en": "# What it is\nA soundbar, out on {{ launch_local }}.",
    "body.it": "# Che cos'è\nUna soundbar, in vendita dal {{ launch_local }}.",
}


def form(csrf: str, **changes: Any) -> list[tuple[str, str]]:
    """The editor's fields as a browser posts them (``None`` leaves a field out)."""
    values = {**GOOD, **changes}
    pairs = [("csrf", csrf)]
    for name, value in values.items():
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name, one))
    return pairs


async def hr_browser(
    db: Database, clock: ManualClock, database_url: str, client: TestClient
) -> str:
    return await signed_in(web_settings(database_url), db, clock, HR, client)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def actions(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def test_a_bad_briefing_is_refused_field_by_field_and_nothing_is_stored(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    async with web_client(settings, db, clock) as browser:
        csrf = await hr_browser(db, clock, database_url, browser)
        editor = await browser.get("/hr/briefings/new")
        assert editor.status == 200 and 'for="f-title-it"' in await editor.text()
        bad = form(
            csrf,
            id="Bad Id!",
            **{"title.it": "", "body.en": "Out on {{ launch_day }}"},
            brief="2027-03-21 09:00 Europe/Rome",
            quiz="- question: [unclosed",
        )
        refused = await browser.post("/hr/briefings/new", data=bad, allow_redirects=False)
        assert refused.status == 400
        page = await refused.text()
        for field in ("id", "title-it", "body-en", "brief", "quiz"):
            assert f'id="f-{field}"' in page
            control = page[page.index(f'id="f-{field}"') :].split(">", 1)[0]
            assert 'aria-invalid="true"' in control and f"e-{field}" in control, field
        error = {
            name: text_of(page.split(f'id="e-{name}">', 1)[1].split("</p>", 1)[0])
            for name in ("id", "title-it", "body-en", "brief", "quiz")
        }
        assert "3-32 characters" in error["id"]
        assert error["title-it"] == "missing text for this locale"
        assert "launch_day" in error["body-en"] and "template error" in error["body-en"]
        assert error["brief"] == "must be before launch_at"
        assert error["quiz"].startswith("YAML syntax error on line 1")
        assert "Non è stato salvato nulla" in text_of(page)
        assert 'value="Bad Id!"' in page  # what HR wrote stays in the form
    assert await count(db, BriefingText) == 0
    assert not [a for a in await actions(db) if a.startswith("briefing.")]


async def test_hr_creates_a_briefing_then_edits_it_and_stale_or_renaming_edits_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    async with web_client(settings, db, clock) as browser:
        csrf = await hr_browser(db, clock, database_url, browser)
        created = await browser.post("/hr/briefings/new", data=form(csrf), allow_redirects=False)
        assert created.status == 303, await created.text()
        assert created.headers["Location"] == "/hr/briefings/aurora-soundbar?done=created"
        again = await browser.post("/hr/briefings/new", data=form(csrf), allow_redirects=False)
        assert again.status == 400 and "is already used" in await again.text()

        editor = await (await browser.get("/hr/briefings/aurora-soundbar/edit")).text()
        assert 'value="Soundbar Aurora"' in editor and 'name="version" value="1"' in editor
        edited = form(csrf, version="1", **{"title.en": "Aurora soundbar S1"})
        saved = await browser.post(
            "/hr/briefings/aurora-soundbar/edit", data=edited, allow_redirects=False
        )
        assert saved.status == 303
        shown = text_of(await (await browser.get(saved.headers["Location"])).text())
        assert "Modifiche salvate" in shown and "versione 2" in shown

        stale = form(csrf, version="1", **{"title.en": "Overwritten"})
        refused = await browser.post("/hr/briefings/aurora-soundbar/edit", data=stale)
        assert refused.status == 400 and "after you opened it" in await refused.text()
        renamed = form(csrf, version="2", id="aurora-renamed")
        refused = await browser.post("/hr/briefings/aurora-soundbar/edit", data=renamed)
        page = await refused.text()
        assert refused.status == 400 and "cannot change once stored" in page
        assert 'id="e-id"' in page

        listing = text_of(await (await browser.get("/hr/briefings")).text())
        assert "Soundbar Aurora" in listing and "Non programmato" in listing
        assert "spring-trade-in" in listing and "non ancora importato" in listing
    async with db.session() as session:
        row = await session.scalar(select(BriefingText))
        assert row is not None and row.version == 2 and row.updated_by == HR
        assert "Aurora soundbar S1" in row.text and "Overwritten" not in row.text
    assert [a for a in await actions(db) if a.startswith("briefing.")] == [
        "briefing.create",
        "briefing.edit",
    ]


async def test_the_preview_is_what_each_channel_shows_in_each_language(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    briefing = load_briefing(REPO / "content" / "briefings", "spring-trade-in")
    chat = Renderer(REPO / "content" / "templates")
    markup = {"telegram": to_telegram_html, "slack": to_slack_mrkdwn, "console": to_plain}
    async with web_client(settings, db, clock) as browser:
        await hr_browser(db, clock, database_url, browser)
        page = await (await browser.get("/hr/briefings/spring-trade-in")).text()
    for locale in ("en", "it"):
        replies = {
            "card": card_reply(Campaign(id=0), briefing, late=False),
            "body": body_reply(0, briefing, locale, "Europe/Rome", with_ack=True),
        }
        for what, reply in replies.items():
            for channel, convert in markup.items():
                message = chat.render(reply, locale, channel, "Europe/Rome")
                block = page.split(f'data-preview="{locale}-{what}-{channel}"', 1)[1]
                block = block.split("</figure>", 1)[0]
                assert "<pre" in block
                assert convert(message.text) in html.unescape(block), (locale, what, channel)
                for button in message.buttons:
                    assert html.escape(button.label) in block
    assert "Permuta di primavera" in page and "Spring trade-in" in page
    assert "<b>L&#x27;offerta</b>" in page or "<b>L'offerta</b>" in page  # Telegram's HTML


async def test_schedule_reschedule_and_cancel_with_problems_at_their_fields(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    where = "/hr/briefings/spring-trade-in"
    async with web_client(settings, db, clock) as browser:
        csrf = await hr_browser(db, clock, database_url, browser)
        past = {"csrf": csrf, "launch_at": "2026-12-01 09:00 Europe/Rome", "brief": "3d"}
        refused = await browser.post(f"{where}/schedule", data=past)
        page = await refused.text()
        assert refused.status == 400 and "launch is already past" in page
        assert 'id="e-launch_at"' in page and 'aria-invalid="true"' in page
        after = {"csrf": csrf, "launch_at": "2027-03-01 09:00 Europe/Rome", "brief": "2027-03-02"}
        refused = await browser.post(f"{where}/schedule", data=after)
        assert refused.status == 400 and "must be before launch_at" in await refused.text()
        assert await count(db, Campaign) == 0 and await count(db, BriefingText) == 0

        good = {"csrf": csrf, "launch_at": "2027-03-01 09:00 Europe/Rome", "brief": "3d"}
        done = await browser.post(f"{where}/schedule", data=good, allow_redirects=False)
        assert done.status == 303 and "done=scheduled&ref=B-1" in done.headers["Location"]
        shown = text_of(await (await browser.get(done.headers["Location"])).text())
        assert "Programmato come campagna B-1" in shown and "Riprogramma" in shown

        later = {"csrf": csrf, "launch_at": "2027-03-08 09:00 Europe/Rome", "brief": "2d"}
        moved = await browser.post(f"{where}/schedule", data=later, allow_redirects=False)
        assert moved.status == 303 and "done=rescheduled&ref=B-2" in moved.headers["Location"]
        listing = text_of(await (await browser.get("/hr/briefings")).text())
        assert "Programmato · B-2" in listing

        cancelled = await browser.post(f"{where}/cancel", data={"csrf": csrf})
        assert "Campagna B-2 annullata" in text_of(await cancelled.text())
        nothing = await browser.post(f"{where}/cancel", data={"csrf": csrf})
        assert nothing.status == 400 and "no scheduled campaign" in await nothing.text()
    async with db.session() as session:
        campaigns = list(await session.scalars(select(Campaign).order_by(Campaign.id)))
        stored = await session.scalar(select(BriefingText))
    assert [c.status for c in campaigns] == [CampaignStatus.cancelled, CampaignStatus.cancelled]
    assert campaigns[1].launch_at == datetime(2027, 3, 8, 9, 0, tzinfo=ROME)
    assert campaigns[1].starts_at == datetime(2027, 3, 6, 9, 0, tzinfo=ROME)
    assert stored is not None and "2027-03-08 09:00 Europe/Rome" in stored.text
    assert [a for a in await actions(db) if a.startswith(("briefing.", "campaign."))] == [
        "briefing.import",
        "campaign.schedule",
        "briefing.edit",
        "campaign.cancel",
        "campaign.schedule",
        "campaign.reschedule",
        "campaign.cancel",
    ]


async def test_readiness_per_team_follows_the_campaign(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    async with web_client(settings, db, clock) as browser:
        csrf = await hr_browser(db, clock, database_url, browser)
        good = {"csrf": csrf, "launch_at": "2027-03-01 09:00 Europe/Rome", "brief": "3d"}
        await browser.post("/hr/briefings/spring-trade-in/schedule", data=good)
        before = text_of(
            await (await browser.get("/hr/briefings/spring-trade-in/readiness")).text()
        )
        assert "Non l'ha ancora ricevuto nessuno" in before
        clock.set(BRIEFED)
        await BriefingService(settings, db, clock).run_due()
        await hr_browser(db, clock, database_url, browser)  # weeks later: a new session
        live = await browser.get(
            "/hr/briefings/spring-trade-in/readiness", headers={"HX-Request": "true"}
        )
        shown = text_of(await live.text())
        for team in ("Sales Milano", "Sales Roma", "Customer Care", "Totale"):
            assert team in shown, team
        assert 'hx-trigger="every 5s"' in await live.text()
        assert "Aisha" not in shown  # names of who has not acknowledged stay in chat


async def test_employees_managers_and_forms_without_their_token_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    for email in (AISHA, LUCA):
        async with web_client(settings, db, clock) as browser:
            csrf = await signed_in(settings, db, clock, email, browser)
            assert (await browser.get("/hr/briefings")).status == 403
            assert (await browser.get("/hr/briefings/spring-trade-in")).status == 403
            posted = await browser.post("/hr/briefings/new", data=form(csrf))
            assert posted.status == 403
            scheduled = await browser.post(
                "/hr/briefings/spring-trade-in/schedule",
                data={"csrf": csrf, "launch_at": "2027-03-01 09:00 Europe/Rome", "brief": "3d"},
            )
            assert scheduled.status == 403
    async with web_client(settings, db, clock) as browser:
        await hr_browser(db, clock, database_url, browser)
        forged = [pair for pair in form("") if pair[0] != "csrf"]
        assert (await browser.post("/hr/briefings/new", data=forged)).status == 403
        cancel = await browser.post("/hr/briefings/spring-trade-in/cancel", data={})
        assert cancel.status == 403
        assert (await browser.get("/hr/briefings/no-such-briefing")).status == 404
    assert await count(db, BriefingText) == 0 and await count(db, Campaign) == 0
    denied = await count(db, AuditEntry, AuditEntry.action == "denied")
    assert denied == 8


async def test_a_briefing_saved_in_the_browser_is_the_one_chat_schedules_and_forgets_its_author(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        async with web_client(rt.settings, db, clock) as browser:
            csrf = await signed_in(rt.settings, db, clock, HR, browser)
            editor = await (await browser.get("/hr/briefings/spring-trade-in/edit")).text()
            assert "il file non cambia" in editor and 'name="version" value="0"' in editor
            values = form_of_text((BRIEFINGS / "spring-trade-in.md").read_text(encoding="utf-8"))
            values["title.it"] = "Permuta di primavera, riveduta"
            posted = [("csrf", csrf), ("version", "0"), ("ack_required", "on")]
            posted += [(k, v) for k, v in values.items() if isinstance(v, str)]
            posted += [("locales", locale) for locale in values["locales"]]
            saved = await browser.post(
                "/hr/briefings/spring-trade-in/edit", data=posted, allow_redirects=False
            )
            assert saved.status == 303, await saved.text()
        answer = await ConsoleDialog(rt, HR).say("campaign schedule spring-trade-in")
        assert "B-1" in answer, answer
        await forget_person(db, HR, clock, registry=privacy_registry())
    async with db.session() as session:
        campaign = await session.scalar(select(Campaign))
        stored = await session.scalar(select(BriefingText))
    assert campaign is not None and campaign.snapshot["title"]["it"].endswith("riveduta")
    assert stored is not None and stored.created_by == stored.updated_by == "[erased]"
    assert "riveduta" in stored.text  # the briefing itself stays


async def test_a_campaign_already_sent_is_not_rescheduled_over_peoples_heads(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = await demo_on_the_web(db, clock, database_url, BEFORE)
    where = "/hr/briefings/spring-trade-in"
    async with web_client(settings, db, clock) as browser:
        csrf = await hr_browser(db, clock, database_url, browser)
        good = {"csrf": csrf, "launch_at": "2027-03-01 09:00 Europe/Rome", "brief": "3d"}
        assert (await browser.post(f"{where}/schedule", data=good)).status == 200
        clock.set(BRIEFED)
        await BriefingService(settings, db, clock).run_due()
        csrf = await hr_browser(db, clock, database_url, browser)
        later = {"csrf": csrf, "launch_at": "2027-03-08 09:00 Europe/Rome", "brief": "3d"}
        refused = await browser.post(f"{where}/schedule", data=later)
        page = await refused.text()
        assert refused.status == 400 and 'id="e-brief"' in page
        assert "B-1 has already been sent to people" in text_of(page)
        assert 'value="2027-03-08 09:00 Europe/Rome"' in page  # what HR asked stays
    async with db.session() as session:
        campaigns = list(await session.scalars(select(Campaign)))
        stored = await session.scalar(select(BriefingText))
    assert [(c.status, c.launch_at) for c in campaigns] == [
        (CampaignStatus.scheduled, datetime(2027, 3, 1, 9, 0, tzinfo=ROME))
    ]
    assert stored is not None and "2027-03-08" not in stored.text and stored.version == 1
