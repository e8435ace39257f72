"""The web console's aiohttp server: routes, and the checks every request goes through.

Every response carries a Content-Security-Policy without inline scripts or styles, refuses
framing and sends no referrer (a sign-in link must not leak through one). Every state change
(any method but GET and HEAD) must carry the CSRF token of its session, or of the sign-in page
it comes from; the session cookie is HttpOnly, SameSite=Strict, and Secure when the public
address is https.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.aiohttp_sites import bound_port
from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database
from bot.errors import InputError
from bot.privacy.parts import PrivacyRegistry
from bot.web import (
    briefing_pages,
    language,
    loyalty_pages,
    pages,
    people_pages,
    signin,
    suggestion_pages,
    surveys,
)
from bot.web.access import csrf_token, current_session, same_token
from bot.web.rendering import STATIC, Pages
from bot.web.shared import SIGNIN_COOKIE, VIEWER, WEB, Web, viewer_of

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The console's parts, each a module with ``add_routes(router)``.
PARTS = (
    signin,
    language,
    pages, briefing_pages, surveys, suggestion_pages, loyalty_pages, people_pages)
#: The largest request body: a people file (at most 2 MiB) comes back base64-encoded with
#: the confirmation of its dry run.
MAX_BODY = 4 * 1024 * 1024


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The headers of every response, errors included; pages are never cached."""
    shared = request.app[WEB]
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            problem = {404: "not_found", 405: "not_allowed", 413: "too_large"}.get(
                exc.status, "bad_request"
            )
            response = shared.error(request, exc.status, problem)
        else:
            response = web.Response(status=exc.status, headers=exc.headers)
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        response = shared.error(request, 500, "internal")
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking (their session cookie, checked and touched); a cookie that opens no
    live session any more is cleared."""
    shared = request.app[WEB]
    token = request.cookies.get(shared.session_cookie)
    if token:
        # htmx asks only for the parts a page reloads by itself: no sign of anyone there.
        by_page = request.headers.get("HX-Request") == "true"
        async with shared.db.session() as session:
            viewer = await current_session(
                session,
                token,
                shared.clock.now(),
                shared.settings.web,
                shared.secret,
                touch=not by_page,
            )
        if viewer is not None:
            request[VIEWER] = viewer
    response = await handler(request)
    if token and viewer_of(request) is None and shared.session_cookie not in response.cookies:
        response.del_cookie(shared.session_cookie, path="/")
    return response


@web.middleware
async def csrf_checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state change carries the token of the session, or of the sign-in page, that
    showed its form (field ``csrf``, or header ``X-CSRF-Token``)."""
    if request.method in SAFE_METHODS:
        return await handler(request)
    shared = request.app[WEB]
    form = await request.post()
    given = form.get("csrf") or request.headers.get("X-CSRF-Token")
    expected = []
    viewer = viewer_of(request)
    if viewer is not None:
        expected.append(viewer.csrf)
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if nonce:
        expected.append(csrf_token(shared.secret, "signin", nonce))
    if not any(same_token(given if isinstance(given, str) else None, e) for e in expected):
        log.warning("web: %s %s refused, CSRF token missing or wrong", request.method, request.path)
        return shared.error(request, 403, "csrf")
    return await handler(request)


def build_app(shared: Web) -> web.Application:
    """The web console as an aiohttp application (tests serve it with aiohttp's test server)."""
    app = web.Application(
        middlewares=[security_headers, signed_in, csrf_checked], client_max_size=MAX_BODY
    )
    app[WEB] = shared
    # Each part of the console adds its own routes.
    for part in PARTS:
        part.add_routes(app.router)
    app.router.add_static("/static", STATIC, append_version=False)
    return app


class WebServer:
    """The web console on ``web.listen:web.port``, started and stopped with Fidelio."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        privacy: PrivacyRegistry | None = None,
    ):
        self.shared = Web(settings, db, clock, Pages(), privacy)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """The address of the pages (the bound port when ``web.port`` is 0 and no public
        address is set)."""
        settings = self.shared.settings.web
        if settings.public_url or self.port is None:
            return settings.base_url
        return settings.model_copy(update={"port": self.port}).base_url

    async def start(self) -> None:
        settings = self.shared.settings.web
        runner = web.AppRunner(build_app(self.shared), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.listen, settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            # Named like a configuration problem: `fidelio run` prints one line and exits 2.
            raise InputError(
                "web.port",
                f"the web console cannot listen on {settings.listen}:{settings.port} "
                f"({exc.strerror}); choose another web.port, or set web.enabled to false",
            ) from exc
        self._runner = runner
        self.port = bound_port(runner, settings.port)
        log.info("web console on %s", self.base_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
