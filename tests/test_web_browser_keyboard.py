"""Every page of the web console in a real browser, as HR and as a manager: every control is
labelled and the Tab key reaches each one (one per group of radio buttons), the browser
reports no Content-Security-Policy violation; and in the browser, a link opened after its ten
minutes and the cookie of a session revoked with ``fidelio web revoke`` are refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from bot.db.models import Person
from bot.db.session import Database
from bot.suggestions.tables import Suggestion
from bot.web.access import revoke_person

from .test_web_browser import (
    busy_dashboard,
    chromium,
    fidelio_with_web,
    link_from_console,
    sign_in,
)
from .web_helpers import AISHA, HR, LUCA

HR_PAGES = (
    "/hr",
    "/hr/briefings",
    "/hr/briefings/new",
    "/hr/briefings/spring-trade-in",
    "/hr/surveys",
    "/hr/surveys/preview?survey=pulse-fortnightly",
    "/suggestions",
    "/suggestions/{suggestion}",
    "/hr/loyalty",
    "/hr/people",
    "/hr/people/invites",
    f"/hr/people/forget?email={AISHA}",
    "/hr/audit",
)
MANAGER_PAGES = ("/team", "/team/trends", "/suggestions", "/suggestions/{suggestion}")

# Marks every control a person can reach (visible, enabled, not taken out of the tab order)
# with its number, and lists those without a name a screen reader could say.
CONTROLS = """() => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]';
  const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const controls = [...document.querySelectorAll(selector)]
    .filter(e => shown(e) && !e.disabled && e.tabIndex >= 0);
  const named = e => {
    if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return true;
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName) && !['submit', 'button'].includes(e.type))
      return e.labels !== null && e.labels.length > 0 && e.labels[0].innerText.trim() !== '';
    const img = e.querySelector('img[alt]');
    return (e.innerText || e.value || e.title || (img && img.alt) || '').trim() !== '';
  };
  controls.forEach((e, i) => e.setAttribute('data-kb', String(i)));
  const groups = controls.map(e => e.type === 'radio' ? 'radio:' + e.name : 'c' + e.dataset.kb);
  return {
    groups: groups,
    unnamed: controls.filter(e => !named(e)).map(e => e.outerHTML.slice(0, 160)),
  };
}"""


async def every_control_by_keyboard(page: Any, path: str) -> None:
    """Tab through ``path`` from the top: each control (radio groups once) gets the focus."""
    found = await page.evaluate(CONTROLS)
    assert found["unnamed"] == [], (path, found["unnamed"])
    wanted = set(found["groups"])
    reached: set[str] = set()
    await page.locator("body").focus()
    for _ in range(len(found["groups"]) + 5):
        await page.keyboard.press("Tab")
        mark = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return e && e.dataset.kb !== undefined"
            " ? (e.type === 'radio' ? 'radio:' + e.name : 'c' + e.dataset.kb) : null; }"
        )
        if mark is not None:
            reached.add(mark)
        if reached == wanted:
            break
    assert wanted - reached == set(), (path, sorted(wanted - reached))


async def visit_every_page(page: Any, base: str, paths: tuple[str, ...], suggestion: int) -> None:
    for path in paths:
        shown = await page.goto(base + path.format(suggestion=suggestion))
        assert shown is not None and shown.status == 200, path
        await every_control_by_keyboard(page, path)
    assert page.csp_errors == []


async def test_every_page_labels_every_control_and_the_keyboard_reaches_each(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR, LUCA) as runtime:
        await busy_dashboard(runtime, clock, db)
        async with db.session() as session:
            suggestion = await session.scalar(select(Suggestion.id))
        assert suggestion is not None
        base = runtime.service("web").base_url
        for email, paths in ((HR, HR_PAGES), (LUCA, MANAGER_PAGES)):
            link = await link_from_console(runtime, email)
            async with chromium(viewport={"width": 1280, "height": 900}) as page:
                await sign_in(page, link)
                await visit_every_page(page, base, paths, suggestion)


async def test_a_link_past_its_minutes_and_a_revoked_session_s_cookie_are_refused(
    db: Database, clock: ManualClock, database_url: str
) -> None:
    async with fidelio_with_web(db, clock, database_url, HR) as runtime:
        base = runtime.service("web").base_url
        late = await link_from_console(runtime, HR)
        clock.advance(timedelta(minutes=runtime.settings.web.link_ttl_minutes, seconds=1))
        async with chromium() as page:
            expired = await page.goto(late)
            assert expired is not None and expired.status == 410
            assert await page.get_by_role("button", name="Entra").count() == 0

        link = await link_from_console(runtime, HR)
        async with chromium() as page:
            await sign_in(page, link)
            signed = await page.goto(base + "/hr")
            assert signed is not None and signed.status == 200
            async with db.session() as session:
                hr = await session.scalar(select(Person).where(Person.email == HR))
                assert hr is not None
                assert await revoke_person(session, hr.id, clock.now(), "revoked") == 1
            # The browser still sends its cookie: it opens nothing, and is cleared.
            assert any(c["name"] == "fidelio_session" for c in await page.context.cookies())
            refused = await page.goto(base + "/hr")
            assert refused is not None and refused.status == 401
            assert not any(c["name"] == "fidelio_session" for c in await page.context.cookies())
            assert page.csp_errors == []
