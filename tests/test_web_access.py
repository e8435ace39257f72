"""Signing in to the web console and staying signed in: one-time links (single use, short-lived,
stored as hashes), sessions (idle and absolute expiry, sign-out, revoked when the person leaves,
is forgotten or changes role), CSRF on every state change, the security headers, and the role
checks of every page."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from aiohttp import ClientSession
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.config import secret_key_problem
from bot.db.models import AuditEntry, Person, Role
from bot.db.session import Database
from bot.features import privacy_registry
from bot.privacy.service import export_person, forget_person
from bot.web.access import LapsedSessions
from bot.web.server import WebServer
from bot.web.tables import SignInLink, WebSession

from .harness import load_demo, make_settings
from .web_helpers import (
    AISHA,
    HR,
    LUCA,
    csrf_of,
    link_token,
    sign_in,
    signed_in,
    web_client,
    web_settings,
)


async def actions(db: Database, prefix: str) -> list[AuditEntry]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
        )


async def sessions_of(db: Database, email: str) -> list[WebSession]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(WebSession).join(Person).where(Person.email == email).order_by(WebSession.id)
            )
        )


async def test_a_link_signs_in_once_only_when_pressed_and_only_hashes_are_stored(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    token = await link_token(db, HR, clock, settings)
    async with web_client(settings, db, clock) as browser:
        # Opening the link (as a link preview would) uses nothing up.
        for _ in range(2):
            shown = await browser.get(f"/signin/{token}")
            assert shown.status == 200 and "Marta Galli" in await shown.text()
        async with db.session() as session:
            [link] = list(await session.scalars(select(SignInLink)))
        assert link.used_at is None
        assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert link.expires_at - link.created_at == timedelta(minutes=10)

        pressed = await sign_in(browser, token)
        assert pressed.status == 303 and pressed.headers["Location"] == "/"
        cookie = pressed.headers["Set-Cookie"]
        assert "fidelio_session=" in cookie and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie and "Secure" not in cookie
        value = re.search(r"fidelio_session=([^;]+)", cookie)
        assert value is not None
        dashboard = await browser.get("/")
        assert dashboard.url.path == "/hr" and "Cruscotto" in await dashboard.text()

        # The same link again, even in the same browser: refused.
        again = await browser.post(f"/signin/{token}", data={"csrf": csrf_of(await shown.text())})
        assert again.status in (403, 410)
    async with web_client(settings, db, clock) as other:
        page = await other.get(f"/signin/{token}")
        assert page.status == 410 and "già stato usato" in await page.text()
    [stored] = await sessions_of(db, HR)
    assert stored.token_hash == hashlib.sha256(value.group(1).encode()).hexdigest()
    assert stored.role == Role.hr and stored.expires_at - stored.created_at == timedelta(hours=12)
    assert [a.action for a in await actions(db, "web.")] == ["web.link", "web.sign_in", "web.view"]


async def test_expired_unknown_and_https_links(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    token = await link_token(db, HR, clock, settings)
    async with web_client(settings, db, clock) as browser:
        page = await browser.get(f"/signin/{token}")
        csrf = csrf_of(await page.text())
        clock.advance(timedelta(minutes=10))
        late = await browser.post(f"/signin/{token}", data={"csrf": csrf}, allow_redirects=False)
        assert late.status == 410 and "scaduto" in await late.text()
        assert (await browser.get(f"/signin/{token}")).status == 410
        assert (await browser.get("/signin/not-a-link")).status == 404
        assert (await browser.get("/hr")).status == 401
    # Behind https the cookie is Secure and named __Host- (no domain, path /).
    secure = web_settings(database_url, public_url="https://fidelio.example.com")
    async with web_client(secure, db, clock) as browser:
        token = await link_token(db, HR, clock, secure)
        page = await browser.get(f"/signin/{token}")
        nonce = page.cookies["fidelio_signin"]
        assert nonce["secure"] and nonce["httponly"] and nonce["path"] == "/signin"
        # The test client speaks http, so it would not send a Secure cookie back by itself.
        pressed = await browser.post(
            f"/signin/{token}",
            data={"csrf": csrf_of(await page.text())},
            headers={"Cookie": f"fidelio_signin={nonce.value}"},
            allow_redirects=False,
        )
        cookie = pressed.headers["Set-Cookie"]
        assert cookie.startswith("__Host-fidelio=") and "Secure" in cookie and "Path=/" in cookie


async def test_sessions_end_when_idle_at_their_absolute_expiry_and_on_sign_out(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url, idle_minutes=30, session_hours=1)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        clock.advance(timedelta(minutes=29))
        assert (await browser.get("/hr")).status == 200  # and the session is touched
        # The dashboard reloading its launches by itself is nobody's activity.
        clock.advance(timedelta(minutes=20))
        reloaded = await browser.get("/hr/launches", headers={"HX-Request": "true"})
        assert reloaded.status == 200
        clock.advance(timedelta(minutes=10))
        idle = await browser.get("/hr")
        assert idle.status == 401 and 'fidelio_session=""' in idle.headers["Set-Cookie"]

    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, HR, browser)
        for _ in range(2):
            clock.advance(timedelta(minutes=25))
            assert (await browser.get("/hr")).status == 200
        clock.advance(timedelta(minutes=10))  # 60 minutes after signing in
        assert (await browser.get("/hr")).status == 401

    async with web_client(settings, db, clock) as browser:
        csrf = await signed_in(settings, db, clock, HR, browser)
        out = await browser.post("/signout", data={"csrf": csrf}, allow_redirects=False)
        assert out.status == 303
        assert (await browser.get("/hr")).status == 401
    assert (await sessions_of(db, HR))[-1].revoked_at == clock.now()
    assert [a.action for a in await actions(db, "web.sign_out")] == ["web.sign_out"]


async def test_losing_the_role_or_leaving_revokes_every_session_of_the_person(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as one, web_client(settings, db, clock) as two:
        await signed_in(settings, db, clock, HR, one)
        await signed_in(settings, db, clock, HR, two)
        async with db.session() as session:
            await session.execute(
                update(Person).where(Person.email == HR).values(role=Role.employee)
            )
        assert (await one.get("/hr")).status == 401
        assert all(s.revoked_at == clock.now() for s in await sessions_of(db, HR))
        # Given the role back, the old sessions stay ended: a new link is needed.
        async with db.session() as session:
            await session.execute(update(Person).where(Person.email == HR).values(role=Role.hr))
        assert (await two.get("/hr")).status == 401

    # Somebody who leaves: the sweep revokes their session without any request of theirs.
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        async with db.session() as session:
            await session.execute(
                update(Person).where(Person.email == LUCA).values(leave_date=clock.now().date())
            )
        assert await LapsedSessions(db, clock).run_due() == 1
        assert all(s.revoked_at is not None for s in await sessions_of(db, LUCA))
        assert (await browser.get("/team")).status == 401
    revoked = await actions(db, "web.revoked")
    assert [a.detail["reason"] for a in revoked] == ["lapsed", "lapsed"]


async def test_forget_deletes_sign_ins_and_export_shows_them_without_tokens(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        data = await export_person(db, LUCA, clock, registry=privacy_registry())
        sign_ins = data["web_sign_ins"]
        assert len(sign_ins["links"]) == 1 and sign_ins["sessions"][0]["role"] == "manager"
        assert "hash" not in str(sign_ins) and "token" not in str(sign_ins)
        summary = await forget_person(db, LUCA, clock, registry=privacy_registry())
        assert summary.changed["web_sign_ins"] == 2
        assert (await browser.get("/team")).status == 401
    async with db.session() as session:
        assert list(await session.scalars(select(WebSession))) == []
        assert list(await session.scalars(select(SignInLink))) == []


async def test_every_state_change_needs_the_csrf_token_of_its_page(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    token = await link_token(db, HR, clock, settings)
    async with web_client(settings, db, clock) as browser:
        await browser.get(f"/signin/{token}")
        for form in ({}, {"csrf": "forged"}):
            refused = await browser.post(f"/signin/{token}", data=form)
            assert refused.status == 403 and "did not come from a page" in await refused.text()
        async with db.session() as session:
            assert (await session.scalar(select(SignInLink.used_at))) is None
        csrf = await signed_in(settings, db, clock, HR, browser)
        for form in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
            assert (await browser.post("/signout", data=form)).status == 403
        assert (await browser.get("/hr")).status == 200  # still signed in
        # Another session's token does not fit this one.
        async with web_client(settings, db, clock) as other:
            foreign = await signed_in(settings, db, clock, HR, other)
        assert (await browser.post("/signout", data={"csrf": foreign})).status == 403
        header = await browser.post("/signout", headers={"X-CSRF-Token": csrf})
        assert header.status == 200 and (await browser.get("/hr")).status == 401


async def test_every_response_carries_the_security_headers_and_pages_have_no_inline_code(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        responses = [await browser.get(p) for p in ("/", "/nowhere", "/static/fidelio.css")]
        responses.append(await browser.post("/signout"))
        await signed_in(settings, db, clock, HR, browser)
        for path in ("/hr", "/hr/audit", "/team", "/hr/launches"):
            responses.append(await browser.get(path))
        for response in responses:
            headers = response.headers
            csp = headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, response.url
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Content-Type-Options"] == "nosniff"
            if response.content_type == "text/html":
                html = await response.text()
                assert headers["Cache-Control"] == "no-store"
                assert not re.search(r"<script(?![^>]*\bsrc=)", html), response.url
                assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), response.url
        assert [r.status for r in responses[:4]] == [200, 404, 200, 403]


async def test_pages_check_the_role_as_chat_commands_do_and_refusals_are_audited(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    await load_demo(db, clock)
    settings = web_settings(database_url)
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, AISHA, browser)
        home = await browser.get("/")
        assert home.status == 200 and "nothing here for your role" in await home.text()
        for path in ("/hr", "/hr/audit", "/hr/launches", "/team"):
            refused = await browser.get(path)
            assert refused.status == 403, path
            assert "not available to your role" in await refused.text()
    async with web_client(settings, db, clock) as browser:
        await signed_in(settings, db, clock, LUCA, browser)
        assert (await browser.get("/")).url.path == "/team"
        assert (await browser.get("/team")).status == 200
        assert (await browser.get("/hr")).status == 403
    denied = await actions(db, "denied")
    assert [(a.actor_label, a.detail["page"]) for a in denied] == [
        (AISHA, "dashboard"),
        (AISHA, "audit"),
        (AISHA, "dashboard"),
        (AISHA, "team"),
        (LUCA, "dashboard"),
    ]
    assert all(a.detail["channel"] == "web" for a in denied)


def test_a_weak_secret_key_is_refused_once_other_machines_reach_the_console() -> None:
    weak = {"secret_key": "change-me-in-production"}
    local = make_settings("sqlite+aiosqlite://", security=weak, web={"enabled": True})
    assert secret_key_problem(local) is None  # this machine only: a warning at most
    for web in ({"listen": "0.0.0.0"}, {"public_url": "https://fidelio.example.com"}):
        exposed = make_settings("sqlite+aiosqlite://", security=weak, web={"enabled": True, **web})
        problem = secret_key_problem(exposed)
        assert problem is not None and "FIDELIO_SECRET_KEY" in problem, web


async def test_the_server_reports_the_port_the_system_chose(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    settings = web_settings(database_url, port=0, public_url="https://fidelio.example.com")
    server = WebServer(settings, db, clock)
    await server.start()
    try:
        assert server.port not in (None, 0)
        assert server.base_url == "https://fidelio.example.com"  # what links name
        async with ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{server.port}/") as response:
                assert response.status == 200 and "Fidelio" in await response.text()
    finally:
        await server.stop()
