"""Helpers for the web console's tests: settings with the console on, a test client on its
application, and signing in the way a browser does (open the link, press the button)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.clock import Clock, ManualClock
from bot.config import Settings
from bot.db.models import Person
from bot.db.session import Database
from bot.features import privacy_registry
from bot.web.access import issue_link
from bot.web.rendering import Pages
from bot.web.server import build_app
from bot.web.shared import Web

from .harness import free_port, load_demo, make_settings

HR = "hr@demo.fidelio.example"  # Marta Galli, HR, writes in Italian
SILVIA = "silvia.rossi@demo.fidelio.example"  # manages HR & People (4 people)
LUCA = "luca.moretti@demo.fidelio.example"  # manages Sales Milano
AISHA = "aisha.khan@demo.fidelio.example"  # employee, Sales Milano, English
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def web_settings(database_url: str, **web: Any) -> Settings:
    """Test settings with the web console on a free port of 127.0.0.1 (``web`` adds keys)."""
    return make_settings(database_url, web={"enabled": True, "port": free_port(), **web})


async def demo_on_the_web(
    db: Database, clock: ManualClock, database_url: str, at: datetime
) -> Settings:
    """The demo organisation loaded, the clock set to ``at``, and settings with the web
    console on."""
    await load_demo(db, clock)
    clock.set(at)
    return web_settings(database_url)


async def link_token(db: Database, email: str, clock: Clock, settings: Settings) -> str:
    """A fresh sign-in link token for ``email``, as ``web`` in chat would give."""
    async with db.session() as session:
        person = await session.scalar(select(Person).where(Person.email == email))
        assert person is not None, email
        return await issue_link(session, person, clock.now(), settings.web, by="console")


@asynccontextmanager
async def web_client(settings: Settings, db: Database, clock: Clock) -> AsyncIterator[TestClient]:
    """An HTTP client on the web console's application (its own cookie jar: one browser)."""
    app = build_app(Web(settings, db, clock, Pages(), privacy_registry()))
    async with TestClient(TestServer(app)) as client:
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = CSRF_FIELD.search(html)
    assert found is not None, html
    return found.group(1)


async def sign_in(client: TestClient, token: str) -> ClientResponse:
    """Open the link and press *Sign in*; the answer to the press (not followed)."""
    page = await client.get(f"/signin/{token}")
    assert page.status == 200, await page.text()
    csrf = csrf_of(await page.text())
    return await client.post(f"/signin/{token}", data={"csrf": csrf}, allow_redirects=False)


async def signed_in(
    settings: Settings, db: Database, clock: Clock, email: str, client: TestClient
) -> str:
    """Sign ``email`` in on ``client``; returns the session's CSRF token (from a page)."""
    pressed = await sign_in(client, await link_token(db, email, clock, settings))
    assert pressed.status == 303, await pressed.text()
    home = await client.get("/")
    return csrf_of(await home.text())
