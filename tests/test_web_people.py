"""HR's people pages in the web console: importing the directory (a dry run that changes
nothing, then a confirmation that applies exactly it, refused when stale, replayed or
altered), invite links (shown once or as CSV), exporting and forgetting a person (typing the
email confirms; their sessions end), and who may do any of it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from html import unescape
from typing import Any

from aiohttp import ClientResponse, FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.db.models import AuditEntry, Invite, Person
from bot.db.session import Database
from bot.features import privacy_registry
from bot.people import CsvUpload, import_people
from bot.privacy.service import export_person
from bot.web.people_import import MAX_UPLOAD
from bot.web.tables import SignInLink, WebSession

from .harness import REPO, free_port, load_demo, make_settings
from .test_people_import import snapshot
from .web_helpers import AISHA, HR, LUCA, csrf_of, signed_in, web_client

DEMO = (REPO / "content" / "demo" / "people.csv").read_text(encoding="utf-8")
KEVIN = "kevin.liu@demo.fidelio.example"
SARA = "sara.greco@demo.fidelio.example"
NINA = "nina.park@demo.fidelio.example"
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def changed_demo() -> str:
    """The demo file with one person added (in a new team), one renamed and one leaving."""
    text = DEMO.replace("Sara Greco,", "Sara Greco-Villa,")
    text = text.replace("2024-06-03,\n", "2024-06-03,2027-06-30\n")
    return text + (
        f"{NINA},Nina Park,Support Torino,Headquarters,{LUCA},employee,en,Europe/Rome,"
        "Torino,2027-01-04,\n"
    )


def web_with_telegram(database_url: str) -> Settings:
    return make_settings(
        database_url,
        web={"enabled": True, "port": free_port(), "idle_minutes": 240},
        telegram={"bot_username": "fidelio_demo_bot"},
    )


@asynccontextmanager
async def as_hr(
    db: Database, clock: ManualClock, database_url: str
) -> AsyncIterator[tuple[TestClient, str]]:
    """The demo directory and HR signed in: the client and its CSRF token."""
    await load_demo(db, clock)
    settings = web_with_telegram(database_url)
    async with web_client(settings, db, clock) as client:
        yield client, await signed_in(settings, db, clock, HR, client)


async def upload(
    client: TestClient, csrf: str | None, text: str | bytes, name: str = "people.csv"
) -> ClientResponse:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("file", text, filename=name, content_type="text/csv")
    return await client.post("/hr/people/import", data=form, allow_redirects=False)


def confirmation(html: str) -> dict[str, str]:
    """The hidden fields of a dry run's confirmation form."""
    form = html[html.index('action="/hr/people/import/apply"') :]
    return {name: unescape(value) for name, value in HIDDEN.findall(form)}


async def confirm(client: TestClient, fields: dict[str, str]) -> ClientResponse:
    form = FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    return await client.post("/hr/people/import/apply", data=form, allow_redirects=False)


async def directory(db: Database) -> dict[str, Any]:
    """The people, the teams and every table's row count but the audit log's and those of
    sign-ins (signing in is not a change of the directory)."""
    found = await snapshot(db)
    for table in (AuditEntry, SignInLink, WebSession):
        found["counts"].pop(table.__tablename__)
    return found


async def audited(db: Database, action: str) -> list[AuditEntry]:
    async with db.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def test_a_dry_run_changes_nothing_and_its_confirmation_applies_exactly_it(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        before = await directory(db)
        page = await upload(client, csrf, changed_demo())
        html = await page.text()
        assert page.status == 200, html
        assert await directory(db) == before
        added = html[html.index('id="added-title"') : html.index('id="changed-title"')]
        assert NINA in added and "Support Torino" in added
        changed = html[html.index('id="changed-title"') : html.index('id="leavers-title"')]
        assert "Sara Greco → Sara Greco-Villa" in unescape(changed)
        assert KEVIN in changed and "2027-06-30" in changed
        leaving = html[html.index('id="leavers-title"') : html.index('id="teams-title"')]
        assert KEVIN in leaving and SARA not in leaving
        assert "Support Torino" in html[html.index('id="teams-title"') :]
        assert [e.detail["added"] for e in await audited(db, "people.import_dry_run")] == [1]

        applied = await confirm(client, confirmation(html))
        assert applied.status == 303
        assert applied.headers["Location"].startswith("/hr/people?notice=imported&created=1")
        notice = await (await client.get(applied.headers["Location"])).text()
        assert "1 persone aggiunte, 2 modificate, 1 team nuovi" in notice
    after = await directory(db)
    assert after["counts"]["people"] == before["counts"]["people"] + 1
    async with db.session() as session:
        people = {p.email: p for p in await session.scalars(select(Person))}
    assert people[SARA].name == "Sara Greco-Villa"
    assert people[KEVIN].leave_date == date(2027, 6, 30)
    assert people[NINA].name == "Nina Park"
    entry = (await audited(db, "people.import"))[-1]
    assert entry.actor_label == HR and entry.detail["created"] == 1


async def test_a_bad_file_lists_its_problems_by_line_and_column_and_applies_nothing(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        before = await directory(db)
        lines = changed_demo().splitlines()
        lines[2] = lines[2].replace("admin@demo.fidelio.example", "not-an-email")
        lines[4] = lines[4].replace("2019-05-06", "06/05/2019")
        page = await upload(client, csrf, "\n".join(lines) + "\n", name="bad.csv")
        html = await page.text()
        assert page.status == 400
        rows = re.findall(
            r'<td class="num">(\d+)</td>\s*<td><code>(\w+)</code></td>\s*<td>([^<]+)</td>', html
        )
        assert [(line, column) for line, column, _ in rows] == [
            ("3", "email"),
            ("5", "hire_date"),
        ]
        assert "not a date in the form YYYY-MM-DD" in unescape(rows[1][2])
        assert 'action="/hr/people/import/apply"' not in html
        assert 'aria-describedby="file-hint file-problems"' in html

        empty = await upload(client, csrf, b"", name="empty.csv")
        assert empty.status == 400 and 'id="file-problem"' in await empty.text()
        large = await upload(client, csrf, b"x" * (MAX_UPLOAD + 1))
        assert large.status == 400 and "2 MiB" in await large.text()
        assert await directory(db) == before
    # Only the demo's own import (from the command line) was ever applied.
    assert [e.actor_label for e in await audited(db, "people.import")] == ["cli"]


async def test_a_replayed_stale_altered_or_late_confirmation_is_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        first = confirmation(await (await upload(client, csrf, changed_demo())).text())
        assert (await confirm(client, first)).status == 303
        applied = await directory(db)
        replayed = await confirm(client, first)
        assert replayed.status == 409
        assert "il file è già stato applicato" in await replayed.text()

        # The directory changes between the dry run and its confirmation.
        renamed = changed_demo().replace("Nina Park", "Nina Park-Rossi")
        stale = confirmation(await (await upload(client, csrf, renamed)).text())
        await import_people(db, CsvUpload("other.csv", DEMO.encode()), clock)
        moved_on = await directory(db)
        assert (await confirm(client, stale)).status == 409
        assert await directory(db) == moved_on != applied

        # The file in the confirmation is not the one checked.
        checked = confirmation(await (await upload(client, csrf, renamed)).text())
        other = renamed.replace("Nina Park-Rossi", "Mallory")
        altered = checked | {"content": base64.b64encode(other.encode()).decode()}
        refused = await confirm(client, altered)
        assert refused.status == 409 and "non corrisponde al file" in await refused.text()

        clock.advance(timedelta(minutes=31))
        late = await confirm(client, checked)
        assert late.status == 409 and "più di 30 minuti" in await late.text()
        assert await directory(db) == moved_on
    reasons = [e.detail["reason"] for e in await audited(db, "people.import_refused")]
    assert reasons == ["stale", "stale", "tampered", "expired"]


async def test_export_downloads_what_the_command_line_exports(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        answer = await client.post("/hr/people/export", data={"csrf": csrf, "email": AISHA})
        assert answer.status == 200
        assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
        data = json.loads(await answer.text())
        unknown = await client.post(
            "/hr/people/export", data={"csrf": csrf, "email": "nobody@demo.fidelio.example"}
        )
        html = await unknown.text()
        assert unknown.status == 400 and 'aria-describedby="email-problem"' in html
        assert "Nessuno con questa email" in html
    cli = await export_person(db, AISHA, clock, registry=privacy_registry())
    assert data["directory"]["email"] == AISHA and data["directory"]["name"] == "Aisha Khan"
    # The same parts and content; only the time and the audit log (which now holds the
    # first export) differ.
    varying = ("exported_at", "audit_entries")
    assert {k: v for k, v in data.items() if k not in varying} == {
        k: v for k, v in json.loads(json.dumps(cli, default=str)).items() if k not in varying
    }
    assert [e.actor_label for e in await audited(db, "people.export")] == [HR, "cli"]


async def test_forgetting_needs_the_email_typed_and_ends_their_sessions(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        settings = web_with_telegram(database_url)
        async with web_client(settings, db, clock) as luca:
            await signed_in(settings, db, clock, LUCA, luca)
            assert (await luca.get("/team")).status == 200
            page = await client.get("/hr/people/forget", params={"email": LUCA.upper()})
            assert page.status == 200 and "Luca Moretti" in await page.text()
            fields = {"email": LUCA, "confirm": "luca@demo.fidelio.example"}
            wrong = await client.post("/hr/people/forget", data={"csrf": csrf, **fields})
            html = await wrong.text()
            assert wrong.status == 400 and 'aria-describedby="confirm-problem"' in html
            no_csrf = await client.post("/hr/people/forget", data={"email": LUCA, "confirm": LUCA})
            assert no_csrf.status == 403
            assert await audited(db, "people.forget") == []
            assert (await luca.get("/team")).status == 200

            done = await client.post(
                "/hr/people/forget",
                data={"csrf": csrf, "email": LUCA, "confirm": f" {LUCA.upper()} "},
                allow_redirects=False,
            )
            assert done.status == 303 and done.headers["Location"].endswith("notice=forgotten")
            assert (await luca.get("/team")).status == 401
            again = await client.get("/hr/people/forget", params={"email": LUCA})
            assert again.status == 400
    async with db.session() as session:
        erased = await session.scalar(select(func.count()).where(Person.erased_at.is_not(None)))
    assert erased == 1
    assert [e.actor_label for e in await audited(db, "people.forget")] == [HR]


async def test_invite_links_are_shown_once_or_downloaded_and_audited(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with as_hr(db, clock, database_url) as (client, csrf):
        listing = await client.get("/hr/people/invites", params={"team": "Sales Milano"})
        html = await listing.text()
        assert listing.status == 200 and AISHA in html and "giulia.ferretti" not in html
        shown = await client.post(
            "/hr/people/invites",
            data={"csrf": csrf, "team": "Sales Milano", "email": AISHA, "format": "page"},
        )
        page = await shown.text()
        links = re.findall(
            r'<label for="(link-\d+)">[^<]*</label>\s*<input id="\1" type="text" '
            r'readonly value="(https://t\.me/fidelio_demo_bot\?start=[\w-]+)">',
            page,
        )
        assert len(links) == 1 and "Aisha Khan" in page
        again = await client.get("/hr/people/invites", params={"team": "Sales Milano"})
        assert "in attesa, valido fino a" in await again.text()

        download = await client.post(
            "/hr/people/invites",
            data={"csrf": csrf, "team": "Sales Milano", "everyone": "1", "format": "csv"},
        )
        assert download.headers["Content-Disposition"] == 'attachment; filename="invites.csv"'
        lines = (await download.text()).splitlines()
        assert lines[0] == "email,name,team,link,expires_at" and len(lines) == 1 + 11
        unknown = await client.get("/hr/people/invites", params={"team": "Nowhere"})
        assert unknown.status == 400
    async with db.session() as session:
        live = await session.scalar(
            select(func.count()).select_from(Invite).where(Invite.revoked_at.is_(None))
        )
    assert live == 11  # Aisha's first link was replaced by the second
    assert [(e.actor_label, e.detail["count"]) for e in await audited(db, "invites.issue")] == [
        (HR, 1),
        (HR, 11),
    ]


async def test_employees_and_managers_are_refused_and_forms_need_their_token(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_with_telegram(database_url)
    before = await directory(db)
    for email in (AISHA, LUCA):
        async with web_client(settings, db, clock) as client:
            csrf = await signed_in(settings, db, clock, email, client)
            for path in ("/hr/people", "/hr/people/invites", "/hr/people/forget?email=" + AISHA):
                assert (await client.get(path)).status == 403, (email, path)
            assert (await upload(client, csrf, changed_demo())).status == 403
            for path in ("/hr/people/export", "/hr/people/forget", "/hr/people/invites"):
                answer = await client.post(path, data={"csrf": csrf, "email": AISHA})
                assert answer.status == 403, (email, path)
    async with web_client(settings, db, clock) as client:
        csrf = await signed_in(settings, db, clock, HR, client)
        assert (await upload(client, None, changed_demo())).status == 403
        html = await (await upload(client, csrf, changed_demo())).text()
        fields = confirmation(html)
        fields.pop("csrf")
        assert (await confirm(client, fields)).status == 403
        assert csrf_of(html) == csrf
    assert await directory(db) == before
    denied = await audited(db, "denied")
    assert {e.detail["page"] for e in denied} >= {"people", "people.import", "people.forget"}
