"""Signing in with a one-time link, and signing out.

``GET /signin/<token>`` only shows who the link is for and a *Sign in* button; the press
(``POST``, with the CSRF token of that page) uses the link up and opens the session. Link
previews, scanners and browsers that prefetch never press buttons, so they cannot burn a link.
"""

from __future__ import annotations

from aiohttp import web

from bot.db.models import Person
from bot.web.access import LinkRefused, check_link, end_session, new_token, use_link
from bot.web.access import csrf_token as derive_csrf
from bot.web.shared import SIGNIN_COOKIE, WEB, see_other, viewer_of

#: A refused link: 404 for one that never existed, 410 for one used or expired.
LINK_STATUS = {"unknown": 404, "used": 410, "expired": 410}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/signin/{token}", show_link)
    router.add_post("/signin/{token}", press_sign_in)
    router.add_post("/signout", sign_out)


async def show_link(request: web.Request) -> web.StreamResponse:
    """The sign-in page: for whom the link is, and the button. Uses nothing up."""
    shared = request.app[WEB]
    token = request.match_info["token"]
    async with shared.db.session() as session:
        try:
            link = await check_link(session, token, shared.clock.now())
        except LinkRefused as refused:
            return _refused(request, refused)
        person = await session.get(Person, link.person_id)
        assert person is not None  # check_link found them
        name, locale = person.name, person.locale
    nonce = new_token()
    response = shared.page(
        request,
        "signin",
        locale=locale,
        name=name,
        action=f"/signin/{token}",
        signin_csrf=derive_csrf(shared.secret, "signin", nonce),
        minutes=shared.settings.web.link_ttl_minutes,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=shared.settings.web.link_ttl_minutes * 60,
        path="/signin",
        secure=shared.settings.web.secure,
        httponly=True,
        samesite="Strict",
    )
    return response


async def press_sign_in(request: web.Request) -> web.StreamResponse:
    """The button was pressed: the link is used up and the browser signed in."""
    shared = request.app[WEB]
    now = shared.clock.now()
    async with shared.db.session() as session:
        try:
            opened = await use_link(session, request.match_info["token"], now, shared.settings.web)
        except LinkRefused as refused:
            return _refused(request, refused)
        earlier = viewer_of(request)
        if earlier is not None:
            # Signing in again in the same browser ends the session it had.
            await end_session(session, earlier.session_id, now)
    response = see_other("/")
    response.set_cookie(
        shared.session_cookie,
        opened.token,
        max_age=shared.settings.web.session_hours * 3600,
        path="/",
        secure=shared.settings.web.secure,
        httponly=True,
        samesite="Strict",
    )
    response.del_cookie(SIGNIN_COOKIE, path="/signin")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """Sign out: the session ends here and now, the cookie goes."""
    shared = request.app[WEB]
    viewer = viewer_of(request)
    locale = shared.locale_of(request)
    if viewer is not None:
        async with shared.db.session() as session:
            await end_session(session, viewer.session_id, shared.clock.now())
    response = see_other(f"/?signed_out=1&lang={locale}")
    response.del_cookie(shared.session_cookie, path="/")
    return response


def _refused(request: web.Request, refused: LinkRefused) -> web.Response:
    shared = request.app[WEB]
    status = LINK_STATUS[refused.reason]
    return shared.error(request, status, f"link_{refused.reason}", refused.locale)
