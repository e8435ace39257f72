"""The web console's Surveys pages, over HTTP: HR schedules, pauses, resumes, stops a survey
and closes a round with the service calls of the `survey` chat command (audited as chat
audits it), sees the coarse rates `survey rates` gives and nothing finer, and previews a
round per language as each platform shows it. A refused form changes nothing and says why at
its field; employees and managers are refused; a form without its CSRF token is refused."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.db.models import AuditEntry, Campaign, CampaignStatus
from bot.db.session import Database
from bot.pulse.rates import response_rates
from bot.pulse.tables import RoundStatus, SurveyRound

from .harness import demo_console
from .test_surveys_ops import BEFORE, FIRST, answer_all
from .test_web_pages import text_of
from .web_helpers import AISHA, HR, LUCA, signed_in, web_client

KEVIN = "kevin.liu@demo.fidelio.example"


async def post(browser: TestClient, path: str, csrf: str, **form: str) -> Any:
    return await browser.post(path, data={"csrf": csrf, **form}, allow_redirects=False)


async def page(browser: TestClient, path: str = "/hr/surveys") -> str:
    return text_of(await (await browser.get(path)).text())


async def campaigns(db: Database) -> list[tuple[int, CampaignStatus]]:
    async with db.session() as session:
        rows = await session.execute(select(Campaign.id, Campaign.status).order_by(Campaign.id))
        return [(int(i), s) for i, s in rows.tuples()]


async def test_hr_schedules_pauses_resumes_and_stops_a_survey_and_bad_posts_change_nothing(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        async with web_client(rt.settings, db, clock) as browser:
            csrf = await signed_in(rt.settings, db, clock, HR, browser)
            assert "Nessun sondaggio è programmato" in await page(browser)

            done = await post(browser, "/hr/surveys/schedule", csrf, survey="pulse-fortnightly")
            assert done.status == 303
            assert done.headers["Location"] == "/hr/surveys?done=schedule&ref=P-1"
            shown = await page(browser, done.headers["Location"])
            assert "Programmato come pianificazione P-1" in shown and "Programmata" in shown

            # Twice, or a survey that does not exist: refused at the field, nothing stored.
            again = await post(browser, "/hr/surveys/schedule", csrf, survey="pulse-fortnightly")
            assert again.status == 400
            html = await again.text()
            assert 'id="error-survey"' in html and 'aria-invalid="true"' in html
            assert "già programmato come sondaggio P-1" in text_of(html)
            missing = await post(browser, "/hr/surveys/schedule", csrf, survey="no-such")
            assert missing.status == 400
            assert "Non c’è un sondaggio valido con id no-such" in text_of(await missing.text())
            assert await campaigns(db) == [(1, CampaignStatus.scheduled)]

            paused = await post(browser, "/hr/surveys/P-1/pause", csrf)
            assert paused.status == 303 and "done=pause" in paused.headers["Location"]
            twice = await post(browser, "/hr/surveys/P-1/pause", csrf)
            assert twice.status == 400
            assert 'id="error-schedule-P-1"' in await twice.text()
            assert "P-1 è in pausa" in text_of(await twice.text())
            unknown = await post(browser, "/hr/surveys/P-9/resume", csrf)
            assert unknown.status == 404
            assert await campaigns(db) == [(1, CampaignStatus.paused)]

            assert (await post(browser, "/hr/surveys/P-1/resume", csrf)).status == 303
            assert (await post(browser, "/hr/surveys/P-1/stop", csrf)).status == 303
            assert await campaigns(db) == [(1, CampaignStatus.cancelled)]
            assert "Fermata" in await page(browser)

    async with db.session() as session:
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    commands = [a.detail["args"] for a in audit if a.action == "command.survey"]
    assert commands == ["schedule pulse-fortnightly", "pause P-1", "resume P-1", "stop P-1"]
    assert all(a.detail["channel"] == "web" for a in audit if a.action == "command.survey")
    services = [a.action for a in audit if a.action.startswith("survey.")]
    assert services == ["survey.schedule", "survey.pause", "survey.resume", "survey.stop"]
    assert {a.actor_label for a in audit if a.action.startswith("survey.")} == {HR}


async def test_rounds_show_the_rates_survey_rates_gives_and_close_from_the_page(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        async with web_client(rt.settings, db, clock) as browser:
            csrf = await signed_in(rt.settings, db, clock, HR, browser)
            await post(browser, "/hr/surveys/schedule", csrf, survey="pulse-fortnightly")
            clock.set(FIRST)
            await rt.service("surveys").run_due()
            async with db.session() as session:
                round_ = await session.scalar(select(SurveyRound))
                assert round_ is not None
            for email in (AISHA, KEVIN, LUCA):  # three finished: under the step of 5
                await answer_all(rt, round_.id, email, {"sat_overall": 4})
            csrf = await signed_in(rt.settings, db, clock, HR, browser)  # days later
            shown = await page(browser)
            async with db.session() as session:
                found = await session.get(SurveyRound, round_.id)
                assert found is not None
                rates = await response_rates(session, found, rt.settings.anonymity, clock)
            invited = rates["total"]["invited"]
            assert rates["step"] == 5 and rates["total"]["finished"] == 0  # coarse while open
            assert f"{round_.id} (n. 1) Aperto" in shown and f"{invited} ≥ 0 ≥ 0 ≥ 0%" in shown
            assert "arrotondati per difetto a un multiplo di 5" in shown
            assert "Sales Milano" in shown and "HR & People" not in shown  # under k: pooled

            closed = await post(browser, f"/hr/surveys/rounds/{round_.id}/close", csrf)
            assert closed.status == 303 and closed.headers["Location"].endswith(f"ref={round_.id}")
            after = await page(browser, closed.headers["Location"])
            assert f"Il turno {round_.id} è chiuso" in after
            assert f"{invited} 3 3" in after  # closed: the exact final counts, as in chat
            again = await post(browser, f"/hr/surveys/rounds/{round_.id}/close", csrf)
            assert again.status == 400 and f'id="error-round-{round_.id}"' in await again.text()
            assert f"Il turno {round_.id} è già chiuso" in text_of(await again.text())
            assert (await post(browser, "/hr/surveys/rounds/999/close", csrf)).status == 404

    async with db.session() as session:
        status = await session.scalar(select(SurveyRound.status))
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert status == RoundStatus.closed
    closes = [a for a in audit if a.action == "survey.close"]
    assert [(a.actor_label, a.detail["early"]) for a in closes] == [(HR, True)]
    views = [a for a in audit if a.action == "survey.rates"]
    assert views and all(a.detail == {"round": round_.id, "channel": "web"} for a in views)


async def test_a_round_is_previewed_per_language_as_each_platform_shows_it(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        async with web_client(rt.settings, db, clock) as browser:
            await signed_in(rt.settings, db, clock, HR, browser)
            found = await browser.get("/hr/surveys/preview?survey=pulse-fortnightly&locale=it")
            html = await found.text()
            assert found.status == 200
            # Telegram's HTML, Slack's mrkdwn and the console's numbered choices.
            assert "<b>Pulse quindicinale</b>, 1/8" in html
            assert "*Pulse quindicinale*, 1/8" in html
            assert html.count("[1]  [2]  [3]  [4]  [5]  [s] Salta") == 6
            assert "Scrivi la risposta come messaggio, o tocca Scrivi;" in html
            english = await page(
                browser, "/hr/surveys/preview?survey=pulse-fortnightly&locale=en&round=2"
            )
            assert "My work here lets me learn and grow." in english
            assert "Fortnightly pulse, 8/8" in english

            for query, field in (
                ("survey=pulse-fortnightly&round=0", "round"),
                ("survey=pulse-fortnightly&round=x", "round"),
                ("survey=pulse-fortnightly&locale=fr", "locale"),
                ("survey=no-such", "survey"),
            ):
                refused = await browser.get(f"/hr/surveys/preview?{query}")
                assert refused.status == 400, query
                text = await refused.text()
                assert f'id="error-{field}"' in text and "Pulse quindicinale, 1/8" not in text
    async with db.session() as session:
        counted = await session.scalar(select(func.count()).select_from(Campaign))
    assert counted == 0  # a preview stores nothing


async def test_employees_managers_and_forms_without_csrf_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with demo_console(db, clock, database_url, HR, at=BEFORE, web={"enabled": True}) as rt:
        for email in (AISHA, LUCA):
            async with web_client(rt.settings, db, clock) as browser:
                csrf = await signed_in(rt.settings, db, clock, email, browser)
                for path in ("/hr/surveys", "/hr/surveys/preview"):
                    assert (await browser.get(path)).status == 403, (email, path)
                refused = await post(
                    browser, "/hr/surveys/schedule", csrf, survey="pulse-fortnightly"
                )
                assert refused.status == 403
                assert "Sondaggi" not in await (await browser.get("/")).text()
        async with web_client(rt.settings, db, clock) as browser:
            await signed_in(rt.settings, db, clock, HR, browser)
            forged = await browser.post(
                "/hr/surveys/schedule", data={"survey": "pulse-fortnightly"}, allow_redirects=False
            )
            assert forged.status == 403
            assert 'href="/hr/surveys"' in await (await browser.get("/hr")).text()
    assert await campaigns(db) == []
    async with db.session() as session:
        denied = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "denied"))
        )
    assert {(d.actor_label, d.detail["page"]) for d in denied} == {
        (AISHA, "surveys"),
        (LUCA, "surveys"),
    }
