"""The web console's loyalty pages: HR's (organisation and teams, segments, rounds, charts,
the heat map), a manager's trends, and the downloads, which are the files of
`fidelio report loyalty` for the same person, team and rounds. Roles are checked as in chat,
every view is audited, and nothing is shown that the release plans do not release."""

from __future__ import annotations

import csv
import io
import json
import re

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import AuditEntry
from bot.db.session import Database
from bot.loyalty.cli import loyalty_report

from .test_web_pages import seed_three_rounds, text_of
from .web_helpers import AISHA, HR, LUCA, SILVIA, signed_in, web_client, web_settings

ROBERTA = "roberta.esposito@demo.fidelio.example"  # manages Sales Roma
DATA_PNG = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"')


async def audit_of(db: Database, *actions: str) -> list[AuditEntry]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
            )
        )


async def test_hr_sees_the_organisation_its_segments_rounds_charts_and_heat_map(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        answer = await browser.get("/hr/loyalty")
        assert answer.status == 200
        html = await answer.text()
        page = text_of(html)
        assert "Riepilogo e andamento" in page and "Indice di fedeltà" in page
        assert "Segmenti nel turno del 1 feb 2027" in page and "apostoli" in page
        # Three rounds, each a row of the table that stands for the chart.
        rounds = re.search(r'<table id="rounds">.*?</table>', html, re.S)
        assert rounds is not None and rounds.group(0).count('<th scope="row">') == 3
        assert len(DATA_PNG.findall(html)) == 2  # the summary chart and the heat map
        assert 'alt="Grafico di l&#39;organizzazione' in html
        heat = re.search(r'<table id="heatmap">.*?</table>', html, re.S)
        assert heat is not None
        # HR & People (4 people) is not in the plan: a row without a single figure.
        hidden = re.search(
            r"HR &amp; People</th>\s*<td colspan=\"\d+\">([^<]*)</td>", heat.group(0)
        )
        assert hidden is not None and "Nascosto" in hidden.group(1)

        team = text_of(await (await browser.get("/hr/loyalty?team=Sales Milano&last=2")).text())
        assert "Sales Milano turno per turno" in team and "18 gen 2027" in team
        assert "4 gen 2027" not in team  # two rounds asked for
        small = text_of(await (await browser.get("/hr/loyalty?team=HR %26 People")).text())
        assert "Troppe poche risposte per mostrare HR & People" in small

        bad = await browser.get("/hr/loyalty?last=0")
        assert bad.status == 400
        bad_page = await bad.text()
        assert 'aria-invalid="true"' in bad_page and "numero intero da 1 a 104" in bad_page
        assert "Indice di fedeltà" not in bad_page
    views = await audit_of(db, "web.view", "loyalty.view")
    loyalty_pages = [a for a in views if a.detail.get("page") == "loyalty"]
    assert [(a.detail["asked"], a.detail["last"]) for a in loyalty_pages] == [
        (None, 6),  # loyalty.default_rounds
        ("Sales Milano", 2),
        ("HR & People", 6),
    ]
    assert loyalty_pages[0].detail["heatmap"] is True
    shown = [a.detail["shown"] for a in views if a.action == "loyalty.view"]
    assert shown[-3:] == ["the organisation", "Sales Milano", "the organisation"]


async def test_managers_and_employees_are_refused_hr_s_loyalty_page(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    for email in (LUCA, AISHA):
        async with web_client(settings, db, clock) as browser:
            await signed_in(settings, db, clock, email, browser)
            refused = await browser.get("/hr/loyalty")
            assert refused.status == 403
            assert "Indice" not in await refused.text()
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, AISHA, browser)
        for path in ("/team/trends", "/loyalty/report?format=csv"):
            assert (await browser.get(path)).status == 403
    denied = await audit_of(db, "denied")
    assert [(a.actor_label, a.detail["page"]) for a in denied] == [
        (LUCA, "loyalty"),
        (AISHA, "loyalty"),
        (AISHA, "trends"),
        (AISHA, "loyalty.download"),
    ]
    assert not [a for a in await audit_of(db, "loyalty.view") if a.actor_label == AISHA]


async def test_downloads_are_the_files_of_report_loyalty(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        got = {}
        for fmt in ("csv", "json", "html", "png", "text"):
            answer = await browser.get(f"/loyalty/report?format={fmt}&team=Sales Milano&last=3")
            assert answer.status == 200, fmt
            got[fmt] = (answer.headers, await answer.read())
        org = await browser.get("/loyalty/report?format=html")
        org_html = (await org.read()).decode("utf-8")
        refused = await browser.get("/loyalty/report?format=pdf")
        assert refused.status == 400 and "csv, html, png, json" in await refused.text()
    types = {fmt: headers["Content-Type"] for fmt, (headers, _) in got.items()}
    assert types == {
        "csv": "text/csv; charset=utf-8",
        "json": "application/json; charset=utf-8",
        "html": "text/html; charset=utf-8",
        "png": "image/png",
        "text": "text/plain; charset=utf-8",
    }
    assert got["csv"][0]["Content-Disposition"] == 'attachment; filename="loyalty-report.csv"'
    assert got["png"][1].startswith(b"\x89PNG")
    # The command line, for the same person, team and rounds, writes the same figures.
    for fmt in ("csv", "json"):
        cli = await loyalty_report(settings, "Sales Milano", None, 3, fmt, "it", HR)
        assert got[fmt][1].decode("utf-8") == cli, fmt
    rows = list(csv.DictReader(io.StringIO(got["csv"][1].decode("utf-8"))))
    assert {r["scope"] for r in rows} == {"Sales Milano"}
    assert json.loads(got["json"][1])["summary"]["scope"] == "Sales Milano"
    assert "Sales Milano" in got["html"][1].decode("utf-8")
    # HR's organisation report carries the heat map, as on the command line.
    assert org_html.count("data:image/png;base64,") == 2
    reports = await audit_of(db, "loyalty.report")
    web = [a for a in reports if a.detail["route"] == "web"]
    assert [a.detail["format"] for a in web] == ["csv", "json", "html", "png", "text", "html"]
    assert all(a.actor_label == HR for a in web)


async def test_a_manager_downloads_their_team_only_and_no_heat_map(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        own = await browser.get("/loyalty/report?format=json")
        assert own.status == 200
        assert json.loads(await own.text())["summary"]["scope"] == "Sales Milano"
        other = await browser.get("/loyalty/report?format=csv&team=Sales Roma")
        assert other.status == 403 and "scope,round" not in await other.text()
        unknown = await browser.get("/loyalty/report?format=csv&team=Nowhere")
        assert unknown.status == 404
        org = await browser.get("/loyalty/report?format=html&team=organisation")
        assert org.status == 200
        # The organisation's summary, but no heat map: managers see no other team's row.
        assert (await org.text()).count("data:image/png;base64,") == 1
    refusals = await audit_of(db, "loyalty.refused")
    assert [(a.detail["asked"], a.detail["reason"]) for a in refusals] == [
        ("Sales Roma", "summaries/not_your_team"),
        ("Nowhere", "summaries/unknown_team"),
    ]
    reports = await audit_of(db, "loyalty.report")
    assert [(a.detail["asked"], a.detail["route"]) for a in reports] == [
        ("Sales Milano", "web"),
        ("organisation", "web"),
    ]


async def test_a_manager_sees_trends_of_their_teams_only_or_the_nearest_parent(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await seed_three_rounds(db, clock, database_url)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        html = await (await browser.get("/team/trends")).text()
        page = text_of(html)
        assert "Sales Milano turno per turno" in page and "Troppe poche" not in page
        assert len(DATA_PNG.findall(html)) == 1 and 'id="heatmap"' not in html
        # Only their own teams to choose from.
        main = html[html.index("<main") :]  # the header's language switch has options too
        assert re.findall(r'<option value="([^"]*)"', main) == ["", "Sales Milano"]
        other = await browser.get("/team/trends?team=Sales Roma")
        other_page = text_of(await other.text())
        assert "Sales Roma non è uno dei tuoi team" in other_page
        assert "Indice di fedeltà" not in other_page and "data:image" not in other_page
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, SILVIA, browser)
        page = text_of(await (await browser.get("/team/trends")).text())
        assert "Troppe poche risposte per mostrare HR & People" in page
        assert "ecco l'organizzazione" in page and "l'organizzazione turno per turno" in page
    views = await audit_of(db, "loyalty.view", "loyalty.refused")
    trends = [(a.action, a.actor_label, a.detail.get("shown")) for a in views[-3:]]
    # Signing in lands on /team, a view of its own; then the trends page.
    assert trends == [
        ("loyalty.refused", LUCA, None),
        ("loyalty.view", SILVIA, "the organisation"),
        ("loyalty.view", SILVIA, "the organisation"),
    ]
    pages = [a.detail["page"] for a in await audit_of(db, "web.view")]
    assert pages.count("trends") == 3
