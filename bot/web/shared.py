"""What the web console's request handlers share: the server's parts, who is asking, and
how a page or an error is answered."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.clock import Clock
from bot.config import Settings
from bot.db.session import Database
from bot.handling import HR, MANAGERS
from bot.locale import language_choice
from bot.privacy.parts import PrivacyRegistry
from bot.settings_section import SUPPORTED_LOCALES
from bot.web.access import Viewer
from bot.web.rendering import Pages

#: The statuses whose error pages have a title of their own (``errors.title.<status>``).
ERROR_TITLES = frozenset({400, 401, 403, 404, 405, 410, 500})
#: The languages of the header's switch, each named in itself.
LANGUAGES = tuple((code, language_choice(code)) for code in SUPPORTED_LOCALES)
#: The cookie a sign-in page sets; its form's CSRF token is derived from it.
SIGNIN_COOKIE = "fidelio_signin"


@dataclass(frozen=True)
class Web:
    """What the request handlers share (reached as ``request.app[WEB]``)."""

    settings: Settings
    db: Database
    clock: Clock
    pages: Pages
    #: Every feature's personal-data parts, for exporting and forgetting people.
    privacy: PrivacyRegistry | None = None

    @property
    def secret(self) -> str:
        return self.settings.security.secret_key.get_secret_value()

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers refuse the cookie unless Secure, for / and
        # without a domain: nothing on another subdomain can set or shadow it.
        return "__Host-fidelio" if self.settings.web.secure else "fidelio_session"

    def locale_of(self, request: web.Request) -> str:
        """The reader's language: their own when signed in, else the one asked for or the
        browser's if Fidelio speaks it, else the organisation's."""
        viewer = viewer_of(request)
        if viewer is not None:
            return viewer.locale
        # ``?lang=``: a page after signing out stays in the language of who signed out.
        asked = request.query.get("lang") or request.headers.get("Accept-Language") or ""
        wanted = asked[:2].lower()
        return wanted if wanted in ("en", "it") else self.settings.organisation.default_locale

    def page(
        self,
        request: web.Request,
        template: str,
        /,
        *,
        status: int = 200,
        locale: str | None = None,
        **context: object,
    ) -> web.Response:
        """The page ``template`` for whoever asked (in ``locale`` when given), as HTML."""
        viewer = viewer_of(request)
        html = self.pages.render(
            template,
            locale or self.locale_of(request),
            viewer.timezone if viewer else self.settings.organisation.default_timezone,
            viewer=viewer,
            is_hr=viewer is not None and viewer.role in HR,
            is_manager=viewer is not None and viewer.role in MANAGERS,
            csrf=viewer.csrf if viewer else "",
            path=request.path,
            link_minutes=self.settings.web.link_ttl_minutes,
            languages=LANGUAGES,
            **context,
        )
        return web.Response(text=html, content_type="text/html", status=status)

    def error(
        self, request: web.Request, status: int, problem: str, locale: str | None = None
    ) -> web.Response:
        """An error page: ``problem`` names its text (``errors.<problem>``)."""
        titled = status in ERROR_TITLES
        return self.page(
            request,
            "error",
            status=status,
            locale=locale,
            title_key=f"errors.title.{status if titled else 'other'}",
            problem=problem,
        )


WEB = web.AppKey("web", Web)
VIEWER = web.RequestKey("viewer", Viewer)


def viewer_of(request: web.Request) -> Viewer | None:
    """The signed-in person behind a request, or None."""
    return request.get(VIEWER)


def see_other(location: str) -> web.Response:
    """Go to ``location`` with a GET (after a form)."""
    return web.Response(status=303, headers={"Location": location})
