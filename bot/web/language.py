"""The language switch in the console's header: the person's language, as ``language`` in
chat sets it, so chat and the console keep speaking the same one."""

from __future__ import annotations

from aiohttp import web

from bot.db.models import AuditEntry, Person
from bot.settings_section import SUPPORTED_LOCALES
from bot.web.shared import WEB, see_other, viewer_of


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/language", choose_language)


def back_to(path: object) -> str:
    """Where to go after the switch: a path of this console, never another site
    (``//host`` or a scheme would leave it)."""
    if isinstance(path, str) and path.startswith("/") and not path.startswith("//"):
        return path if "\\" not in path else "/"
    return "/"


async def choose_language(request: web.Request) -> web.StreamResponse:
    """Set the person's language (field ``language``: ``en`` or ``it``) and go back to the
    page they were on (field ``next``); the change is audited as in chat."""
    shared = request.app[WEB]
    viewer = viewer_of(request)
    if viewer is None:
        return shared.page(request, "signed_out", status=401, signed_out=False)
    form = await request.post()
    code = form.get("language")
    if code not in SUPPORTED_LOCALES:
        return shared.error(request, 400, "unknown_language")
    now = shared.clock.now()
    async with shared.db.session() as session:
        person = await session.get(Person, viewer.person_id)
        assert person is not None  # the session check found them
        if person.locale != code:
            before, person.locale, person.updated_at = person.locale, str(code), now
            session.add(
                AuditEntry.by(person, now, "language", before=before, after=code, channel="web")
            )
    return see_other(back_to(form.get("next")))
